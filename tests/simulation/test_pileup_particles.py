"""Pile-up as particles (calo_calib/simulation/pileup.py, pulse.py, minbias.py; physics_cells.md §1a).

The pulse and OF response are checked against their defining properties (zero net area of the
shaped pulse, the sign pattern in- and out-of-time); the overlay against what it must reproduce by
construction (mean number of deposited particles = the rate of (interaction, particle) pairs in
the window, zero mean after the per-BCID subtraction, sigma ~ sqrt(<mu>)) and against the
configured sigma_pu table within the tolerance docs/simulation.md states. The library cache is
exercised with a tiny library in a temporary directory.
"""

from __future__ import annotations

import numpy as np
import pytest

from calo_calib.simulation import compose_config, minbias
from calo_calib.simulation import geometry as geo
from calo_calib.simulation.generator import Simulator
from calo_calib.simulation.pulse import BunchTrain, crossing_response, shaped_pulse
from calo_calib.simulation.readout import noise_sigmas
from calo_calib.validation.pileup_cells import overlay


@pytest.fixture(scope="module")
def model():
    cfg = compose_config(["particle=electron", "mu=30"])
    return cfg.detector, Simulator(cfg).pileup


def test_pulse_has_zero_area_and_bipolar_shape(default_cfg):
    p = default_cfg.detector.readout.pileup.pulse
    t, g = shaped_pulse(float(p.drift_ns), float(p.tau_d_ns), float(p.tau_pa_ns))
    dt = t[1] - t[0]
    positive = g[g > 0].sum() * dt
    assert abs(g.sum() * dt) < 0.01 * positive, "CR shaping: the pulse must have zero net area"
    assert g.min() < -0.05, "the pulse must undershoot"
    assert 20.0 < t[np.argmax(g)] < 80.0  # peaking time of a CR-RC^2 shaper with ~16 ns constants


def test_of_response_sign_pattern(default_cfg):
    r = crossing_response(default_cfg.detector.readout.pileup.pulse)
    resp = dict(zip(r.offsets.tolist(), r.response.tolist()))
    assert resp[0] == pytest.approx(1.0, abs=1e-9)  # OF normalisation
    assert resp[-1] > 0.2  # the previous crossing's pulse is still near its peak
    assert all(resp[j] < 0 for j in range(-15, -3)), "deposits 4-15 crossings earlier sit in the undershoot"
    assert r.offsets.min() < -12 and r.offsets.max() <= 5
    assert abs(r.sum_response) < 0.15  # near-zero area, as sampled by the OF


def test_bunch_train_pattern():
    train = BunchTrain(3, 2)
    filled = train.is_filled(np.array([0, 2]), np.arange(-3, 3))
    # positions 0 and 2 of a repeating "xxx.." pattern, crossings -3..+2
    assert filled.tolist() == [
        [True, False, False, True, True, True],
        [False, True, True, True, False, False],
    ]


def test_deposit_rate_is_the_window_rate(model):
    """E[deposited particles] = <mu> x filled crossings x (library particles per event in the window)."""
    det, pu = model
    rng = np.random.default_rng(5)
    c, mu, eta = 4000, 30.0, 0.6
    d = pu.draw(np.full(c, eta), np.zeros(c), np.full(c, mu), rng)
    p = pu.prep
    # Brute force over the library: particles (either reflection) landing in the eta strip x phi window.
    e2 = p.eta_imp[geo.LAYER_L2]
    in_strip = (np.abs(e2 - eta) < pu.w_eta).sum() + (np.abs(-e2 - eta) < pu.w_eta).sum()
    per_int = in_strip / (2 * p.lib.n_events) * (2 * pu.w_phi) / (2 * np.pi)
    n_filled = pu.train.is_filled(np.arange(pu.train.filled), pu.response.offsets).sum(axis=1).mean()
    expected = mu * n_filled * per_int
    got = d["cluster"].size / c
    assert got == pytest.approx(expected, rel=0.03)
    # Same-event particles arrive together: more than one deposit from some interactions.
    assert d["cluster"].size > 0


