"""Plots of a comparison: a metric versus E_true, |η| or ⟨μ⟩ per configuration (with the ratio to
the BDT), and the best configuration per (E_true, |η|) bin."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from calo_calib.comparison.markdown import edges_text, format_value
from calo_calib.comparison.ranking import METRICS, best_per_bin
from calo_calib.comparison.table import finite, model_rows

if TYPE_CHECKING:
    from matplotlib.figure import Figure

AXES = {
    "vs_e": ("truth_e", r"$E_\mathrm{true}$ [GeV]", True),
    "vs_abs_eta": ("abs_eta", r"$|\eta|$", False),
    "vs_mu": ("mu", r"$\langle\mu\rangle$", False),
}
"""Plotted tables: (binning variable, x label with units, log x)."""

_PARTICLE_TEXT = {"electron": "electrons", "photon_unconv": "unconverted photons", "photon_conv": "converted photons"}
_MARKERS = {"bdt": "s", "transformer": "o", "gnn_edge": "^"}


def _colours(configs: Sequence[str]) -> dict[str, Any]:
    """One colour per configuration (sorted labels), the same in every plot of a particle."""
    import matplotlib.pyplot as plt

    palette = plt.get_cmap("tab10" if len(configs) <= 10 else "tab20").colors
    return {c: palette[i % len(palette)] for i, c in enumerate(sorted(configs))}


def _x_positions(lo: list[float], hi: list[float], i: int, k: int, log_x: bool) -> list[float]:
    """Points of config ``i`` of ``k`` spread across the bin (so error bars don't overlap)."""
    frac = 0.5 + (i - (k - 1) / 2) * (0.6 / k)
    if log_x:
        return [math.exp(math.log(a) + frac * (math.log(b) - math.log(a))) for a, b in zip(lo, hi)]
    return [a + frac * (b - a) for a, b in zip(lo, hi)]


def plot_vs(
    records: Sequence[Mapping[str, Any]], particle: str, table: str = "vs_e", metric: str = "sigma_rel"
) -> Figure:
    """``metric`` of every run's model versus E_true (log x), |η| or ⟨μ⟩, one series per configuration.

    For σ_rel a lower panel shows σ_rel / σ_rel(BDT) with its error (1: as good as the BDT).
    Points are placed inside their bin, shifted per configuration; NaN (low-count) bins are not drawn.
    """
    import matplotlib.pyplot as plt

    from calo_calib.plotting.style import label, use_style

    use_style()
    var, xlabel, log_x = AXES[table]
    m = METRICS[metric]
    with_ratio = metric == "sigma_rel"
    if with_ratio:
        fig, (ax, rax) = plt.subplots(
            2, 1, sharex=True, figsize=(8, 7.5), gridspec_kw={"height_ratios": [3, 1.3], "hspace": 0.06}
        )
    else:
        fig, ax = plt.subplots(figsize=(8, 6))
        rax = None
    series: dict[str, list[Mapping[str, Any]]] = {}
    for r in model_rows(records, particle, table):
        series.setdefault(r["config"], []).append(r)
    colours = _colours(list({r["config"] for r in model_rows(records, particle, "inclusive")} | set(series)))
    for i, (config, rows) in enumerate(sorted(series.items())):
        lo, hi = [r[f"{var}_lo"] for r in rows], [r[f"{var}_hi"] for r in rows]
        x = _x_positions(lo, hi, i, len(series), log_x)
        style = {"marker": _MARKERS.get(rows[0]["model"], "D"), "ls": "--" if rows[0]["loss"] == "huber" else "-",
                 "mfc": "none" if rows[0]["loss"] == "huber" else None, "capsize": 2, "label": config, "color": colours[config]}  # fmt: skip
        ax.errorbar(
            x, [m.scale * r[m.column] for r in rows], yerr=[m.scale * r[f"{m.column}_err"] for r in rows], **style
        )
        if rax is not None:
            style.update(label=None)
            rax.errorbar(x, [r["ratio_to_bdt"] for r in rows], yerr=[r["ratio_to_bdt_err"] for r in rows], **style)
    ax.set_ylabel(m.axis_label)
    if metric == "sigma_rel":
        ax.set_ylim(bottom=0)
    else:
        ax.axhline(1.0, color="grey", lw=1, ls=":")
    ax.legend(fontsize="small", title=f"{len(series)} configurations", title_fontsize="small")
    label(ax, _PARTICLE_TEXT.get(particle, particle))
    bottom = rax if rax is not None else ax
    if rax is not None:
        rax.axhline(1.0, color="grey", lw=1, ls=":")
        rax.set_ylim(bottom=0)  # a ratio of two widths: large error bars must not suggest negative values
        rax.set_ylabel(r"$\sigma_\mathrm{rel} / \sigma_\mathrm{rel}^\mathrm{BDT}$", fontsize="small")
    if log_x:
        bottom.set_xscale("log")
    bottom.set_xlabel(xlabel)
    return fig


def plot_best_per_bin(records: Sequence[Mapping[str, Any]], particle: str, metric: str = "sigma_rel") -> Figure:
    """Grid of E_true bins (x) × |η| bins (y): colour = best configuration, text = its σ_rel / σ_rel(BDT)
    (or the metric for ``median``). Bins without a value are blank."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from calo_calib.plotting.style import label, use_style

    use_style()
    best = best_per_bin(records, particle, metric)
    rows = model_rows(records, particle, "vs_e_abs_eta")
    e_bins = sorted({(r["truth_e_lo"], r["truth_e_hi"]) for r in rows})
    eta_bins = sorted({(r["abs_eta_lo"], r["abs_eta_hi"]) for r in rows})
    configs = sorted({b["best"] for b in best})
    by_config = _colours(list({r["config"] for r in model_rows(records, particle, "inclusive")}))
    colours = [by_config[c] for c in configs]
    grid = [[math.nan] * len(e_bins) for _ in eta_bins]
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(e_bins) + 2), max(5, 0.6 * len(eta_bins) + 2)))
    for b in best:
        ix, iy = e_bins.index((b["truth_e_lo"], b["truth_e_hi"])), eta_bins.index((b["abs_eta_lo"], b["abs_eta_hi"]))
        grid[iy][ix] = configs.index(b["best"])
        text = (
            f"{b['ratio_to_bdt']:.2f}"
            if metric == "sigma_rel" and finite(b["ratio_to_bdt"])
            else format_value(b["value"], math.nan, METRICS[metric].scale, 2)
        )
        ax.text(ix, iy, text, ha="center", va="center", fontsize="x-small")
    if configs:
        ax.imshow(grid, origin="lower", aspect="auto", cmap=ListedColormap(colours),
                  vmin=-0.5, vmax=len(configs) - 0.5, alpha=0.7)  # fmt: skip
    ax.set_xticks(range(len(e_bins)), [edges_text(*e) for e in e_bins], rotation=45, ha="right", fontsize="small")
    ax.set_yticks(range(len(eta_bins)), [edges_text(*e) for e in eta_bins], fontsize="small")
    if not best:
        ax.text(0.5, 0.5, "no bin with enough test clusters", transform=ax.transAxes, ha="center", va="center")
    ax.tick_params(which="minor", length=0)  # categorical axes: minor ticks would mean nothing
    ax.set_xlim(-0.5, len(e_bins) - 0.5)
    ax.set_ylim(-0.5, len(eta_bins) - 0.5)
    ax.set_xlabel(r"$E_\mathrm{true}$ [GeV]")
    ax.set_ylabel(r"$|\eta|$")
    handles = [Patch(color=colours[i], alpha=0.7, label=c) for i, c in enumerate(configs)]
    what = (
        r"$\sigma_\mathrm{rel}/\sigma_\mathrm{rel}^\mathrm{BDT}$"
        if metric == "sigma_rel"
        else METRICS[metric].axis_label
    )
    ax.legend(handles=handles, title=f"best configuration (text: {what})", fontsize="x-small", title_fontsize="x-small",
              loc="upper left", bbox_to_anchor=(1.01, 1.0))  # fmt: skip
    label(ax, _PARTICLE_TEXT.get(particle, particle))
    return fig
