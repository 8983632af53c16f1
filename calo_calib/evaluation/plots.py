"""Resolution plots of a run (PNG, mplhep style via :mod:`calo_calib.plotting.style`).

σ_rel is shown in %, with bootstrap error bars; horizontal bars span the bin. Points of different
methods in one bin are shifted sideways a little so that the error bars do not overlap. Empty and
low-count bins (NaN) are simply not drawn.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from calo_calib.evaluation import binning as B
from calo_calib.evaluation.report import display_name
from calo_calib.formatting import as_float
from calo_calib.plotting.style import label, save_png, use_style

SIGMA_LABEL = r"$\sigma_\mathrm{rel}$ = IQR / (1.349 $\cdot$ mean) [%]"
"""y label of resolution plots; σ_rel of E_reco/E_true (:mod:`calo_calib.evaluation.metrics`)."""
RESPONSE_LABEL = r"$E_\mathrm{reco} / E_\mathrm{true}$"
CRACK = (1.37, 1.52)
"""Barrel/end-cap transition in |η|, shaded in plots versus |η|."""

_STYLES = {
    "raw": {"color": "0.45", "marker": "o", "mfc": "white"},
    "oracle": {"color": "black", "marker": "*"},
    "bdt": {"color": "tab:blue", "marker": "s"},
    "transformer": {"color": "tab:red", "marker": "o"},
    "gnn_edge": {"color": "tab:green", "marker": "^"},
}
_EXTRA_COLORS = ["tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
_EXTRA_MARKERS = ["D", "v", "P", "X", "<", ">"]


def method_style(method: str, k: int = 0) -> dict[str, Any]:
    """Colour/marker of a method (fixed for the known ones, also when given as a label such as
    "BDT" or "raw cluster E"; cycled by index ``k`` otherwise)."""
    key = method.lower()
    key = key if key in _STYLES else (key.split() or [""])[0]
    if key in _STYLES:
        return dict(_STYLES[key])
    return {"color": _EXTRA_COLORS[k % len(_EXTRA_COLORS)], "marker": _EXTRA_MARKERS[k % len(_EXTRA_MARKERS)]}


def _series(rows: Sequence[Mapping[str, Any]], var: str, method: str, key: str = "sigma_rel", scale: float = 100.0):
    """(lo, hi, y, y_err) arrays of a method along variable ``var`` (NaN/None -> NaN)."""
    lo = np.array([r[f"{var}_lo"] for r in rows], dtype=float)
    hi = np.array([r[f"{var}_hi"] for r in rows], dtype=float)
    y = np.array([as_float(r[method][key]) if method in r else np.nan for r in rows]) * scale
    e = np.array([as_float(r[method][f"{key}_err"]) if method in r else np.nan for r in rows]) * scale
    return lo, hi, y, e


def _draw(ax: Axes, lo, hi, y, err, *, log_x: bool, k: int, n_methods: int, style: dict[str, Any], lab: str) -> None:
    """Error-bar points at the bin centres, shifted by a fraction of the bin width per method."""
    shift = (k - (n_methods - 1) / 2) * 0.12 / max(n_methods, 1)
    if log_x:  # geometric centre and multiplicative shift (arithmetic for a bin starting at 0)
        pos = lo > 0
        safe_lo = np.where(pos, lo, 1.0)
        x = np.where(pos, np.sqrt(safe_lo * hi) * (hi / safe_lo) ** shift, 0.5 * (lo + hi))
    else:
        x = 0.5 * (lo + hi) + shift * (hi - lo)
    style = dict(style)
    linestyle = style.pop("linestyle", "none")
    ax.errorbar(
        x, y, yerr=err, xerr=[x - lo, hi - x], label=lab, linestyle=linestyle, markersize=5,
        elinewidth=1.0, capsize=0, **style,
    )  # fmt: skip


def _finish_y(ax: Axes, ymin_zero: bool = True) -> None:
    if ymin_zero:
        ax.set_ylim(bottom=0.0)
    top = ax.get_ylim()[1]
    ax.set_ylim(top=top * 1.5)  # room for the experiment label and legend


def _methods_in(metrics: Mapping[str, Any], methods: Sequence[str]) -> list[str]:
    return [m for m in methods if m in metrics.get("inclusive", {})]


def plot_resolution_vs_e(metrics: Mapping[str, Any], methods: Sequence[str], out_png: str | os.PathLike[str]) -> Path:
    """σ_rel [%] versus E_true [GeV] (log x), one panel per coarse |η| bin (metrics["vs_e_abs_eta"])."""
    use_style()
    methods = _methods_in(metrics, methods)
    rows = metrics["vs_e_abs_eta"]
    etas = sorted({(r["abs_eta_lo"], r["abs_eta_hi"]) for r in rows})
    ncol = 3
    nrow = math.ceil(len(etas) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.0 * ncol, 4.0 * nrow), squeeze=False, sharex=True)
    e_edges = metrics["edges"]["truth_e"]
    for i, (lo_eta, hi_eta) in enumerate(etas):
        ax = axes.flat[i]
        sub = [r for r in rows if (r["abs_eta_lo"], r["abs_eta_hi"]) == (lo_eta, hi_eta)]
        for k, m in enumerate(methods):
            lo, hi, y, err = _series(sub, "truth_e", m)
            _draw(
                ax,
                lo,
                hi,
                y,
                err,
                log_x=True,
                k=k,
                n_methods=len(methods),
                style=method_style(m, k),
                lab=display_name(m),
            )
        ax.set_xscale("log")
        ax.set_xlim(e_edges[0], e_edges[-1])
        _finish_y(ax)
        crack = " (crack)" if (lo_eta, hi_eta) == CRACK else ""
        ax.text(
            0.96,
            0.93,
            f"{lo_eta:g} ≤ |η| < {hi_eta:g}{crack}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=11,
        )
        if i % ncol == 0:
            ax.set_ylabel(r"$\sigma_\mathrm{rel}$ [%]")
        if i >= len(etas) - ncol:
            ax.set_xlabel(r"$E_\mathrm{true}$ [GeV]")
            ax.xaxis.set_tick_params(labelbottom=True)
        if i == 0:
            label(ax)
            ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.86), fontsize=9, frameon=False)
    for ax in axes.flat[len(etas) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return save_png(fig, out_png)


def _plot_1d(
    rows: Sequence[Mapping[str, Any]], methods: Sequence[str], var: str, xlabel: str, out_png, *,
    log_x: bool = False, shade_crack: bool = False, key: str = "sigma_rel", ylabel: str = SIGMA_LABEL,
    scale: float = 100.0, unity: bool = False, text: str = "",
) -> Path:  # fmt: skip
    use_style()
    fig, ax = plt.subplots(figsize=(8, 6))
    for k, m in enumerate(methods):
        lo, hi, y, err = _series(rows, var, m, key=key, scale=scale)
        _draw(
            ax, lo, hi, y, err, log_x=log_x, k=k, n_methods=len(methods), style=method_style(m, k), lab=display_name(m)
        )
    if rows:  # the populated range (e.g. <mu> 20-100), the full binning if nothing is populated
        filled = [r for r in rows if not r.get("low_count", False)] or list(rows)
        ax.set_xlim(filled[0][f"{var}_lo"], filled[-1][f"{var}_hi"])
    if log_x:
        ax.set_xscale("log")
    if shade_crack:
        ax.axvspan(*CRACK, color="0.9", zorder=0, label="crack")
    if unity:
        ax.axhline(1.0, color="0.3", linewidth=1, linestyle=":")
        _unity_ylim(ax, rows, methods, key)
    else:
        _finish_y(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    label(ax, text)
    _legend(ax)
    return save_png(fig, out_png)


def _legend(ax: Axes, fontsize: float | None = None) -> None:
    """Legend at the top right below the label, two columns when there are many entries."""
    n = len(ax.get_legend_handles_labels()[0])
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.93), frameon=False, ncol=2 if n > 3 else 1, fontsize=fontsize)


def _unity_ylim(ax: Axes, rows, methods, key: str) -> None:
    """y range around 1 that contains every point with its error, plus room on top for the legend."""
    ys = [(as_float(r[m][key]), as_float(r[m][f"{key}_err"])) for r in rows for m in methods if m in r]
    lo = min([y - (e if math.isfinite(e) else 0) for y, e in ys if math.isfinite(y)] + [0.99])
    hi = max([y + (e if math.isfinite(e) else 0) for y, e in ys if math.isfinite(y)] + [1.01])
    pad = 0.1 * (hi - lo)
    ax.set_ylim(lo - pad, hi + 5 * pad)


def plot_resolution_vs_abs_eta(
    metrics: Mapping[str, Any], methods: Sequence[str], out_png: str | os.PathLike[str]
) -> Path:
    """σ_rel [%] versus |η| in the card's fine bins (metrics["vs_abs_eta"]), all energies; crack shaded."""
    return _plot_1d(
        metrics["vs_abs_eta"],
        _methods_in(metrics, methods),
        "abs_eta",
        r"$|\eta_\mathrm{cluster}|$",
        out_png,
        shade_crack=True,
    )


