"""One training run's moving parts (model, optimiser, schedule, state) and their checkpoints.

:class:`TrainingRun` is what a :func:`~calo_calib.training.loop.fit` call trains with: it builds the
wrapped network, AdamW and the warm-up + cosine schedule, saves everything to a checkpoint, and
restores it (weights, optimiser, schedule, train state and every RNG) for an identical continuation.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from calo_calib.training import checkpoint as ckpt
from calo_calib.training.config import TrainerConfig, lr_lambda
from calo_calib.training.distributed import DistEnv
from calo_calib.training.domain_adaptation import AdversarialNetwork, DomainAdversary
from calo_calib.training.losses import LossFn

log = logging.getLogger(__name__)


@dataclass
class TrainState:
    """What a checkpoint restores besides the weights."""

    epoch: int = -1  # last completed epoch
    step: int = 0
    best_val: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    clusters_seen: int = 0  # training clusters of all completed epochs (the learning curve's x axis)
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class TrainingRun:
    """What one :func:`~calo_calib.training.loop.fit` call trains with, shared by the epoch helpers."""

    model: torch.nn.Module  # the plain network: its state_dict is the calibration that is saved
    trained: torch.nn.Module  # what the optimiser updates: model, or model + domain discriminator
    net: torch.nn.Module  # what runs the training forward: trained, wrapped in DDP and/or torch.compile
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    cfg: TrainerConfig
    env: DistEnv
    loss_fn: LossFn
    adversary: DomainAdversary | None
    steps_per_epoch: int  # already capped by cfg.max_steps_per_epoch
    total: int  # optimiser steps of the whole run (the schedule's and the reversal ramp's length)
    run_dir: Path
    extra_state: dict[str, Any] | None
    state: TrainState = field(default_factory=TrainState)

    @classmethod
    def build(
        cls,
        model: torch.nn.Module,
        steps_per_epoch: int,
        loss_fn: LossFn,
        cfg: TrainerConfig,
        run_dir: Path,
        env: DistEnv,
        extra_state: dict[str, Any] | None,
        adversary: DomainAdversary | None,
    ) -> TrainingRun:
        """The wrapped network on the device, AdamW and the schedule over ``steps_per_epoch · cfg.epochs`` steps."""
        trained, net = _wrap_for_training(model, adversary, cfg, env)
        opt = _optimizer(model, adversary, cfg, env)
        if cfg.max_steps_per_epoch > 0:
            steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
        total = max(1, steps_per_epoch * cfg.epochs)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(total, int(cfg.warmup_fraction * total), cfg.min_lr_ratio))
        return cls(model, trained, net, opt, sched, cfg, env, loss_fn, adversary, steps_per_epoch, total, Path(run_dir), extra_state)

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def last(self) -> Path:
        return self.ckpt_dir / ckpt.LAST

    @property
    def select_last(self) -> bool:
        """Keep the final weights as ``best.pt`` instead of the lowest validation loss.

        Model selection on the labelled validation loss alone cannot see the domain term (it would
        favour the early epochs, before the reversal ramps up): checkpoint=last keeps the final weights.
        """
        return self.adversary is not None and self.adversary.cfg.checkpoint == "last"

    def resume(self) -> None:
        """Restore weights, optimiser, schedule, train state and every RNG from ``checkpoints/last.pt``."""
        last, adversary = self.last, self.adversary
        payload = ckpt.load(last, self.env.device)
        self.model.load_state_dict(payload["model"])
        if adversary is not None:
            if "adversary" not in payload:
                raise ValueError(f"{last} holds no domain discriminator: it was trained without the adversary")
            adversary.discriminator.load_state_dict(payload["adversary"])
        self.opt.load_state_dict(payload["optimizer"])
        self.sched.load_state_dict(payload["scheduler"])
        self.state = TrainState(**payload["state"])
        ckpt.set_rng_state(payload["rng"])  # last, so that nothing above draws from the restored streams
        state = self.state
        log.info("resumed from %s after epoch %d (best val %.6g at epoch %d)", last, state.epoch, state.best_val, state.best_epoch)

    def save(self, path: Path) -> None:
        """Save everything :meth:`resume` restores to ``path`` (rank 0 only: the ranks hold the same weights)."""
        if not self.env.is_main:
            return
        payload = {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "state": asdict(self.state),
            "rng": ckpt.rng_state(),
            "extra": self.extra_state or {},
        }
        if self.adversary is not None:
            payload["adversary"] = self.adversary.discriminator.state_dict()
        ckpt.save(path, payload)


def _wrap_for_training(
    model: torch.nn.Module, adversary: DomainAdversary | None, cfg: TrainerConfig, env: DistEnv
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(trained, net): the module the optimiser updates, on the device, and the one that runs forward."""
    # With an adversary the network and its discriminator train as one module (one DDP wrapper).
    trained: torch.nn.Module = model if adversary is None else AdversarialNetwork(model, adversary.discriminator)
    trained.to(env.device)
    net: torch.nn.Module = trained
    if env.distributed:
        net = torch.nn.parallel.DistributedDataParallel(trained, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    if cfg.compile:
        # Static shapes: one graph per (batch, padded length) bucket; dynamic shapes recompiled
        # unstably in the platform measurements. Checkpoints keep saving the plain module.
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, cfg.compile_cache_limit)
        net = torch.compile(net, dynamic=False)
    return trained, net


def _optimizer(model: torch.nn.Module, adversary: DomainAdversary | None, cfg: TrainerConfig, env: DistEnv) -> torch.optim.AdamW:
    """AdamW over the network (and the discriminator, with its own learning rate)."""
    # The fused (single-kernel) AdamW on CUDA: same update, fewer launches.
    groups: list[dict[str, Any]] = [{"params": list(model.parameters())}]
    if adversary is not None:  # the discriminator may learn faster than the network it plays against
        groups.append({"params": list(adversary.discriminator.parameters()), "lr": cfg.lr * adversary.cfg.lr_mult})
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=env.device.type == "cuda")
