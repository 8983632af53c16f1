"""The lateral-widths section's checks: rows, results and notes (:mod:`calo_calib.validation.lateral`).

:func:`particle_section`: per particle the peak and core width of R_η, raw and corrected w_η2 against
``shower_shapes.TARGETS`` and the raw w_η2 at the cell centre; :func:`spot_section`: the per-cell
variance of GFlash spot statistics against the simulation's Gamma (:func:`cell_table`);
:func:`sample_note`: what the section simulated. The functions take the window shapes
(:func:`~calo_calib.validation.lateral.lateral_shapes`) and return rows, so they can be tested on
hand-made arrays; :func:`~calo_calib.validation.lateral.run` adds them to the report.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from calo_calib.validation.common import DEV, INFO, OK, Row
from calo_calib.validation.lateral import (
    CELL_OFFSETS,
    EQUIV_TOL,
    SECTION,
    SRC_NSPOT,
    SRC_QWETA2C,
    block,
    n_spot,
    spot_vs_sampling,
)
from calo_calib.validation.shower_shapes import bootstrap, core_width, half_sample_mode, in_band, target

VARIABLES = (("r_eta", "r_eta", "R_η"), ("w_eta2", "w_eta2_raw", "w_η2 raw"), ("w_eta2", "w_eta2", "w_η2 corrected"))
"""(target name, key of :func:`~calo_calib.validation.lateral.lateral_shapes`, label), in row order."""


def variable_rows(
    particle: str, name: str, key: str, label: str, x: np.ndarray, full_frac: float, nboot: int,
    rng: np.random.Generator,
) -> tuple[dict, list[Row]]:  # fmt: skip
    """Peak and core-width rows of one variable ``x`` (shape ``key``) against target ``name``.

    Two bootstraps on ``rng`` (peak, then width). Only the corrected variables get a verdict (the raw
    w_η2 is INFO). ``full_frac``: fraction of clusters with the whole 7×7 inside the window (R_η comment).
    """
    t = target(name)
    peak, err = half_sample_mode(x), bootstrap(half_sample_mode, x, nboot, rng)
    w, werr = core_width(x), bootstrap(core_width, x, nboot, rng)
    band, wband = t.band(particle), t.width_band()
    ok, okw = in_band(peak, err, band), in_band(w, werr, wband)
    corrected = key != "w_eta2_raw"
    res = {"peak": peak, "peak_err": err, "core_width": w, "core_width_err": werr,
           "median": float(np.median(x)), "band": list(band), "width_band": list(wband),
           "verdict": (OK if ok else DEV) if corrected else INFO,
           "width_verdict": (OK if okw else DEV) if corrected else INFO}  # fmt: skip
    fmt = "{:.4f}" if name == "r_eta" else "{:.5f}"
    src = "[R] physics_cells.md §2; tol. [E]" + ("" if name == "r_eta" else f"; correction {SRC_QWETA2C}")
    comment = f"median {fmt.format(np.median(x))}"
    if name == "r_eta":
        comment += f"; 7×7 fully inside the simulated window for {100 * full_frac:.1f}% (else the missing cells count 0)"
    if not corrected:
        comment += "; without the impact-point correction (compare with the stored-cell w_η2 of the shower-shape section)"
    rows = [
        Row(SECTION, f"{label} peak, {particle}", f"{fmt.format(peak)} ± {fmt.format(err)}",
            f"{t.peak_text} ({t.tol_text}) → {fmt.format(band[0])}–{fmt.format(band[1])}", src,
            res["verdict"], comment),
        Row(SECTION, f"{label} core width (σ68), {particle}", f"{fmt.format(w)} ± {fmt.format(werr)}",
            f"{fmt.format(t.width[0])}–{fmt.format(t.width[1])} (±{100 * t.width_tol_rel:.0f}%) → "
            f"{fmt.format(wband[0])}–{fmt.format(wband[1])}", t.width_source,
            res["width_verdict"], "half the shortest interval holding 68% of the clusters"),
    ]  # fmt: skip
    return res, rows


def centre_row(particle: str, sh: Mapping[str, np.ndarray], nboot: int, rng: np.random.Generator) -> tuple[dict, Row]:
    """Raw w_η2 of showers hitting the cell centre (|u − 0.5| < 0.1), where the correction is ~0.

    Separates the shower width itself from the shape of the correction; one bootstrap on ``rng``.
    """
    cen = np.abs(sh["rel_pos"] - 0.5) < 0.1
    xc = sh["w_eta2_raw"][cen]
    pc, pce = half_sample_mode(xc), bootstrap(half_sample_mode, xc, nboot, rng)
    wc = core_width(xc)
    res = {"peak": pc, "peak_err": pce, "core_width": wc, "n": int(cen.sum())}
    row = Row(SECTION, f"w_η2 raw, impact at the cell centre (|u − 0.5| < 0.1), {particle}", f"{pc:.5f} ± {pce:.5f}",
              f"{target('w_eta2').peak_text}", "[R] physics_cells.md §2", INFO,
              f"σ68 {wc:.5f} on {int(cen.sum())} clusters; egammaqweta2c subtracts ≤ {0.0215 * 0.01:.1e} here, so this is the shower width itself")  # fmt: skip
    return res, row


def u_profile(sh: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u bin centres, median raw, median corrected w_η2 [10⁻³]) in 20 bins of the relative position u."""
    u, wr = sh["rel_pos"], 1000 * sh["w_eta2_raw"]
    edges = np.linspace(0, 1, 21)
    idx = np.clip(np.digitize(u, edges) - 1, 0, 19)
    wc = 1000 * sh["w_eta2"]
    med = np.array([np.median(wr[idx == i]) if np.any(idx == i) else np.nan for i in range(20)])
    medc = np.array([np.median(wc[idx == i]) if np.any(idx == i) else np.nan for i in range(20)])
    uc = 0.5 * (edges[1:] + edges[:-1])
    return uc, med, medc


