"""Validation section: lateral widths R_η and w_η2 from the full simulated middle-layer window.

The stored supercluster keeps only 3 middle cells in η in the barrel, so E(3×7)/E(7×7) cannot be
measured from the stored cells (``shower_shapes.py`` finds R_η ≡ 1). This section simulates its own
samples with ``Simulator(cfg, keep_l2_window=True)``, which also returns the whole 9 η × 13 φ
middle-layer window of every selected cluster *before* the topo/supercluster selection (signal,
sampling fluctuations, noise and particle pile-up included; the option draws no random numbers and
leaves the normal output bit-identical, ``tests/validation/test_lateral.py``).

Definitions, following athena ``egammaMiddleShape`` [S: athena
``Reconstruction/egamma/egammaCaloTools/src/egammaMiddleShape.cxx``]:

* the hottest middle cell is searched in a 7 × 7 window around the cluster (here: the 7 × 7 centre
  of the simulated window, which is centred on the impact point);
* R_η = E(3×7) / E(7×7) (η × φ) around the hottest cell;
* w_η2 (raw) = √(Σ E η² / Σ E − (Σ E η / Σ E)²) over 3 × 5 cells around the hottest cell
  (``CaloLayerCalculator::etas``);
* w_η2 (corrected) = raw − P(u), the impact-point correction ``egammaqweta2c::Correct(eta, etacell,
  weta2)`` [S: athena ``Reconstruction/egamma/egammaUtils/Root/egammaqweta2c.cxx``], with
  eta = ``cluster.etaSample(EMB2)`` (here ``cluster_eta``, the energy-weighted middle-layer barycentre
  of the cluster's cells), etacell = ``cluster.etamax(EMB2)`` (the hottest cell's centre) and the
  relative position u = fmod(|eta − etacell − 0.025/2|, 0.025)/0.025 (0.5 at the cell centre). For
  |η| < 0.8, P(u) = 0.005375 − 0.0215 u + 0.0215 u² = 0.0215 (u − 0.5)² for 0.1 ≤ u < 0.9, with
  separate quadratics below 0.1 and above 0.9 (coefficients :data:`QWETA2C`, one set per |η| region).

Peaks (half-sample mode) and core widths (σ68) use the helpers of ``shower_shapes.py`` and are
compared with ``../shared/docs/physics_cells.md`` §2 (``shower_shapes.TARGETS``).

Spot statistics (:func:`spot_vs_sampling`): GFlash splits each shower into N_spot = (10.3/0.11)
E^0.959 equal-energy spots [S: Geant4 ``GFlashSamplingShowerParameterisation``], which gives a cell
holding E_cell a variance E_cell·E/N_spot (Poisson; multinomial: × (1 − E_cell/E)). The simulation
draws an independent Gamma per cell with variance a² E_cell (``readout.sampling_fluctuation``). The
section tabulates both for the mean cells around the hottest middle cell.

This module holds the estimators, the samples and :func:`run`; the rows, results and notes are made
in :mod:`~calo_calib.validation.lateral_checks`, the figure in :mod:`~calo_calib.validation.lateral_plots`.
"""

from __future__ import annotations

import numpy as np

SECTION = "Lateral widths from the full middle-layer window (E_T 20-50 GeV, |η| < 0.8)"
PARTICLES = ("electron", "photon_unconv", "photon_conv")
SRC_QWETA2C = "[S] athena egammaUtils/egammaqweta2c.cxx (Correct, RelPosition)"
SRC_NSPOT = "[S] Geant4 GFlashSamplingShowerParameterisation (physics_cells.md §3b)"
DETA2 = 0.025  # middle-cell eta size assumed by egammaqweta2c::RelPosition

