"""Resolution-scaled ("pull") losses and the learning curve recorded by the training loop."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from calo_calib.evaluation.learning_curve import plot_learning_curve, verdict
from calo_calib.physics.resolution import resolution_model
from calo_calib.training.config import TrainerConfig
from calo_calib.training.loop import fit
from calo_calib.training.losses import PULL_LOSS_SCALE, build_loss

from .test_loop import ENV, TinyNet, make_batches


def test_pull_mse_is_the_mean_squared_pull_times_the_reference_scale():
    c = torch.tensor([1.00, 1.02, 0.95])
    t = torch.tensor([1.01, 1.00, 1.00])
    sigma = torch.tensor([0.05, 0.01, 0.02])
    expected = PULL_LOSS_SCALE * np.mean(((t - c) / sigma).numpy() ** 2)
    got = build_loss("pull_mse")(c, t, {"expected_resolution": sigma}).item()
    assert got == pytest.approx(expected, rel=1e-6)
    # The same residual costs 25x more on a cluster expected to be 5x more precise.
    one = build_loss("pull_mse")(torch.tensor([1.0]), torch.tensor([1.01]), {"expected_resolution": torch.tensor([0.01])})
    five = build_loss("pull_mse")(torch.tensor([1.0]), torch.tensor([1.01]), {"expected_resolution": torch.tensor([0.05])})
    assert (one / five).item() == pytest.approx(25.0, rel=1e-5)


def test_pull_huber_is_linear_beyond_delta_pulls():
    loss = build_loss("pull_huber", delta=2.0)
    sigma = {"expected_resolution": torch.tensor([0.01])}
    small = loss(torch.tensor([1.0]), torch.tensor([1.01]), sigma).item()  # 1 pull: quadratic
    large = loss(torch.tensor([1.0]), torch.tensor([1.10]), sigma).item()  # 10 pulls: linear
    assert small == pytest.approx(PULL_LOSS_SCALE * 0.5, rel=1e-5)
    assert large == pytest.approx(PULL_LOSS_SCALE * 2.0 * (10.0 - 1.0), rel=1e-4)


def test_pull_losses_need_the_expected_resolution():
    with pytest.raises(ValueError, match="expected_resolution"):
        build_loss("pull_mse")(torch.ones(2), torch.ones(2))
    with pytest.raises(ValueError, match="delta"):
        build_loss("pull_huber", delta=0.0)


def test_expected_resolution_falls_with_energy_and_is_finite_everywhere():
    e = np.array([5.0, 20.0, 100.0, 500.0])
    for eta in (0.1, 1.2, 1.45, 2.0, 2.49):
        r = resolution_model(e, np.full_like(e, eta))
        assert np.all(np.isfinite(r)) and np.all(r > 0)
        assert np.all(np.diff(r) < 0)


def test_fit_records_the_validation_sigma_rel_and_clusters_seen(tmp_path):
    torch.manual_seed(0)
    cfg = TrainerConfig(epochs=3, lr=1e-2, patience=100, warmup_fraction=0.1)
    state = fit(TinyNet(), make_batches, lambda: make_batches(99), 6, build_loss("mse"), cfg, tmp_path, ENV)
    seen = [h["clusters_seen"] for h in state.history]
    assert seen == [96, 192, 288]  # 6 batches of 16 per epoch
    sig = [h["val_sigma_rel"] for h in state.history]
    assert all(math.isfinite(s) and s > 0 for s in sig)
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved[-1]["val_sigma_rel"] == pytest.approx(sig[-1])


def _history(sigmas):
    return [{"clusters_seen": 1000 * (k + 1), "val_sigma_rel": s} for k, s in enumerate(sigmas)]


def test_learning_curve_verdicts():
    assert verdict(_history([0.030, 0.025, 0.023, 0.022, 0.021]))["verdict"] == "step-limited"
    assert verdict(_history([0.030, 0.025, 0.0230, 0.02300, 0.02299]))["verdict"] == "converged"
    assert verdict(_history([0.030, 0.022, 0.0225, 0.0230, 0.0235]))["verdict"] == "overfitting"
    assert verdict(_history([0.03, 0.02]))["verdict"] == "too few epochs"
    assert verdict(_history([0.03, float("nan"), 0.02]))["verdict"] == "too few epochs"  # a NaN epoch is left out


def test_a_history_without_the_curve_keys_is_refused_naming_the_key_and_the_file(tmp_path):
    """A history saved before the learning curve (no clusters_seen / val_sigma_rel) is an error, not an empty curve."""
    source = tmp_path / "run" / "history.json"
    with pytest.raises(KeyError, match=rf"{source}: epoch 0 records no clusters_seen, val_sigma_rel"):
        verdict([{"epoch": 0, "val_loss": 1.0}], source)
    with pytest.raises(KeyError, match=r"history: epoch 1 records no val_sigma_rel"):
        plot_learning_curve([*_history([0.03]), {"epoch": 1, "clusters_seen": 10}], tmp_path / "lc.png")


def test_learning_curve_plot_is_written(tmp_path):
    png = plot_learning_curve(_history([0.03, 0.025, 0.024]), tmp_path / "lc.png", "electron")
    assert png is not None and png.stat().st_size > 10_000
    assert plot_learning_curve([], tmp_path / "none.png") is None
