"""Check family: the η-modulation of the response inside a middle-layer cell.

Sample ``etamod/electron``: 50 GeV electrons at |η| < 0.8, vertex at z = 0. u = |η_calo| mod 0.025
(:func:`~calo_calib.validation.common.eta_calo`); the response E_cluster/E_true and the truth
containment in the cluster are profiled in u, normalised to their mean, and fitted with a quadratic;
the amplitude is the fit's peak-to-edge (bootstrap error). Target: the [S6] CaloSwEtamod_v4 3×7
electron correction at 50 GeV; verdict OK if the amplitude ratio lies in [1/:data:`FACTOR`, :data:`FACTOR`].
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from calo_calib.validation import targets as T
from calo_calib.validation.common import DEV, OK, PAL, Row, binned, eta_calo, pct

SECTION = "Eta modulation inside a middle cell"
FACTOR = 2.0  # tolerance factor on the amplitude [E]
MAX_BOOT = 100  # bootstrap replicas at most (each refits the profile)


def profile(y: np.ndarray, u: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centres, mean of ``y`` per u bin, error), both normalised to the mean over the bins (≥ 3 per bin)."""
    cc, v, e, _ = binned(u, y, edges, stat=np.mean, min_n=3)
    norm = np.nanmean(v)
    return cc, v / norm, e / norm


def amp_fit(cc: np.ndarray, v: np.ndarray, e: np.ndarray, w: float) -> tuple[float, float, np.ndarray]:
    """Weighted quadratic fit of a profile over the cell [0, ``w``]: (peak-to-edge amplitude f(u_peak) −
    (f(0) + f(w))/2, u_peak clipped to the cell, (p0, p1, p2)); NaN with fewer than 4 usable bins."""
    ok = np.isfinite(v) & np.isfinite(e) & (e > 0)
    if ok.sum() < 4:
        return float("nan"), float("nan"), np.full(3, np.nan)
    p = np.polyfit(cc[ok], v[ok], 2, w=1 / e[ok])
    p2, p1, p0 = p
    f = lambda x: p0 + p1 * x + p2 * x**2  # noqa: E731
    up = float(np.clip(-p1 / (2 * p2), 0, w)) if p2 != 0 else 0.0
    return float(f(up) - 0.5 * (f(0) + f(w))), up, np.array([p0, p1, p2])


def measure(y: np.ndarray, u: np.ndarray, edges: np.ndarray, nboot: int, rng: np.random.Generator) -> dict:
    """Profile of ``y`` (N,) vs ``u`` (N,) [η units], its fitted amplitude with a bootstrap error
    (min(``nboot``, :data:`MAX_BOOT`) replicas drawn from ``rng``) and the shape χ² against [S6]."""
    w = float(edges[-1])
    cc, v, e = profile(y, u, edges)
    amp, up, p = amp_fit(cc, v, e, w)
    boots = []
    for _ in range(min(nboot, MAX_BOOT)):
        ii = rng.integers(0, u.size, u.size)
        boots.append(amp_fit(*profile(y[ii], u[ii], edges), w)[0])
    target = T.eta_modulation(cc)
    ok = np.isfinite(v) & (e > 0)
    chi2 = float(np.sum(((v[ok] - target[ok]) / e[ok]) ** 2))
    return dict(u=cc.tolist(), value=v.tolist(), err=e.tolist(), amplitude=amp, amp_err=float(np.nanstd(boots)),
                u_peak=up, poly=p.tolist(), chi2=chi2, ndf=int(ok.sum()))  # fmt: skip


def rows(res: Mapping[str, dict]) -> list[Row]:
    """Amplitude rows of the ``response`` and ``containment`` profiles of :func:`measure`."""
    t_amp = T.eta_modulation_peak_to_edge()
    out = []
    for name, what in (("response", "E_cluster/E_true"), ("containment", "truth containment (noise/sampling free)")):
        r = res[name]
        ratio = r["amplitude"] / t_amp
        out.append(Row(
            SECTION,
            f"peak-to-edge of {what} vs u, e− 50 GeV abs(eta)<0.8",
            f"{pct(r['amplitude'])} ± {pct(r['amp_err'])}",
            pct(t_amp),
            "[S6] CaloSwEtamod_v4 3×7 (p0,p1,p2)=(0.99318, 1.4737, −54.72)",
            OK if 1 / FACTOR <= ratio <= FACTOR else DEV,
            f"ratio {ratio:.2f} (tolerance factor 2); max of fit at u={1e3 * r['u_peak']:.1f}e-3 (target {1e3 * 1.4737 / 109.44:.1f}e-3); shape χ²/ndf vs target {r['chi2']:.1f}/{r['ndf']}",
        ))  # fmt: skip
    return out


def _plot(v, res: Mapping[str, dict], w: float, nb: int, n: int) -> None:
    fig, ax = v.plt.subplots(figsize=(10, 6.5))
    g = np.linspace(0, w, 200)
    ax.errorbar(np.array(res["response"]["u"]) * 1e3, res["response"]["value"], yerr=res["response"]["err"],
                xerr=w / nb / 2 * 1e3, fmt="o", color=PAL[0],
                label=r"sim: $E_{cluster}/E_{true}$ (norm. to mean 1)")  # fmt: skip
    ax.errorbar(np.array(res["containment"]["u"]) * 1e3, res["containment"]["value"], yerr=res["containment"]["err"],
                fmt="s", mfc="none", color=PAL[2], label="sim: truth containment in cluster (norm.)")  # fmt: skip
    ax.plot(g * 1e3, T.eta_modulation(g), "-", color="k", label="[S6] CaloSwEtamod_v4, 3×7 e 50 GeV")
    ax.plot(g * 1e3, T.eta_modulation(g, T.ETAMOD_5x5_ELECTRON_50GEV), "--", color="grey", label="[S6] 5×5 e 50 GeV")
    ax.set_xlabel(r"Impact position in the L2 cell $u = |\eta_{calo}|$ mod 0.025  [$10^{-3}$]")
    ax.set_ylabel("Relative response")
    ax.set_xlim(0, w * 1e3)
    lo = min(0.985, np.nanmin(res["response"]["value"]) - 0.003)
    hi = max(1.01, np.nanmax(res["response"]["value"]) + 0.006)
    ax.set_ylim(lo, hi)
    ax.legend(fontsize=10, loc="lower center")
    v.label(ax, rf"e$^-$ 50 GeV, $|\eta|<0.8$, N = {n}")
    v.fig(SECTION, "eta_modulation.png", fig)


def run(v) -> None:
    """Add the section's results, figure and rows to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    d = v.data.get("etamod/electron")
    if d is None:
        return
    w = T.L2_CELL_DETA
    u = np.mod(eta_calo(d), w)
    resp = d["cluster_e"].astype(float) / d["truth_e"].astype(float)
    dep = d["truth_e_dep_cluster"].astype(float)
    cont = dep / (dep + d["truth_e_outside_cluster"].astype(float))
    nb = 10 if u.size >= 2000 else 5  # fewer bins for the quick samples (≥ 3 clusters per bin)
    edges = np.linspace(0, w, nb + 1)
    res = {name: measure(y, u, edges, v.nboot, v.rng) for name, y in (("response", resp), ("containment", cont))}
    v.results["eta_modulation"] = res
    _plot(v, res, w, nb, u.size)
    v.rows.extend(rows(res))
