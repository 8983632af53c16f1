"""Middle-layer shower shapes (calo_calib/data/shower_shapes_middle.py) on hand-made cells."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from calo_calib.data.shower_shapes_middle import BARREL_END, middle_shapes
from calo_calib.paths import CONF_DIR

D2 = 0.025  # barrel middle-cell eta size
P2 = 2 * math.pi / 256  # middle-cell phi size


def test_barrel_end_matches_the_detector_card_config():
    det = yaml.safe_load((CONF_DIR / "detector" / "nominal.yaml").read_text())
    assert det["accordion"]["barrel_end"] == BARREL_END


def test_known_r_eta_r_phi_w_eta2():
    """Hot cell 4 GeV; 1 GeV at d_eta = +-1; 0.5 GeV at d_phi = 2 (in 3x7, 3x5, not 3x3); 0.5 at d_phi = 4 (out)."""
    eta0, phi0 = 0.4125, 10.5 * P2
    cells = [(0, 0, 4.0), (1, 0, 1.0), (-1, 0, 1.0), (0, 2, 0.5), (0, 4, 0.5)]
    eta = np.array([eta0 + di * D2 for di, _, _ in cells])
    phi = np.array([phi0 + dj * P2 for _, dj, _ in cells])
    e = np.array([c[2] for c in cells])
    # plus a strip cell (layer 1), which the middle shapes ignore
    e, eta, phi = np.r_[e, 9.0], np.r_[eta, eta0], np.r_[phi, phi0]
    layer = np.array([2, 2, 2, 2, 2, 1])
    seg = np.zeros(6, dtype=np.int64)
    cl = {"cluster_eta": np.array([0.0]), "cluster_phi": np.array([0.0])}
    out = middle_shapes(e, eta, phi, layer, seg, 1, cl)
    assert out["r_eta"][0] == pytest.approx(1.0)  # every cell within 3 in eta
    assert out["r_phi"][0] == pytest.approx(6.0 / 6.5)
    assert out["w_eta2"][0] == pytest.approx(D2 * math.sqrt(2.0 / 6.5))
    assert out["_eta_h2"][0] == eta0 and out["_phi_h2"][0] == phi0 and not out["_endcap"][0]


def test_no_middle_cells_gives_zeros_and_the_cluster_position():
    cl = {"cluster_eta": np.array([1.6]), "cluster_phi": np.array([0.3])}
    out = middle_shapes(np.array([1.0]), np.array([1.6]), np.array([0.3]), np.array([1]), np.zeros(1, np.int64), 1, cl)
    assert out["r_eta"][0] == out["r_phi"][0] == out["w_eta2"][0] == 0.0
    assert out["_eta_h2"][0] == 1.6 and out["_endcap"][0]