def plot_resolution_vs_mu(metrics: Mapping[str, Any], methods: Sequence[str], out_png: str | os.PathLike[str]) -> Path:
    """σ_rel [%] versus the event's <μ> (metrics["vs_mu"]), all energies and |η|."""
    return _plot_1d(metrics["vs_mu"], _methods_in(metrics, methods), "mu", r"$\langle\mu\rangle$", out_png)


def plot_response_vs_e(metrics: Mapping[str, Any], methods: Sequence[str], out_png: str | os.PathLike[str]) -> Path:
    """Median E_reco/E_true versus E_true [GeV] (linearity), all |η| (metrics["vs_e"]).

    Pass the calibrated methods only: the raw response (~0.9) would squeeze them onto one line."""
    return _plot_1d(
        metrics["vs_e"], _methods_in(metrics, methods), "truth_e", r"$E_\mathrm{true}$ [GeV]", out_png,
        log_x=True, key="median", ylabel=f"median {RESPONSE_LABEL}", scale=1.0, unity=True,
    )  # fmt: skip


def plot_response_distributions(
    pred: B.Predictions,
    methods: Sequence[str],
    out_png: str | os.PathLike[str],
    lo: float = 0.8,
    hi: float = 1.2,
    bins: int = 80,
) -> Path:
    """Normalised histograms of E_reco/E_true in [lo, hi] per method (entries outside the range are
    counted in the normalisation, so the areas show the fraction inside); legend gives σ_rel."""
    from calo_calib.evaluation.metrics import sigma_rel

    use_style()
    names, ratios = B.response_ratios(pred, methods)
    fig, ax = plt.subplots(figsize=(8, 6))
    edges = np.linspace(lo, hi, bins + 1)
    width = edges[1] - edges[0]
    for k, (m, r) in enumerate(zip(names, ratios)):
        counts, _ = np.histogram(r, bins=edges)
        density = counts / max(r.size, 1) / width
        s = sigma_rel(r)
        lab = display_name(m) + (f" ($\\sigma_\\mathrm{{rel}}$ = {100 * s:.2f}%)" if math.isfinite(s) else "")
        style = method_style(m, k)
        ax.stairs(
            density, edges, color=style["color"], linestyle="--" if m == "oracle" else "-", linewidth=1.5, label=lab
        )
    ax.axvline(1.0, color="0.6", linewidth=1, linestyle=":")
    ax.set_xlim(lo, hi)
    _finish_y(ax)
    ax.set_xlabel(RESPONSE_LABEL)
    ax.set_ylabel("clusters / (total · bin width)")
    label(ax, f"{ratios.shape[1]} test clusters")
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.9), frameon=False, fontsize=10)
    return save_png(fig, out_png)


