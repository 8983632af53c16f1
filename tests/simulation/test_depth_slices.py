"""The depth-slice knob: finer slicing refines only the lateral spread within each layer."""

from __future__ import annotations

import numpy as np

from calo_calib.simulation import compose_config, simulate_table
from calo_calib.validation import lateral
from calo_calib.validation.depth_slices import shapes_at

BASE = lateral.overrides({"mu": 0}, "electron")


def test_finer_slices_keep_the_truth_and_the_layer_energy():
    coarse = simulate_table(compose_config(BASE), 300, 5)
    fine = simulate_table(compose_config([*BASE, "+detector.shower.depth_slice_factor=8"]), 300, 5)
    # the slicing draws no random numbers: the same showers, losses and leakage
    for col in ("truth_e", "truth_e_lost_upstream", "truth_e_lost_passive", "truth_e_leak_behind"):
        np.testing.assert_array_equal(coarse[col].to_numpy(), fine[col].to_numpy())
    # the layer energies agree on average (the later draws, sampling and noise, diverge: a Gamma draw
    # consumes a variable number of random numbers, so cluster by cluster they differ)
    for col in ("cluster_e_l1", "cluster_e_l2"):
        a, b = coarse[col].to_numpy(), fine[col].to_numpy()
        assert np.mean(b) / np.mean(a) - 1 < 0.03, col
    # but the cells do change (the knob is not a no-op)
    cells = [t["cell_e"].combine_chunks().flatten().to_numpy() for t in (coarse, fine)]
    assert cells[0].shape != cells[1].shape or not np.array_equal(*cells)


def test_full_window_energy_is_the_same_and_r_eta_converges():
    cfg1 = compose_config(BASE)
    cfg8 = compose_config([*BASE, "+detector.shower.depth_slice_factor=8"])
    w1 = lateral.simulate_windows(cfg1, 300, 11)
    w8 = lateral.simulate_windows(cfg8, 300, 11)
    e1, e8 = (np.where(w["l2_window_valid"][:, :, None], w["l2_window_e"], 0).sum(axis=(1, 2)) for w in (w1, w8))
    # the slices split the same middle-layer integral: on average only what leaves the 9 x 13 window
    # differs (cluster by cluster the sampling draws diverge, ~2 % each)
    assert abs(np.mean(e8) / np.mean(e1) - 1) < 5e-3


def test_shapes_at_reports_a_small_change_of_r_eta():
    a = shapes_at(BASE, {}, 400, 3)
    b = shapes_at([*BASE, "+detector.shower.depth_slice_factor=8"], {}, 400, 3)
    names = {"r_eta", "w_eta2", "r_phi", "w_s_tot", "w_s3", "e_ratio", "f1"}
    assert set(a) == names | {k + "_err" for k in names}
    assert 0 < a["r_eta_err"] < 0.002
    assert 0.9 < a["r_eta"] < 1.0
    assert abs(b["r_eta"] - a["r_eta"]) < 0.006  # the measured change is 0.002-0.003 (converged)
    assert b["f1"] == __import__("pytest").approx(a["f1"], rel=0.02)  # f1 is a layer ratio
