"""Adversarial domain adaptation: gradient reversal, the λ schedule, and the discriminator on a toy shift.

Toy shift (no simulation): the "data-like" clusters differ from the labelled MC only by an offset
of 3 standard deviations in one cluster feature that carries no information about the target. A
discriminator on the network's representation separates the domains easily when nothing pushes
back (λ = 0); with gradient reversal the network learns to drop that feature from its
representation and the discriminator falls toward chance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from calo_calib.models import build_network, grl_lambda, reverse_gradient
from calo_calib.training.config import TrainerConfig
from calo_calib.training.distributed import DistEnv
from calo_calib.training.domain_adaptation import AdversaryConfig, DomainAdversary, concat_batches
from calo_calib.training.loop import fit
from calo_calib.training.losses import build_loss

F_CELL, F_CLUSTER, N_CELLS = 3, 4, 3
SHIFTED_FEATURE, SHIFT = 2, 3.0
IRRELEVANT_FEATURE = 3  # neither shifted nor used by the target: the reference for the sensitivity
N_BATCHES = 32
TINY = dict(embed_dim=16, n_layers=1, n_heads=2, head_hidden=16)
ENV = DistEnv(0, 0, 1, torch.device("cpu"))


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.randn(5, 3, requires_grad=True)
    y = reverse_gradient(x, 0.7)
    torch.testing.assert_close(y, x)
    (y * torch.arange(3.0)).sum().backward()
    torch.testing.assert_close(x.grad, -0.7 * torch.arange(3.0).expand(5, 3))


def test_lambda_schedule_ramps_from_zero_to_lambda_max():
    assert grl_lambda(0.0) == 0.0
    assert grl_lambda(1.0, lambda_max=2.0) == pytest.approx(2.0 * (2 / (1 + math.exp(-10)) - 1))
    values = [grl_lambda(p / 10) for p in range(11)]
    assert all(b > a for a, b in zip(values, values[1:]))  # strictly increasing
    assert grl_lambda(0.1) == pytest.approx(2 / (1 + math.exp(-1)) - 1)  # Ganin et al. 2016, gamma = 10
    with pytest.raises(ValueError, match="adversary.name"):
        AdversaryConfig(name="mmd")


def test_concat_batches_pads_to_the_longer_batch():
    a = {
        "cells": torch.ones(2, 3, F_CELL),
        "valid": torch.ones(2, 3, dtype=torch.bool),
        "cluster": torch.ones(2, F_CLUSTER),
        "target": torch.ones(2),
    }
    b = {
        "cells": torch.ones(4, 5, F_CELL),
        "valid": torch.ones(4, 5, dtype=torch.bool),
        "cluster": torch.ones(4, F_CLUSTER),
    }
    joint = concat_batches(a, b)
    assert joint["cells"].shape == (6, 5, F_CELL) and joint["valid"].shape == (6, 5) and "target" not in joint
    assert not joint["valid"][:2, 3:].any() and joint["valid"][2:].all() and (joint["cells"][:2, 3:] == 0).all()


def toy_batches(epoch: int, domain: str, n_batches: int = N_BATCHES, b: int = 64) -> list[dict[str, torch.Tensor]]:
    """Deterministic per (domain, epoch). Target depends on cluster feature 0 and the cells only."""
    rng = np.random.default_rng([0 if domain == "mc" else 1, epoch])
    out = []
    for _ in range(n_batches):
        cells = rng.normal(size=(b, N_CELLS, F_CELL)).astype(np.float32)
        cluster = rng.normal(size=(b, F_CLUSTER)).astype(np.float32)
        if domain == "data":
            cluster[:, SHIFTED_FEATURE] += SHIFT
        target = 1.0 + 0.05 * cluster[:, 0] + 0.02 * cells[:, :, 0].mean(1)
        out.append({"cells": torch.tensor(cells), "valid": torch.ones(b, N_CELLS, dtype=torch.bool),
                    "cluster": torch.tensor(cluster), "target": torch.tensor(target),
                    "row_id": torch.arange(b)})  # fmt: skip
    return out


def train_with_adversary(tmp_path, lambda_max: float, epochs: int) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    torch.manual_seed(0)
    model = build_network("transformer", F_CELL, F_CLUSTER, None, **TINY)
    adversary = DomainAdversary(
        AdversaryConfig(name="grl", lambda_max=lambda_max, lr_mult=3.0, hidden=32, n_layers=2, checkpoint="last"),
        model.representation_dim, lambda epoch: toy_batches(epoch, "data"),
    )  # fmt: skip
    cfg = TrainerConfig(epochs=epochs, lr=3e-3, patience=100, warmup_fraction=0.05, prefetch=0)
    state = fit(model, lambda epoch: toy_batches(epoch, "mc"), lambda: toy_batches(999, "mc", n_batches=2), N_BATCHES,
                build_loss("mse"), cfg, tmp_path, ENV, adversary=adversary)  # fmt: skip
    return model, state.history


def sensitivity_ratio(model: torch.nn.Module) -> float:
    """|Δ representation| for a unit step in the shifted feature / the same for an unshifted irrelevant one."""
    batch = toy_batches(700, "mc", n_batches=1, b=512)[0]
    model.eval()
    with torch.no_grad():
        h0 = model.representation(batch["cells"], batch["valid"], batch["cluster"])
        moved = []
        for feature in (SHIFTED_FEATURE, IRRELEVANT_FEATURE):
            cluster = batch["cluster"].clone()
            cluster[:, feature] += 1.0
            moved.append(float((model.representation(batch["cells"], batch["valid"], cluster) - h0).norm(dim=1).mean()))
    return moved[0] / moved[1]


def test_discriminator_falls_toward_chance_with_gradient_reversal(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster than two waiting passively on each other
    try:
        _check_adversary(tmp_path)
    finally:
        torch.set_num_threads(threads)


def _check_adversary(tmp_path) -> None:
    # lambda = 0: the discriminator trains but nothing pushes back; its accuracy plateaus after ~3 epochs.
    plain, without = train_with_adversary(tmp_path / "lambda0", lambda_max=0.0, epochs=6)
    # 640 steps: enough for the min-max game to settle (with fewer, the accuracy still oscillates).
    adapted, with_grl = train_with_adversary(tmp_path / "grl", lambda_max=1.0, epochs=20)
    for history in (without, with_grl):
        assert {"adv_disc_loss", "adv_disc_acc", "adv_lambda"} <= set(history[-1])
    assert without[-1]["adv_lambda"] == 0.0 and with_grl[-1]["adv_lambda"] > 0.95
    # Nothing pushes back: the shifted feature is in the representation, the domains separate.
    assert without[-1]["adv_disc_acc"] > 0.8, without[-1]
    assert without[-1]["adv_disc_loss"] < 0.4, without[-1]
    # With reversal the discriminator is near chance from BOTH sides (an accuracy far below 0.5 would be a
    # lagging discriminator being fooled, not invariance) and its loss near ln 2 = 0.693.
    assert 0.35 < with_grl[-1]["adv_disc_acc"] < 0.65, with_grl[-1]
    assert with_grl[-1]["adv_disc_loss"] > 0.6, with_grl[-1]
    # The representation really dropped the shifted feature (seeds 0-3: ratio 0.06-0.17; without: ~0.8-1).
    assert sensitivity_ratio(adapted) < 0.3 < 0.6 < sensitivity_ratio(plain)
    # and the regression still learns (the feature the adversary removes carries no information)
    assert with_grl[-1]["val_loss"] < 0.01 * with_grl[0]["val_loss"]
    # the checkpoint holds the plain network (loads as any calibration) plus the discriminator
    payload = torch.load(tmp_path / "grl" / "checkpoints" / "best.pt", weights_only=False)
    assert "adversary" in payload and not any(k.startswith("discriminator") for k in payload["model"])
    assert payload["state"]["best_epoch"] == 19  # checkpoint=last: the final weights are evaluated
