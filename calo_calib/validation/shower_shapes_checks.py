"""The two shower-shape sections' checks: rows, results and notes (:mod:`calo_calib.validation.shower_shapes`).

:func:`target_section`: per particle at ⟨μ⟩ = ``mu_target``, the peak and core width of every
:data:`~calo_calib.validation.shower_shapes.TARGETS` variable against its band, the R_φ and ΔE tails and
the tight-photon efficiency of the shower-shape cuts. :func:`mu_section`: the mean shift and the core
width of R_η, w_η2 and ΔE from the lowest to the highest ⟨μ⟩. The pure functions
(:func:`particle_rows`, :func:`tail_rows`, :func:`tight_row`, :func:`mu_point`, :func:`mu_rows`) work on
shape arrays and return rows, so they can be tested on hand-made values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from calo_calib.validation.common import DEV, INFO, OK, Row
from calo_calib.validation.shower_shapes import (
    L2_NOISE_KEY,
    MU_SHIFT_TOL,
    MU_VARIABLES,
    MU_WIDTH_TOL,
    N_CELLS_RETA,
    PARTICLES,
    SECTION,
    SECTION_MU,
    SRC_CUT,
    SRC_EFF,
    SRC_MU,
    SRC_PEAK,
    TARGETS,
    TIGHT_EFF,
    ShapeTarget,
    bootstrap,
    core_width,
    half_sample_mode,
    in_band,
    mus,
    sample_key,
    shapes_of,
    target,
    tight_pass,
)


def _fmt(x: float, t: ShapeTarget | None = None) -> str:
    if not np.isfinite(x):
        return "n/a"
    if t is not None and t.scale != 1.0:
        return f"{x * t.scale:.3g} {t.unit}"
    return f"{x:.4g}"


def _band_text(t: ShapeTarget, band: tuple[float, float]) -> str:
    return f"{_fmt(band[0], t)} – {_fmt(band[1], t)}"


def _comment(t: ShapeTarget, x: np.ndarray, w: float) -> str:
    comment = f"median {_fmt(float(np.median(x)), t)}, core width {_fmt(w, t)}"
    f0 = float(np.mean(x == 0.0))
    if f0 >= 0.01:
        comment += f"; {100 * f0:.1f}% of the clusters exactly 0 (ratio/sum guards, e.g. no strip above 0)"
    if t.name == "r_eta" and np.mean(x == 1.0) > 0.5:
        comment += f"; {t.note}"
    elif t.note and t.name != "r_eta":
        comment += f"; {t.note}"
    return comment


def particle_rows(particle: str, sh: Mapping[str, np.ndarray], nboot: int,
                  rng: np.random.Generator) -> tuple[dict, list[Row]]:  # fmt: skip
    """Peak and core-width rows of every target variable for one particle's shapes ``sh`` (name -> (N,)).

    Returns ({name: peak, errors, median, mean, core width, band, verdict}, rows). Bootstrap order per
    variable: peak, then core width (``nboot`` replicas each from ``rng``).
    """
    variables: dict = {}
    out = []
    for t in TARGETS:
        x = sh[t.name]
        peak = half_sample_mode(x)
        err = bootstrap(half_sample_mode, x, nboot, rng)
        w, werr = core_width(x), bootstrap(core_width, x, nboot, rng)
        band = t.band(particle)
        ok = in_band(peak, err, band)
        variables[t.name] = {
            "peak": peak, "peak_err": err, "median": float(np.median(x)), "mean": float(np.mean(x)),
            "core_width": w, "core_width_err": werr, "band": list(band), "verdict": OK if ok else DEV,
        }  # fmt: skip
        out.append(Row(SECTION, f"{t.name} peak, {particle}", f"{_fmt(peak, t)} ± {_fmt(err, t)}",
                       f"{t.peak_text} ({t.tol_text}) → {_band_text(t, band)}", SRC_PEAK, OK if ok else DEV,
                       _comment(t, x, w)))  # fmt: skip
        wb = t.width_band()
        if wb is not None:
            okw = in_band(w, werr, wb)
            out.append(Row(
                SECTION,
                f"{t.name} core width (σ68), {particle}",
                f"{_fmt(w, t)} ± {_fmt(werr, t)}",
                f"{_fmt(t.width[0], t)}–{_fmt(t.width[1], t)} (±{100 * t.width_tol_rel:.0f}%) → {_band_text(t, wb)}",
                t.width_source,
                OK if okw else DEV,
                "half the shortest interval holding 68% of the clusters",
            ))  # fmt: skip
    return variables, out


def tail_rows(particle: str, sh: Mapping[str, np.ndarray]) -> tuple[dict, list[Row]]:
    """INFO rows of the R_φ fraction below 0.9 and (photons) the ΔE fraction above the tight cut."""
    res: dict = {}
    f09 = float(np.mean(sh["r_phi"] < 0.9))
    res["r_phi_frac_below_0p9"] = f09
    out = [Row(SECTION, f"r_phi fraction < 0.9, {particle}", f"{100 * f09:.1f}%", "no number (tol. ±30%)",
               "physics_cells.md §2", INFO, "the tail the table's tolerance refers to")]  # fmt: skip
    if particle in target("delta_e").cuts:
        _, a, b = target("delta_e").cuts[particle]
        tail = float(np.mean(sh["delta_e"] > max(a, b)))
        res["delta_e_tail_frac"] = tail
        out.append(Row(SECTION, f"delta_e fraction > {1000 * max(a, b):.0f} MeV (tight cut), {particle}",
                       f"{100 * tail:.1f}%", "no number (tail ±30%)", "physics_cells.md §2", INFO,
                       "clusters failing even the loosest tight-menu ΔE cut"))  # fmt: skip
    return res, out


def tight_row(particle: str, sh: Mapping[str, np.ndarray], n: int) -> tuple[dict, Row]:
    """Tight-photon efficiency of the shower-shape cuts at their strictest and loosest thresholds: OK if
    the range overlaps :data:`~calo_calib.validation.shower_shapes.TIGHT_EFF` within 2σ (binomial, ``n`` clusters)."""
    e_lo, e_hi = float(np.mean(tight_pass(sh, particle, "tight"))), float(np.mean(tight_pass(sh, particle, "loose")))
    err = math.sqrt(max(e_hi * (1 - e_hi), 1e-12) / max(n, 1))
    ok = e_hi + 2 * err >= TIGHT_EFF[0] and e_lo - 2 * err <= TIGHT_EFF[1]
    per_cut = {}
    for t in TARGETS:
        if particle in t.cuts:
            per_cut[t.name] = float(np.mean(tight_pass({t.name: sh[t.name]}, particle, "loose")))
    worst = sorted(per_cut.items(), key=lambda kv: kv[1])[:3]
    row = Row(
        SECTION,
        f"tight photon efficiency (shower-shape cuts only), {particle}",
        f"{100 * e_lo:.1f}% (strictest) – {100 * e_hi:.1f}% (loosest thresholds)",
        f"{100 * TIGHT_EFF[0]:.0f}–{100 * TIGHT_EFF[1]:.0f}%",
        f"{SRC_EFF}; cuts {SRC_CUT}",
        OK if ok else DEV,
        "lowest single-cut efficiencies (loosest): " + ", ".join(f"{k} {100 * e:.0f}%" for k, e in worst),
    )
    return {"strictest": e_lo, "loosest": e_hi, "per_cut_loosest": per_cut}, row


def target_section(v, c) -> None:
    """The comparison with the published peaks at ⟨μ⟩ = ``c.mu_target`` (rows, results, figures, note)."""
    from calo_calib.validation.shower_shapes_plots import plot_particle

    mu_t = float(c.get("mu_target", 40))
    nboot = max(2, min(int(v.nboot), int(c.get("bootstrap", 100))))
    res: dict = {}
    for particle in c.get("particles", PARTICLES):
        d = v.data.get(sample_key(particle, mu_t))
        if d is None:
            continue
        sh = shapes_of(d)
        n = int(d["truth_e"].size)
        variables, rows = particle_rows(particle, sh, nboot, v.rng)
        pr: dict = {"n": n, "mu": mu_t, "variables": variables}
        tails, more = tail_rows(particle, sh)
        pr.update(tails)
        rows += more
        if any(particle in t.cuts for t in TARGETS):
            pr["tight_eff"], row = tight_row(particle, sh, n)
            rows.append(row)
        v.rows.extend(rows)
        res[particle] = pr
        plot_particle(v, particle, sh, pr, mu_t, c)
    v.results["shower_shapes"] = res
    v.note(
        SECTION,
        f"{len(res)} particle type(s), E_T flat in [{float(c.get('et_min', 20)):g}, {float(c.get('et_max', 50)):g}] GeV, "
        f"|η| < {float(c.get('abs_eta_max', 0.8)):g}, ⟨μ⟩ = {mu_t:g} (fixed). Peak = half-sample mode (bootstrap error); "
        "target band = the table's peak range widened by its tolerance; OK if the peak is inside within 2σ. "
        "Targets: ../shared/docs/physics_cells.md §2 (ATLAS Geant4 MC).",
    )


def mu_point(d: Mapping[str, np.ndarray], name: str, mu: float, nboot: int, rng: np.random.Generator) -> dict:
    """Peak, mean and core width (with errors) of shape ``name`` in sample ``d`` at ⟨μ⟩ = ``mu``, and the
    median σ_cell/E_L2 of its clusters (bootstrap order: peak, core width)."""
    x = shapes_of(d)[name]
    return {
        "mu": mu, "peak": half_sample_mode(x), "peak_err": bootstrap(half_sample_mode, x, nboot, rng),
        "mean": float(np.mean(x)), "mean_err": float(np.std(x, ddof=1) / math.sqrt(max(x.size, 1))),
        "core_width": core_width(x), "core_width_err": bootstrap(core_width, x, nboot, rng),
        "l2_noise_over_e2": float(np.median(d[L2_NOISE_KEY] / np.maximum(d["cluster_e_l2"], 1e-3))),
    }  # fmt: skip


def mu_rows(particle: str, name: str, per: Sequence[dict]) -> list[Row]:
    """Rows of one variable's ⟨μ⟩ dependence (``per``: :func:`mu_point` per ⟨μ⟩, ascending): the mean
    shift lowest → highest ⟨μ⟩ against ≈ 0, and the R_η core width against the [E] noise formula."""
    t = target(name)
    a, b = per[0], per[-1]
    shift = b["mean"] - a["mean"]
    serr = math.hypot(a["mean_err"], b["mean_err"])
    tol = MU_SHIFT_TOL[name]
    ok = abs(shift) <= tol + 2 * serr
    out = [Row(SECTION_MU, f"{name} mean shift mu={b['mu']:g} − mu={a['mu']:g}, {particle}",
               f"{_fmt(shift, t)} ± {_fmt(serr, t)}", f"≈0 (±{_fmt(tol, t)})",
               SRC_MU + " ('at train centre the mean shift is about 0')", OK if ok else DEV,
               f"peak {_fmt(a['peak'], t)} → {_fmt(b['peak'], t)}")]  # fmt: skip
    if name == "r_eta":
        s0, s1 = a["l2_noise_over_e2"], b["l2_noise_over_e2"]
        exp = math.sqrt(max(a["core_width"] ** 2 + N_CELLS_RETA * (s1**2 - s0**2), 0.0))
        okw = abs(b["core_width"] - exp) <= MU_WIDTH_TOL * exp + 2 * float(np.nan_to_num(b["core_width_err"]))
        out.append(Row(
            SECTION_MU,
            f"r_eta core width at mu={b['mu']:g}, {particle}",
            f"{_fmt(b['core_width'])} (mu=0: {_fmt(a['core_width'])})",
            f"√(σ₀² + 28(σ_cell²/E_L2²)|₀^μ) = {_fmt(exp)} (±{100 * MU_WIDTH_TOL:.0f}%)",
            SRC_MU,
            OK if okw else DEV,
            f"median σ_cell/E_L2 (middle cells): {s0:.2e} → {s1:.2e}"
            + ("; " + t.note if a["core_width"] == 0 and b["core_width"] == 0 else ""),
        ))  # fmt: skip
    else:
        out.append(Row(SECTION_MU, f"{name} core width mu={a['mu']:g} → mu={b['mu']:g}, {particle}",
                       f"{_fmt(a['core_width'], t)} → {_fmt(b['core_width'], t)}", "no number", SRC_MU, INFO,
                       "physics_cells.md §4.1 asks for the μ-slopes (validation of particle pile-up)"))  # fmt: skip
    return out


def mu_section(v, c) -> None:
    """The ⟨μ⟩ dependence (rows, results, the per-⟨μ⟩ table as a note, the figure); needs every ⟨μ⟩ sample."""
    from calo_calib.validation.shower_shapes_plots import plot_mu

    mlist = mus(c)
    nboot = max(2, min(int(v.nboot), int(c.get("bootstrap", 100))))
    res: dict = {}
    particles = [p for p in c.get("particles", PARTICLES) if all(sample_key(p, m) in v.data for m in mlist)]
    if not particles or len(mlist) < 2:
        return
    lines = ["| particle | variable | " + " | ".join(f"⟨μ⟩={m:g}: peak / mean / σ68" for m in mlist) + " |",
             "|---|---|" + "---|" * len(mlist)]  # fmt: skip
    for particle in particles:
        pr: dict = {}
        for name in MU_VARIABLES:
            t = target(name)
            per = [mu_point(v.data[sample_key(particle, m)], name, m, nboot, v.rng) for m in mlist]
            pr[name] = per
            lines.append(f"| {particle} | {name} | " + " | ".join(
                f"{_fmt(p['peak'], t)} / {_fmt(p['mean'], t)} / {_fmt(p['core_width'], t)}" for p in per) + " |")  # fmt: skip
            v.rows.extend(mu_rows(particle, name, per))
        res[particle] = pr
    v.results["shower_shapes_vs_mu"] = res
    v.note(
        SECTION_MU,
        "Peak (half-sample mode), mean and core width σ68 per ⟨μ⟩ (samples as in the section above):\n\n"
        + "\n".join(lines),
    )
    plot_mu(v, particles, mlist)
