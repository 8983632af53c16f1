"""The data-like detector knobs (calo_calib/simulation/knobs.py) at the function level: each default is
the exact identity, each value scales or shifts only what it names. The variants measured on
simulated samples are in test_detector_variants.py."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from calo_calib.simulation import compose_config
from calo_calib.simulation.material import UpstreamMaterial
from calo_calib.simulation.readout import GainMap, noise_sigmas
from calo_calib.simulation.shower import Medium, longitudinal_params


def test_shower_knobs_identity_and_scaling():
    media = [Medium.pb_lar(1.532, 4.2)]
    e = np.geomspace(5, 500, 400)
    idx = np.zeros(e.size, dtype=int)
    base = longitudinal_params(e, idx, media, np.random.default_rng(1), 0.1)
    same = longitudinal_params(e, idx, media, np.random.default_rng(1), 0.1, 1.0, 1.0)
    deep = longitudinal_params(e, idx, media, np.random.default_rng(1), 0.1, depth_scale=1.04)
    wide = longitudinal_params(e, idx, media, np.random.default_rng(1), 0.1, width_scale=1.08)
    for field in base.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(base, field), getattr(same, field), err_msg=field)
    # depth: T and the mean depth alpha/beta scale, alpha does not; width: only the radial scale
    np.testing.assert_allclose(deep.tmax, 1.04 * base.tmax, rtol=1e-12)
    np.testing.assert_allclose(deep.alpha / deep.beta, 1.04 * base.alpha / base.beta, rtol=1e-12)
    np.testing.assert_array_equal(deep.alpha, base.alpha)
    np.testing.assert_array_equal(deep.lateral_scale, base.lateral_scale)
    np.testing.assert_allclose(wide.lateral_scale, 1.08 * base.lateral_scale, rtol=1e-12)
    np.testing.assert_array_equal(wide.tmax, base.tmax)


def test_noise_scales_identity_and_factor(default_cfg):
    det = OmegaConf.create(OmegaConf.to_container(default_cfg.detector))  # not in struct mode: knobs can be added
    explicit = OmegaConf.merge(det, {"readout": {"elec_noise_scale": 1.0, "pileup_noise_scale": 1.0}})
    scaled = OmegaConf.merge(det, {"readout": {"elec_noise_scale": 1.2, "pileup_noise_scale": 1.15}})
    eta = np.linspace(0, 2.4, 50)[:, None, None]
    endcap = eta[:, 0, 0] > 1.45
    mu = np.full(50, 40.0)
    for layer in range(4):
        el0, pu0 = noise_sigmas(layer, eta, endcap, mu, det)
        el1, pu1 = noise_sigmas(layer, eta, endcap, mu, explicit)
        el2, pu2 = noise_sigmas(layer, eta, endcap, mu, scaled)
        np.testing.assert_array_equal(el0, el1)
        np.testing.assert_array_equal(pu0, pu1)
        np.testing.assert_allclose(el2, 1.2 * el0, rtol=1e-12)
        np.testing.assert_allclose(pu2, 1.15 * pu0, rtol=1e-12)


def test_material_bump_only_inside_its_window(default_cfg):
    local = compose_config(["detector=material_local"]).detector.material
    nominal = UpstreamMaterial.from_config(default_cfg.detector.material)
    bumped = UpstreamMaterial.from_config(local)
    rng = np.random.default_rng(0)
    abs_eta, phi = rng.uniform(0, 2.5, 20000), rng.uniform(-np.pi, np.pi, 20000)
    inside = (abs_eta >= 0.8) & (abs_eta < 1.2) & (phi >= 0.0) & (phi < 0.8)
    x_id0, x_ps0, x_acc0 = nominal.at(abs_eta)
    x_id1, x_ps1, x_acc1 = bumped.at(abs_eta, phi)
    np.testing.assert_array_equal(x_id1, x_id0)  # before_ps: the ID (conversions, brem) is untouched
    np.testing.assert_array_equal(x_ps1[~inside], x_ps0[~inside])
    np.testing.assert_array_equal(x_acc1[~inside], x_acc0[~inside])
    np.testing.assert_allclose(x_ps1[inside] - x_ps0[inside], 0.3, atol=1e-12)
    np.testing.assert_allclose(x_acc1[inside] - x_acc0[inside], 0.3, atol=1e-12)
    with pytest.raises(ValueError, match="phi is required"):
        bumped.at(abs_eta)
    in_id = OmegaConf.merge(local, {"bumps": [{"abs_eta": [0.8, 1.2], "phi": [0.0, 0.8], "x0": 0.3, "where": "id"}]})
    x_id2, x_ps2, _ = UpstreamMaterial.from_config(in_id).at(abs_eta, phi)
    np.testing.assert_allclose(x_id2[inside] - x_id0[inside], 0.3, atol=1e-12)
    np.testing.assert_allclose(x_ps2[inside] - x_ps0[inside], 0.3, atol=1e-12)


def test_gain_map_is_a_fixed_detector_property():
    det = compose_config(["detector=constant_term"]).detector
    gm, again = GainMap.from_config(det), GainMap.from_config(det)
    assert GainMap.from_config(compose_config([]).detector) is None  # nominal: no map at all
    rng = np.random.default_rng(3)
    eta, phi = rng.uniform(-2.5, 2.5, 50000), rng.uniform(-np.pi, np.pi, 50000)
    barrel = np.abs(eta) < 1.4
    g = gm.gains(eta, phi, ~barrel)
    np.testing.assert_array_equal(g, again.gains(eta, phi, ~barrel))  # same seed, same map
    # one gain per 0.2 x 2pi/32 region; its spread is the configured sigma (25 x 32 regions)
    assert np.std(gm.z) == pytest.approx(1.0, abs=0.06)
    assert np.std(g[barrel]) == pytest.approx(0.007, rel=0.15)
    assert np.std(g[~barrel]) == pytest.approx(0.015, rel=0.15)
    regions = np.floor((eta + 2.5) / 0.2) * 1000 + np.floor((phi + np.pi) / (2 * np.pi / 32))
    assert len(np.unique(g[barrel])) == len(np.unique(regions[barrel]))  # one gain per region
    shift = gm.gains(eta + 0.2, phi, ~barrel)
    assert not np.allclose(shift, g)  # neighbouring regions differ
    other = GainMap.from_config(OmegaConf.merge(det, {"readout": {"gain_map": {"seed": 1}}}))
    assert not np.allclose(other.gains(eta, phi, ~barrel), g)
