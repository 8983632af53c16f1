"""The sections that compare the simulation with ATLAS's calibration-hit calibration (Geant4, [S4]
CaloSwCalibHitsCalibration_v9): out-of-cone energy, leakage and the φ band (calib_hits.py), and the
energy in front of the accordion (front_energy.py)."""

from __future__ import annotations

import numpy as np
import pytest

# --- out-of-cone energy against ATLAS's calibration hits (calib_hits.py) ---------------------------------


def test_transcribed_calibration_hit_coefficients_leave_less_outside_a_wider_window():
    from calo_calib.validation import calib_hits as CH

    x = np.linspace(10.0, 18.0, 9)  # shower depths of photons in the barrel [X0]
    for abs_eta in CH.ATLAS_OOC[(3, 5)]:
        ooc35, ooc37 = CH.atlas_ooc((3, 5), abs_eta, x), CH.atlas_ooc((3, 7), abs_eta, x)
        assert np.all(ooc37 > 0) and np.all(ooc35 > ooc37), abs_eta
        assert np.all(ooc35 < 10.0), abs_eta  # a few percent of the in-cluster energy
    # the hand-evaluated polynomial of the |eta| = 0.3125 bin at X = 14 X0
    assert CH.atlas_ooc((3, 7), 0.3125, np.array([14.0]))[0] == pytest.approx(1.2164 + 0.69209 * 14 - 0.034918 * 196)


def test_window_energies_grow_with_the_window_and_hold_the_whole_profile():
    from omegaconf import OmegaConf

    from calo_calib.simulation import compose_config, shower
    from calo_calib.validation import calib_hits as CH
    from calo_calib.validation.longitudinal import layer_boundaries

    det = compose_config([]).detector
    media = shower.accordion_media(det.accordion)
    rng = np.random.default_rng(3)
    n = 200
    params = shower.longitudinal_params(np.full(n, 50.0), np.zeros(n, int), media, rng, 0.1, 1.0, 1.0)
    bounds = [float(b) for b in layer_boundaries(OmegaConf.to_container(det, resolve=True), 0.3)]
    t0 = np.full(n, bounds[0] - 2.0)
    centre = CH.window_energies(params, t0, bounds, 0.3, np.zeros((n, 2)), windows=((3, 5), (3, 7), (7, 7), (41, 41)))
    edge = CH.window_energies(params, t0, bounds, 0.3, np.full((n, 2), 0.5), windows=((3, 7),))
    acc = centre["acc"]
    assert np.all(centre[(3, 5)] < centre[(3, 7)]) and np.all(centre[(3, 7)] < centre[(7, 7)])
    assert np.all(centre[(41, 41)] <= acc * (1 + 1e-9)) and np.all(centre[(41, 41)] > 0.99 * acc)
    assert np.allclose(centre["layers"].sum(1), acc)
    # a shower hitting the corner of its cell leaves more of itself outside the cell-aligned window
    assert np.mean(edge[(3, 7)] / acc) < np.mean(centre[(3, 7)] / acc)


def test_photon_point_reports_consistent_out_of_cone_fractions():
    from calo_calib.simulation import compose_config
    from calo_calib.validation import calib_hits as CH

    r = CH.photon_point(compose_config([]).detector, 0.3125, 50.0, 300, np.random.default_rng(5))
    assert r["3x5"]["sim"] > r["3x7"]["sim"] > 0.0
    assert 10.0 < r["depth_x0"] < 18.0
    assert 0.9 < r["r_eta"] < 1.0 and 0.9 < r["r_phi"] < 1.0
    # moving ATLAS's excess (or deficit) of out-of-cone energy into the R_eta ring lowers (raises) R_eta
    assert (r["r_eta_lowest"] < r["r_eta"]) == (r["3x7"]["atlas"] > r["3x7"]["sim"])
    assert r["r_eta_strict"] < min(r["r_eta"], r["r_eta_lowest"])


def test_leakage_point_compares_the_truth_leakage_with_the_calibration_hits():
    from calo_calib.validation import calib_hits as CH

    r = CH.leakage_point("electron", 0.3125, 50.0, 200, 7)
    assert r["n"] > 150
    assert 0.0 < r["sim"] < 5.0 and 0.0 < r["atlas"] < 5.0  # percent of the accordion energy
    assert 9.0 < r["depth_x0"] < 16.0
    assert r["ratio"] == pytest.approx(r["atlas"] / r["sim"])
    assert r["f3_scaled"] == pytest.approx(r["f3_median"] * r["ratio"])
    # the parametrisation at the hand-evaluated depth of 12 X0
    x = 12.0
    assert CH.atlas_leak("electron", 0.3125, np.array([x]))[0] == pytest.approx(-0.26134 + 0.055322 * x + 1.3015e-6 * np.exp(x))


