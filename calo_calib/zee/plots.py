"""Plots of the Z standard candle (PNG via :mod:`calo_calib.plotting.style`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from calo_calib.evaluation.plots import CRACK, method_style
from calo_calib.plotting.style import label, save_png, use_style
from calo_calib.zee.fit import PeakFit

PathLike = str | os.PathLike[str]


def plot_mass(
    m_mc: np.ndarray,
    m_data: np.ndarray,
    m_corrected: np.ndarray | None,
    fits: Mapping[str, PeakFit | None],
    path: PathLike,
    title: str,
) -> Path:
    """m_ee in the fit window: MC (normalised to the data), data, corrected data, with their fitted curves.

    ``fits`` may hold "mc", "data" and "corrected" (PeakFit or None); the window and binning are
    those of the MC fit (or the data fit if the MC one is missing).
    """
    use_style()
    ref = fits.get("mc") or fits.get("data")
    if ref is None:
        raise ValueError(f"plot_mass({title}): no fit to take the window from")
    edges = ref.edges
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig, ax = plt.subplots(figsize=(8, 6))
    n_data = np.histogram(m_data, bins=edges)[0].astype(float)
    n_mc = np.histogram(m_mc, bins=edges)[0].astype(float)
    norm = n_data.sum() / max(n_mc.sum(), 1.0)
    ax.stairs(n_mc * norm, edges, fill=True, color="tab:blue", alpha=0.25, label="MC (nominal), normalised")
    ax.errorbar(centres, n_data, yerr=np.sqrt(n_data), fmt="o", color="black", markersize=4, label="data-like")
    if m_corrected is not None:
        n_corr = np.histogram(m_corrected, bins=edges)[0].astype(float)
        ax.errorbar(
            centres,
            n_corr,
            yerr=np.sqrt(n_corr),
            fmt="o",
            mfc="white",
            color="tab:red",
            markersize=4,
            label="data-like, scale-corrected",
        )
    styles = {"mc": ("tab:blue", "--", norm), "data": ("black", "-", 1.0), "corrected": ("tab:red", "-", 1.0)}
    for key, (color, ls, scale) in styles.items():
        f = fits.get(key)
        if f is None:
            continue
        text = f"fit {key}: peak {f.peak:.2f}±{f.peak_err:.2f}, σ {f.sigma:.2f}±{f.sigma_err:.2f} GeV, χ²/ndf {f.chi2:.0f}/{f.ndf}"
        ax.plot(f.curve_m, f.curve_counts * scale, color=color, linestyle=ls, linewidth=1.5, label=text)
    ax.set_xlabel(r"$m_{ee}$ [GeV]")
    ax.set_ylabel(f"Events / {edges[1] - edges[0]:g} GeV")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, 1.45 * max(n_data.max(), (n_mc * norm).max(), 1.0))
    ax.legend(loc="upper left", fontsize=8, frameon=False, bbox_to_anchor=(0.0, 0.93))
    label(ax, title)
    return save_png(fig, path)


def plot_alphas(
    results: Mapping[str, Mapping],
    edges: np.ndarray,
    path: PathLike,
    key: str = "alpha",
    ylabel: str = r"$\alpha_i$ [%]",
) -> Path:
    """Per-|η|-bin values (``results[method]["<key>"]`` / ``"<key>_err"``, fractions) in %, one series per method.

    For ``key="alpha"`` the truth-level diagnostic ``alpha_truth`` (data/MC ratio of the median
    E/E_true) is drawn as open markers.
    """
    use_style()
    fig, ax = plt.subplots(figsize=(8, 6))
    lo, hi = np.asarray(edges[:-1]), np.asarray(edges[1:])
    n = len(results)
    for k, (method, res) in enumerate(results.items()):
        y = 100 * np.array([np.nan if v is None else v for v in res[key]], dtype=float)
        e = 100 * np.array([np.nan if v is None else v for v in res[f"{key}_err"]], dtype=float)
        x = 0.5 * (lo + hi) + (k - (n - 1) / 2) * 0.15 / max(n, 1) * (hi - lo)
        style = method_style(method, k)
        ax.errorbar(
            x,
            y,
            yerr=e,
            xerr=[x - lo, hi - x],
            linestyle="none",
            markersize=6,
            capsize=0,
            label=f"{method}: Z peak fit",
            **style,
        )
        if key == "alpha" and "alpha_truth" in res:
            yt = 100 * np.array([np.nan if v is None else v for v in res["alpha_truth"]], dtype=float)
            ax.plot(x, yt, linestyle="none", marker=style.get("marker", "o"), mfc="none", markersize=11, color=style["color"],
                    label=f"{method}: truth median ratio (diagnostic)")  # fmt: skip
    ax.axhline(0.0, color="0.5", linewidth=0.8)
    ax.axvspan(*CRACK, color="0.9", zorder=0)
    ax.set_xlabel(r"cluster $|\eta|$")
    ax.set_ylabel(ylabel)
    ax.set_xlim(edges[0], edges[-1])
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom, top + 0.45 * (top - bottom))
    ax.legend(loc="upper left", fontsize=9, frameon=False, bbox_to_anchor=(0.0, 0.93))
    label(ax, r"$Z\to ee$ in-situ scale")
    return save_png(fig, path)
