"""Per-cell electronic and pile-up noise (detector card §4.2).

sigma_tot = sqrt(sigma_elec^2 + sigma_pu^2), sigma_pu(<mu>) = sigma_pu,ref sqrt(<mu>/mu_ref) and
~cosh|eta| in energy; pile-up noise has a positive tail (in-time) and negative values (out-of-time).
Expected widths are recomputed here from the configuration numbers, not from the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from calo_calib.simulation.readout import noise_sigmas, pileup_noise

N = 200_000

# Card §4.2 [E] ranges in MeV: (elec barrel, elec end-cap, pile-up at <mu> ~ 30) per layer.
CARD_RANGES = {
    0: ((20, 30), (30, 50), (20, 60)),
    1: ((10, 20), (15, 30), (10, 30)),
    2: ((25, 45), (30, 60), (30, 100)),
    3: ((15, 30), (20, 40), (10, 40)),
}


def expected_sigmas(det, layer: int, abs_eta: float, endcap: bool, mu: float) -> tuple[float, float]:
    r = det.readout
    s_el = float((r.sigma_elec_endcap if endcap else r.sigma_elec_barrel)[layer])
    s_pu = float(r.sigma_pu_eta0[layer]) * np.cosh(abs_eta) * np.sqrt(mu / float(r.mu_ref_noise))
    return s_el, s_pu


def draw_noise(det, layer: int, abs_eta: float, endcap: bool, mu: float, rng):
    eta_cell = np.full((N, 1, 1), abs_eta)
    ec = np.full(N, endcap)
    mus = np.full(N, mu)
    s_el, s_pu = noise_sigmas(layer, eta_cell, ec, mus, det)
    # as the generator does: Gaussian electronic term + compound-Poisson pile-up term
    return s_el * rng.standard_normal(eta_cell.shape) + pileup_noise(s_pu, mus, det, rng), s_pu


def test_configured_noise_within_card_ranges(default_cfg):
    r = default_cfg.detector.readout
    for layer, (el_b, el_e, pu) in CARD_RANGES.items():
        assert el_b[0] <= 1000 * r.sigma_elec_barrel[layer] <= el_b[1]
        assert el_e[0] <= 1000 * r.sigma_elec_endcap[layer] <= el_e[1]
        s_pu30 = 1000 * r.sigma_pu_eta0[layer] * np.sqrt(30.0 / r.mu_ref_noise)
        assert pu[0] <= s_pu30 <= pu[1], f"layer {layer}: sigma_pu(mu=30, eta=0) = {s_pu30:.1f} MeV"


@pytest.mark.parametrize(
    "layer,abs_eta,endcap",
    [(0, 0.3, False), (1, 1.0, False), (2, 0.1, False), (2, 2.2, True), (3, 1.7, True)],
)
def test_noise_width_mean_and_shape(default_cfg, layer, abs_eta, endcap):
    det = default_cfg.detector
    rng = np.random.default_rng(1000 + layer)
    mu = 40.0
    x, s_pu = draw_noise(det, layer, abs_eta, endcap, mu, rng)
    x = x.ravel()
    s_el, s_pu_exp = expected_sigmas(det, layer, abs_eta, endcap, mu)
    np.testing.assert_allclose(s_pu, s_pu_exp, rtol=1e-12)
    sigma = np.hypot(s_el, s_pu_exp)
    assert x.std() == pytest.approx(sigma, rel=0.02)
    assert abs(x.mean()) < 5 * sigma / np.sqrt(N)
    assert np.mean(x < 0) > 0.3, "noise must take negative values"
    skew = stats.skew(x)
    assert skew > 5 * np.sqrt(6.0 / N), f"pile-up noise should be positively skewed, got {skew:.4f}"


def test_pileup_noise_scales_with_sqrt_mu(default_cfg):
    det = default_cfg.detector
    rng = np.random.default_rng(7)
    widths = {}
    for mu in (20.0, 80.0):
        mus = np.full(N, mu)
        _, s_pu = noise_sigmas(2, np.full((N, 1, 1), 0.5), np.zeros(N, bool), mus, det)
        pu = pileup_noise(s_pu, mus, det, rng).ravel()
        widths[mu] = pu.std()
        assert abs(pu.mean()) < 5 * pu.std() / np.sqrt(N)
        assert pu.std() == pytest.approx(expected_sigmas(det, 2, 0.5, False, mu)[1], rel=0.02)
    assert widths[80.0] / widths[20.0] == pytest.approx(2.0, rel=0.03)


def test_no_pileup_noise_at_zero_mu(default_cfg):
    det = default_cfg.detector
    mus = np.zeros(1000)
    _, s_pu = noise_sigmas(2, np.full((1000, 1, 1), 0.5), np.zeros(1000, bool), mus, det)
    pu = pileup_noise(s_pu, mus, det, np.random.default_rng(0))
    assert np.all(pu == 0.0)


def test_cell_noise_column_matches_configuration(electrons, default_cfg):
    """cell_noise = sqrt(sigma_el^2 + sigma_pu(mu_reference)^2) per layer, barrel/end-cap, |cell eta|;
    sigma_pu from the particle model's measured conditions (noise_conditions.py)."""
    from calo_calib.simulation.generator import Simulator

    d = electrons
    det = default_cfg.detector
    cond = Simulator(default_cfg).noise_conditions
    assert cond is not None  # the nominal detector: particle pile-up, measured conditions
    mu_ref = float(default_cfg.pileup.mu_reference)
    assert mu_ref == float(default_cfg.mu)
    off = d["offsets"]
    cl_eta = np.abs(d["cluster_eta"])
    n_checked = 0
    for i in range(len(cl_eta)):
        if 1.30 <= cl_eta[i] <= 1.65:  # transition region: barrel/end-cap choice depends on the vertex
            continue
        endcap = cl_eta[i] > 1.45
        sl = slice(off[i], off[i + 1])
        layers, eta, noise = d["cell_layer"][sl], np.abs(d["cell_eta"][sl]), d["cell_noise"][sl]
        for layer in range(4):
            m = layers == layer
            if not m.any():
                continue
            s_el, _ = expected_sigmas(det, layer, 0.0, endcap, mu_ref)
            s_pu = cond.sigma_pu(layer, eta[m].astype(np.float64)[None, :], np.full(1, endcap), np.full(1, mu_ref))[0]
            np.testing.assert_allclose(noise[m], np.hypot(s_el, s_pu), rtol=2e-6, err_msg=f"cluster {i}, layer {layer}")
            n_checked += int(m.sum())
    assert n_checked > 10_000