def test_phi_band_of_the_calibration_hits_and_of_the_simulated_middle_window():
    from omegaconf import OmegaConf

    from calo_calib.validation import calib_hits as CH

    x = np.array([12.0, 13.0, 14.0])
    band = CH.atlas_ooc((3, 5), 0.3125, x) - CH.atlas_ooc((3, 7), 0.3125, x)
    np.testing.assert_allclose(CH.atlas_phi_band("photon_unconv", x), band)
    with pytest.raises(KeyError):  # no silent fallback to another particle's coefficients
        CH.atlas_phi_band("photon_conv", x)
    assert np.all((CH.atlas_phi_band("electron", x) > 0) & (CH.atlas_phi_band("electron", x) < 2))
    lateral_cfg = OmegaConf.create({"et_min": 20, "et_max": 50, "batch": 200})
    r = CH.middle_phi_band("photon_unconv", lateral_cfg, (0.3, 0.325), 150, 3)
    assert r["n"] == 150 and 0.0 < r["band_5_7"] < 3.0 and 0.9 < r["r_phi_mean"] < 1.0


# --- the energy in front of the accordion against ATLAS's calibration hits (front_energy.py) ------------
def test_front_energy_coefficients_evaluate_as_athena_does():
    from calo_calib.validation import front_energy as FE

    # barrel, unconverted photons at |eta| = 0.3125, E = 100 GeV, by hand from the [S4] row
    assert FE.atlas_offset("photon_unconv", 0.3125, 100.0) == pytest.approx(6.6324 + 1.2384 * 100 - 5.6390e-4 * 1e4)
    assert FE.atlas_slope("photon_unconv", 0.3125, 100.0) == pytest.approx(0.75383 * np.log(100.0) ** 0.33520 - 2.0882e-3 * 10)
    # end-cap: the other forms, with E clamped at 20 GeV
    assert FE.atlas_offset("electron", 1.6125, 100.0) == pytest.approx(1742.7 + 6.6619 * 100 - 10.834 * 10)
    assert FE.atlas_slope("electron", 1.6125, 100.0) == pytest.approx(1.6835 - 0.11118 * np.log(100.0) + 3.4760e-3 * 10)
    assert FE.atlas_offset("electron", 1.6125, 5.0) == FE.atlas_offset("electron", 1.6125, 20.0)
    assert set(FE.ATLAS_OFFSET) == set(FE.FIT_QUALITY) == {"electron", "photon_unconv", "photon_conv"}
    for particle in FE.ATLAS_OFFSET:
        assert FE.ATLAS_OFFSET[particle].keys() == FE.ATLAS_SLOPE[particle].keys()
        for eta in FE.ATLAS_OFFSET[particle]:
            off = FE.atlas_offset(particle, eta, np.array([25.0, 100.0]))
            slope = FE.atlas_slope(particle, eta, np.array([25.0, 100.0]))
            # a front energy of 0-15 % of E at E_PS = 0 (a misplaced exponent would not be), about one front MeV per PS MeV
            assert np.all((off > 0) & (off < 0.15 * np.array([25e3, 100e3]) + 500)), (particle, eta, off)
            assert np.all((slope > 0.8) & (slope < 1.6)), (particle, eta, slope)


def test_front_point_on_simulated_photons():
    from calo_calib.validation import front_energy as FE

    r = FE.front_point("photon_unconv", 1.2125, 100.0, 200, 5)
    assert 0 < r["n"] <= 200  # the clusters reconstructed as unconverted
    assert 0.0 < r["front_pct"] < 10.0 and r["b"] > 0.0 and r["rms"] > 0.0
    assert r["atlas_offset"] == pytest.approx(float(FE.atlas_offset("photon_unconv", 1.2125, r["e_acc"])))
    assert 90.0 < r["e_acc"] < 101.0  # GeV: the truth accordion energy of a 100 GeV photon
    assert r["a_pct"] == pytest.approx(r["a"] / 1e3)  # MeV of a 100 GeV photon in percent
