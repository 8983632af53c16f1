"""Summary shower shapes (calo_calib/data/shower_shapes_summary.py): counts, widths and fractions by hand."""

from __future__ import annotations

import numpy as np
import pytest

from calo_calib.data.shower_shapes_summary import NOISE_SHAPE_NAMES, SUMMARY_SHAPE_NAMES, summaries


def test_known_summaries():
    # cluster 0: two middle cells (3 and 1 GeV, 0.02 apart in eta), one negative back cell; cluster 1: one strip
    e = np.array([3.0, 1.0, -0.5, 2.0])
    eta = np.array([0.40, 0.42, 0.40, 1.0])
    phi = np.array([0.1, 0.1, 0.1, -0.2])
    layer = np.array([2, 2, 3, 1])
    seg = np.array([0, 0, 0, 1])
    noise = np.array([1.0, 1.0, 0.1, 0.1])
    cl = {"cluster_eta": np.array([0.40, 1.0]), "cluster_phi": np.array([0.1, -0.2]), "cluster_e": np.array([3.5, 2.0])}
    out = summaries(e, eta, phi, layer, seg, 2, cl, noise)
    assert set(out) == set(SUMMARY_SHAPE_NAMES) | set(NOISE_SHAPE_NAMES)
    assert [out[f"n_cells_{t}"].tolist() for t in ("ps", "l1", "l2", "l3")] == [[0, 0], [0, 1], [2, 0], [1, 0]]
    assert out["w_eta_l2"][0] == pytest.approx(0.02 * np.sqrt(0.75 * 0.25))
    assert out["w_phi_l2"][0] == 0.0 and out["w_eta_l3"][0] == 0.0  # one position / negative sum: 0
    assert out["e_max_frac"].tolist() == pytest.approx([3.0 / 3.5, 1.0])
    assert out["neg_e_frac"].tolist() == pytest.approx([0.5 / 4.5, 0.0])
    assert out["n_cells_below_2sigma"].tolist() == [1.0, 0.0]  # only the 1 GeV cell: |E| < 2 x 1 GeV
    assert out["e_below_2sigma"].tolist() == [1.0, 0.0]
    assert set(summaries(e, eta, phi, layer, seg, 2, cl, None)) == set(SUMMARY_SHAPE_NAMES)
