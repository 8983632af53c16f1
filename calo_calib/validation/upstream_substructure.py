"""Validation section: brem-photon and conversion substructure upstream of the calorimeter.

Brem photons of ``simulation/upstream.py`` and conversion reconstruction of ``conversions.py`` (docs/simulation.md).
Cheap: particles are only propagated through the ID (``propagate_electrons``, ``Simulator._upstream``; no
showers), with the simulation's material table X_ID(|η|) (X0 along the path) and detector (``sim_overrides``).

* multiplicity ⟨N_γ(k > k_min)⟩ at fixed E and |η| against Bethe–Heitler, (1/ln 2) ∫₀ᵗ ⟨E₁(−ln(1 −
  k_min/E(t′)))⟩ dt′ with the electron's loss E(t′) = E₀e^−G, G ~ Γ(t′/ln 2) (as ``tests/simulation/test_upstream.py``),
  and against the PDG complete-screening dN/dk = (X/X0)(1/k)(4/3 − 4/3 y + y²) with the same loss;
* spectrum shape y = k/E (``sample_element_brem``): χ² vs Bethe–Heitler 1/(−ln(1 − y)), ratio per bin vs PDG;
* ⟨E_radiated⟩/E₀ in the ID against 1 − e^{−X_ID} (PDG ⟨E⟩ = E₀ e^{−X/X0}); beyond the ID the
  electron's GFlash shower starts, so 1 − e^{−X_before_PS} has no counterpart in the bookkeeping;
* conversion reconstruction: fraction of true conversions found versus true radius against the
  card's figures (≈ 90 % below 300 mm, linear to ≈ 50 % at 800 mm; double-track ≈ 70 % at small R),
  and the resulting converted fraction per |η| region;
* INFO: mean |Δφ| photon–electron at R = 1.5 m versus E_T against 0.3 B (R_s − r)(R − (R_s + r)/2)/(p_T R)
  (field up to R_s; p_T just after the emission / at the end); separate photon showers per track
  (≤ ``brem.max_photon_showers``, merge rule ``brem.merge_dphi`` re-derived photon by photon).

This module holds the expectations, the propagation and :func:`run`; the rows and results are made
in :mod:`~calo_calib.validation.upstream_substructure_checks`, the figure in
:mod:`~calo_calib.validation.upstream_substructure_plots`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import integrate, stats
from scipy.special import exp1

SECTION = "Upstream substructure: brem photons and conversions"
SRC_BH = "[R] Bethe–Heitler Γ(t/ln 2) (card §2.4, physics_cells.md §1(d))"
SRC_PDG = "[R-PDG] Passage of particles through matter, bremsstrahlung (complete screening)"
SRC_LOSS = "[R-PDG] ⟨E⟩ = E₀ e^{−X/X0}"
SRC_CONV = "[E] detector_card.md §2.3; [R] physics_cells.md §1(d)"
CARD_EFF_R, CARD_EFF = (300.0, 800.0), (0.90, 0.50)  # card §2.3 [E]: 90 % below 300 mm, linear to 50 % at 800 mm
CARD_DOUBLE_SMALL_R = 0.70  # card §2.3 [E]: double-track fraction at small R
R_EDGES = (0.0, 150.0, 300.0, 450.0, 600.0, 800.0)  # mm, true conversion radius bins
Y_EDGES_PDG = (0.01, 0.1, 0.5, 0.8, 1.0)  # y = k/E bins of the PDG shape ratio (first edge: u_min)
PDG_TOL, MULT_PDG_TOL, CONV_TOL = 0.10, 0.15, 0.03  # [E] tolerances
LN2 = float(np.log(2.0))
CELL_PHI = 2 * np.pi / 256  # middle-cell φ size [rad]


def n_pdg(u) -> np.ndarray:
    """Photons per X0 with y > u of the PDG spectrum: ∫_u^1 (4/3 − 4/3 y + y²)/y dy (0 for u ≥ 1), shape of u."""
    u = np.clip(np.asarray(u, np.float64), 1e-300, 1.0)
    return np.where(u < 1, 4 / 3 * np.log(1 / u) - 4 / 3 * (1 - u) + 0.5 * (1 - u * u), 0.0)


def n_bh(u) -> np.ndarray:
    """Photons per X0 with y > u of Bethe–Heitler: E₁(−ln(1 − u))/ln 2 (0 for u ≥ 1), shape of u."""
    u = np.asarray(u, np.float64)
    return np.where(u < 1, exp1(-np.log1p(-np.minimum(u, 1 - 1e-15))) / LN2, 0.0)


def expected_multiplicity(e0: float, t: float, k_min: Sequence[float], steps: int = 48, n_q: int = 800) -> dict:
    """Mean photon count above each ``k_min`` (GeV) of an electron of ``e0`` GeV through ``t`` X0.

    E(t′) = e0 e^{−G}, G ~ Γ(t′/ln 2) averaged over ``n_q`` quantiles at ``steps`` depths. Returns
    (len(k_min),) arrays ``bh`` (Bethe–Heitler), ``pdg`` (PDG spectrum with the same loss) and
    ``pdg_thin`` (t n_pdg(k_min/e0), no loss).
    """
    k = np.asarray(k_min, np.float64)[:, None, None]
    tt = (np.arange(steps) + 0.5) / steps * t
    q = (np.arange(n_q) + 0.5) / n_q
    e = e0 * np.exp(-stats.gamma.ppf(q[None, :], tt[:, None] / LN2))[None]  # (1, steps, n_q)
    u = np.minimum(k / e, 1.0)
    return {"bh": t * n_bh(u).mean(axis=(1, 2)), "pdg": t * n_pdg(u).mean(axis=(1, 2)),
            "pdg_thin": t * n_pdg(k[:, 0, 0] / e0)}  # fmt: skip


def spectrum_fractions(edges: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Expected fraction of photons in each bin of ``edges`` (spanning (u_min, 1)): (Bethe–Heitler, PDG), (nbins,) each."""
    bh = np.array([integrate.quad(lambda y: 1 / -np.log1p(-y), a, b, limit=200)[0] for a, b in zip(edges[:-1], edges[1:])])  # fmt: skip
    pdg = -np.diff(n_pdg(np.asarray(edges)))
    return bh / bh.sum(), pdg / pdg.sum()


