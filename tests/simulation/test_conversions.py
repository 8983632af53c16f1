"""Photon conversions and the conversion-reconstruction model (detector card §2.2, §2.3).

The conversion probability follows 1 - exp(-7X/9) with X = X_ID(|eta|) of the configured material
table (card §2.2, [R-PDG]); reconstruction migrations, conversion types [S16] and the tracking
variables convR / convPtRatio / convEtOverPt follow the ATLAS definitions quoted in §2.3 [S9][S11].
"""

from __future__ import annotations

import numpy as np
import pytest

# Card §2.3 [R]: pixel barrel layers and SCT barrel layers (mm).
ID_LAYER_RADII = (50.5, 88.5, 122.5, 299.0, 371.0, 443.0, 514.0)
N_PER_BIN = 4000
ETA_BINS = ((0.0, 0.4), (0.8, 1.0), (1.6, 1.8), (2.0, 2.4))


def expected_conversion_fraction(cfg, lo: float, hi: float) -> float:
    """Bin average (flat |eta|, as the gun draws it) of 1 - exp(-7 X_ID / 9) from the config table."""
    table = np.asarray(cfg.detector.material.table, dtype=float)
    scale = float(cfg.detector.material.scale)
    eta = np.linspace(lo, hi, 2001)
    x_id = np.interp(eta, table[:, 0], table[:, 1]) * scale
    return float(np.mean(1.0 - np.exp(-7.0 * x_id / 9.0)))


@pytest.mark.parametrize("lo,hi", ETA_BINS)
def test_conversion_probability_per_eta_bin(lo, hi, sim, default_cfg):
    d = sim(["particle=photon", f"gun.abs_eta_min={lo}", f"gun.abs_eta_max={hi}"], n=N_PER_BIN, seed=100 + int(10 * lo))
    a = np.abs(d["truth_eta"])
    assert np.all((a >= lo - 1e-6) & (a <= hi + 1e-6))
    frac = float(np.mean(d["truth_converted"]))
    p = expected_conversion_fraction(default_cfg, lo, hi)
    # 4 binomial sigma plus 0.5% for the linear-interpolation/averaging approximation.
    tol = 4.0 * np.sqrt(p * (1 - p) / a.size) + 0.005
    assert frac == pytest.approx(p, abs=tol), (
        f"|eta| in [{lo}, {hi}]: converted {frac:.4f}, expected {p:.4f} +- {tol:.4f}"
    )


def test_expected_fractions_span_card_range(default_cfg):
    """Card §2.2: the X_ID column is chosen so that P_conv spans 20-65%."""
    p_lo = expected_conversion_fraction(default_cfg, 0.0, 0.01)
    p_hi = expected_conversion_fraction(default_cfg, 1.6, 1.8)
    assert p_lo == pytest.approx(0.21, abs=0.01)
    assert p_hi == pytest.approx(0.65, abs=0.01)


def test_reconstructed_categories(photons_conv, photons_unconv):
    assert np.all((photons_conv["conversion_type"] >= 1) & (photons_conv["conversion_type"] <= 5))
    assert np.all(photons_unconv["conversion_type"] == 0)
    assert set(photons_conv["particle"]) == {"photon_conv"}
    assert set(photons_unconv["particle"]) == {"photon_unconv"}


def test_conv_r_definition(photons):
    """convR = R_conv if pT_conv > 3 GeV else 799; conversions only up to 800 mm [S9][S10]."""
    d = photons
    r, pt, ct = d["conv_r"], d["conv_pt"], d["conversion_type"]
    assert np.all(r <= 800.0) and np.all(r > 0)
    assert np.all(r[pt <= 3.0] == 799.0)
    assert np.all(r[ct == 0] == 799.0)
    # Reconstructed radius close to the true one for well-measured true conversions.
    good = (ct > 0) & (pt > 3.0) & d["truth_converted"]
    assert good.sum() > 200
    assert np.median(np.abs(r[good] - d["truth_conv_r"][good])) < 20.0
    # Truth radii are inside the conversion volume.
    tr = d["truth_conv_r"][d["truth_converted"]]
    assert np.all((tr > 0) & (tr <= 800.0))


def test_conv_pt_ratio(photons):
    d = photons
    ct, ratio = d["conversion_type"], d["conv_pt_ratio"]
    two_si = ct == 3
    assert two_si.sum() > 100
    assert np.all((ratio[two_si] >= 0.5) & (ratio[two_si] <= 1.0))
    assert np.all(ratio[~two_si] == 1.0)
    # Card §2.3: with the nearly flat BH energy sharing, the ratio is roughly uniform on [0.5, 1];
    # E[max(x, 1-x)] for dsigma/dx ∝ 1 - 4/3 x(1-x) is 0.768.
    assert np.mean(ratio[two_si]) == pytest.approx(0.768, abs=0.04)


def test_conv_et_over_pt_range_and_definition(photons):
    d = photons
    ct, x = d["conversion_type"], d["conv_et_over_pt"]
    assert np.all((x >= 0.0) & (x <= 2.0))
    assert np.all(x[ct != 3] == 0.0)
    assert np.all(x[ct == 3] > 0.0)


def _et_over_pt_high_e(photons):
    d = photons
    sel = (d["conversion_type"] == 3) & (d["truth_e"] > 50.0)
    assert sel.sum() > 100
    return d["conv_et_over_pt"][sel]


def test_conv_et_over_pt_has_tail_above_one(photons):
    """Card §2.3: tracks lose energy by brem in the remaining ID material -> a tail above 1."""
    x = _et_over_pt_high_e(photons)
    assert np.mean(x > 1.1) > 0.05


