"""Plots of the per-cluster uncertainty check (:mod:`calo_calib.evaluation.uncertainty`), mplhep style."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from calo_calib.plotting.style import label, save_png, use_style

PULL_RANGE = 5.0
"""Pulls shown in [-5, 5]; the fraction outside is written on the plot (the low-response tail)."""


def _bins(rows: list[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    lo = np.array([r["truth_e_lo"] for r in rows], dtype=float)
    hi = np.array([r["truth_e_hi"] for r in rows], dtype=float)
    y = np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype=float)
    err_key = f"{key}_err"
    e = (
        np.array([np.nan if r.get(err_key) is None else r[err_key] for r in rows], dtype=float)
        if err_key in rows[0]
        else np.zeros_like(y)
    )
    return lo, hi, y, e


def plot_pulls(pull: np.ndarray, report: Mapping[str, Any], out_png: str | os.PathLike[str]) -> Path:
    """Histogram of the pulls (all test clusters, unit-normalised) with the unit Gaussian overlaid."""
    use_style()
    fig, ax = plt.subplots(figsize=(6.5, 5.0))
    edges = np.linspace(-PULL_RANGE, PULL_RANGE, 61)
    inside = np.abs(pull) <= PULL_RANGE
    # density over ALL clusters (outside ones included in the normalisation), so the Gaussian compares fairly
    counts, _ = np.histogram(pull[inside], bins=edges)
    width = edges[1] - edges[0]
    density = counts / (max(pull.size, 1) * width)
    ax.stairs(density, edges, color="tab:red", linewidth=1.5, label="test clusters")
    x = np.linspace(-PULL_RANGE, PULL_RANGE, 400)
    ax.plot(x, np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi), color="black", linestyle="--", label="unit Gaussian")
    inc = report["inclusive"]
    text = (
        f"mean {inc['mean']:.2f}, std {inc['std']:.2f}\n"
        f"|pull|<1: {100 * inc['coverage_1sigma']:.1f}% (68.3%)\n|pull|<2: {100 * inc['coverage_2sigma']:.1f}% (95.4%)\n"
        f"outside ±{PULL_RANGE:g}: {100 * (1 - inside.mean()):.1f}%"
    )
    ax.text(0.05, 0.72, text, transform=ax.transAxes, fontsize=9, va="top")
    ax.set_xlabel(r"pull = $(E_\mathrm{reco} - E_\mathrm{true}) / (\sigma \cdot E_\mathrm{reco})$")
    ax.set_ylabel("clusters (normalised to unit area)")
    ax.set_ylim(0, max(float(density.max()), 0.4) * 1.6)
    ax.legend(loc="upper right", fontsize=9)
    label(ax, str(report["method"]))
    return save_png(fig, out_png)


def plot_coverage_vs_e(report: Mapping[str, Any], out_png: str | os.PathLike[str]) -> Path:
    """Coverage of ±1σ and ±2σ [%] versus E_true [GeV] (all |η|), with the Gaussian expectations."""
    use_style()
    fig, ax = plt.subplots(figsize=(6.5, 5.0))
    rows = report["vs_e"]
    for k, key, color, marker in ((1, "coverage_1sigma", "tab:blue", "o"), (2, "coverage_2sigma", "tab:red", "s")):
        lo, hi, y, e = _bins(rows, key)
        x = np.sqrt(lo * hi)
        ax.errorbar(x, 100 * y, yerr=100 * e, xerr=[x - lo, hi - x], linestyle="none", marker=marker, color=color,
                    markersize=5, label=rf"$|\mathrm{{pull}}| < {k}$")  # fmt: skip
        ax.axhline(100 * report["expected"][key], color=color, linestyle="--", linewidth=1.0)
    ax.set_xscale("log")
    ax.set_xlim(report["edges"]["truth_e"][0], report["edges"]["truth_e"][-1])
    ax.set_ylim(0, 130)
    ax.set_xlabel(r"$E_\mathrm{true}$ [GeV]")
    ax.set_ylabel("coverage [%]  (dashed: unit Gaussian)")
    ax.legend(loc="lower right", fontsize=9)
    label(ax, str(report["method"]))
    return save_png(fig, out_png)


def plot_sigma_vs_e(report: Mapping[str, Any], out_png: str | os.PathLike[str]) -> Path:
    """Median predicted σ [%] and the measured σ_rel [%] of E_reco/E_true versus E_true [GeV] (all |η|)."""
    use_style()
    fig, ax = plt.subplots(figsize=(6.5, 5.0))
    rows = report["vs_e"]
    for key, color, marker, text in (
        ("sigma_pred_median", "tab:red", "o", r"median predicted $\sigma$"),
        ("sigma_rel_observed", "black", "s", r"measured $\sigma_\mathrm{rel}$ = IQR / (1.349 mean)"),
    ):
        lo, hi, y, _ = _bins(rows, key)
        x = np.sqrt(lo * hi)
        ax.errorbar(
            x, 100 * y, xerr=[x - lo, hi - x], linestyle="none", marker=marker, color=color, markersize=5, label=text
        )
    ax.set_xscale("log")
    ax.set_xlim(report["edges"]["truth_e"][0], report["edges"]["truth_e"][-1])
    ax.set_ylim(bottom=0)
    ax.set_ylim(top=ax.get_ylim()[1] * 1.5)
    ax.set_xlabel(r"$E_\mathrm{true}$ [GeV]")
    ax.set_ylabel(r"relative resolution of $E_\mathrm{reco}/E_\mathrm{true}$ [%]")
    ax.legend(loc="upper right", fontsize=9)
    label(ax, str(report["method"]))
    return save_png(fig, out_png)
