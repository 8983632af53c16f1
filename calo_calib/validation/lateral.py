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
"""

from __future__ import annotations

import numpy as np

from calo_calib.validation.shower_shapes import bootstrap, core_width, half_sample_mode, in_band, target

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


def _block(e: np.ndarray, hi: np.ndarray, hj: np.ndarray, ni: int, nj: int) -> np.ndarray:
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
    e77 = _block(e, hi, hj, 7, 7)
    e277 = e77.sum(axis=(1, 2))
    e237 = e77[:, 2:5, :].sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        r_eta = np.where(e277 > 0, e237 / np.where(e277 > 0, e277, 1.0), 0.0)
    # w_eta2 over 3 x 5, two passes (mean, then the spread about it), eta relative to the hot cell.
    deta = eta[:, 1] - eta[:, 0]
    eta_hot = eta[rows, hi]
    e35 = _block(e, hi, hj, 3, 5).sum(axis=2)  # (k, 3) per eta row
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


def overrides(c, particle: str, extra=()) -> list[str]:
    et_min, et_max = float(c.get("et_min", 20)), float(c.get("et_max", 50))
    return [
        f"particle={particle}", "gun.spectrum=flat_et", f"gun.e_min={et_min:g}", f"gun.e_max={et_max:g}",
        "gun.abs_eta_min=0", f"gun.abs_eta_max={float(c.get('abs_eta_max', 0.8)):g}",
        f"mu={float(c.get('mu', 40)):g}", "pileup.mu_rel_sigma=0", *list(extra),
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
# The section
# ================================================================================================


def cell_table(d: dict, shapes: dict, det) -> list[dict]:
    """Mean cells around the hottest middle cell (offsets :data:`CELL_OFFSETS`) and their per-cell variances."""
    from calo_calib.simulation.readout import sampling_term

    e77 = _block(np.asarray(d["l2_window_e"], np.float64), shapes["hot_i"], shapes["hot_j"], 7, 7)
    e_sh = np.asarray(d["truth_e"], np.float64)
    ae = np.abs(np.asarray(d["truth_eta"], np.float64))
    a = sampling_term(ae, ae >= 1.45, det)
    e_med, a_med = float(np.median(e_sh)), float(np.median(a))
    rows = []
    for di, dj in CELL_OFFSETS:
        f = float(np.mean(e77[:, 3 + di, 3 + dj] / e_sh))
        r = spot_vs_sampling(e_med, f * e_med, a_med)
        rows.append({"offset": (di, dj), "frac": f, "e_cell": f * e_med, "e_shower": e_med, "a": a_med,
                     **{k: float(x) for k, x in r.items()}})  # fmt: skip
    return rows


def run(v) -> None:
    """Add the section's rows, notes, results and figure to the report ``v``."""
    # Long (> 80 lines) on purpose for now: one linear script whose rows must come out in README order
    # and whose random draws (simulation, bootstrap) follow one generator; a split must re-check that
    # the quick validation output stays byte-identical (issue 17).
    from calo_calib.simulation import compose_config
    from calo_calib.validation.common import DEV, INFO, OK

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
        pr: dict = {"n": int(sh["r_eta"].size), "full_7x7_frac": float(np.mean(sh["full_7x7"])), "variables": {}}
        for name, key, label in (
            ("r_eta", "r_eta", "R_η"),
            ("w_eta2", "w_eta2_raw", "w_η2 raw"),
            ("w_eta2", "w_eta2", "w_η2 corrected"),
        ):
            t = target(name)
            x = sh[key]
            peak, err = half_sample_mode(x), bootstrap(half_sample_mode, x, nboot, v.rng)
            w, werr = core_width(x), bootstrap(core_width, x, nboot, v.rng)
            band, wband = t.band(particle), t.width_band()
            ok, okw = in_band(peak, err, band), in_band(w, werr, wband)
            corrected = key != "w_eta2_raw"
            pr["variables"][key] = {"peak": peak, "peak_err": err, "core_width": w, "core_width_err": werr,
                                    "median": float(np.median(x)), "band": list(band), "width_band": list(wband),
                                    "verdict": (OK if ok else DEV) if corrected else INFO,
                                    "width_verdict": (OK if okw else DEV) if corrected else INFO}  # fmt: skip
            fmt = "{:.4f}" if name == "r_eta" else "{:.5f}"
            src = "[R] physics_cells.md §2; tol. [E]" + ("" if name == "r_eta" else f"; correction {SRC_QWETA2C}")
            comment = f"median {fmt.format(np.median(x))}"
            if name == "r_eta":
                comment += f"; 7×7 fully inside the simulated window for {100 * pr['full_7x7_frac']:.1f}% (else the missing cells count 0)"
            if not corrected:
                comment += "; without the impact-point correction (compare with the stored-cell w_η2 of the shower-shape section)"
            v.row(SECTION, f"{label} peak, {particle}", f"{fmt.format(peak)} ± {fmt.format(err)}",
                  f"{t.peak_text} ({t.tol_text}) → {fmt.format(band[0])}–{fmt.format(band[1])}", src,
                  pr["variables"][key]["verdict"], comment)  # fmt: skip
            v.row(SECTION, f"{label} core width (σ68), {particle}", f"{fmt.format(w)} ± {fmt.format(werr)}",
                  f"{fmt.format(t.width[0])}–{fmt.format(t.width[1])} (±{100 * t.width_tol_rel:.0f}%) → "
                  f"{fmt.format(wband[0])}–{fmt.format(wband[1])}", t.width_source,
                  pr["variables"][key]["width_verdict"], "half the shortest interval holding 68% of the clusters")  # fmt: skip
        # Raw w_eta2 of showers hitting the cell centre (|u - 0.5| < 0.1), where the correction is ~0:
        # separates the shower width itself from the shape of the correction.
        cen = np.abs(sh["rel_pos"] - 0.5) < 0.1
        xc = sh["w_eta2_raw"][cen]
        pc, pce = half_sample_mode(xc), bootstrap(half_sample_mode, xc, nboot, v.rng)
        wc = core_width(xc)
        pr["w_eta2_raw_centre"] = {"peak": pc, "peak_err": pce, "core_width": wc, "n": int(cen.sum())}
        v.row(SECTION, f"w_η2 raw, impact at the cell centre (|u − 0.5| < 0.1), {particle}", f"{pc:.5f} ± {pce:.5f}",
              f"{t.peak_text}", "[R] physics_cells.md §2", INFO,
              f"σ68 {wc:.5f} on {int(cen.sum())} clusters; egammaqweta2c subtracts ≤ {0.0215 * 0.01:.1e} here, so this is the shower width itself")  # fmt: skip
        res[particle] = pr
    if not per:
        return
    # Spot statistics against the per-cell Gamma (electrons, else the first particle).
    pe = "electron" if "electron" in per else next(iter(per))
    table = cell_table(per[pe][0], per[pe][1], det)
    lines = ["| cell (Δη, Δφ) from the hottest | ⟨E_cell/E⟩ | E_cell [GeV] | σ_sim = a√E_cell [MeV] | "
             "σ_spot Poisson [MeV] | σ_spot multinomial [MeV] | var ratio spot/sim (Poisson, multinomial) |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in table:
        lines.append(f"| {r['offset']} | {r['frac']:.4f} | {r['e_cell']:.3f} | {1000 * np.sqrt(r['sampling']):.1f} | "
                     f"{1000 * np.sqrt(r['spot_poisson']):.1f} | {1000 * np.sqrt(r['spot_multinomial']):.1f} | "
                     f"{r['ratio_poisson']:.2f}, {r['ratio_multinomial']:.2f} |")  # fmt: skip
    e_med, a_med = table[0]["e_shower"], table[0]["a"]
    ratios = np.array([r["ratio_multinomial"] for r in table] + [r["ratio_poisson"] for r in table])
    equiv = bool(np.all((ratios > 1 / EQUIV_TOL) & (ratios < EQUIV_TOL)))
    v.row(SECTION, f"per-cell variance, GFlash spots / simulation Gamma ({pe}, E = {e_med:.0f} GeV, a = {a_med:.3f} √GeV)",
          f"{ratios.min():.2f}–{ratios.max():.2f}", f"1 (equivalent within ×{EQUIV_TOL:g} [E])",
          f"{SRC_NSPOT}; readout.sampling_fluctuation", OK if equiv else DEV,
          f"N_spot = {float(n_spot(e_med)):.0f}, E/N_spot = {1000 * e_med / float(n_spot(e_med)):.1f} MeV vs a² = "
          f"{1000 * a_med**2:.1f} MeV; Poisson ratio (E/N_spot)/a² is the same for every cell, the multinomial "
          "one is lower by (1 − E_cell/E) (hot cell)")  # fmt: skip
    v.note(SECTION, "Per-cell sampling variance, the simulation's independent Gamma (a²E_cell) against GFlash "
           "equal-energy spot statistics (E_cell·E/N_spot, N_spot = (10.3/0.11) E^0.959), for the mean middle "
           f"cells of the {pe} sample around the hottest cell at the sample's median E:\n\n" + "\n".join(lines))  # fmt: skip
    res["spot_vs_sampling"] = {"particle": pe, "cells": [{**r, "offset": list(r["offset"])} for r in table],
                               "equivalent": equiv}  # fmt: skip
    v.results["lateral"] = res
    v.note(SECTION, f"Samples simulated by this section with Simulator(keep_l2_window=True): {n} clusters per particle, "
           f"E_T flat in [{float(c.get('et_min', 20)):g}, {float(c.get('et_max', 50)):g}] GeV, |η| < "
           f"{float(c.get('abs_eta_max', 0.8)):g}, ⟨μ⟩ = {float(c.get('mu', 40)):g} (fixed), particle pile-up and noise "
           "included. R_η and w_η2 are measured on the whole 9×13 middle window before the cluster selection, "
           "around the hottest cell of its central 7×7; w_η2 corrected with egammaqweta2c::Correct (eta = "
           "cluster_eta, etacell = hottest-cell centre). Peak = half-sample mode, width = σ68, OK if inside the "
           "target band within 2σ (bootstrap).")  # fmt: skip
    _plot(v, per, res, c)


def _plot(v, per, res, c) -> None:
    from calo_calib.validation.common import PAL

    plt = v.plt
    fig, axes = plt.subplots(1, 3, figsize=(25, 7.5))
    fig.subplots_adjust(wspace=0.3, top=0.86, bottom=0.13)
    a1, a2, a3 = axes
    for k, (particle, (_, sh)) in enumerate(per.items()):
        col = PAL[k % len(PAL)]
        x = sh["r_eta"]
        wts = np.full(x.size, 1.0 / max(x.size, 1))
        a1.hist(np.clip(x, 0.85, 1.01), bins=64, range=(0.85, 1.01), histtype="step", lw=2, color=col, weights=wts,
                label=f"{particle}: peak {res[particle]['variables']['r_eta']['peak']:.4f}")  # fmt: skip
        b = target("r_eta").band(particle)
        a1.axvspan(b[0], b[1], color=col, alpha=0.15)
        for key, ls in (("w_eta2_raw", "--"), ("w_eta2", "-")):
            y = 1000 * sh[key]
            a2.hist(np.clip(y, 5, 16), bins=55, range=(5, 16), histtype="step", lw=2, ls=ls, color=col, weights=wts,
                    label=f"{particle} {'raw' if key == 'w_eta2_raw' else 'corrected'}: peak "
                    f"{1000 * res[particle]['variables'][key]['peak']:.2f}")  # fmt: skip
        # Raw w_eta2 versus the relative position in the cell (median per bin).
        u, wr = sh["rel_pos"], 1000 * sh["w_eta2_raw"]
        edges = np.linspace(0, 1, 21)
        idx = np.clip(np.digitize(u, edges) - 1, 0, 19)
        wc = 1000 * sh["w_eta2"]
        med = np.array([np.median(wr[idx == i]) if np.any(idx == i) else np.nan for i in range(20)])
        medc = np.array([np.median(wc[idx == i]) if np.any(idx == i) else np.nan for i in range(20)])
        uc = 0.5 * (edges[1:] + edges[:-1])
        a3.plot(uc, med, "o", color=col, label=f"{particle}: median raw")
        a3.plot(uc, medc, "s", color=col, mfc="none", label=f"{particle}: median corrected")
        res[particle]["profile_u"] = {
            "u": uc.tolist(),
            "raw_median": (med / 1000).tolist(),
            "corrected_median": (medc / 1000).tolist(),
        }
    b = target("w_eta2").band("electron")
    a2.axvspan(1000 * b[0], 1000 * b[1], color="green", alpha=0.15, label="target peak band")
    uu = np.linspace(0, 0.999, 400)
    first = next(iter(per.values()))[1]
    base = 1000 * float(np.nanmedian(first["w_eta2_raw"][np.abs(first["rel_pos"] - 0.5) < 0.05]))
    a3.plot(
        uu, base + 1000 * qweta2c_offset(0.4, uu), "k-", lw=1.5, label="median(u≈0.5) + egammaqweta2c P(u), |η|<0.8"
    )
    a1.set_xlabel(r"$R_\eta$ = E(3×7)/E(7×7), full middle window", fontsize=17)
    a1.set_ylabel("Fraction of clusters / bin")
    a1.legend(fontsize=10, loc="upper left", title="shaded: target peak ± tol.", title_fontsize=10)
    a1.set_ylim(0, a1.get_ylim()[1] * 1.3)
    a1.set_xlim(0.85, 1.01)
    a2.set_xlabel(r"$w_{\eta 2}$ (3×5) [$10^{-3}$ η units]", fontsize=17)
    a2.set_ylabel("Fraction of clusters / bin")
    a2.legend(fontsize=9, loc="upper right")
    a2.set_ylim(0, a2.get_ylim()[1] * 1.45)
    a3.set_xlabel("u: position of the cluster η in the hottest cell", fontsize=17)
    a3.set_ylabel(r"median $w_{\eta 2}$ per u bin [$10^{-3}$ η units]")
    a3.legend(fontsize=8, loc="upper center", ncol=2)
    a3.set_ylim(a3.get_ylim()[0], a3.get_ylim()[1] * 1.25)
    v.label(a1, "lateral widths")
    fig.suptitle(rf"R_η and w_η2 from the full 9×13 middle window: $E_T$ {float(c.get('et_min', 20)):g}-"
                 rf"{float(c.get('et_max', 50)):g} GeV, $|\eta|$ < {float(c.get('abs_eta_max', 0.8)):g}, "
                 rf"$\langle\mu\rangle$ = {float(c.get('mu', 40)):g}; targets physics_cells.md §2", fontsize=15, y=0.96)  # fmt: skip
    v.fig(SECTION, "lateral_widths.png", fig)