def test_conv_et_over_pt_peaks_at_one(photons):
    x = _et_over_pt_high_e(photons)
    assert np.median(x) == pytest.approx(1.0, rel=0.10)


def test_migrations(photons):
    """Card §2.3: keep migrations both ways; reconstruction efficiency ~90% below 300 mm, falling
    towards ~50% at 800 mm; fake conversions are rare."""
    d = photons
    conv, ct, r = d["truth_converted"], d["conversion_type"], d["truth_conv_r"]
    lost = conv & (ct == 0)
    fake = ~conv & (ct > 0)
    assert lost.sum() > 0, "no true conversion is reconstructed unconverted"
    assert fake.sum() > 0, "no unconverted photon is reconstructed converted"
    assert np.mean(ct[~conv] > 0) < 0.10
    inner = conv & (r < 300.0)
    eff_inner = np.mean(ct[inner] > 0)
    assert eff_inner == pytest.approx(0.90, abs=4 * np.sqrt(0.09 / inner.sum()) + 0.03)
    outer = conv & (r > 550.0)
    eff_outer = np.mean(ct[outer] > 0)
    assert 0.45 < eff_outer < 0.75, f"efficiency at R > 550 mm: {eff_outer:.3f}"
    assert eff_outer < eff_inner


def test_track_types_follow_radius(photons):
    """TRT-only types (2 singleTRT, 4 doubleTRT) only for late true conversions; Si types early."""
    d = photons
    conv, ct, r = d["truth_converted"], d["conversion_type"], d["truth_conv_r"]
    trt_only = conv & np.isin(ct, (2, 4))
    si = conv & np.isin(ct, (1, 3))
    assert trt_only.sum() > 10 and si.sum() > 100
    assert np.all(r[conv & (ct == 4)] >= 500.0)
    # A lost true conversion can still pick up a fake single-TRT track (2% fake rate): allow a few.
    assert np.mean(r[trt_only] >= 450.0) > 0.9
    assert np.all(r[conv & (ct == 3)] < 600.0)


def test_conversion_radii_cluster_at_id_layers(photons):
    """Card §2.3: the ID material is concentrated at the layer radii; gaps between them are empty-ish."""
    r = photons["truth_conv_r"][photons["truth_converted"]]
    near = np.sum(np.abs(r - 88.5) <= 5.0)
    gap = np.sum((r > 95.0) & (r < 115.0))
    assert near > 20 and near > 3 * gap, f"{near} conversions at 88.5 +- 5 mm vs {gap} in 95-115 mm"
    for ra, rb in zip(ID_LAYER_RADII[:-1], ID_LAYER_RADII[1:]):
        at_layer = np.sum(np.abs(r - ra) <= 5.0)
        mid = np.sum(np.abs(r - 0.5 * (ra + rb)) <= 5.0)
        assert at_layer > 2 * mid + 5, f"layer {ra} mm: {at_layer} vs {mid} at the midpoint to {rb} mm"


# ---------------------------------------------------------------------------------------------
# Upstream stage: pair energy sharing (§2.3) and the magnetic spread (§2.4)
# ---------------------------------------------------------------------------------------------
def test_pair_energy_sharing(photons):
    """dsigma/dx ∝ 1 - 4/3 x(1 - x): P(x < 0.1 or x > 0.9) = 0.2411, symmetric around 0.5."""
    x = photons["truth_conv_fraction"][photons["truth_converted"]].astype(float)
    assert np.all((x >= 0) & (x <= 1))
    norm = 7.0 / 9.0
    p_edge = 2 * (0.1 - 2.0 / 3.0 * 0.1**2 + 4.0 / 9.0 * 0.1**3) / norm
    frac = np.mean((x < 0.1) | (x > 0.9))
    assert frac == pytest.approx(p_edge, abs=4 * np.sqrt(p_edge * (1 - p_edge) / x.size))
    assert x.mean() == pytest.approx(0.5, abs=4 * 0.3 / np.sqrt(x.size))


@pytest.mark.parametrize("pt", [10.0, 40.0])
def test_magnetic_spread_of_electrons(default_cfg, pt):
    """Card §2.4: at R = 1.5 m an electron has turned by ~0.3 B R / (2 pT) = 0.45/pT rad (field
    everywhere); the solenoid ends at 1.15 m, which lowers it by ~6%: accept 12%."""
    from calo_calib.simulation.material import InnerDetectorProfile
    from calo_calib.simulation.upstream import propagate_electrons

    det = default_cfg.detector
    idp = InnerDetectorProfile.from_config(det.material)
    one = np.ones(2)
    res = propagate_electrons(
        np.arange(2), pt * one, np.array([-1.0, 1.0]), 0 * one, 0 * one, 1e-9 * one, one, 0 * one, idp,
        float(det.field.b_tesla), float(det.field.solenoid_radius_mm), float(det.field.solenoid_half_length_mm),
        float(det.brem.min_photon_e), np.random.default_rng(0),
    )  # fmt: skip
    el = res.showers
    assert el.e.size == 2 and np.allclose(el.e, pt, rtol=1e-6)
    dphi = el.phi_at(np.full(2, 1500.0))
    card = 0.3 * float(det.field.b_tesla) * 1.5 / (2 * pt)
    assert abs(dphi[0]) == pytest.approx(card, rel=0.12)
    assert dphi[0] == pytest.approx(-dphi[1], rel=1e-9), "opposite charges bend opposite ways"