def plot_ratio_to_reference(comparison: Mapping[str, Any], out_png: str | os.PathLike[str]) -> Path:
    """σ_rel(method) / σ_rel(reference) versus E_true (log x) and versus |η|, with a line at 1."""
    use_style()
    method, ref = comparison["method"], comparison["reference_method"]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    for ax, table, var, xlabel, log_x in (
        (axes[0], "vs_e", "truth_e", r"$E_\mathrm{true}$ [GeV]", True),
        (axes[1], "vs_abs_eta", "abs_eta", r"$|\eta_\mathrm{cluster}|$", False),
    ):
        rows = comparison.get(table) or []
        if rows:
            lo = np.array([r[f"{var}_lo"] for r in rows], dtype=float)
            hi = np.array([r[f"{var}_hi"] for r in rows], dtype=float)
            y = np.array([as_float(r["ratio"]) for r in rows])
            e = np.array([as_float(r["ratio_err"]) for r in rows])
            _draw(
                ax,
                lo,
                hi,
                y,
                e,
                log_x=log_x,
                k=0,
                n_methods=1,
                style=method_style(method),
                lab=f"{display_name(method)} / {display_name(ref)}",
            )
            ax.set_xlim(lo[0], hi[-1])
        if log_x:
            ax.set_xscale("log")
        else:
            ax.axvspan(*CRACK, color="0.9", zorder=0)
        ax.axhline(1.0, color="0.3", linewidth=1, linestyle="--")
        ymin, ymax = ax.get_ylim()
        ax.set_ylim(min(ymin, 0.5), max(ymax, 1.2) * 1.15)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(
            rf"$\sigma_\mathrm{{rel}}$({display_name(method)}) / $\sigma_\mathrm{{rel}}$({display_name(ref)})"
        )
        inc = comparison.get("inclusive", {})
        label(ax, f"inclusive {as_float(inc.get('ratio')):.3f} ± {as_float(inc.get('ratio_err')):.3f}" if ax is axes[0] else "")
        ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.9), frameon=False)
    fig.tight_layout()
    return save_png(fig, out_png)


