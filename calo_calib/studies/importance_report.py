"""Outputs of the feature-importance study: JSON, markdown tables and slide-quality PNGs.

Input is the dict of :func:`calo_calib.studies.importance.feature_importance` (and optionally the
BDT gain rows of :func:`calo_calib.studies.importance.bdt_gain_importance`). Everything is written
atomically (:mod:`calo_calib.io.atomic`, :func:`calo_calib.plotting.style.save_png`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import TwoSlopeNorm

from calo_calib.evaluation.report import write_metrics
from calo_calib.formatting import as_float, fmt
from calo_calib.io.atomic import write_text_atomic
from calo_calib.plotting.style import EXPERIMENT, label, save_png, use_style

KIND_COLOURS = {"cell": "tab:blue", "cluster": "tab:orange", "pair": "tab:green", "layer": "tab:red"}

MAX_ANNOTATED_CELLS = 300
"""The heatmap prints its values only up to this many cells (more would be unreadable)."""


def total_error(entry: Mapping[str, Any]) -> float:
    """Repeat spread and paired-bootstrap error in quadrature (either alone when the other is NaN).

    Ablations are deterministic: their ``err`` already is the bootstrap error, counted once.
    """
    err, stat = as_float(entry.get("err")), as_float(entry.get("err_stat"))
    if entry.get("kind") == "layer":
        return stat
    parts = [v for v in (err, stat) if math.isfinite(v)]
    return math.hypot(*parts) if parts else float("nan")


def _pct(v: float, e: float = float("nan")) -> str:
    return fmt(v, e, scale=100, digits=2, sign=True)


def _ordered(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Inputs sorted by decreasing inclusive importance (NaN last)."""
    return sorted(
        result["inputs"], key=lambda e: -as_float(e["importance"]) if math.isfinite(as_float(e["importance"])) else math.inf
    )