def card_efficiency(r) -> np.ndarray:
    """Card §2.3 [E] conversion-reconstruction efficiency at true radius ``r`` (mm), shape of r."""
    return np.interp(np.asarray(r, np.float64), CARD_EFF_R, CARD_EFF)


def field_dphi(r_emit, pt, r_sol, r_calo: float, b_tesla: float) -> np.ndarray:
    """|Δφ| (rad) at ``r_calo`` (mm) between a photon emitted at ``r_emit`` (mm, (m,)) and its electron of
    p_T ``pt`` (GeV, (m,)), field ``b_tesla`` up to ``r_sol`` (mm): 0.3 B (R_s − r)(R − (R_s + r)/2)/(p_T R), (m,)."""
    r = np.asarray(r_emit, np.float64) / 1000
    rs = np.maximum(np.asarray(r_sol, np.float64) / 1000, r)
    return 0.3 * b_tesla * (rs - r) * (r_calo / 1000 - 0.5 * (rs + r)) / (np.asarray(pt) * r_calo / 1000)


def budget_mismatches(ph, el_phi: np.ndarray, max_showers: int, merge_dphi: float) -> int:
    """Photons whose ``separate`` flag differs from the documented rule: per electron, the
    ``max_showers`` hardest photons are separate if they land ≥ ``merge_dphi`` (rad, at R_REF) from
    the electron (``el_phi`` (n,)) and from every harder separate photon."""
    order = np.lexsort((-ph.e, ph.electron))
    own, phi, sep = ph.electron[order], ph.phi_ref[order], ph.separate[order]
    bad, start = 0, 0
    while start < own.size:
        stop = start + int(np.searchsorted(own[start:], own[start], side="right"))
        slots = [el_phi[own[start]]]
        for j in range(start, stop):
            ok = j - start < max_showers and min(abs(s - phi[j]) for s in slots) >= merge_dphi
            slots += [phi[j]] if ok else []
            bad += int(ok != bool(sep[j]))
        start = stop
    return bad