def plot_pileup_scan(records: Sequence[Mapping[str, Any]], out_png: str | os.PathLike[str]) -> Path:
    """σ_rel [%] versus <μ>, one line per method.

    Args:
        records: dicts ``{"mu", "method", "sigma_rel", "err"}`` (``sigma_rel_err`` accepted for ``err``).
    """
    use_style()
    fig, ax = plt.subplots(figsize=(8, 6))
    methods = list(dict.fromkeys(str(r["method"]) for r in records))
    for k, m in enumerate(methods):
        rec = sorted((r for r in records if str(r["method"]) == m), key=lambda r: float(r["mu"]))
        mu = np.array([float(r["mu"]) for r in rec])
        y = np.array([as_float(r["sigma_rel"]) for r in rec]) * 100
        e = np.array([as_float(r.get("err", r.get("sigma_rel_err"))) for r in rec]) * 100
        style = method_style(m, k)
        linestyle = "--" if m.lower() == "oracle" else "-"
        ax.errorbar(mu, y, yerr=e, label=display_name(m), linestyle=linestyle, markersize=6, capsize=2, **style)
    ax.margins(x=0.05)
    _finish_y(ax)
    ax.set_xlabel(r"$\langle\mu\rangle$")
    ax.set_ylabel(SIGMA_LABEL)
    label(ax, "pile-up scan")
    _legend(ax)
    return save_png(fig, out_png)


def write_all_plots(
    pred: B.Predictions,
    metrics: Mapping[str, Any],
    methods: Sequence[str],
    out_dir: str | os.PathLike[str],
    comparison: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Every standard plot of a run into ``out_dir``; returns the PNG paths.

    Writes resolution_vs_e.png, resolution_vs_abs_eta.png, resolution_vs_mu.png,
    response_vs_e.png (calibrated methods only), response_distributions.png and, with a ``comparison`` (:func:`report.compare`),
    ratio_to_<reference>.png.
    """
    out = Path(out_dir)
    paths = [
        plot_resolution_vs_e(metrics, methods, out / "resolution_vs_e.png"),
        plot_resolution_vs_abs_eta(metrics, methods, out / "resolution_vs_abs_eta.png"),
        plot_resolution_vs_mu(metrics, methods, out / "resolution_vs_mu.png"),
        plot_response_vs_e(metrics, [m for m in methods if m != "raw"] or methods, out / "response_vs_e.png"),
        plot_response_distributions(pred, methods, out / "response_distributions.png"),
    ]
    if comparison is not None:
        paths.append(plot_ratio_to_reference(comparison, out / f"ratio_to_{comparison['reference_method']}.png"))
    return paths