def markdown(result: Mapping[str, Any], bdt_gain: Sequence[Mapping[str, Any]] | None = None, title: str = "") -> str:
    """Markdown: inclusive importance per input (sorted), per-region tables per |η| bin, BDT gain (optional)."""
    nom = result["nominal"]
    lines = [f"# Feature importance{': ' + title if title else ''}", ""]
    lines += [f"{result['n_clusters']} test clusters ({result['n_cells']} cells), {result['repeats']} permutation "
              f"repeat(s), seed {result['seed']}; nominal σ_rel = {100 * as_float(nom['sigma_rel']):.3f} %.", "",
              f"Definition: {result['definition']}.", ""]  # fmt: skip
    lines += ["## Inclusive", "", "importance (%) = 100 (σ_rel(perturbed) / σ_rel(nominal) - 1); errors: spread of the "
              "repeats (ablation: none), paired bootstrap of the test clusters.", ""]  # fmt: skip
    head = ["input", "kind", "importance (%) ± repeats", "± stat (%)", "σ_rel perturbed (%)", "clusters excluded"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in _ordered(result):
        err = as_float(e["err"]) if e["kind"] != "layer" else float("nan")
        stat = as_float(e["err_stat"])
        lines.append("| " + " | ".join([
            e["name"], e["kind"], _pct(as_float(e["importance"]), err), f"{100 * stat:.2f}" if math.isfinite(stat) else "–",
            f"{100 * as_float(e['sigma_rel']):.3f}", str(e.get("n_clusters_excluded", "")),
        ]) + " |")  # fmt: skip
    regions = result["regions"]
    etas = sorted({(r["abs_eta_lo"], r["abs_eta_hi"]) for r in regions})
    lines += ["", f"## Importance (%) per region (regions with < {result['min_count']} clusters: –)"]
    for lo, hi in etas:
        idx = [i for i, r in enumerate(regions) if (r["abs_eta_lo"], r["abs_eta_hi"]) == (lo, hi)]
        if not any(math.isfinite(as_float(nom["regions"][i])) for i in idx):
            continue
        cols = [i for i in idx if math.isfinite(as_float(nom["regions"][i]))]
        head = ["input"] + [f"{regions[i]['truth_e_lo']:g}–{regions[i]['truth_e_hi']:g} GeV" for i in cols]
        lines += ["", f"### {lo:g} ≤ |η| < {hi:g}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines.append("| clusters | " + " | ".join(str(regions[i]["n"]) for i in cols) + " |")
        lines.append("| nominal σ_rel (%) | " + " | ".join(f"{100 * as_float(nom['regions'][i]):.3f}" for i in cols) + " |")
        for e in _ordered(result):
            reg = e["regions"]
            err_key = "err_stat" if e["kind"] == "layer" else "err"
            lines.append(
                f"| {e['label']} | "
                + " | ".join(_pct(as_float(reg["importance"][i]), as_float(reg[err_key][i])) for i in cols)
                + " |"
            )
    if bdt_gain:
        lines += ["", "## BDT baseline: XGBoost total gain", "",
                  "Summed over the boosters; a training-time measure, not comparable with the resolution-based numbers above.",
                  "", "| input | gain fraction (%) | boosters using it |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {r['name']} | {100 * as_float(r['fraction']):.2f} | {r['n_boosters']} |" for r in bdt_gain]
    lines += ["", "## Caveats", ""] + [f"- {c}" for c in result["caveats"]]
    return "\n".join(lines) + "\n"


def plot_bars(result: Mapping[str, Any], out_png: str | os.PathLike[str], title: str = "") -> Path:
    """Horizontal bars of the inclusive importance [%] per input, errors: repeats ⊕ bootstrap."""
    use_style()
    entries = _ordered(result)[::-1]  # most important at the top
    y = np.arange(len(entries))
    val = np.array([100 * as_float(e["importance"]) for e in entries])
    err = np.array([100 * total_error(e) for e in entries])
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(entries) + 1.8))
    ax.barh(y, np.nan_to_num(val), xerr=np.where(np.isfinite(err), err, 0.0), color=[KIND_COLOURS[e["kind"]] for e in entries],
            alpha=0.85, error_kw={"elinewidth": 1.0, "capsize": 2})  # fmt: skip
    ax.set_yticks(y, [e["name"] if e["kind"] != "pair" else f"pair {e['name']}" for e in entries], fontsize=9)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(
        r"importance = $\sigma_\mathrm{rel}^\mathrm{perturbed} / \sigma_\mathrm{rel}^\mathrm{nominal} - 1$ [%]"
    )
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.85)
        for k, c in KIND_COLOURS.items()
        if any(e["kind"] == k for e in entries)
    ]
    names = {"cell": "cell feature (permuted)", "cluster": "cluster feature (permuted)", "pair": "pair column (permuted)",
             "layer": "layer cells removed"}  # fmt: skip
    ax.legend(
        handles, [names[k] for k in KIND_COLOURS if any(e["kind"] == k for e in entries)], fontsize=8, loc="lower right"
    )
    ax.set_ylim(-0.7, len(entries) + 1.2)  # room for the label
    label(ax, title)
    return save_png(fig, out_png)


