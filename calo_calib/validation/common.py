"""Shared pieces of the validation report: verdicts, table rows, colours, binning and the plot style.

Every check module (:mod:`~calo_calib.validation.conversions`, ``longitudinal``, ``response``,
``resolution``, ``modulation``, ``multiplicity``, ``correlations``, ``noise`` and the sections of
:mod:`~calo_calib.validation.sections`) builds :class:`Row` objects with one of the verdicts
:data:`OK`, :data:`DEV`, :data:`INFO`; :mod:`~calo_calib.validation.readme` turns them into markdown.
Nothing here touches a sample's simulation.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calo_calib.formatting import fmt

OK, DEV, INFO = "OK", "DEVIATION", "INFO"
"""Verdicts: within the stated tolerance; outside it; no card target (reference only)."""

LAYER_LABELS = ("PS", "L1 (strips)", "L2 (middle)", "L3 (back)")
LAYER_COLS = ("cluster_e_ps", "cluster_e_l1", "cluster_e_l2", "cluster_e_l3")
PAL = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
"""Colour-blind-tolerant, high-contrast colours (the ATLAS style cycle has a pale yellow)."""


@dataclass
class Row:
    """One line of a README table (all cells already formatted as text)."""

    section: str
    quantity: str
    simulated: str
    target: str
    source: str
    verdict: str
    comment: str = ""


def pct(x: float, nd: int = 2) -> str:
    """``x`` (a fraction) as a percentage with ``nd`` decimals, ``n/a`` when missing."""
    return fmt(x, scale=100, digits=nd, suffix="%", missing="n/a")


def layers(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N, 4) float64 layer energies (PS, L1, L2, L3) [GeV] of a sample's clusters."""
    return np.stack([d[c].astype(np.float64) for c in LAYER_COLS], axis=-1)


def abs_eta_edges(step: float) -> np.ndarray:
    """|η| bin edges 0, step, ... up to 2.5 with the last edge moved to the acceptance end 2.47."""
    edges = np.round(np.arange(0.0, 2.5001, step), 4)
    edges[-1] = 2.47
    return edges


def binned(x, y, edges, stat: Callable = np.mean, min_n: int = 5):
    """(centres, stat per bin, error per bin, counts) of ``y`` in bins of ``x``.

    Error = std/sqrt(n) for the mean, 1.2533× that for the median (its asymptotic efficiency);
    bins with fewer than ``min_n`` finite values are NaN.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    idx = np.digitize(x, edges) - 1
    nb = len(edges) - 1
    val, err, cnt = np.full(nb, np.nan), np.full(nb, np.nan), np.zeros(nb, int)
    for b in range(nb):
        yy = y[(idx == b) & np.isfinite(y)]
        cnt[b] = yy.size
        if yy.size >= min_n:
            val[b] = stat(yy)
            e = yy.std(ddof=1) / math.sqrt(yy.size)
            err[b] = e * (1.2533 if stat is np.median else 1.0)
    return 0.5 * (edges[1:] + edges[:-1]), val, err, cnt


def eta_calo(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N,) |eta| of the impact at the middle layer, seen from the nominal IP (vertex-z corrected)."""
    eta = d["truth_eta"].astype(np.float64)
    zv = d["truth_vertex_z"].astype(np.float64)
    a = np.abs(eta)
    r2 = np.where(
        a < 0.8, 1697.1 - 15.311 * a - 64.153 * a**2, 1739.1 - 75.648 * a - 18.501 * a**2
    )  # EMB2 radius [S2], mm
    return np.abs(np.arcsinh(np.sinh(eta) + zv / r2))


def res_points(data: Mapping[str, dict], particle: str = "electron") -> dict[tuple[float, float, float], dict]:
    """The fixed-point resolution samples ``res/<particle>/mu<mu>/eta<eta>/E<e>`` as {(mu, eta, E): data}."""
    pts = {}
    for key, d in data.items():
        if key.startswith(f"res/{particle}/"):
            _, _, mu, eta, e = key.split("/")
            pts[(float(mu[2:]), float(eta[3:]), float(e[1:]))] = d
    return pts


def tag(ax, text: str, loc: str = "upper left", fontsize: int = 13) -> None:
    """Text box inside the axes (panel descriptions in multi-panel figures)."""
    x, ha = (0.04, "left") if "left" in loc else (0.96, "right")
    y, va = (0.95, "top") if "upper" in loc else (0.05, "bottom")
    ax.text(
        x,
        y,
        text,
        transform=ax.transAxes,
        ha=ha,
        va=va,
        fontsize=fontsize,
        bbox=dict(boxstyle="round", facecolor="white", alpha=0.8, edgecolor="none"),
    )


def plotting():
    """(pyplot, label, save_png) with the shared style applied (:mod:`calo_calib.plotting.style`).

    Minimal local fallbacks keep the report usable if the style module is missing.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        from calo_calib.plotting.style import label, save_png, use_style
    except ImportError:  # fallback: the shared style module is missing

        def use_style() -> None:
            plt.rcParams.update({"font.size": 13, "axes.grid": True})

        def label(ax, text: str = "") -> None:
            ax.text(0, 1.01, "calo_calib Simulation", transform=ax.transAxes, fontweight="bold", va="bottom")
            if text:
                ax.text(1, 1.01, text, transform=ax.transAxes, ha="right", va="bottom")

        def save_png(fig, path):
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.png")
            fig.savefig(tmp, dpi=150, bbox_inches="tight")
            os.replace(tmp, path)
            return path

    use_style()
    return plt, label, save_png