@pytest.mark.parametrize("eta", [0.3, 1.8])
def test_mean_subtracted_and_width(model, eta):
    det, pu = model
    c, mu = 3000, 30.0
    cells, wins, endcap = overlay(pu, det, eta, mu, c, seed=11)
    for layer in (1, 2, 3):
        w = wins[layer]
        ie, ip = w.eta_lo.shape[1] // 2, w.phi_lo.shape[1] // 2
        x = cells[layer][:, ie, ip]
        sd = x.std()
        assert sd > 0
        assert abs(x.mean()) < 5 * sd / np.sqrt(c), f"layer {layer}: mean {x.mean():.4f} GeV not ~0"
        assert np.mean(x < 0) > 0.2, "out-of-time deposits and the baseline subtraction give negative cells"
        assert ((x - x.mean()) ** 3).mean() > 0, "in-time pile-up gives a positive tail"
        if layer == 2:  # docs/simulation.md: middle-layer sigma within a factor 2 of the sigma_pu table
            _, s_cfg = noise_sigmas(2, np.abs(w.eta_centre[:, ie : ie + 1, None]), endcap, np.full(c, mu), det)
            ratio = sd / float(s_cfg.mean())
            assert 0.5 < ratio < 2.0, f"L2 sigma {1000 * sd:.0f} MeV vs table {1000 * float(s_cfg.mean()):.0f} MeV"


def test_width_scales_with_sqrt_mu(model):
    det, pu = model
    sd = {}
    for mu in (15.0, 60.0):
        cells, wins, _ = overlay(pu, det, 0.5, mu, 3000, seed=int(mu))
        w = wins[2]
        sd[mu] = cells[2][:, w.eta_lo.shape[1] // 2, w.phi_lo.shape[1] // 2].std()
    assert sd[60.0] / sd[15.0] == pytest.approx(2.0, rel=0.12)


def test_neighbouring_cells_are_correlated(model):
    """Particles spread over neighbouring cells and layers: unlike i.i.d. noise, cells co-vary."""
    det, pu = model
    cells, wins, _ = overlay(pu, det, 0.5, 50.0, 3000, seed=3)
    w = wins[2]
    ie, ip = w.eta_lo.shape[1] // 2, w.phi_lo.shape[1] // 2
    a, b = cells[2][:, ie, ip], cells[2][:, ie, ip + 1]
    assert np.corrcoef(a, b)[0, 1] > 0.03  # measured 0.08 (3000 clusters: +-0.02)
    # Strips under the middle cell co-vary with it (the same photons shower through both).
    strips = cells[1][:, cells[1].shape[1] // 2 - 4 : cells[1].shape[1] // 2 + 4, 1].sum(axis=1)
    assert np.corrcoef(a, strips)[0, 1] > 0.08  # measured 0.16


def test_no_pileup_at_zero_mu(model):
    det, pu = model
    cells, _, _ = overlay(pu, det, 0.5, 0.0, 50, seed=1)
    assert all(np.all(c == 0) for c in cells)


def test_library_cache_reused_and_regenerated(tmp_path, monkeypatch):
    monkeypatch.setenv("CALO_CALIB_MINBIAS_DIR", str(tmp_path))
    minbias._MEMORY.clear()
    lib = minbias.load_or_generate(30, 7, 13600.0, progress=False)
    path = minbias.cache_path(30, 7, 13600.0)
    assert path.is_file() and lib.n_events == 30 and lib.event.size > 30 * 20
    assert set(np.unique(lib.kind)) <= {0, 1, 2}
    assert np.all(np.abs(lib.eta) < minbias.MAX_ABS_ETA)
    mtime = path.stat().st_mtime_ns
    minbias._MEMORY.clear()
    again = minbias.load_or_generate(30, 7, 13600.0, progress=False)
    assert path.stat().st_mtime_ns == mtime, "a cached library must be reused, not regenerated"
    np.testing.assert_array_equal(again.pt, lib.pt)
    # Missing -> regenerated (same seed: same events); unreadable -> regenerated.
    path.unlink()
    minbias._MEMORY.clear()
    regen = minbias.load_or_generate(30, 7, 13600.0, progress=False)
    np.testing.assert_array_equal(regen.pt, lib.pt)
    path.write_bytes(b"not an npz")
    minbias._MEMORY.clear()
    fixed = minbias.load_or_generate(30, 7, 13600.0, progress=False)
    np.testing.assert_array_equal(fixed.pt, lib.pt)
    assert not list(tmp_path.glob(".*.tmp*")), "no temporary file left behind"
    minbias._MEMORY.clear()


def test_gaussian_model_still_selectable():
    from calo_calib.simulation import simulate_table

    cfg = compose_config(["particle=electron", "detector.readout.pileup.model=gaussian"])
    assert Simulator(cfg).pileup is None
    assert simulate_table(cfg, 50, 3).num_rows == 50
    with pytest.raises(Exception, match="pileup.model"):
        Simulator(compose_config(["particle=electron", "detector.readout.pileup.model=poisson"]))