# egammaqweta2c: per |eta| region, three quadratics P0 + P1 u + P2 u^2 for u < 0.1, 0.1 <= u < 0.9, u >= 0.9
# (regions C: one quadratic each for 1.8-2.0 and 2.0-2.5). [S] athena egammaqweta2c.cxx
QWETA2C = {
    "A": ((0.0045, -0.0016, -0.0866), (0.005375, -0.0215, 0.0215), (-0.0562, 0.114, -0.053)),  # |eta| < 0.8
    "B": ((0.0039, 0.00816, -0.145), (0.005075, -0.0203, 0.0203), (-0.0324, 0.0653, -0.0286)),  # 0.8-1.8
    "C": ((0.0047, -0.0184, 0.0180), (0.0035, -0.0139, 0.0137)),  # 1.8-2.0, 2.0-2.5
}
NSPOT_A, NSPOT_RES, NSPOT_POW = 10.3, 0.11, 0.959
EQUIV_TOL = 1.5  # variance ratio within [1/1.5, 1.5]: "equivalent" [E]
CELL_OFFSETS = ((0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (0, 2), (3, 0), (0, 3))  # (d_eta, d_phi) from the hot cell
WINDOW_KEYS = ("l2_window_e", "l2_window_eta", "l2_window_phi", "l2_window_valid", "l2_window_hot")
KEEP_KEYS = ("cluster_eta", "cluster_e", "cluster_e_l2", "truth_e", "truth_eta", "particle", "mu")


# ================================================================================================
# The estimators
# ================================================================================================


def rel_position(eta, etacell) -> np.ndarray:
    """Position of ``eta`` within the cell of centre ``etacell`` as egammaqweta2c::RelPosition: in [0, 1), 0.5 at the centre."""
    x = np.abs(np.asarray(eta, np.float64) - np.asarray(etacell, np.float64) - 0.5 * DETA2)
    return np.fmod(x, DETA2) / DETA2


def qweta2c_offset(eta, u) -> np.ndarray:
    """The amount egammaqweta2c::Correct subtracts from w_eta2, at cluster |eta| and relative position ``u``."""
    aeta = np.abs(np.asarray(eta, np.float64))
    u = np.asarray(u, np.float64)

    def poly(c):
        return c[0] + c[1] * u + c[2] * u * u

    def piecewise(cs):
        return np.where(u < 0.1, poly(cs[0]), np.where(u < 0.9, poly(cs[1]), poly(cs[2])))

    out = np.zeros(np.broadcast(aeta, u).shape)
    out = np.where(aeta < 0.8, piecewise(QWETA2C["A"]), out)
    out = np.where((aeta >= 0.8) & (aeta < 1.8), piecewise(QWETA2C["B"]), out)
    out = np.where((aeta >= 1.8) & (aeta < 2.0), poly(QWETA2C["C"][0]), out)
    out = np.where((aeta >= 2.0) & (aeta < 2.5), poly(QWETA2C["C"][1]), out)
    return out


def qweta2c_correct(eta, etacell, w_eta2) -> np.ndarray:
    """Impact-point-corrected w_eta2 (egammaqweta2c::Correct): raw minus :func:`qweta2c_offset`."""
    return np.asarray(w_eta2, np.float64) - qweta2c_offset(eta, rel_position(eta, etacell))


def hottest_cell(
    e: np.ndarray, valid: np.ndarray | None = None, search: tuple[int, int] = (7, 7)
) -> tuple[np.ndarray, np.ndarray]:
    """(i_eta, i_phi) of the hottest cell in the central ``search`` block of each (k, ne, nph) window."""
    k, ne, nph = e.shape
    si, sj = search
    i0, j0 = (ne - si) // 2, (nph - sj) // 2
    x = np.asarray(e, np.float64)
    if valid is not None:
        x = np.where(np.asarray(valid, bool)[:, :, None], x, -np.inf)
    sub = x[:, i0 : i0 + si, j0 : j0 + sj].reshape(k, -1)
    flat = sub.argmax(axis=1)
    return i0 + flat // sj, j0 + flat % sj


def block(e: np.ndarray, hi: np.ndarray, hj: np.ndarray, ni: int, nj: int) -> np.ndarray:
    """(k, ni, nj) cells centred on (hi, hj); cells outside the window count as 0."""
    k, ne, nph = e.shape
    di, dj = np.arange(ni) - ni // 2, np.arange(nj) - nj // 2
    ii, jj = hi[:, None] + di[None, :], hj[:, None] + dj[None, :]
    inside = ((ii >= 0) & (ii < ne))[:, :, None] & ((jj >= 0) & (jj < nph))[:, None, :]
    vals = e[np.arange(k)[:, None, None], np.clip(ii, 0, ne - 1)[:, :, None], np.clip(jj, 0, nph - 1)[:, None, :]]
    return np.where(inside, vals, 0.0)


def lateral_shapes(e, eta, cluster_eta, valid=None) -> dict[str, np.ndarray]:
    """R_eta, raw and corrected w_eta2 of (k, ne, nph) middle-layer windows.

    Args:
        e: (k, ne, nph) cell energies [GeV] (0 outside the detector); ``eta``: (k, ne) cell-centre eta
        (equal spacing along the axis; either direction); ``cluster_eta``: (k,) the cluster's
        middle-layer barycentre (egammaqweta2c's ``eta``); ``valid``: optional (k, ne) cells that exist.

    Returns (k,) arrays: ``r_eta``, ``w_eta2_raw``, ``w_eta2`` (corrected), ``rel_pos`` (u), ``eta_hot``,
    ``hot_i``, ``hot_j`` and ``full_7x7`` (the 7 × 7 block lies inside the window's valid cells).
    """
    e = np.asarray(e, np.float64)
    eta = np.asarray(eta, np.float64)
    k, ne, _ = e.shape
    hi, hj = hottest_cell(e, valid)
    rows = np.arange(k)
    e77 = block(e, hi, hj, 7, 7)
    e277 = e77.sum(axis=(1, 2))
    e237 = e77[:, 2:5, :].sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        r_eta = np.where(e277 > 0, e237 / np.where(e277 > 0, e277, 1.0), 0.0)
    # w_eta2 over 3 x 5, two passes (mean, then the spread about it), eta relative to the hot cell.
    deta = eta[:, 1] - eta[:, 0]
    eta_hot = eta[rows, hi]
    e35 = block(e, hi, hj, 3, 5).sum(axis=2)  # (k, 3) per eta row
    d = np.array([-1.0, 0.0, 1.0])[None, :] * deta[:, None]
    s0 = e35.sum(axis=1)
    pos = s0 > 0
    den = np.where(pos, s0, 1.0)
    mean = (e35 * d).sum(axis=1) / den
    var = (e35 * (d - mean[:, None]) ** 2).sum(axis=1) / den
    w_raw = np.where(pos, np.sqrt(np.maximum(var, 0.0)), 0.0)
    u = rel_position(cluster_eta, eta_hot)
    w_corr = np.where(pos, w_raw - qweta2c_offset(cluster_eta, u), 0.0)
    full = (hi >= 3) & (hi <= ne - 4)
    if valid is not None:
        v = np.asarray(valid, bool)
        ii = np.clip(hi[:, None] + np.arange(-3, 4)[None, :], 0, ne - 1)
        full &= v[rows[:, None], ii].all(axis=1)
    return {"r_eta": r_eta, "w_eta2_raw": w_raw, "w_eta2": w_corr, "rel_pos": u, "eta_hot": eta_hot,
            "hot_i": hi, "hot_j": hj, "full_7x7": full}  # fmt: skip


def n_spot(e) -> np.ndarray:
    """GFlash sampling-calorimeter spot count (10.3/0.11) E^0.959, E in GeV [S]."""
    return NSPOT_A / NSPOT_RES * np.power(np.asarray(e, np.float64), NSPOT_POW)


def spot_vs_sampling(e_shower, e_cell, a) -> dict[str, np.ndarray]:
    """Per-cell variances [GeV²]: the simulation's Gamma a²E_cell and GFlash spot statistics.

    ``spot_poisson`` = E_cell·E/N_spot (independent Poisson spot counts), ``spot_multinomial`` = that
    × (1 − E_cell/E) (the N_spot spots of a shower shared among the cells). Ratios are spot/simulation.
    """
    e_shower = np.asarray(e_shower, np.float64)
    e_cell = np.asarray(e_cell, np.float64)
    a = np.asarray(a, np.float64)
    sim = a * a * e_cell
    poisson = e_cell * e_shower / n_spot(e_shower)
    multi = poisson * (1.0 - e_cell / e_shower)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"sampling": sim, "spot_poisson": poisson, "spot_multinomial": multi,
                "ratio_poisson": poisson / sim, "ratio_multinomial": multi / sim}  # fmt: skip


