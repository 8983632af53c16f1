"""R_eta / w_eta2 from the full middle-layer window (calo_calib/validation/lateral.py) and the window option."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calo_calib.validation import lateral as L

D = 0.025  # middle-cell eta size


def _window(k=1, eta0=0.4125):
    """(k, 9, 13) empty windows, eta centres eta0 + (i - 4) D."""
    e = np.zeros((k, 9, 13))
    eta = np.broadcast_to(eta0 + (np.arange(9) - 4) * D, (k, 9)).copy()
    return e, eta


def test_single_cell():
    e, eta = _window()
    e[0, 4, 6] = 10.0
    s = L.lateral_shapes(e, eta, np.array([eta[0, 4]]))
    assert s["r_eta"][0] == 1.0 and s["w_eta2_raw"][0] == 0.0
    assert (s["hot_i"][0], s["hot_j"][0]) == (4, 6) and s["full_7x7"][0]
    assert s["rel_pos"][0] == pytest.approx(0.5)
    assert s["w_eta2"][0] == pytest.approx(0.0, abs=1e-12)  # no correction at the cell centre


def test_known_r_eta_and_w_eta2():
    e, eta = _window(2)
    # Cluster 0: symmetric in eta; energy at d_phi = 3 counts in both 3x7 and 7x7, d_phi = 4 in neither.
    e[0, 4, 6], e[0, 3, 6], e[0, 5, 6] = 1.0, 0.1, 0.1
    e[0, 2, 6], e[0, 6, 6] = 0.05, 0.05  # in 7x7 only
    e[0, 4, 9], e[0, 4, 10] = 0.2, 0.3  # d_phi = 3 (in 3x7, and outside the 3x5 w_eta2 window), d_phi = 4 (out)
    e[0, 0, 6] = 0.4  # d_eta = -4: outside the 7x7
    # Cluster 1: one-sided neighbour, hottest cell off the window centre.
    e[1, 5, 7], e[1, 6, 7] = 1.0, 0.3
    s = L.lateral_shapes(e, eta, eta[:, 4])
    assert s["r_eta"][0] == pytest.approx(1.4 / 1.5)
    assert s["w_eta2_raw"][0] == pytest.approx(D * math.sqrt(0.2 / 1.2))
    assert (s["hot_i"][1], s["hot_j"][1]) == (5, 7)
    m = 0.3 * D / 1.3
    assert s["w_eta2_raw"][1] == pytest.approx(math.sqrt(0.3 * D * D / 1.3 - m * m))
    assert s["r_eta"][1] == 1.0
    # Direction of the eta axis (clusters at eta < 0) does not matter.
    s2 = L.lateral_shapes(e, -eta, -eta[:, 4])
    np.testing.assert_allclose(s2["w_eta2_raw"], s["w_eta2_raw"])
    np.testing.assert_allclose(s2["r_eta"], s["r_eta"])


def test_missing_cells_count_zero():
    e, eta = _window()
    e[0, 7, 6] = 1.0  # hottest at the edge of the 7x7 search: the 7x7 runs past the window
    e[0, 8, 6] = 0.2
    valid = np.ones((1, 9), bool)
    s = L.lateral_shapes(e, eta, eta[:, 7], valid)
    assert s["hot_i"][0] == 7 and not s["full_7x7"][0]
    assert s["r_eta"][0] == pytest.approx(1.0)  # the d_eta = +1 cell is in 3x7 too


def test_qweta2c():
    # RelPosition: 0.5 at the centre, 0.25 a quarter cell above, 0 at the lower... upper edge.
    assert L.rel_position(0.4125, 0.4125) == pytest.approx(0.5)
    assert L.rel_position(0.4125 + D / 4, 0.4125) == pytest.approx(0.25)
    assert L.rel_position(0.4125 - D / 4, 0.4125) == pytest.approx(0.75)
    # |eta| < 0.8, 0.1 <= u < 0.9: 0.0215 (u - 0.5)^2
    for u in (0.2, 0.5, 0.7):
        assert float(L.qweta2c_offset(0.4, u)) == pytest.approx(0.0215 * (u - 0.5) ** 2, abs=1e-9)
    assert float(L.qweta2c_offset(0.4, 0.05)) == pytest.approx(0.0045 - 0.0016 * 0.05 - 0.0866 * 0.0025)
    assert float(L.qweta2c_offset(0.4, 0.95)) == pytest.approx(-0.0562 + 0.114 * 0.95 - 0.053 * 0.95**2)
    assert float(L.qweta2c_offset(1.0, 0.5)) == pytest.approx(0.005075 - 0.0203 * 0.5 + 0.0203 * 0.25)
    assert float(L.qweta2c_offset(2.2, 0.5)) == pytest.approx(0.0035 - 0.0139 * 0.5 + 0.0137 * 0.25)
    assert float(L.qweta2c_offset(2.6, 0.5)) == 0.0
    assert float(L.qweta2c_correct(0.4125 + D / 4, 0.4125, 0.01)) == pytest.approx(0.01 - 0.0215 / 16)


def test_spot_vs_sampling():
    r = L.spot_vs_sampling(50.0, 10.0, 0.1)
    n = 10.3 / 0.11 * 50.0**0.959
    assert float(L.n_spot(50.0)) == pytest.approx(n)
    assert float(r["sampling"]) == pytest.approx(0.01 * 10.0)
    assert float(r["spot_poisson"]) == pytest.approx(10.0 * 50.0 / n)
    assert float(r["spot_multinomial"]) == pytest.approx(10.0 * 50.0 / n * 0.8)
    assert float(r["ratio_poisson"]) == pytest.approx(50.0 / n / 0.01)


def _cfg():
    from calo_calib.simulation import compose_config

    return compose_config(L.overrides({"mu": 40}, "electron"))


def test_window_option_leaves_output_unchanged():
    from calo_calib.simulation.generator import Simulator

    cfg = _cfg()
    assert Simulator(cfg).keep_l2_window is False
    a = Simulator(cfg).batch(150, np.random.default_rng(5))
    b = Simulator(cfg, keep_l2_window=True).batch(150, np.random.default_rng(5))
    assert set(b) - set(a) == set(L.WINDOW_KEYS)
    for k, x in a.items():
        y = b[k]
        assert x.dtype == y.dtype and x.shape == y.shape, k
        if x.dtype.kind == "O":
            assert list(x) == list(y), k
        else:
            assert x.tobytes() == y.tobytes(), k
    k = a["cluster_e"].size
    assert b["l2_window_e"].shape == (k, 9, 13) and b["l2_window_eta"].shape == (k, 9)
    # The stored middle cells are a subset of the window, and the hottest stored cell is the window's hottest.
    off = a["cell_offsets"]
    for i in range(0, k, 7):
        sl = slice(off[i], off[i + 1])
        e2 = a["cell_e"][sl][a["cell_layer"][sl] == 2]
        assert np.all(np.isin(e2, b["l2_window_e"][i]))
        assert e2.max() == b["l2_window_e"][i].ravel()[b["l2_window_hot"][i]]
        assert e2.sum() == pytest.approx(a["cluster_e_l2"][i])


def test_section_quick(tmp_path):
    from calo_calib.simulation import compose_config
    from calo_calib.validate import compose_validate_config
    from calo_calib.validation.report import Validation
    from calo_calib.validation.sections import MODULES, sizes

    assert "calo_calib.validation.lateral" in MODULES
    cfg = compose_validate_config(
        ["quick=true", "bootstrap=5", "quick_sizes.n_lateral=80", "lateral.particles=[electron,photon_conv]"]
    )
    assert sizes(cfg)["n_lateral"] == 80 and L.samples(cfg) == []
    v = Validation(cfg, {}, {"x": compose_config(["particle=electron"])}, tmp_path)
    L.run(v)
    rows = [r for r in v.rows if r.section == L.SECTION]
    # 7 rows per particle, the spot-statistics row, and the R_eta width at <mu> = 0 for both particles
    assert len(rows) == 2 * 7 + 1 + 2
    assert {r.verdict for r in rows} <= {"OK", "DEVIATION", "INFO"}
    res = v.results["lateral"]
    assert res["electron"]["n"] == 80 and res["photon_conv"]["n"] == 80
    r_eta = res["electron"]["variables"]["r_eta"]["peak"]
    assert 0.8 < r_eta <= 1.0
    assert 0.004 < res["electron"]["variables"]["w_eta2"]["peak"] < 0.015
    assert len(res["spot_vs_sampling"]["cells"]) == len(L.CELL_OFFSETS)
    for particle in ("electron", "photon_conv"):
        w = res["width_conditions"][particle]
        assert 0 < w["mu0_no_noise"] and 0 < w["mu0"] and 0 < w["mu"]  # three core widths of R_eta
    assert (tmp_path / "lateral_widths.png").stat().st_size > 10_000