def plot_heatmap(result: Mapping[str, Any], out_png: str | os.PathLike[str], title: str = "") -> Path:
    """Importance [%] of each input (rows) in each populated (|η|, E_true) region (columns)."""
    use_style()
    entries = _ordered(result)
    regions = result["regions"]
    cols = [i for i, s in enumerate(result["nominal"]["regions"]) if math.isfinite(as_float(s))]
    if not cols:  # too few clusters for any region: say so on the plot rather than fail the study
        fig, ax = plt.subplots(figsize=(7.0, 4.0))
        ax.text(0.5, 0.5, f"no (|η|, E_true) region with >= {result['min_count']} clusters\n({result['n_clusters']} clusters in all)",
                ha="center", va="center", transform=ax.transAxes)  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        label(ax, title)
        return save_png(fig, out_png)
    z = np.array([[100 * as_float(e["regions"]["importance"][i]) for i in cols] for e in entries])
    finite = z[np.isfinite(z)]
    # Clip the colour scale at the 95th percentile of |importance|: one low-statistics region at
    # several hundred per cent would otherwise wash every other cell out (the colour bar shows the clip).
    vmax = max(float(np.percentile(np.abs(finite), 95)) if finite.size else 1.0, 1e-3)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.42 * len(cols) + 3.0), 0.34 * len(entries) + 2.6))
    norm = TwoSlopeNorm(vmin=-vmax, vcenter=0.0, vmax=vmax)
    im = ax.imshow(np.ma.masked_invalid(z), aspect="auto", cmap="RdBu_r", norm=norm, interpolation="none")
    ax.set_yticks(np.arange(len(entries)), [e["label"] for e in entries], fontsize=8)
    ax.set_xticks(np.arange(len(cols)), [f"{regions[i]['truth_e_lo']:g}–{regions[i]['truth_e_hi']:g}" for i in cols],
                  rotation=90, fontsize=7)  # fmt: skip
    ax.minorticks_off()
    # |η| groups: separators, and their names as ticks of a second x axis on top
    groups: dict[tuple[float, float], list[int]] = {}
    for k, i in enumerate(cols):
        groups.setdefault((regions[i]["abs_eta_lo"], regions[i]["abs_eta_hi"]), []).append(k)
    for ks in list(groups.values())[1:]:
        ax.axvline(ks[0] - 0.5, color="black", linewidth=0.8)
    top = ax.secondary_xaxis("top")
    top.set_xticks([(ks[0] + ks[-1]) / 2 for ks in groups.values()],
                   [f"{lo:g}–{hi:g}" for lo, hi in groups], fontsize=7, rotation=45, ha="left")  # fmt: skip
    top.minorticks_off()
    top.set_xlabel("|η|", fontsize=8, loc="right")
    if z.size <= MAX_ANNOTATED_CELLS:
        for (r, c), v in np.ndenumerate(z):
            if math.isfinite(v):
                ax.text(c, r, f"{v:.1f}", ha="center", va="center", fontsize=5.5, color="black")
    ax.set_xlabel(r"$E_\mathrm{true}$ [GeV], grouped in |η| bins")
    fig.colorbar(im, ax=ax, label="importance [%]", pad=0.01, extend="both")
    fig.suptitle(f"{EXPERIMENT} Simulation    {title}", x=0.01, ha="left", fontsize=10, fontweight="bold")
    return save_png(fig, out_png)


def plot_bdt_gain(rows: Sequence[Mapping[str, Any]], out_png: str | os.PathLike[str], title: str = "") -> Path:
    """Bars of the BDT's XGBoost total-gain fraction [%] per input."""
    use_style()
    rows = list(rows)[::-1]
    fig, ax = plt.subplots(figsize=(7.0, 0.32 * len(rows) + 1.8))
    ax.barh(np.arange(len(rows)), [100 * as_float(r["fraction"]) for r in rows], color="tab:purple", alpha=0.85)
    ax.set_yticks(np.arange(len(rows)), [r["name"] for r in rows], fontsize=9)
    ax.set_xlabel("XGBoost total gain, fraction of all inputs [%]")
    ax.set_ylim(-0.7, len(rows) + 1.0)
    label(ax, title)
    return save_png(fig, out_png)


def write_importance(
    result: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    bdt_gain: Sequence[Mapping[str, Any]] | None = None,
    title: str = "",
    plots: bool = True,
) -> dict[str, Path]:
    """Write ``importance.json`` (the result, plus ``bdt_gain``), ``importance.md`` and the PNGs under ``plots/``.

    Returns:
        ``{"json", "markdown", "bars", "heatmap"[, "bdt_gain"]}`` -> path.
    """
    out = Path(out_dir)
    payload = {**result, "bdt_gain": list(bdt_gain) if bdt_gain else None}
    paths = {
        "json": write_metrics(payload, out / "importance.json"),
        "markdown": write_text_atomic(out / "importance.md", markdown(result, bdt_gain, title)),
    }
    if plots:
        paths["bars"] = plot_bars(result, out / "plots" / "importance_bars.png", title)
        paths["heatmap"] = plot_heatmap(result, out / "plots" / "importance_heatmap.png", title)
        if bdt_gain:
            paths["bdt_gain"] = plot_bdt_gain(bdt_gain, out / "plots" / "bdt_gain.png", title)
    return paths