def size(cfg) -> int:
    """Electrons per (E, |η|) point (the other samples are multiples of it)."""
    s = cfg.quick_sizes if cfg.quick else cfg
    return int(s.get("n_upstream", 4000)) if hasattr(s, "get") else 4000


def samples(cfg) -> list:
    """No report samples: the section propagates its particles itself."""
    return []


def simulator(c, extra):
    """The photon-gun Simulator (flat E_T, |η| < 2.47); its detector (material, ID profile, field, brem) serves the electrons too."""
    from calo_calib.simulation import compose_config
    from calo_calib.simulation.generator import Simulator

    return Simulator(compose_config([
        "particle=photon", "gun.spectrum=flat_et", f"gun.e_min={float(c.get('et_min', 10)):g}",
        f"gun.e_max={float(c.get('et_max', 100)):g}", "gun.abs_eta_min=0", "gun.abs_eta_max=2.47",
        "detector.readout.pileup.model=gaussian", *list(extra),  # pile-up plays no part upstream
    ]))  # fmt: skip


def propagate(sim, e, abs_eta, x_id, rng, k_min: float, budget: bool = True):
    """``propagate_electrons`` of (n,) electrons (random charge) with the simulator's field and brem
    settings; ``budget=False``: no shower budget (every photon its own shower, the bare electron line)."""
    from calo_calib.simulation.upstream import propagate_electrons

    n, f, b = e.size, sim.det.field, sim.det.brem
    charge = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    k_s, m_dphi = (int(b.max_photon_showers), float(b.merge_dphi)) if budget else (64, 0.0)
    return propagate_electrons(
        np.arange(n), e, charge, np.zeros(n), np.zeros(n), x_id, np.cosh(abs_eta), np.sinh(abs_eta), sim.idp,
        float(f.b_tesla), float(f.solenoid_radius_mm), float(f.solenoid_half_length_mm), k_min, rng, k_s, m_dphi,
    )  # fmt: skip


def run(v) -> None:
    """Add the section's rows, notes, results and figure to the report ``v``.

    Rows in README order: multiplicity and radiated fraction, spectrum, Δφ and shower budget,
    conversions. No draw from ``v.rng``: every part seeds its own generators from ``seed`` + 9100.
    """
    # the checks and plots import this module's expectations, hence imported here
    from calo_calib.validation import upstream_substructure_checks as C
    from calo_calib.validation.upstream_substructure_plots import plot

    c = v.cfg.get("upstream_substructure")
    if c is None or not bool(c.get("enabled", True)):
        return
    n, seed = size(v.cfg), int(v.cfg.seed) + 9100
    stress = float(c.get("stress_x_scale", 1.0))  # test hook: the propagation sees stress × X_ID, the expectation not
    sim = simulator(c, list(v.cfg.get("sim_overrides") or []))
    brem = sim.det.brem
    ks = [float(k) for k in c.get("k_min", [0.1, 1.0])]
    k_prop = min(min(ks), float(brem.min_photon_e))
    res: dict = {"n": n, "k_min": ks, "points": [], "stress_x_scale": stress}

    mult, rows = C.multiplicity_rows(sim, c, n, seed, stress, ks, k_prop)
    res.update(mult)  # points, radiated_fraction
    res["spectrum"], r = C.spectrum_rows(c, n, seed)
    rows += r
    gun = C.gun_electrons(sim, c, n, seed, stress)
    res["dphi"], r = C.dphi_rows(gun, c, brem)
    rows += r
    res["showers"], r = C.budget_rows(gun, n, brem)
    rows += r
    res["conversions"], r = C.conversion_rows(sim, c, n, seed)
    rows += r
    v.rows.extend(rows)
    v.results["upstream_substructure"] = res
    v.note(SECTION, C.sample_note(n, k_prop, brem, stress))
    plot(v, res)
