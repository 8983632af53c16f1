"""Strip-layer shower shapes (calo_calib/data/shower_shapes_strips.py): profile, second maximum, variables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calo_calib.data import shower_shapes_strips as SS

D1 = 0.003125  # barrel strip eta size
P1 = 2 * math.pi / 64  # strip phi size


def test_strip_pitch_is_the_smallest_gap():
    eta = np.array([0.1, 0.1 + 2 * D1, 0.1 + 3 * D1, 0.5, 0.5])
    s = np.array([0, 0, 0, 1, 1])
    pitch = SS.strip_pitch(eta, s, 3, np.array([9.0, 8.0, 7.0]))
    assert pitch[0] == pytest.approx(D1) and pitch[1:].tolist() == [8.0, 7.0]  # one distinct eta / none: nominal


def test_second_maximum():
    P = np.array([[1.0, 5.0, 0.5, 2.0, 0.0], [1.0, 5.0, 0.5, 0.0, 0.0]])
    C = np.array([[True, True, True, True, False], [True, True, True, False, False]])
    kmax = np.array([1, 1])
    rel = np.arange(5)[None, :] - kmax[:, None]
    e2, emin, has2 = SS.second_maximum(P, C, kmax, rel, np.array([True, True]))
    # cluster 0: slot 3 (2 GeV) is hotter than slot 2 and has no existing right neighbour -> not a local max
    # (ATLAS needs both neighbours), slot 0 has no left neighbour: no second maximum either way
    assert has2.tolist() == [False, False] and e2.tolist() == [0.0, 0.0] and emin.tolist() == [0.0, 0.0]
    C[0, 4] = True  # slot 4 exists (0 GeV): slot 3 is now a local maximum, E_min = slot 2
    e2, emin, has2 = SS.second_maximum(P, C, kmax, rel, np.array([True, True]))
    assert has2.tolist() == [True, False] and e2[0] == 2.0 and emin[0] == 0.5


def test_strip_shapes_known_answer():
    """Strips at i = -1, 0, +1, +3 (1, 4, 1, 0.5 GeV), summed over two phi strips for i = 0."""
    eta_h, phi_h = 0.4125, 3.5 * P1
    i = np.array([-1, 0, 0, 1, 3])
    e = np.array([1.0, 3.0, 1.0, 1.0, 0.5])
    dphi = np.array([0, 0, 1, 0, 0])
    eta, phi = eta_h + i * D1, phi_h + dphi * P1
    layer = np.ones(5, dtype=np.int64)
    seg = np.zeros(5, dtype=np.int64)
    out = SS.strip_shapes(e, eta, phi, layer, seg, 1, {}, np.array([eta_h]), np.array([phi_h]), np.array([False]))
    assert list(out) == list(SS.STRIP_SHAPE_NAMES)
    assert out["w_s3"][0] == pytest.approx(math.sqrt(2.0 / 6.0))
    assert out["w_s_tot"][0] == pytest.approx(math.sqrt((2.0 + 0.5 * 9) / 6.5))
    assert out["f_side"][0] == pytest.approx(6.5 / 6.0 - 1)
    assert out["e_ratio"][0] == 1.0 and out["delta_e"][0] == 0.0  # no second local maximum


def test_no_strips_gives_zeros():
    out = SS.strip_shapes(np.array([1.0]), np.array([0.4]), np.array([0.0]), np.array([2]), np.zeros(1, np.int64),
                          1, {}, np.array([0.4]), np.array([0.0]), np.array([False]))  # fmt: skip
    assert all(v.tolist() == [0.0] for v in out.values())
    assert SS.strip_profile(np.array([1.0]), np.array([0.4]), np.array([0.0]), np.array([2]), np.zeros(1, np.int64),
                            1, np.array([0.4]), np.array([0.0]), np.array([False])) is None  # fmt: skip