# ================================================================================================
# Samples (generated here: the report's sample machinery does not carry the window arrays)
# ================================================================================================


def _section_cfg(cfg):
    c = cfg.get("lateral") if hasattr(cfg, "get") else None
    if c is None or not bool(c.get("enabled", True)):
        return None
    return c


def size(cfg) -> int:
    s = cfg.quick_sizes if cfg.quick else cfg
    return int(s.get("n_lateral", 3000)) if hasattr(s, "get") else 3000


def overrides(c, particle: str, extra=(), mu: float | None = None, abs_eta: tuple[float, float] | None = None) -> list[str]:
    """Simulation overrides of the section's samples (config block ``c``); ``mu`` and ``abs_eta`` = (lo, hi)
    replace the block's ⟨μ⟩ and its |η| range 0 … ``abs_eta_max``."""
    et_min, et_max = float(c.get("et_min", 20)), float(c.get("et_max", 50))
    lo, hi = abs_eta if abs_eta is not None else (0.0, float(c.get("abs_eta_max", 0.8)))
    mu = float(c.get("mu", 40)) if mu is None else float(mu)
    return [
        f"particle={particle}", "gun.spectrum=flat_et", f"gun.e_min={et_min:g}", f"gun.e_max={et_max:g}",
        f"gun.abs_eta_min={lo:g}", f"gun.abs_eta_max={hi:g}", f"mu={mu:g}", "pileup.mu_rel_sigma=0", *list(extra),
    ]  # fmt: skip


