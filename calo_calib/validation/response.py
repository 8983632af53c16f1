"""Check family: the raw EM-scale response E_cluster/E_true (no card number: every row is INFO).

Samples ``scan/electron``, ``scan/photon`` (median response per |η| range and energy range) and the
50 GeV ⟨μ⟩ = 0 resolution points (with the mean truth losses as comment). A median above 1 or below
0.9 gets a comment naming the likely cause.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from calo_calib.validation.common import INFO, PAL, Row, abs_eta_edges, binned
from calo_calib.validation.metrics import median_response

SECTION = "Raw response"
ETA_RANGES = ((0.0, 0.8), (0.8, 1.37), (1.37, 1.52), (1.52, 2.47))
E_RANGES = ((5, 20), (100, 500))  # GeV, truth-energy ranges of the table rows
PLOT_E_RANGES = ((5, 20), (20, 100), (100, 500))  # GeV, curves of the plot


def _ratio(d: Mapping[str, np.ndarray]) -> np.ndarray:
    return d["cluster_e"].astype(float) / d["truth_e"].astype(float)


def scan_rows(particle: str, d: Mapping[str, np.ndarray]) -> list[Row]:
    """Median E_cluster/E_true of a scan sample per (|η| range, E range) with ≥ 20 clusters (INFO)."""
    a = np.abs(d["truth_eta"].astype(float))
    r = _ratio(d)
    et = d["truth_e"].astype(float)
    out = []
    for lo, hi in ETA_RANGES:
        for elo, ehi in E_RANGES:
            m = (a >= lo) & (a < hi) & (et >= elo) & (et < ehi)
            if m.sum() < 20:
                continue
            med = median_response(r[m])
            comment = f"N = {m.sum()}"
            if med > 1.0:
                comment += "; raw EM-scale response ABOVE 1: the presampler energy at the EM scale over-counts the upstream loss it samples (see the E_lost vs E_PS slope below)"
            elif med < 0.9:
                comment += "; large raw loss (lateral leakage out of the cluster / topo thresholds / crack)"
            out.append(Row(SECTION, f"median E_cluster/E_true, {particle}s {elo}-{ehi} GeV, {lo:g} < abs(eta) < {hi:g}, mu=0",
                           f"{med:.3f}", "< 1, no card number", "—", INFO, comment))  # fmt: skip
    return out


def point_rows(pts: Mapping[tuple, dict]) -> list[Row]:
    """Median response and mean truth losses of the 50 GeV ⟨μ⟩ = 0 points (``pts``: {(mu, eta, E): data}), INFO."""
    out = []
    for (mu, eta, e), d in sorted(pts.items()):
        if mu != 0.0 or e != 50.0:
            continue
        lost = ((d["truth_e_lost_upstream"] + d["truth_e_lost_passive"]) / d["truth_e"]).mean()
        leak = (d["truth_e_leak_behind"] / d["truth_e"]).mean()
        outside = (d["truth_e_outside_cluster"] / d["truth_e"]).mean()
        out.append(Row(
            SECTION,
            f"median E_cluster/E_true, e− 50 GeV, abs(eta)={eta:g}, mu=0",
            f"{median_response(_ratio(d)):.4f}",
            "< 1, no card number",
            "—",
            INFO,
            f"mean truth losses / E: upstream+passive {lost:.3f}, behind {leak:.3f}, outside cluster {outside:.3f}",
        ))  # fmt: skip
    return out


def _plot(v) -> None:
    edges = abs_eta_edges(0.05)
    fig, ax = v.plt.subplots(figsize=(10, 6.5))
    for p, mk in (("electron", "o"), ("photon", "s")):
        d = v.data.get(f"scan/{p}")
        if d is None:
            continue
        a = np.abs(d["truth_eta"].astype(float))
        r = _ratio(d)
        et = d["truth_e"].astype(float)
        for j, (lo, hi) in enumerate(PLOT_E_RANGES):
            m = (et >= lo) & (et < hi)
            cc, val, e, _ = binned(a[m], r[m], edges, stat=np.median)
            ax.errorbar(cc, val, yerr=e, fmt=mk + "-", ms=3.5, lw=1, color=PAL[j],
                        mfc=None if p == "electron" else "none", label=f"{p}s {lo}-{hi} GeV")  # fmt: skip
    ax.axvspan(1.37, 1.52, color="grey", alpha=0.2, label="crack")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xlabel(r"Truth $|\eta|$")
    ax.set_ylabel(r"Median $E_{cluster}/E_{true}$")
    ax.set_xlim(0, 2.5)
    ax.legend(fontsize=10, ncol=2, loc="lower left")
    v.label(ax, r"raw EM scale, $\langle\mu\rangle$=0")
    v.fig(SECTION, "response_eta.png", fig)


def run(v) -> None:
    """Add the section's figure and rows to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    _plot(v)
    for p in ("electron", "photon"):
        d = v.data.get(f"scan/{p}")
        if d is not None:
            v.rows.extend(scan_rows(p, d))
    v.rows.extend(point_rows(v.res_points()))
