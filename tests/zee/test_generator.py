"""Z -> ee generator: line shape, kinematic distributions, decay and acceptance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from calo_calib.zee.fit import FitConfig, fit_peak
from calo_calib.zee.generator import GAMMA_Z, M_Z, ZeeConfig, ZeeEvents, boost, generate, generate_all


@pytest.fixture(scope="module")
def decays() -> ZeeEvents:
    return generate_all(60000, np.random.default_rng(7), ZeeConfig())


def test_truth_mass_fit_recovers_the_breit_wigner_mass_and_width(decays):
    cfg = FitConfig(model="none", free_width=True)
    fit = fit_peak(decays.m, cfg, window=(80.0, 102.0))
    assert fit.converged
    assert abs(fit.peak - M_Z) < 3 * fit.peak_err
    assert abs(fit.values["width"] - GAMMA_Z) < 3 * fit.errors["width"]
    # the test has power: 3 errors are < 2.5 % of the width and < 0.03 % of the mass
    assert 3 * fit.errors["width"] < 0.025 * GAMMA_Z and 3 * fit.peak_err < 3e-4 * M_Z
    assert fit.chi2 / fit.ndf < 2.0
    # the mass is the generated window's only
    assert decays.m.min() >= 66.0 and decays.m.max() <= 116.0


def test_pair_mass_and_rest_frame_kinematics(decays):
    ev = decays
    e, px, py, pz = (getattr(ev, k).sum(axis=1) for k in ("e", "px", "py", "pz"))
    np.testing.assert_allclose(np.sqrt(e**2 - px**2 - py**2 - pz**2), ev.m, rtol=1e-9)
    np.testing.assert_allclose(np.hypot(px, py), ev.pt, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(0.5 * np.log((e + pz) / (e - pz)), ev.y, atol=1e-9)
    # boost both electrons back into the Z rest frame: back to back, each with m/2, along cos theta*
    beta = -np.stack([px, py, pz], axis=1) / e[:, None]
    rest = [boost(ev.e[:, j], np.stack([ev.px[:, j], ev.py[:, j], ev.pz[:, j]], axis=1), beta) for j in (0, 1)]
    (e1, p1), (e2, p2) = rest
    np.testing.assert_allclose(e1, ev.m / 2, rtol=1e-9)
    np.testing.assert_allclose(e2, ev.m / 2, rtol=1e-9)
    np.testing.assert_allclose(p1 + p2, 0.0, atol=1e-7)
    np.testing.assert_allclose(p1[:, 2] / np.linalg.norm(p1, axis=1), ev.cos_theta_star, atol=1e-7)
    assert np.all(ev.charge[:, 0] == -1) and np.all(ev.charge[:, 1] == 1)


def test_decay_angle_follows_one_plus_cos_squared(decays):
    c = decays.cos_theta_star
    # CDF of 3/8 (1 + c^2): (c^3 + 3c + 4)/8
    assert stats.kstest(c, lambda x: (x**3 + 3 * x + 4) / 8).pvalue > 1e-3
    # and not isotropic: <c^2> = 2/5 instead of 1/3 (~20 standard errors apart at this size)
    err = np.std(c**2) / np.sqrt(c.size)
    assert abs(np.mean(c**2) - 0.4) < 4 * err and abs(np.mean(c**2) - 1 / 3) > 10 * err


def test_z_pt_and_rapidity_follow_their_parametrisations(decays):
    cfg = ZeeConfig()
    a, p, top = cfg.pt_scale, cfg.pt_power, cfg.pt_max
    norm = 1 - (1 + top**2 / a**2) ** (1 - p)
    assert stats.kstest(decays.pt, lambda x: (1 - (1 + x**2 / a**2) ** (1 - p)) / norm).pvalue > 1e-3
    assert 8.0 < decays.pt.mean() < 15.0  # the documented mean Z pT of ~10-15 GeV
    trunc = stats.truncnorm(-cfg.y_max / cfg.y_sigma, cfg.y_max / cfg.y_sigma, scale=cfg.y_sigma)
    assert stats.kstest(decays.y, trunc.cdf).pvalue > 1e-3


def test_accepted_events_pass_the_cuts_and_are_reproducible():
    cfg = ZeeConfig(et_min=25.0, abs_eta_max=2.47)
    ev, tried = generate(3000, np.random.default_rng(3), cfg)
    assert ev.n == 3000 and tried > 3000
    assert np.all(ev.et > 25.0) and np.all(np.abs(ev.eta) < 2.47)
    assert 0.3 < ev.n / tried < 0.7  # Z -> ee acceptance of these cuts
    again, tried_again = generate(3000, np.random.default_rng(3), cfg)
    assert tried_again == tried and np.array_equal(again.e, ev.e) and np.array_equal(again.eta, ev.eta)
    # a harder cut keeps fewer decays
    _, tried_hard = generate(3000, np.random.default_rng(3), ZeeConfig(et_min=35.0))
    assert tried_hard > tried


def test_bad_generator_settings_are_named():
    with pytest.raises(ValueError, match="pt_power"):
        ZeeConfig(pt_power=1.2)
    with pytest.raises(ValueError, match="abs_eta_max"):
        ZeeConfig(abs_eta_max=3.0)
    with pytest.raises(ValueError, match="unknown key"):
        ZeeConfig.from_mapping({"m_zz": 90.0})
