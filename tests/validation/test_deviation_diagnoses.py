"""The diagnosis sections of the validation: resolution put-back, pile-up granularity, ΔE noise toy, f1/f3 tail,
strip cross-talk, the per-point fit against a global BDT, the lever arm, w_s3 against the strip position
and the R_η width conditions (the calibration-hit sections: ``test_calibration_hits.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from calo_calib.validation import delta_e_noise as D
from calo_calib.validation import pileup_granularity as G
from calo_calib.validation import resolution_causes as R


def _sample(n: int = 4000, e: float = 100.0, seed: int = 0, outside_sigma: float = 0.03) -> dict:
    """A fixed-energy sample whose spread is a known fluctuating loss outside the cluster plus 0.5 % sampling."""
    rng = np.random.default_rng(seed)
    y = np.full(n, e)
    outside = np.abs(rng.normal(0.03, outside_sigma, n)) * e
    upstream = np.full(n, 0.01 * e)  # constant: contributes no spread
    seen = (y - outside - upstream) * (1 + 0.005 * rng.standard_normal(n))
    return {
        "truth_e": y, "cluster_e_ps": 0.05 * seen, "cluster_e_l1": 0.25 * seen, "cluster_e_l2": 0.65 * seen,
        "cluster_e_l3": 0.05 * seen, "cluster_e": seen, "truth_e_outside_cluster": outside,
        "truth_e_lost_upstream": upstream, "truth_e_lost_passive": np.zeros(n), "truth_e_leak_behind": np.zeros(n),
        "truth_brem_fraction": np.zeros(n), "cluster_noise": np.full(n, 0.1),
    }  # fmt: skip


def test_putting_back_the_fluctuating_loss_leaves_the_sampling_floor():
    d = _sample()
    r = R.decompose(d, 20, np.random.default_rng(1))
    assert r["nominal"][0] > 0.02  # the outside loss dominates
    assert r["outside"][0] == pytest.approx(0.005, rel=0.15)  # only the 0.5 % sampling is left
    assert r["upstream"][0] == pytest.approx(r["nominal"][0], rel=0.02)  # a constant loss changes nothing
    assert r["all"][0] == pytest.approx(0.005, rel=0.15)
    assert r["loss_mean"]["upstream"] == pytest.approx(0.01)


def test_diagnosis_names_the_loss_that_closes_a_worse_point_and_the_share_of_a_better_one():
    d = _sample()
    r = R.decompose(d, 20, np.random.default_rng(1))
    worse = {**r, "model": 0.006}
    assert R.diagnosis(worse).startswith("explained by the loss outside the cluster")
    no_cause = {**r, "model": 0.0001}
    assert R.diagnosis(no_cause).startswith("no single loss closes it")
    better = {**r, "model": 2 * r["nominal"][0]}
    text = R.diagnosis(better)
    assert text.startswith("floor") and "the model leaves" in text


def test_put_back_drops_clusters_that_kept_almost_nothing():
    d = _sample(n=1000)
    d["truth_e_outside_cluster"][::5] = 0.95 * d["truth_e"][::5]  # targets near 0 for a fifth
    r = R.put_back(d, d["truth_e_outside_cluster"])
    assert r.size == 400 and np.all(np.isfinite(r)) and np.median(r) == pytest.approx(1.0, abs=0.02)


def test_reduced_sigma_is_flat_when_sigma_follows_cosh_and_the_cell_area():
    areas = [1.0, 1.0, 2.0, 2.0, 3.0]
    pts = [(0.7 * np.cosh(eta) * np.sqrt(a), a) for eta, a in zip(G.ETAS, areas)]
    assert np.allclose(G.reduced(pts), 1.0)
    flat = [(0.7, a) for a in areas]  # a σ that does not grow with η falls in reduced units
    assert np.all(np.diff(G.reduced(flat)) < 0)


def test_strip_noise_alone_raises_delta_e():
    ov = ["particle=electron", "gun.spectrum=flat_et", "gun.e_min=20", "gun.e_max=50", "gun.abs_eta_max=0.8",
          "mu=0", "pileup.mu_rel_sigma=0"]  # fmt: skip
    high = D.toy_shift(ov, 300, 80.0, 5)
    none = D.toy_shift(ov, 300, 0.0, 5)
    assert none["shift"] == 0.0  # σ_pu(0) = 0: the toy adds nothing
    assert high["shift"] > 3 * high["err"] and high["sigma_strip"] > 0


def test_a_point_deviates_exactly_when_the_resolution_check_flags_it():
    # 1.3 × the model: outside ±20 % with a small check error, inside once 2σ of the check's error covers it.
    r = {"nominal": (0.013, 0.0), "model": 0.01, "check_err": 0.0001}
    assert R._deviates(r)
    assert not R._deviates({**r, "check_err": 0.001})


# --- f1, f3 and the GFlash longitudinal tail ---------------------------------------------------------

from calo_calib.validation import longitudinal_tail as LT  # noqa: E402


def _detector():
    from calo_calib.simulation import compose_config

    return compose_config(["particle=electron"]).detector


def test_pdg_containment_depth_follows_the_formula_for_lead():
    # Pb: Z = 82, E_c = 7.43 MeV; 40 GeV: ln(40000/7.43) − 0.5 + 6.56 + 9.6 = 24.25 X0
    assert LT.pdg_t95(40.0, 82.0, 7.43) == pytest.approx(np.log(40000 / 7.43) - 0.5 + 0.08 * 82 + 9.6)
    assert LT.pdg_t95(40.0, 82.0, 7.43) == pytest.approx(24.25, abs=0.01)


def test_containment_depth_and_fraction_beyond_are_inverse():
    from calo_calib.simulation.shower import accordion_media

    media = accordion_media(_detector().accordion)
    t95 = LT.containment_depth(40.0, media, 0.95, 5000, np.random.default_rng(3))
    beyond = LT.fraction_beyond(40.0, media, np.array([t95]), 5000, np.random.default_rng(3))[0]
    assert beyond == pytest.approx(0.05, abs=0.001)
    # a deeper containment needs more depth, and a more energetic shower goes deeper
    assert LT.containment_depth(40.0, media, 0.99, 5000, np.random.default_rng(3)) > t95
    assert LT.containment_depth(100.0, media, 0.95, 5000, np.random.default_rng(3)) > t95


def test_efolding_of_a_profile_is_its_tail_length():
    from calo_calib.simulation.shower import accordion_media

    media = accordion_media(_detector().accordion)
    lam = LT.efolding(40.0, media, 22.0, 5000, np.random.default_rng(4))
    # the fluctuation-averaged gamma tail falls more slowly than the median shower's exp(−β t)
    from calo_calib.validation.targets import gflash_mean_longitudinal

    _, beta = gflash_mean_longitudinal(40.0)
    assert 1.0 / beta < lam < 10.0


def test_a_later_shower_start_lowers_f1_and_raises_the_tail():
    det = _detector()
    n = 2000
    e, a = np.full(n, 40.0), np.full(n, 0.3)
    early = LT.expected_fractions(e, a, LT.x_id(det, a), det, np.random.default_rng(5))
    late = LT.expected_fractions(e, a, LT.x_id(det, a) + 9 / 7, det, np.random.default_rng(5))
    assert late["f1_acc"].mean() < 0.8 * early["f1_acc"].mean()
    assert late["back"].mean() > early["back"].mean() and late["leak"].mean() > early["leak"].mean()
    # a shower starting at the end of the strips leaves nothing in them
    at_l1 = LT.expected_fractions(e, a, np.full(n, 6.0), det, np.random.default_rng(5))
    assert np.allclose(at_l1["f1_acc"], 0.0)
    assert np.all((early["back"] > 0) & (early["back"] < 0.05))


# --- strip cross-talk toy ------------------------------------------------------------------------------

from calo_calib.validation import strip_crosstalk as XT  # noqa: E402


def _strip_row(energies, phi=0.1, eta0=0.2, seg=0):
    """Cells of one φ row of strips with the given energies (plus a middle cell that must not change)."""
    k = len(energies)
    eta = eta0 + XT.BARREL_STRIP_PITCH * np.arange(k)
    return (np.r_[energies, 5.0], np.r_[eta, eta0], np.full(k + 1, phi), np.r_[np.ones(k, int), 2], np.full(k + 1, seg))


def test_crosstalk_moves_a_fraction_to_each_neighbour_and_conserves_the_interior():
    e, eta, phi, layer, seg = _strip_row([0.0, 0.0, 1.0, 0.0, 0.0])
    out = XT.apply_crosstalk(e, eta, phi, layer, seg, 0.05)
    assert np.allclose(out[:5], [0.0, 0.05, 0.9, 0.05, 0.0])
    assert out[5] == 5.0  # the middle cell is not a strip
    assert out[:5].sum() == pytest.approx(1.0)


def test_crosstalk_never_mixes_phi_rows_or_clusters():
    a = _strip_row([0.0, 1.0, 0.0], phi=0.1, seg=0)
    b = _strip_row([0.0, 0.0, 0.0], phi=0.1 + 2 * np.pi / 64, seg=0)  # the next φ row of the same cluster
    c = _strip_row([0.0, 0.0, 0.0], phi=0.1, seg=1)  # the same strips, another cluster
    e, eta, phi, layer, seg = (np.r_[x, y, z] for x, y, z in zip(a, b, c))
    out = XT.apply_crosstalk(e, eta, phi, layer, seg, 0.08)
    assert np.allclose(out[4:], e[4:])  # rows b and c get nothing
    assert np.allclose(out[:3], [0.08, 0.84, 0.08])


def test_crosstalk_widens_the_profile_by_two_c_in_squared_strips():
    prof = np.exp(-0.5 * (np.arange(-15, 16) / 1.3) ** 2)
    e, eta, phi, layer, seg = _strip_row(prof)
    out = XT.apply_crosstalk(e, eta, phi, layer, seg, 0.08)[:-1]
    i = np.arange(-15, 16)
    w2 = lambda p: (p * i * i).sum() / p.sum()  # noqa: E731
    assert w2(out) - w2(prof) == pytest.approx(2 * 0.08, rel=0.01)


# --- the per-point linear fit against a global BDT (calibration_method.py) ---------------------------------


class _ConstantCorrection:
    """A stand-in calibration with a known output (the real BDT is exercised in the next test)."""

    def __init__(self, k: float) -> None:
        self.k = k

    def predict_correction(self, d):
        return np.full(d["cluster_e"].shape, self.k)


def test_compare_point_evaluates_the_calibration_on_the_odd_clusters():
    from calo_calib.validation import calibration_method as CM
    from calo_calib.validation.metrics import sigma_rel

    d = _sample(n=2000)
    r = CM.compare_point(_ConstantCorrection(1.1), d, 5, np.random.default_rng(0))
    odd = np.arange(2000) % 2 == 1
    assert r["n_eval"] == 1000
    # a constant correction leaves the relative width of E_cluster/E_true on the odd clusters
    assert r["sigma_bdt"] == pytest.approx(sigma_rel(d["cluster_e"][odd] / d["truth_e"][odd]), rel=1e-9)
    assert r["median_bdt"] == pytest.approx(1.1 * np.median(d["cluster_e"][odd] / d["truth_e"][odd]), rel=1e-9)
    assert r["sigma_lin"] < r["sigma_bdt"] * 1.05  # the layer fit cannot be much worse than a scale


def test_a_broad_bdt_lands_near_the_per_point_fit():
    from calo_calib.simulation import compose_config, simulate_table
    from calo_calib.validation import calibration_method as CM
    from calo_calib.validation.samples import fixed_overrides

    model = CM.train_bdt(CM.training_overrides({}, 0.0, []), 2000, 3)
    table = simulate_table(compose_config(fixed_overrides("electron", 100.0, 1.2, 0.05, 0.0)), 600, 4)
    r = CM.compare_point(model, CM._table_arrays(table, "electron"), 5, np.random.default_rng(0))
    assert 0.97 < r["median_bdt"] < 1.03  # calibrated
    assert r["sigma_bdt"] < 1.6 * r["sigma_lin"]


# --- the upstream lever arm (lever_arm.py) -----------------------------------------------------------------


def test_brem_and_pair_samplers_follow_their_spectra():
    from scipy.integrate import quad

    from calo_calib.simulation.upstream import sample_pair_fraction
    from calo_calib.validation import lever_arm as LA

    rng = np.random.default_rng(0)
    y_min = 1e-3
    y = LA.sample_brem_y(200_000, np.full(200_000, y_min), rng)
    dens = lambda u: (4 / 3 - 4 / 3 * u + u * u) / u  # noqa: E731
    total = quad(dens, y_min, 1)[0]
    assert total == pytest.approx(LA.brem_rate(np.array([y_min]))[0], rel=1e-9)
    # fraction above y = 0.1 and the mean energy fraction, against the analytic spectrum
    assert np.mean(y > 0.1) == pytest.approx(quad(dens, 0.1, 1)[0] / total, abs=0.005)
    assert np.mean(y) == pytest.approx(quad(lambda u: u * dens(u), y_min, 1)[0] / total, rel=0.02)
    # the toy converts photons with the simulation's own pair sampler
    x = sample_pair_fraction(200_000, rng)
    assert np.mean(x) == pytest.approx(0.5, abs=0.005)
    # 1 - 4/3 x(1-x) is lowest at x = 1/2: symmetric sharing is the least likely
    assert np.mean(np.abs(x - 0.5) < 0.1) < 0.2 < np.mean(np.abs(x - 0.5) > 0.4)


def test_lever_arm_vanishes_when_the_material_sits_at_accordion_density_against_the_front():
    from calo_calib.validation import lever_arm as LA

    x0 = 1.0
    length = x0 * LA.ACCORDION_X0_MM  # radial = path at eta = 0
    regions = [LA.Region(1500.0 - length, 1500.0, x0)]
    s = LA.cascade(20_000.0, regions, 0.0, 1500.0, np.random.default_rng(1))
    np.testing.assert_allclose(s["z_atlas"], s["z_compact"], rtol=1e-9, atol=1e-9)
    assert s["e"].size > 3  # a cascade happened
    # spread over 25 cm with a gap, the same cascade lands wider
    far = LA.cascade(20_000.0, [LA.Region(1150.0, 1400.0, x0)], 0.0, 1500.0, np.random.default_rng(1))
    w = far["e"]
    assert np.sum(w * far["z_atlas"] ** 2) > 10 * np.sum(w * far["z_compact"] ** 2)


def test_cascade_conserves_energy_up_to_ionisation_and_cuts():
    from calo_calib.validation import lever_arm as LA

    regions = [LA.Region(1150.0, 1400.0, 1.5)]
    s = LA.cascade(40_000.0, regions, 0.3, 1500.0, np.random.default_rng(2))
    lost = 40_000.0 - s["e"].sum()
    assert 0 < lost < 40_000.0 * 0.05  # a 40 GeV shower loses a few % in 1.5 X0


def test_probe_rows_name_the_material_scale_and_the_detector_variant():
    from types import SimpleNamespace

    d = _sample(n=2000)
    base = R.decompose(d, 5, np.random.default_rng(0))
    res = [{**base, "mu": 0.0, "particle": "electron", "eta": 1.6, "e": 100.0}]
    v = SimpleNamespace(nboot=5, results={}, data={
        "rescause/electron/material1.5/eta1.6/E100": d, "rescause/electron/variant-material_phi/eta1.6/E100": d})
    rows = R.probe_rows(v, res, np.random.default_rng(1))
    names = [r.quantity for r in rows]
    assert any("×1.5 upstream material" in q for q in names)
    assert any("with the material_phi detector variant" in q for q in names)
    got = {p["variant"] or f"x{p['scale']:g}": p for p in v.results["resolution_causes_probes"]}
    assert set(got) == {"x1.5", "material_phi"} and got["material_phi"]["scale"] is None


# --- w_s3 against the impact position in the strip (strip_position.py) ----------------------------------


def test_relative_position_follows_athena():
    from calo_calib.validation.strip_position import relative_position

    pitch = 0.025 / 8
    cell = 0.3
    assert relative_position(cell, cell, pitch) == pytest.approx(0.0, abs=1e-9)  # at the strip centre
    # a quarter pitch either side: |u| = 0.25, signs opposite
    up, down = relative_position(cell + pitch / 4, cell, pitch), relative_position(cell - pitch / 4, cell, pitch)
    assert abs(up) == pytest.approx(0.25) and abs(down) == pytest.approx(0.25) and up * down < 0
    # always folded into [-0.5, 0.5]
    u = relative_position(cell + np.linspace(-3, 3, 101) * pitch, np.full(101, cell), np.full(101, pitch))
    assert np.all((u >= -0.5) & (u <= 0.5))


def test_quadratic_fit_and_the_interpolated_crossing():
    from calo_calib.validation.metrics import fit_line
    from calo_calib.validation.strip_position import ATLAS_SLOPE, scale_at_atlas_slope

    rng = np.random.default_rng(0)
    u = rng.uniform(-0.5, 0.5, 20000)
    w = 0.55 + 0.76 * u**2 + rng.normal(0, 0.05, u.size)
    fit = fit_line(u * u, w)  # w = a + b u²
    a, b, b_err = fit["a"], fit["b"], fit["b_err"]
    assert a == pytest.approx(0.55, abs=0.003) and abs(b - 0.76) < 4 * b_err < 0.05
    hit = scale_at_atlas_slope(np.array([1.0, 0.5]), np.array([0.3, 0.9]), np.array([0.68, 0.57]))
    f = (ATLAS_SLOPE - 0.3) / 0.6
    assert hit == pytest.approx((1.0 - 0.5 * f, 0.68 - 0.11 * f))
    assert scale_at_atlas_slope(np.array([1.0, 0.8]), np.array([0.3, 0.4]), np.array([0.7, 0.65])) is None


def test_ws3_and_position_on_simulated_clusters():
    from calo_calib.simulation import compose_config, simulate_table
    from calo_calib.validation.metrics import fit_line
    from calo_calib.validation.strip_position import ws3_and_position

    ov = ["particle=electron", "gun.spectrum=fixed", "gun.e_min=40", "gun.e_max=1000", "gun.abs_eta_min=0.2",
          "gun.abs_eta_max=0.7", "mu=0", "pileup.mu_rel_sigma=0"]  # fmt: skip
    ws3, u = ws3_and_position(simulate_table(compose_config(ov), 400, 5))
    assert ws3.size > 350 and np.all((u >= -0.5) & (u <= 0.5)) and np.all(ws3 >= 0) and np.all(ws3 <= 1.0)
    # a shower at the edge of its strip shares more energy with the neighbours than one at the centre
    fit = fit_line(u * u, ws3)
    assert 0.3 < fit["a"] < 0.9 and fit["b"] > 0


def test_width_condition_row_reports_the_pile_up_term_in_quadrature():
    from calo_calib.validation.common import INFO
    from calo_calib.validation.lateral_checks import width_condition_row

    row = width_condition_row("electron", {"mu": 0.013, "mu0": 0.005, "mu0_no_noise": 0.004}, 25.0, 40.0)
    assert row.verdict == INFO
    assert row.simulated == "0.0130 / 0.0050 / 0.0040"
    assert f"= {np.sqrt(0.013**2 - 0.005**2):.4f};" in row.comment  # the quadrature difference
    assert f"= {np.sqrt(28) * 0.05 / 25.0:.4f} at" in row.comment  # physics_cells.md's pile-up term
