"""The per-cluster uncertainty head (``predict_sigma``, ``loss=gaussian_nll``).

The calibration test is a TOY heteroscedastic regression, not the simulation: the target is
1 + 0.05·x0 + σ(x1)·ε with ε ~ N(0, 1) and a known noise level σ(x1) = 0.01 + 0.02·(x1 + 1) that
varies by a factor 5 across the sample. The real network (tiny), the real loss and the real training
loop must learn σ well enough that the pulls of held-out clusters are unit-Gaussian-like and the
predicted σ follows the true one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calo_calib.evaluation.uncertainty import EXPECTED_COVERAGE, pull_stats, pulls
from calo_calib.models import NetworkOutput, build_network
from calo_calib.training.config import TrainerConfig
from calo_calib.training.distributed import DistEnv
from calo_calib.training.inference import predict
from calo_calib.training.loop import fit
from calo_calib.training.losses import build_loss, gaussian_nll

F_CELL, F_CLUSTER, N_CELLS = 7, 11, 4
TINY = dict(embed_dim=16, n_layers=1, n_heads=2, head_hidden=32)
ENV = DistEnv(0, 0, 1, torch.device("cpu"))


def true_sigma(x1: np.ndarray) -> np.ndarray:
    """The toy's noise level (std of the target) as a function of cluster feature 1, in [0.01, 0.05]."""
    return 0.01 + 0.02 * (x1 + 1.0)


def toy_batches(n_batches: int, seed: int, b: int = 256) -> list[dict[str, torch.Tensor]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_batches):
        cluster = rng.uniform(-1, 1, size=(b, F_CLUSTER)).astype(np.float32)
        target = 1.0 + 0.05 * cluster[:, 0] + true_sigma(cluster[:, 1]) * rng.normal(size=b)
        out.append({
            "cells": torch.tensor(rng.normal(size=(b, N_CELLS, F_CELL)), dtype=torch.float32),
            "valid": torch.ones(b, N_CELLS, dtype=torch.bool),
            "cluster": torch.tensor(cluster),
            "target": torch.tensor(target, dtype=torch.float32),
            "row_id": torch.arange(i * b, (i + 1) * b),
        })  # fmt: skip
    return out


def toy_norm() -> dict[str, torch.Tensor]:
    return {
        "cell_mean": torch.zeros(F_CELL), "cell_std": torch.ones(F_CELL),
        "cluster_mean": torch.zeros(F_CLUSTER), "cluster_std": torch.full((F_CLUSTER,), 0.58),
        "target_mean": torch.tensor(1.0), "target_std": torch.tensor(0.05),
    }  # fmt: skip


def test_plain_network_is_unchanged_by_the_option():
    torch.manual_seed(0)
    plain = build_network("transformer", F_CELL, F_CLUSTER, toy_norm(), **TINY).eval()
    torch.manual_seed(0)
    with_sigma = build_network("transformer", F_CELL, F_CLUSTER, toy_norm(), predict_sigma=True, **TINY).eval()
    extra = set(with_sigma.state_dict()) - set(plain.state_dict())
    assert set(plain.state_dict()) <= set(with_sigma.state_dict())
    assert extra and all(k.startswith("sigma_head.") for k in extra)
    batch = toy_batches(1, seed=5, b=8)[0]
    with torch.no_grad():
        out_plain = plain(batch["cells"], batch["valid"], batch["cluster"])
        out = with_sigma(batch["cells"], batch["valid"], batch["cluster"])
    assert isinstance(out_plain, torch.Tensor) and out_plain.shape == (8,)
    assert isinstance(out, NetworkOutput) and out.log_sigma.shape == (8,)
    torch.testing.assert_close(out.correction, out_plain)  # same seed: the mean path is the same network
    assert "sigma" not in predict(plain, [batch], ENV) and "sigma" in predict(with_sigma, [batch], ENV)
    # an untrained head starts at sigma ~ target_std
    torch.testing.assert_close(out.log_sigma.exp(), torch.full((8,), 0.05), atol=0.005, rtol=0)


def test_gaussian_nll_value_and_loss_selection():
    c, t = torch.tensor([1.0, 1.0]), torch.tensor([1.1, 0.8])
    log_s = torch.log(torch.tensor([0.1, 0.1]))
    expected = float(np.mean([0.5 * 1.0**2 + np.log(0.1), 0.5 * 2.0**2 + np.log(0.1)]))
    assert gaussian_nll(c, log_s, t).item() == pytest.approx(expected, rel=1e-6)
    assert build_loss("gaussian_nll")(NetworkOutput(c, log_s), t).item() == pytest.approx(expected, rel=1e-6)
    # mse reads the mean only
    assert build_loss("mse")(NetworkOutput(c, log_s), t).item() == pytest.approx(0.025, rel=1e-6)
    with pytest.raises(ValueError, match="uncertainty head"):
        build_loss("gaussian_nll")(c, t)


def test_head_learns_calibrated_pulls_on_a_heteroscedastic_toy(tmp_path):
    torch.manual_seed(1)
    model = build_network("transformer", F_CELL, F_CLUSTER, toy_norm(), predict_sigma=True, **TINY)
    train = toy_batches(40, seed=1)
    val = toy_batches(2, seed=2)
    cfg = TrainerConfig(epochs=6, lr=3e-3, patience=100, warmup_fraction=0.05, prefetch=0)
    fit(model, lambda epoch: [train[i] for i in np.random.default_rng(epoch).permutation(len(train))], lambda: val,
        len(train), build_loss("gaussian_nll"), cfg, tmp_path, ENV)  # fmt: skip

    test = toy_batches(8, seed=3)
    out = predict(model, test, ENV)
    x1 = torch.cat([b["cluster"][:, 1] for b in test]).numpy()
    target = torch.cat([b["target"] for b in test]).numpy().astype(np.float64)
    assert out["sigma"].shape == out["correction"].shape == target.shape
    # Through the evaluation's own pull definition: E_cluster = 1 GeV, so E_true = target, E_reco = correction.
    table = {"truth_e": target, "e_toy": out["correction"].astype(np.float64), "sigma": out["sigma"].astype(np.float64)}
    stats = pull_stats(pulls(table, "toy"), table["sigma"], table["e_toy"] / target)
    assert abs(stats["mean"]) < 0.1
    assert 0.9 < stats["std"] < 1.1, stats
    # within a few % of 68.3 / 95.4 % (measured with seeds 1-3: 65.9-66.1 % and 93.8-94.2 %; an untrained
    # head, sigma = 0.05 everywhere, gives 76 % and 97 %)
    assert abs(stats["coverage_1sigma"] - EXPECTED_COVERAGE["coverage_1sigma"]) < 0.04, stats
    assert abs(stats["coverage_2sigma"] - EXPECTED_COVERAGE["coverage_2sigma"]) < 0.025, stats
    # the learned sigma of the target (relative sigma x correction) tracks the true noise level
    sigma_target = out["sigma"] * out["correction"]
    assert np.corrcoef(sigma_target, true_sigma(x1))[0, 1] > 0.9
    assert np.median(np.abs(sigma_target / true_sigma(x1) - 1)) < 0.15