def simulate_windows(sim_cfg, n: int, seed: int, batch: int = 1000) -> dict[str, np.ndarray]:
    """About ``n`` selected clusters of ``sim_cfg`` with their middle-layer windows (``WINDOW_KEYS``, ``KEEP_KEYS``).

    Batches of ``batch`` particles with generators SeedSequence([seed, part]) until ``n`` clusters
    (the selection, e.g. converted photons, keeps a fraction of the particles).
    """
    from calo_calib.simulation.generator import Simulator

    sim = Simulator(sim_cfg, keep_l2_window=True)
    parts: dict[str, list] = {k: [] for k in WINDOW_KEYS + KEEP_KEYS}
    have, part = 0, 0
    while have < n and part < 1000:
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), part]))
        out = sim.batch(int(min(batch, max(4 * n, 100))), rng)
        part += 1
        if out is None:
            continue
        for k in parts:
            parts[k].append(out[k])
        have += out["cluster_e"].size
    data = {k: np.concatenate(v) for k, v in parts.items()}
    return {k: v[:n] for k, v in data.items()}


def samples(cfg) -> list:
    """No report samples: the section simulates its windows itself (:func:`simulate_windows`)."""
    return []


# ================================================================================================
# The section (rows and results: lateral_checks; figure: lateral_plots)
# ================================================================================================


def run(v) -> None:
    """Add the section's rows, notes, results and figure to the report ``v``.

    Rows come out in README order and every random draw (simulation seeds, bootstrap on ``v.rng``)
    in the order of the particles, then the variables (:func:`~calo_calib.validation.lateral_checks.particle_section`).
    """
    # the checks and plots import this module's estimators, hence imported here
    from calo_calib.simulation import compose_config
    from calo_calib.validation.lateral_checks import particle_section, sample_note, spot_section, width_condition_row
    from calo_calib.validation.lateral_plots import plot
    from calo_calib.validation.shower_shapes import core_width

    c = _section_cfg(v.cfg)
    if c is None:
        return
    n = size(v.cfg)
    nboot = max(2, min(int(v.nboot), int(c.get("bootstrap", 100))))
    extra = list(v.cfg.get("sim_overrides") or [])
    res: dict = {}
    per: dict = {}
    det = None
    for k, particle in enumerate(c.get("particles", PARTICLES)):
        sim_cfg = compose_config(overrides(c, str(particle), extra))
        det = sim_cfg.detector
        d = simulate_windows(sim_cfg, n, int(v.cfg.seed) + 7000 + k, int(c.get("batch", 1000)))
        sh = lateral_shapes(d["l2_window_e"], d["l2_window_eta"], d["cluster_eta"], d["l2_window_valid"])
        per[particle] = (d, sh)
        res[particle], rows = particle_section(particle, sh, nboot, v.rng)
        v.rows.extend(rows)
    if not per:
        return
    # Spot statistics against the per-cell Gamma (electrons, else the first particle).
    pe = "electron" if "electron" in per else next(iter(per))
    res["spot_vs_sampling"], row, note = spot_section(pe, per[pe][0], per[pe][1], det)
    v.rows.append(row)
    v.note(SECTION, note)
    # The R_eta core width without pile-up and without electronic noise: the [E] target is intrinsic
    wc = c.get("width_conditions", {})
    res["width_conditions"] = {}
    for k, particle in enumerate(p for p in wc.get("particles", []) if p in per):
        widths = {"mu": float(core_width(per[particle][1]["r_eta"]))}
        for j, (key, more) in enumerate((("mu0", []), ("mu0_no_noise", ["+detector.readout.elec_noise_scale=0"]))):
            cfg0 = compose_config(overrides(c, str(particle), extra + more, mu=0.0))
            d0 = simulate_windows(cfg0, n, int(v.cfg.seed) + 7100 + 10 * k + j, int(c.get("batch", 1000)))
            sh0 = lateral_shapes(d0["l2_window_e"], d0["l2_window_eta"], d0["cluster_eta"], d0["l2_window_valid"])
            widths[key] = float(core_width(sh0["r_eta"]))
        d, sh = per[particle]
        e77 = block(d["l2_window_e"], sh["hot_i"], sh["hot_j"], 7, 7).sum(axis=(1, 2))
        res["width_conditions"][particle] = widths
        v.rows.append(width_condition_row(str(particle), widths, float(np.median(e77)), float(c.get("mu", 40))))
    v.results["lateral"] = res
    v.note(SECTION, sample_note(n, c))
    plot(v, per, res, c)