def particle_section(
    particle: str, sh: Mapping[str, np.ndarray], nboot: int, rng: np.random.Generator
) -> tuple[dict, list[Row]]:
    """Results and rows of one particle's window shapes: :data:`VARIABLES`, then the cell-centre row.

    Bootstraps on ``rng`` in row order (the report's random stream). The result also holds the
    median raw and corrected w_η2 per u bin (``profile_u``, :func:`u_profile`).
    """
    pr: dict = {"n": int(sh["r_eta"].size), "full_7x7_frac": float(np.mean(sh["full_7x7"])), "variables": {}}
    rows: list[Row] = []
    for name, key, label in VARIABLES:
        pr["variables"][key], r = variable_rows(particle, name, key, label, sh[key], pr["full_7x7_frac"], nboot, rng)
        rows += r
    pr["w_eta2_raw_centre"], row = centre_row(particle, sh, nboot, rng)
    rows.append(row)
    uc, med, medc = u_profile(sh)
    pr["profile_u"] = {"u": uc.tolist(), "raw_median": (med / 1000).tolist(), "corrected_median": (medc / 1000).tolist()}
    return pr, rows


def cell_table(d: dict, shapes: dict, det) -> list[dict]:
    """Mean cells around the hottest middle cell (offsets :data:`CELL_OFFSETS`) and their per-cell variances."""
    from calo_calib.simulation.readout import sampling_term

    e77 = block(np.asarray(d["l2_window_e"], np.float64), shapes["hot_i"], shapes["hot_j"], 7, 7)
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


