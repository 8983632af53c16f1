"""The particle model's measured noise conditions: the table, its measurement, its cache, and its use
for the clustering thresholds and the stored cell_noise."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from calo_calib.simulation import compose_config
from calo_calib.simulation import geometry as geo
from calo_calib.simulation import noise_conditions as nc
from calo_calib.simulation.minbias import cache_dir


def _table(barrel_value=0.05, endcap_value=0.08) -> nc.NoiseConditions:
    bp, ep = np.array([0.0, 1.0]), np.array([1.5, 2.5])
    barrel = np.array([[barrel_value, 2 * barrel_value]] * 4)
    endcap = np.array([[endcap_value, endcap_value]] * 4)
    endcap[0] = np.nan  # no presampler: interpolation falls back to zero
    return nc.NoiseConditions(30.0, bp, ep, barrel, endcap)


def test_sigma_pu_interpolates_per_region_and_scales_as_sqrt_mu():
    t = _table()
    eta = np.array([0.0, 0.5, 1.0, 2.0])[:, None, None]
    s = t.sigma_pu(2, eta, np.array([False, False, False, True]), np.array([30.0, 30.0, 120.0, 30.0]))
    np.testing.assert_allclose(s[:, 0, 0], [0.05, 0.075, 0.2, 0.08])
    assert t.sigma_pu(0, eta, np.ones(4, bool), np.full(4, 30.0)).max() == 0.0
    assert t.sigma_pu(2, eta, np.zeros(4, bool), np.zeros(4)).max() == 0.0  # <mu> = 0: no pile-up


def test_json_round_trip_is_exact():
    t = nc.NoiseConditions(30.0, np.array([0.05, 0.15]), np.array([1.5]), np.random.default_rng(1).random((4, 2)),
                           np.array([[np.nan]] * 4))  # fmt: skip
    back = nc.NoiseConditions.from_json(json.loads(json.dumps(t.to_json())))
    np.testing.assert_array_equal(back.barrel, t.barrel)
    np.testing.assert_array_equal(back.endcap, t.endcap)


class GaussianOverlay:
    """A stand-in overlay with a known per-cell sigma per layer (GeV), to test the measurement alone."""

    sigma = (0.07, 0.015, 0.05, 0.01)

    def __init__(self):
        self.calls = 0

    def at_unit_scale(self):
        self.unit_scale_calls = getattr(self, "unit_scale_calls", 0) + 1
        return self

    def cells(self, windows, rho, eta_c, phi_c, mu, a, rng):
        self.calls += 1
        return [s * rng.standard_normal(w.valid.shape) * w.valid for s, w in zip(self.sigma, windows)]


def test_measure_recovers_a_known_sigma():
    det = compose_config(["particle=electron"]).detector
    t = nc.measure(GaussianOverlay(), det, 200, seed=3)
    assert t.barrel.shape == (4, len(nc.BARREL_POINTS)) and t.endcap.shape == (4, len(nc.ENDCAP_POINTS))
    for layer, s in enumerate(GaussianOverlay.sigma):
        ok = np.isfinite(t.barrel[layer])
        assert ok.sum() >= len(nc.BARREL_POINTS) - 1
        np.testing.assert_allclose(t.barrel[layer][ok], s, rtol=0.12)
    assert np.isnan(t.endcap[0, -1])  # no presampler beyond |eta| = 1.8
    np.testing.assert_allclose(t.endcap[2], 0.05, rtol=0.12)


@pytest.fixture
def conditions_dir(tmp_path, monkeypatch):
    """An empty conditions cache (the minimum-bias library stays where it is)."""
    monkeypatch.setenv("CALO_CALIB_MINBIAS_DIR", str(tmp_path))
    monkeypatch.setattr(nc, "_MEMORY", {})
    return tmp_path / "noise_conditions"


def test_cache_is_written_reused_and_remeasured_when_broken(conditions_dir, monkeypatch):
    det = compose_config(["particle=electron", "detector.readout.pileup.conditions.windows_per_point=100"]).detector
    overlay = GaussianOverlay()
    first = nc.load_or_measure(overlay, det)
    path = nc.cache_path(det)
    assert path.parent == conditions_dir and path.is_file() and overlay.calls > 0
    calls = overlay.calls
    monkeypatch.setattr(nc, "_MEMORY", {})
    again = nc.load_or_measure(overlay, det)  # from the file: no new overlay
    assert overlay.calls == calls
    np.testing.assert_array_equal(again.barrel, first.barrel)
    for broken in ("{not json", json.dumps({**json.loads(path.read_text()), "version": -1})):
        path.write_text(broken)
        monkeypatch.setattr(nc, "_MEMORY", {})
        remeasured = nc.load_or_measure(overlay, det)
        assert overlay.calls > calls
        calls = overlay.calls
        np.testing.assert_array_equal(remeasured.barrel, first.barrel)  # same seed: same table
    assert not list(conditions_dir.glob(".*tmp"))  # written to a temporary name, then renamed


def test_cache_key_follows_what_changes_the_overlay():
    base = nc.cache_key(compose_config(["particle=electron"]).detector)
    same = [
        "detector.clustering.seed_sigma=5.0",
        "detector.readout.sigma_elec_barrel=[0.03,0.015,0.035,0.02]",
        "+detector.readout.elec_noise_scale=1.2",
        "detector=noise_pileup",  # its pile-up scale is applied to the scale-1 table (see below)
        "+detector.shower.width_scale=1.0",  # knobs at their identity default: the same detector
        "+detector.shower.depth_scale=1",
        "detector.sampling.enabled=false",  # the signal's sampling switch; the overlay draws its own
    ]
    for override in same:
        assert nc.cache_key(compose_config(["particle=electron", override]).detector) == base, override
    assert nc.cache_key(compose_config(["particle=photon_conv"]).detector) == base  # the particle is not the detector
    for override in ("detector=material_up", "+detector.shower.width_scale=1.08",
                     "detector.readout.pileup.library_events=5000", "detector.readout.pileup.conditions.seed=2"):  # fmt: skip
        assert nc.cache_key(compose_config(["particle=electron", override]).detector) != base, override


def test_pileup_noise_knob_scales_the_scale_one_table(conditions_dir):
    """noise_pileup (pile-up noise x1.15, i.e. 1.15^2 x the minimum-bias rate) reads the nominal
    measurement times 1.15: sigma of a compound Poisson sum scales as the square root of its rate."""
    quick = "detector.readout.pileup.conditions.windows_per_point=100"
    nominal = compose_config(["particle=electron", quick]).detector
    variant = compose_config(["particle=electron", "detector=noise_pileup", quick]).detector
    overlay = GaussianOverlay()
    scaled = nc.load_or_measure(overlay, variant)  # measured first, by the variant, at scale 1
    assert overlay.unit_scale_calls == 1
    calls = overlay.calls
    unit = nc.load_or_measure(overlay, nominal)
    assert overlay.calls == calls  # one measurement for both
    np.testing.assert_allclose(scaled.barrel, 1.15 * unit.barrel)
    np.testing.assert_allclose(scaled.endcap, 1.15 * unit.endcap)
    on_file = np.array(json.loads(nc.cache_path(nominal).read_text())["barrel"], dtype=float)
    np.testing.assert_array_equal(on_file, unit.barrel)  # the cached file holds the scale-1 table


@pytest.mark.slow
def test_thresholds_and_cell_noise_use_the_measured_conditions(tmp_path, monkeypatch):
    """The stored cell_noise is sigma_elec (+) the conditions at the reference <mu>; the choice of
    conditions changes only which cells pass the thresholds, never the simulated energies."""
    from calo_calib.simulation.generator import Simulator
    from calo_calib.simulation.readout import noise_sigmas

    lib = next(cache_dir().glob("pythia8_*.npz"), None)
    if lib is not None:  # share the library, measure the conditions afresh
        shutil.copy(lib, tmp_path / lib.name)
    monkeypatch.setenv("CALO_CALIB_MINBIAS_DIR", str(tmp_path))
    monkeypatch.setattr(nc, "_MEMORY", {})
    # 300 windows per point instead of 3000: this test checks how the table is used, not its precision.
    over = ["particle=electron", "mu=60", "gun.abs_eta_max=1.3", "detector.readout.pileup.conditions.windows_per_point=300"]
    sims = {src: Simulator(compose_config([*over, f"detector.readout.pileup.conditions.source={src}"]))
            for src in ("measured", "table")}  # fmt: skip
    cond = sims["measured"].noise_conditions
    assert cond is not None and sims["table"].noise_conditions is None
    assert (tmp_path / "noise_conditions").is_dir()
    out = {src: sim.batch(300, np.random.default_rng(7)) for src, sim in sims.items()}
    m, t = out["measured"], out["table"]
    assert len(set(m["truth_e"]) & set(t["truth_e"])) > 0.95 * len(t["truth_e"])  # same particles
    det = sims["measured"].det
    endcap = np.zeros(1, bool)
    for layer in range(geo.N_LAYERS):
        sel = m["cell_layer"] == layer
        eta = np.abs(m["cell_eta"][sel]).astype(float)[None, :]
        s_el, _ = noise_sigmas(layer, eta, endcap, np.full(1, 60.0), det)
        expect = np.hypot(s_el, cond.sigma_pu(layer, eta, endcap, np.full(1, 60.0)))[0]
        # Cells of barrel clusters only (gun |eta| < 1.3); the cell's own |eta| sets the table value.
        np.testing.assert_allclose(m["cell_noise"][sel], expect, rtol=2e-3)
        sel_t = t["cell_layer"] == layer  # source=table: the card's formula, as the gaussian model
        eta_t = np.abs(t["cell_eta"][sel_t]).astype(float)[None, :]
        np.testing.assert_allclose(t["cell_noise"][sel_t], np.hypot(*noise_sigmas(layer, eta_t, endcap, np.full(1, 60.0), det))[0], rtol=2e-3)
    # The cells both selections keep carry the same energy: only the thresholds moved.
    def key(o):
        truth = np.repeat(o["truth_e"], np.diff(o["cell_offsets"]))
        return dict(zip(zip(truth, o["cell_layer"], o["cell_eta"], o["cell_phi"]), o["cell_e"]))

    km, kt = key(m), key(t)
    common = set(km) & set(kt)
    assert len(common) > 0.8 * min(len(km), len(kt))
    assert all(km[k] == kt[k] for k in common)


@pytest.mark.slow
def test_measured_conditions_match_an_independent_overlay_measurement():
    """The cached table against the validation's own measurement (other windows, other seed)."""
    from calo_calib.simulation.generator import Simulator
    cfg = compose_config(["particle=electron"])
    sim = Simulator(cfg)
    cond, pu, det = sim.noise_conditions, sim.pileup, cfg.detector
    rng = np.random.default_rng(99)
    n = 3000
    for eta in (0.3, 1.0):
        cells, wins, endcap = nc.overlay_windows(pu, det, eta, 30.0, n, rng)
        for layer in (1, 2):
            w = wins[layer]
            measured = nc.central_sigma(cells[layer], w, layer, eta)  # the cells the table uses, other windows
            table = float(cond.sigma_pu(layer, np.full((1, 1, 1), eta), endcap[:1], np.full(1, 30.0))[0, 0, 0])
            assert table == pytest.approx(measured, rel=0.15), (eta, layer)


def test_superclusters_below_the_et_threshold_are_not_egamma_clusters():
    """EtThresholdCut (1.5 GeV): the same particles, with the cut, keep exactly the clusters above it."""
    from calo_calib.simulation.generator import Simulator

    over = ["particle=electron", "gun.e_min=5", "gun.e_max=12", "gun.abs_eta_min=1.6", "detector.readout.noise=false"]
    out = {}
    for et in (0.0, 1.5):
        sim = Simulator(compose_config([*over, f"detector.clustering.min_et={et}"]))
        out[et] = sim.batch(400, np.random.default_rng(3))
    et_all = out[0.0]["cluster_e"] / np.cosh(out[0.0]["cluster_eta"])
    above = et_all >= 1.5
    assert (~above).sum() > 20 and above.sum() > 20  # the cut bites at low E, high |eta|
    np.testing.assert_array_equal(out[1.5]["truth_e"], out[0.0]["truth_e"][above])
    assert out[1.5]["n_rejected"][0] == out[0.0]["n_rejected"][0] + (~above).sum()
