"""Upstream substructure: individual brem photons and conversion reconstruction versus radius.

References: ../shared/docs/physics_cells.md §1(d) and the detector card §2.3-2.4.
* Bethe-Heitler: -ln z ~ Gamma(t / ln 2) per thin element [R]; its photons follow
  dN/du = (t / ln 2) / (-ln(1 - u)) ≈ (t / ln 2) / u, u = k / E (the 1/k spectrum);
* PDG thin-target estimate N(k > k_min) ≈ (4/3) t ln(E / k_min) [R: PDG];
* bending: a photon emitted at radius r lands Δφ = 0.3 B (R - r)^2 / (2 pT R) from its electron;
* conversion reconstruction efficiency falls with radius (conf/detector/nominal.yaml conversion).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from scipy.special import exp1

from calo_calib.simulation import compose_config, simulate_table
from calo_calib.simulation.generator import Simulator
from calo_calib.simulation.material import InnerDetectorProfile
from calo_calib.simulation.upstream import R_REF_MM, propagate_electrons, sample_element_brem


@pytest.fixture(scope="module")
def cfg():
    return compose_config([])


@pytest.fixture(scope="module")
def idp(cfg):
    return InnerDetectorProfile.from_config(cfg.detector.material)


def _propagate(idp, e, t, k_min, seed, n=8000, r0=0.0, field_everywhere=False, max_showers=3, merge_dphi=0.005):
    one = np.ones(n)
    charge = np.where(np.arange(n) % 2 == 0, -1.0, 1.0)
    sol_r, sol_z = (R_REF_MM, 1e7) if field_everywhere else (1150.0, 2650.0)  # field up to R = 1.5 m
    return propagate_electrons(
        np.arange(n), np.broadcast_to(e, (n,)) * one, charge, r0 * one, 0 * one, np.broadcast_to(t, (n,)) * one, one,
        0 * one, idp, 2.0, sol_r, sol_z, k_min, np.random.default_rng(seed), max_showers, merge_dphi,
    )  # fmt: skip


def bethe_heitler_multiplicity(e0: float, t: float, k_min: float, steps: int = 40, n_mc: int = 20000) -> float:
    """Mean number of photons above k_min through t X0: (1/ln 2) ∫ <E1(y_min(E(t')))> dt', with the
    electron's energy E(t') = E0 exp(-G), G ~ Gamma(t'/ln 2) (its own Bethe-Heitler loss)."""
    rng = np.random.default_rng(123)
    total = 0.0
    for tt in (np.arange(steps) + 0.5) / steps * t:
        e = e0 * np.exp(-rng.gamma(tt / np.log(2.0), size=n_mc))
        u = np.minimum(k_min / e, 1.0)
        total += np.mean(np.where(u < 1.0, exp1(-np.log1p(-np.minimum(u, 1 - 1e-15))), 0.0))
    return total * t / steps / np.log(2.0)


# ---------------------------------------------------------------------------------------------
# Bethe-Heitler photons
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("e0,t", [(50.0, 0.3), (50.0, 2.5), (10.0, 1.0)])
def test_multiplicity_matches_bethe_heitler(idp, e0, t):
    res = _propagate(idp, e0, t, 0.1, seed=int(10 * t + e0))
    n = res.e_final.size
    for k_min in (0.1, 1.0):
        counts = np.bincount(res.photons.electron[res.photons.e > k_min], minlength=n)
        expected = bethe_heitler_multiplicity(e0, t, k_min)
        se = counts.std() / np.sqrt(n)
        assert counts.mean() == pytest.approx(expected, abs=4 * se + 0.03 * expected), (e0, t, k_min)
    # Mean energy kept: <z> = exp(-t) (Bethe-Heitler, card §2.4), soft brem included.
    z = res.e_track / e0
    assert z.mean() == pytest.approx(np.exp(-t), abs=4 * z.std() / np.sqrt(n))


def test_thin_target_multiplicity_close_to_pdg(idp):
    """Thin target (t = 0.3 X0): Bethe-Heitler's 1/(ln 2 u) vs the PDG (4/3)(1/u)(1 - u + 3u²/4):
    within 10 % of (4/3) t ln(E/k_min); and 2-10 photons above 0.1 GeV for t = 0.3-2.5 X0 at 10 GeV."""
    res = _propagate(idp, 50.0, 0.3, 0.1, seed=5)
    n_mean = np.bincount(res.photons.electron, minlength=res.e_final.size).mean()
    pdg = 4.0 / 3.0 * 0.3 * np.log(50.0 / 0.1)
    assert 0.9 * pdg < n_mean < 1.1 * pdg, (n_mean, pdg)
    for t in (0.3, 2.5):
        r = _propagate(idp, 10.0, t, 0.1, seed=6, n=3000)
        m = np.bincount(r.photons.electron, minlength=3000).mean()
        assert 1.5 < m < 10.0, (t, m)


def test_photon_spectrum_is_bethe_heitler():
    """u = k/E of single emissions follows dN/du ∝ 1/(-ln(1 - u)) on (k_min/E, 1): chi2 in log bins."""
    rng = np.random.default_rng(7)
    n, e, k_min = 200000, 50.0, 0.1
    c = np.full(n, 0.05 / np.log(2.0))
    owner, k, e_parent, _, _ = sample_element_brem(np.full(n, e), c, k_min, rng)
    u = k / e_parent
    u_min = k_min / e
    assert np.all(u > u_min * (1 - 1e-12)) and np.all(u < 1)
    edges = np.r_[np.geomspace(u_min, 0.5, 10), 0.8, 1.0]
    grid = np.geomspace(u_min, 1 - 1e-9, 200001)
    dens = 1.0 / -np.log1p(-grid)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    p = np.diff(np.interp(edges, grid, cdf)) / cdf[-1]
    obs = np.histogram(u, edges)[0]
    chi2 = np.sum((obs - u.size * p) ** 2 / (u.size * p))
    assert stats.chi2.sf(chi2, len(p) - 1) > 1e-3, (chi2, obs, np.round(u.size * p))
    # The count per electron is Poisson with mean c E1(y_min) (the Gamma process's jump count).
    counts = np.bincount(owner, minlength=n)
    mean = c[0] * exp1(-np.log1p(-u_min))
    assert counts.mean() == pytest.approx(mean, rel=0.02)
    assert counts.var() == pytest.approx(mean, rel=0.04)


def test_element_loss_is_gamma():
    """Hard photons + the soft remainder reproduce -ln z ~ Gamma(X/ln 2) of each element."""
    rng = np.random.default_rng(8)
    n, e = 40000, 20.0
    for x in (0.03, 0.3):
        c = np.full(n, x / np.log(2.0))
        owner, k, _, e_soft, e_after = sample_element_brem(np.full(n, e), c, 0.2, rng)
        np.testing.assert_allclose(e_after + e_soft + np.bincount(owner, k, n), e, rtol=1e-12)
        y = -np.log(e_after / e)
        # Above k_min/E the distribution is the exact Gamma one (hard photons one by one; the
        # soft remainder, jumps below k_min/E = 1 %, is a moment-matched Gamma: its small-y shape differs).
        for y_cut in (0.01, 0.02, 0.05, 0.2, 0.5, 1.0):  # from y_min = k_min/E = 0.01 up
            sf = stats.gamma(c[0]).sf(y_cut)
            assert np.mean(y > y_cut) == pytest.approx(sf, abs=4 * np.sqrt(sf * (1 - sf) / n) + 1e-4), (x, y_cut)
        assert y.mean() == pytest.approx(c[0], abs=4 * np.sqrt(c[0] / n))
        assert y.var() == pytest.approx(c[0], rel=0.1)


# ---------------------------------------------------------------------------------------------
# Energy bookkeeping, shower budget, geometry
# ---------------------------------------------------------------------------------------------
def test_energy_conserved_per_electron(idp):
    rng = np.random.default_rng(9)
    n = 4000
    e0 = np.exp(rng.uniform(np.log(2.0), np.log(500.0), n))
    t = rng.uniform(0.2, 2.5, n)
    r0 = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0.0, 790.0, n))  # primaries and conversion legs
    charge = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    one = np.ones(n)
    res = propagate_electrons(
        np.arange(n), e0, charge, r0, 0 * one, t, one, 0 * one, idp, 2.0, 1150.0, 2650.0, 0.2, rng, 3, 0.005
    )
    per_el = np.bincount(res.showers.cluster, res.showers.e, n)
    np.testing.assert_allclose(per_el, e0, rtol=1e-12)
    ph = res.photons
    np.testing.assert_allclose(res.keep_fraction * e0 + np.bincount(ph.electron, ph.e, n), e0, rtol=1e-12)
    assert np.all(ph.e >= 0.2) and np.all(res.e_track <= res.keep_fraction * e0 * (1 + 1e-12))
    # Photons are emitted only at elements beyond the start radius.
    assert np.all(ph.r_emit > r0[ph.electron])
    # Shower budget: at most 1 + 3 showers per electron, exactly one of them the electron's.
    assert np.bincount(res.showers.cluster, minlength=n).max() <= 4
    el = res.showers.n_charged == 1
    assert np.all(np.bincount(res.showers.cluster[el], minlength=n) == 1)

    # The same photons without any merging (merging draws no random numbers): the energy-weighted
    # line of each electron's showers and their energy-weighted start depth are unchanged.
    def again(max_showers, merge_dphi):
        return propagate_electrons(
            np.arange(n), e0, charge, r0, 0 * one, t, one, 0 * one, idp, 2.0, 1150.0, 2650.0, 0.2,
            np.random.default_rng(99), max_showers, merge_dphi,
        )  # fmt: skip

    free, merged = again(100, 0.0), again(3, 0.005)
    np.testing.assert_array_equal(free.photons.e, merged.photons.e)
    for s in (free.showers, merged.showers):
        assert np.bincount(s.cluster, minlength=n).max() <= (101 if s is free.showers else 4)
    bary = [
        np.bincount(s.cluster, s.e * s.phi_at(np.full(s.e.size, 1800.0)), n) / e0
        for s in (free.showers, merged.showers)
    ]
    np.testing.assert_allclose(bary[0], bary[1], rtol=1e-9, atol=1e-15)
    depth = [np.bincount(s.cluster, s.e * s.t0, n) / e0 for s in (free.showers, merged.showers)]
    np.testing.assert_allclose(depth[0], depth[1], rtol=1e-12)
    assert np.all(res.showers.t0 >= t[res.showers.cluster] * (1 - 1e-12)), "showers start at X_ID or later"


def test_generator_energy_per_cluster(cfg):
    """Simulator._upstream: the showers of every cluster sum to the generated energy (electrons,
    converted and unconverted photons), with the per-cluster shower budget."""
    for particle in ("electron", "photon"):
        sim = Simulator(compose_config([f"particle={particle}"]))
        rng = np.random.default_rng(10)
        ev = sim._gun(3000, rng)
        showers, info = sim._upstream(ev, rng)
        per = np.bincount(showers.cluster, showers.e, ev.e.size)
        np.testing.assert_allclose(per, ev.e, rtol=1e-12)
        n_sh = np.bincount(showers.cluster, minlength=ev.e.size)
        budget = 1 + int(cfg.detector.brem.max_photon_showers)
        assert n_sh.max() <= (budget if particle == "electron" else 2 * budget)
        if particle == "photon":
            assert np.all(n_sh[~info["converted"]] == 1)


def test_later_photons_land_closer_to_their_electron(idp):
    """Δφ(R) = 0.3 B (R - r)^2 / (2 pT R) between the electron and a photon emitted at r (field
    up to R = 1.5 m here): bounded by the electron's pT just after the emission and at the end."""
    e0, big = 20.0, 100
    res = _propagate(idp, e0, 0.6, 0.2, seed=11, n=6000, field_everywhere=True, max_showers=big, merge_dphi=0.0)
    sh, ph = res.showers, res.photons
    el = sh.n_charged == 1
    rr = 1.5  # m, R_REF_MM
    el_phi = np.zeros(res.e_final.size)
    el_phi[sh.cluster[el]] = sh.phi_at(np.full(sh.e.size, R_REF_MM))[el]
    dphi = np.abs(el_phi[ph.electron] - ph.phi_ref)
    r = ph.r_emit / 1000.0
    lo = 0.3 * 2.0 * (rr - r) ** 2 / (2 * (ph.e_parent - ph.e) * rr)  # the electron's pT after the emission
    hi = 0.3 * 2.0 * (rr - r) ** 2 / (2 * res.e_track[ph.electron] * rr)  # pT after all its brem
    assert np.all(dphi >= lo * (1 - 1e-6)) and np.all(dphi <= hi * (1 + 1e-6))
    # Later emission (larger r) -> closer in phi: pixel > SCT > TRT photons (medians), and the
    # distance scales as (R - r)^2 (median of dphi / (R - r)^2 equal within 15 % across regions).
    regions = [(0, 150), (200, 550), (550, 800)]
    med = [np.median(dphi[(ph.r_emit > a) & (ph.r_emit < b)]) for a, b in regions]
    assert med[0] > med[1] > med[2], med
    scaled = [np.median((dphi / (rr - r) ** 2)[(ph.r_emit > a) & (ph.r_emit < b)]) for a, b in regions]
    assert max(scaled) / min(scaled) < 1.15, scaled
    assert stats.spearmanr(ph.r_emit, dphi).statistic < -0.3
    # Sign: the electron bends away from its photons, opposite ways for opposite charges.
    q = np.where(ph.electron % 2 == 0, -1.0, 1.0)
    assert np.all(np.sign(el_phi[ph.electron] - ph.phi_ref) == -q)


# ---------------------------------------------------------------------------------------------
# Conversion reconstruction versus radius, late conversions in photon_unconv
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def forward_photons():
    """Photons at 1.2 < |eta| < 2.4 (P_conv ~ 0.6), all categories."""
    cfg = compose_config(["particle=photon", "gun.abs_eta_min=1.2", "gun.abs_eta_max=2.4"])
    table = simulate_table(cfg, 5000, 31)
    return cfg, {k: table[k].to_numpy(zero_copy_only=False) for k in table.column_names if not k.startswith("cell_")}


def test_conversion_efficiency_versus_radius(forward_photons):
    """Reconstructed fraction of true conversions in bins of true radius against the config:
    P(ctype > 0) = p + (1 - p) fake_rate, p = eff(R) * [a leg has pT > track_min_pt]."""
    cfg, d = forward_photons
    conv = d["truth_converted"]
    r = d["truth_conv_r"][conv]
    ct = d["conversion_type"][conv]
    x = d["truth_conv_fraction"][conv]
    pt = d["truth_e"][conv] / np.cosh(d["truth_eta"][conv])
    cc = cfg.detector.conversion
    eff = np.interp(r, list(cc.eff_r), list(cc.eff_values))
    tracks = np.maximum(x, 1 - x) * pt > float(cc.track_min_pt)
    p = eff * tracks
    p = p + (1 - p) * float(cc.fake_rate)
    edges = [0.0, 150.0, 300.0, 450.0, 600.0, 800.0]
    fractions = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (r >= lo) & (r < hi)
        assert sel.sum() > 150, (lo, hi, sel.sum())
        obs, exp = np.mean(ct[sel] > 0), np.mean(p[sel])
        se = np.sqrt(exp * (1 - exp) / sel.sum())
        assert obs == pytest.approx(exp, abs=4 * se), (lo, hi, obs, exp)
        fractions.append(obs)
    assert fractions[0] > 0.85 and fractions[-1] < 0.65, fractions  # 90 % inside, ~50-60 % at 600-800 mm


def test_late_conversions_are_labelled_unconverted(forward_photons):
    """Lost conversions (ctype == 0) are photon_unconv and sit at larger radius than found ones."""
    _, d = forward_photons
    conv, ct = d["truth_converted"], d["conversion_type"]
    unconv = ct == 0
    assert set(d["particle"][unconv]) == {"photon_unconv"}
    lost = conv & unconv
    found = conv & ~unconv
    assert lost.sum() > 100
    assert np.median(d["truth_conv_r"][lost]) > np.median(d["truth_conv_r"][found]) + 100.0
    # The photon_unconv selection (ctype == 0 before the costly part) keeps them.
    sample = simulate_table(
        compose_config(["particle=photon_unconv", "gun.abs_eta_min=1.2", "gun.abs_eta_max=2.4"]), 1500, 32
    )
    sct = sample["conversion_type"].to_numpy()
    sconv = sample["truth_converted"].to_numpy()
    sr = sample["truth_conv_r"].to_numpy()
    assert np.all(sct == 0)
    # Late conversions dominate them: about half beyond 450 mm, against a quarter of all conversions.
    late_all = np.mean(d["truth_conv_r"][conv] > 450.0)
    assert np.mean(sconv) > 0.15 and np.mean(sr[sconv] > 450.0) > late_all + 0.15
    # Their extra showers (brem photons of the legs) are there: more showers than single photons.
    ns = sample["truth_n_showers"].to_numpy()
    assert np.all(ns[~sconv] == 1) and ns[sconv].mean() > 2.0


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------
def test_same_seed_same_output(idp):
    a = _propagate(idp, 30.0, 1.0, 0.2, seed=12, n=2000)
    b = _propagate(idp, 30.0, 1.0, 0.2, seed=12, n=2000)
    for f in ("e", "t0", "phi_a", "psi_a", "cluster"):
        np.testing.assert_array_equal(getattr(a.showers, f), getattr(b.showers, f))
    cfg = compose_config(["particle=photon_conv"])
    t1, t2, t3 = simulate_table(cfg, 400, 13), simulate_table(cfg, 400, 13), simulate_table(cfg, 400, 14)
    assert t1.column_names == t2.column_names
    for name in t1.column_names:
        a1 = t1.column(name).combine_chunks()
        a2 = t2.column(name).combine_chunks()
        if pa.types.is_list(a1.type):  # cell columns
            np.testing.assert_array_equal(a1.offsets.to_numpy(), a2.offsets.to_numpy())
            a1, a2 = a1.values, a2.values
        v1, v2 = a1.to_numpy(zero_copy_only=False), a2.to_numpy(zero_copy_only=False)
        if v1.dtype.kind == "f":
            np.testing.assert_array_equal(v1, v2, err_msg=name)  # NaN == NaN here
        else:
            assert np.array_equal(v1, v2), name
    assert not np.array_equal(t1["cluster_e"].to_numpy(), t3["cluster_e"].to_numpy())