def spot_rows(pe: str, table: list[dict]) -> tuple[dict, Row, str]:
    """(result, row, note) of the spot-statistics comparison of :func:`cell_table` rows (particle ``pe``)."""
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
    row = Row(SECTION, f"per-cell variance, GFlash spots / simulation Gamma ({pe}, E = {e_med:.0f} GeV, a = {a_med:.3f} √GeV)",
              f"{ratios.min():.2f}–{ratios.max():.2f}", f"1 (equivalent within ×{EQUIV_TOL:g} [E])",
              f"{SRC_NSPOT}; readout.sampling_fluctuation", OK if equiv else DEV,
              f"N_spot = {float(n_spot(e_med)):.0f}, E/N_spot = {1000 * e_med / float(n_spot(e_med)):.1f} MeV vs a² = "
              f"{1000 * a_med**2:.1f} MeV; Poisson ratio (E/N_spot)/a² is the same for every cell, the multinomial "
              "one is lower by (1 − E_cell/E) (hot cell)")  # fmt: skip
    note = ("Per-cell sampling variance, the simulation's independent Gamma (a²E_cell) against GFlash "
            "equal-energy spot statistics (E_cell·E/N_spot, N_spot = (10.3/0.11) E^0.959), for the mean middle "
            f"cells of the {pe} sample around the hottest cell at the sample's median E:\n\n" + "\n".join(lines))  # fmt: skip
    res = {"particle": pe, "cells": [{**r, "offset": list(r["offset"])} for r in table], "equivalent": equiv}
    return res, row, note


def spot_section(pe: str, d: dict, shapes: dict, det) -> tuple[dict, Row, str]:
    """:func:`spot_rows` of the mean cells of sample ``d`` (window shapes ``shapes``, detector ``det``)."""
    return spot_rows(pe, cell_table(d, shapes, det))


def sample_note(n: int, c) -> str:
    """The note describing the section's own samples (section config ``c``, ``n`` clusters per particle)."""
    return (f"Samples simulated by this section with Simulator(keep_l2_window=True): {n} clusters per particle, "
            f"E_T flat in [{float(c.get('et_min', 20)):g}, {float(c.get('et_max', 50)):g}] GeV, |η| < "
            f"{float(c.get('abs_eta_max', 0.8)):g}, ⟨μ⟩ = {float(c.get('mu', 40)):g} (fixed), particle pile-up and noise "
            "included. R_η and w_η2 are measured on the whole 9×13 middle window before the cluster selection, "
            "around the hottest cell of its central 7×7; w_η2 corrected with egammaqweta2c::Correct (eta = "
            "cluster_eta, etacell = hottest-cell centre). Peak = half-sample mode, width = σ68, OK if inside the "
            "target band within 2σ (bootstrap).")  # fmt: skip


def width_condition_row(particle: str, widths: Mapping[str, float], e77_median: float, mu: float) -> Row:
    """The R_η core width (σ68) of one particle at the section's ⟨μ⟩, at ⟨μ⟩ = 0 and at ⟨μ⟩ = 0 without
    electronic noise (``widths``: keys ``mu``, ``mu0``, ``mu0_no_noise``), against the intrinsic [E] width.

    The quadrature difference between ⟨μ⟩ and 0 is the pile-up term of physics_cells.md §2,
    √28 σ_cell / E(7×7), shown for σ_cell = 50 MeV at the sample's median E(7×7) (``e77_median`` [GeV]).
    """
    pu = float(np.sqrt(max(widths["mu"] ** 2 - widths["mu0"] ** 2, 0.0)))
    formula = float(np.sqrt(28.0) * 0.050 / e77_median) if e77_median > 0 else float("nan")
    return Row(
        SECTION,
        f"R_η core width (σ68) vs noise, {particle}: ⟨μ⟩ = {mu:g} / 0 / 0 without electronic noise",
        f"{widths['mu']:.4f} / {widths['mu0']:.4f} / {widths['mu0_no_noise']:.4f}",
        "0.005–0.01 (intrinsic, [E])", "[E] physics_cells.md §2 (core widths; pile-up term)", INFO,
        f"pile-up term √(σ68(⟨μ⟩)² − σ68(0)²) = {pu:.4f}; physics_cells.md §2: √28 σ_cell / E(7×7) = {formula:.4f} "
        f"at σ_cell = 50 MeV and the median E(7×7) = {e77_median:.1f} GeV (more if the pile-up is correlated "
        "across cells, as particle pile-up is)",
    )  # fmt: skip
