"""Check family: cells per cluster against the product description's expected range.

Samples ``default/<particle>`` (the default config: 5-500 GeV log-uniform, |η| < 2.47, ⟨μ⟩ = 51):
OK if the median lies in :data:`~calo_calib.validation.targets.CELLS_PER_CLUSTER_RANGE`. The
⟨μ⟩ = 0 electron scan is shown for reference (INFO).
"""

from __future__ import annotations

import numpy as np

from calo_calib.validation import targets as T
from calo_calib.validation.common import DEV, INFO, OK, PAL, Row

SECTION = "Cells per cluster"
PARTICLES = ("electron", "photon_unconv", "photon_conv")


def quantiles(n_cells: np.ndarray) -> np.ndarray:
    """(3,) 5 %, 50 % and 95 % quantiles of the cells per cluster ``n_cells`` (N,)."""
    return np.percentile(n_cells, [5, 50, 95])


def default_row(particle: str, n_cells: np.ndarray) -> Row:
    """Row of a default-config sample: OK if the median is inside the expected range."""
    lo, hi = T.CELLS_PER_CLUSTER_RANGE
    q = quantiles(n_cells)
    ok = lo <= q[1] <= hi
    return Row(
        SECTION,
        f"cells per cluster, {particle}, default sample (5-500 GeV log-uniform, abs(eta)<2.47, mu=51)",
        f"median {q[1]:.0f}, 5-95%: {q[0]:.0f}-{q[2]:.0f}",
        f"~{lo}-{hi}",
        "product description (not in the card)",
        OK if ok else DEV,
        "" if ok else "median outside the expected range",
    )


def scan_row(n_cells: np.ndarray) -> Row:
    """Reference row of the ⟨μ⟩ = 0 electron scan (INFO)."""
    lo, hi = T.CELLS_PER_CLUSTER_RANGE
    q = quantiles(n_cells)
    return Row(
        SECTION,
        "cells per cluster, electron, mu=0 scan",
        f"median {q[1]:.0f}, 5-95%: {q[0]:.0f}-{q[2]:.0f}",
        f"~{lo}-{hi}",
        "product description",
        INFO,
        "no pile-up noise: lower 4-2-0 thresholds (in units of the total noise), so more cells pass",
    )


def run(v) -> None:
    """Add the section's rows, figure and results to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    fig, ax = v.plt.subplots(figsize=(10, 6.5))
    lo, hi = T.CELLS_PER_CLUSTER_RANGE
    stats = {}
    for j, p in enumerate(PARTICLES):
        d = v.data.get(f"default/{p}")
        if d is None:
            continue
        nc = d["n_cells"].astype(int)
        mu = float(np.mean(d["mu"]))
        bins = np.arange(0, max(400, nc.max() + 10), 10)
        ax.hist(nc, bins=bins, histtype="step", lw=2, color=PAL[j], weights=np.full(nc.size, 1.0 / nc.size),
                label=f"{p} ($\\langle\\mu\\rangle$={mu:.0f}): median {np.median(nc):.0f}")  # fmt: skip
        stats[p] = quantiles(nc).tolist()
        v.rows.append(default_row(p, nc))
    d = v.data.get("scan/electron")
    if d is not None:
        nc = d["n_cells"].astype(int)
        ax.hist(nc, bins=np.arange(0, 410, 10), histtype="step", lw=1.5, ls="--", color="grey",
                weights=np.full(nc.size, 1.0 / nc.size),
                label=f"electron ($\\langle\\mu\\rangle$=0): median {np.median(nc):.0f}")  # fmt: skip
        v.rows.append(scan_row(nc))
    ax.axvspan(lo, hi, color="green", alpha=0.1, label=f"expected ~{lo}-{hi}")
    ax.set_xlabel("Cells per cluster")
    ax.set_ylabel("Fraction of clusters / 10 cells")
    ax.legend(fontsize=10)
    v.label(ax, r"5-500 GeV, $|\eta|<2.47$")
    v.fig(SECTION, "cell_multiplicity.png", fig)
    v.results["cells_per_cluster_q05_q50_q95"] = stats
