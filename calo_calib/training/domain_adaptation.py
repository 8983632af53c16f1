"""Adversarial domain adaptation in the training loop (config group ``adversary``: ``none`` | ``grl``).

Each optimiser step takes one labelled MC batch and one batch of UNLABELLED data-like clusters
(``data.unlabelled``, read with ``with_truth=False``: their truth is never loaded), concatenates
them (padded to a common cell count) and runs ONE forward pass of :class:`AdversarialNetwork`: the
network's correction on the MC part feeds the regression loss; its pooled representation of every
cluster goes through a gradient-reversal layer into a :class:`~calo_calib.models.adversary.DomainDiscriminator`
trained with a binary cross-entropy (label 0 = MC, 1 = data-like). The total loss is

    L = L_regression(MC clusters) + weight · BCE(discriminator logits, domain labels)

with the reversal strength λ(p) = λ_max (2 / (1 + exp(-γ p)) - 1) ramping up over the training
progress p (Ganin et al. 2016). One forward pass for both domains keeps DDP's one-forward-per-backward
contract and shares the batch between the two losses.

Per epoch the loop records ``adv_disc_loss`` (mean BCE), ``adv_disc_acc`` (fraction of clusters
whose domain the discriminator gets right; 0.5 = chance, the goal of the adaptation) and
``adv_lambda`` (λ at the end of the epoch) in ``history.json`` and W&B.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from calo_calib.models.adversary import DomainDiscriminator, grl_lambda
from calo_calib.models.common import NetworkOutput, as_output

Batch = dict[str, torch.Tensor]
ADVERSARIES = ("none", "grl")
CHECKPOINT_CHOICES = ("last", "best_val")
# Unlabelled passes within one epoch use loader epochs epoch + k * CYCLE_STRIDE (k = 0, 1, ...): the
# order is deterministic per (seed, epoch), as for the labelled data, and never repeats an epoch's order.
CYCLE_STRIDE = 1_000_003


@dataclass(frozen=True)
class AdversaryConfig:
    """Settings of the domain adversary (``conf/adversary/*.yaml``)."""

    name: str = "none"  # none | grl
    weight: float = 1.0  # weight of the discriminator BCE in the total loss
    lambda_max: float = 1.0  # final gradient-reversal strength λ
    gamma: float = 10.0  # steepness of the λ ramp (Ganin et al. 2016: 10)
    hidden: int = 64  # discriminator hidden width
    n_layers: int = 2  # discriminator hidden layers
    dropout: float = 0.0  # discriminator dropout
    lr_mult: float = 3.0  # discriminator learning rate / network learning rate (see conf/adversary/grl.yaml)
    checkpoint: str = "last"  # weights the run evaluates: last epoch, or best MC validation loss

    def __post_init__(self) -> None:
        if self.name not in ADVERSARIES:
            raise ValueError(f"adversary.name must be one of {ADVERSARIES}, got {self.name!r}")
        if self.weight < 0 or self.lambda_max < 0 or self.gamma <= 0 or self.lr_mult <= 0:
            raise ValueError(
                f"adversary: need weight >= 0, lambda_max >= 0, gamma > 0, lr_mult > 0; got weight={self.weight}, "
                f"lambda_max={self.lambda_max}, gamma={self.gamma}, lr_mult={self.lr_mult}"
            )
        if self.checkpoint not in CHECKPOINT_CHOICES:
            raise ValueError(f"adversary.checkpoint must be one of {CHECKPOINT_CHOICES}, got {self.checkpoint!r}")

    @property
    def active(self) -> bool:
        return self.name != "none"


def concat_batches(labelled: Batch, unlabelled: Batch) -> Batch:
    """One batch of B_l + B_u clusters: ``cells``, ``valid``, ``cluster`` (and ``pair`` when both have it).

    The shorter batch's cell dimension is padded (zeros, ``valid`` False) to the longer one's L.
    Only network inputs are kept: the unlabelled batch has no usable target.
    """
    length = max(labelled["cells"].shape[1], unlabelled["cells"].shape[1])

    def pad(x: torch.Tensor) -> torch.Tensor:
        extra = length - x.shape[1]
        if extra == 0:
            return x
        shape = (x.shape[0], extra, *x.shape[2:])
        return torch.cat([x, torch.zeros(shape, dtype=x.dtype, device=x.device)], dim=1)

    keys = ["cells", "valid"] + (["pair"] if "pair" in labelled and "pair" in unlabelled else [])
    out = {k: torch.cat([pad(labelled[k]), pad(unlabelled[k])], dim=0) for k in keys}
    out["cluster"] = torch.cat([labelled["cluster"], unlabelled["cluster"]], dim=0)
    return out


class AdversarialNetwork(nn.Module):
    """The calibration network and the domain discriminator as one module (one DDP wrapper, one forward).

    ``forward(cells, valid, cluster, pair, lam)`` -> (:class:`NetworkOutput` of every cluster, domain
    logits (B,)); ``lam`` is the gradient-reversal strength (0-d tensor).
    """

    def __init__(self, network: nn.Module, discriminator: DomainDiscriminator) -> None:
        super().__init__()
        self.network = network
        self.discriminator = discriminator

    def forward(
        self,
        cells: torch.Tensor,
        valid: torch.Tensor,
        cluster: torch.Tensor,
        pair: torch.Tensor | None,
        lam: torch.Tensor,
    ) -> tuple[NetworkOutput, torch.Tensor]:
        out = as_output(self.network(cells, valid, cluster, pair, return_features=True))
        if out.features is None:
            raise ValueError(f"{type(self.network).__name__} returned no representation for return_features=True")
        return out, self.discriminator(out.features, lam)


class DomainAdversary:
    """The discriminator, the unlabelled batch stream and the per-epoch bookkeeping of one training.

    Args:
        cfg: the adversary settings (must be active).
        representation_dim: width of the network's representation (``model.representation_dim``).
        unlabelled_batches: epoch -> iterable of unlabelled batches (``ClusterDataset.batches``).
    """

    def __init__(
        self, cfg: AdversaryConfig, representation_dim: int, unlabelled_batches: Callable[[int], Iterable[Batch]]
    ) -> None:
        if not cfg.active:
            raise ValueError("DomainAdversary needs an active adversary config (adversary=grl)")
        self.cfg = cfg
        self.discriminator = DomainDiscriminator(representation_dim, cfg.hidden, cfg.n_layers, cfg.dropout)
        self._unlabelled = unlabelled_batches
        self.reset_epoch()

    def stream(self, epoch: int) -> Iterator[Batch]:
        """Endless unlabelled batches for one epoch (the unlabelled set is cycled as often as needed)."""
        k = 0
        while True:
            empty = True
            for batch in self._unlabelled(epoch + k * CYCLE_STRIDE):
                empty = False
                yield batch
            if empty:
                raise ValueError("the unlabelled data set (data.unlabelled) has no selected clusters")
            k += 1

    def lam(self, step: int, total_steps: int) -> float:
        """λ at optimiser step ``step`` of ``total_steps``."""
        return grl_lambda(step / max(1, total_steps), self.cfg.lambda_max, self.cfg.gamma)

    def losses(
        self, net: nn.Module, labelled: Batch, unlabelled: Batch, loss_fn: Callable, lam: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(regression loss on the MC clusters, discriminator BCE, discriminator accuracy) of one step.

        ``net`` is the (possibly DDP-wrapped or compiled) :class:`AdversarialNetwork`.
        """
        joint = concat_batches(labelled, unlabelled)
        n_l = labelled["cells"].shape[0]
        lam_t = torch.tensor(lam, dtype=torch.float32, device=joint["cells"].device)
        out, logits = net(joint["cells"], joint["valid"], joint["cluster"], joint.get("pair"), lam_t)
        out = as_output(out)
        mc = NetworkOutput(out.correction[:n_l], None if out.log_sigma is None else out.log_sigma[:n_l])
        regression = loss_fn(mc, labelled["target"], labelled)
        labels = torch.cat(
            [torch.zeros(n_l, device=logits.device), torch.ones(logits.shape[0] - n_l, device=logits.device)]
        )
        disc = F.binary_cross_entropy_with_logits(logits.float(), labels)
        acc = ((logits.detach() > 0).float() == labels).float().mean()
        self._sum += torch.stack([disc.detach().double() * labels.numel(), acc.double() * labels.numel()]).cpu()
        self._n += labels.numel()
        self._lam = lam
        return regression, disc, acc

    def reset_epoch(self) -> None:
        self._sum = torch.zeros(2, dtype=torch.float64)
        self._n = 0
        self._lam = 0.0

    def epoch_record(self, distributed: bool = False, device: torch.device | None = None) -> dict[str, float]:
        """The epoch's mean discriminator loss and accuracy (over all ranks) and the last λ; resets the sums."""
        totals = torch.cat([self._sum, torch.tensor([float(self._n)], dtype=torch.float64)])
        if distributed:
            totals = totals.to(device)
            torch.distributed.all_reduce(totals)
            totals = totals.cpu()
        n = max(float(totals[2]), 1.0)
        record = {"adv_disc_loss": float(totals[0]) / n, "adv_disc_acc": float(totals[1]) / n, "adv_lambda": self._lam}
        self.reset_epoch()
        return record
