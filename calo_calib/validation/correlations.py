"""Check family: the upstream energy loss against the observables a calibration can use.

Samples: the 10 and 50 GeV ⟨μ⟩ = 0 electron resolution points and the 50 GeV photon samples
``corr/photon/eta<eta>``. Per sample (fixed E and |η|, so that the E and η dependence does not fake a
correlation), the Pearson r of the loss fraction (truth_e_lost_upstream + truth_e_lost_passive)/E_true
with f0 = E_PS/(E1+E2+E3), the shower depth X and E1/E2. Verdict OK if |r| of X and, with a
presampler, of f0 lie in :data:`~calo_calib.validation.targets.LOSS_CORRELATION_RANGE` (card §6
"strong but not one-to-one", our numeric reading [E]). The comment gives the linear E_lost vs E_PS fit.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from calo_calib.physics.observables import shower_depth
from calo_calib.validation import targets as T
from calo_calib.validation.common import DEV, OK, PAL, Row, binned, layers, res_points
from calo_calib.validation.metrics import pearson

SECTION = "Upstream energy loss vs observables"
PS_ETA_MAX = 1.8  # the presampler covers |eta| < 1.8: no f0 beyond


def loss_observables(d: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N,) arrays (loss/E_true, f0 = E_PS/E_acc, shower depth X [X0], E1/E2 (NaN where E2 = 0)) of a sample."""
    lost = (d["truth_e_lost_upstream"].astype(float) + d["truth_e_lost_passive"].astype(float)) / d["truth_e"].astype(
        float
    )
    L = layers(d)
    acc = L[:, 1:].sum(1)
    f0 = L[:, 0] / acc
    a = np.abs(d["cluster_eta"].astype(float))
    X = shower_depth(L, a)
    r12 = L[:, 1] / np.where(L[:, 2] != 0, L[:, 2], np.nan)
    return lost, f0, X, r12


def cases(data: Mapping[str, dict]) -> list[tuple[str, float, float, dict]]:
    """(particle, |η|, E [GeV], data) of the samples the section uses, in table order."""
    out = []
    for (mu, eta, e), d in sorted(res_points(data).items()):
        if mu == 0.0 and e in (10.0, 50.0):
            out.append(("electron", eta, e, d))
    for key, d in data.items():
        if key.startswith("corr/photon/"):
            out.append(("photon", float(key.split("eta")[1]), 50.0, d))
    return out


def check(particle: str, eta: float, e: float, d: Mapping[str, np.ndarray]) -> tuple[dict, Row]:
    """(result, row) of one sample: the correlations, the E_lost = offset + slope·E_PS fit [GeV] (NaN
    without a presampler) and the mean loss; photons add the truth-converted-only r to the comment."""
    lost, f0, X, r12 = loss_observables(d)
    r_f0, r_x, r_12 = pearson(lost, f0), pearson(lost, X), pearson(lost, r12)
    has_ps = np.nanmax(np.abs(d["cluster_e_ps"])) > 0 and eta < PS_ETA_MAX
    slope, off = (
        np.polyfit(d["cluster_e_ps"].astype(float), lost * d["truth_e"], 1) if has_ps else (float("nan"), float("nan"))
    )
    extra = ""
    if particle == "photon":
        cv = d["truth_converted"].astype(bool)
        if cv.sum() > 20:
            extra = f"; truth-converted only (N={cv.sum()}): r(f0) {pearson(lost[cv], f0[cv]):+.2f}, r(X) {pearson(lost[cv], X[cv]):+.2f} — the all-photon r is inflated by the converted/unconverted mixture"
    result = dict(particle=particle, eta=eta, e=e, r_f0=r_f0, r_depth=r_x, r_r12=r_12, slope=float(slope),
                  offset=float(off), mean_loss=float(np.mean(lost)))  # fmt: skip
    lo_r, hi_r = T.LOSS_CORRELATION_RANGE
    checks = [abs(r_x)] + ([abs(r_f0)] if has_ps else [])
    verdict = OK if all(lo_r <= c <= hi_r for c in checks) else DEV
    why = []
    if has_ps and abs(r_f0) < lo_r:
        why.append("corr with f0 weak")
    if has_ps and abs(r_f0) > hi_r:
        why.append("corr with f0 nearly one-to-one")
    if abs(r_x) < lo_r:
        why.append("corr with depth weak")
    if abs(r_x) > hi_r:
        why.append("corr with depth nearly one-to-one")
    row = Row(
        SECTION,
        f"Pearson r(loss/E, ·), {particle} {e:g} GeV abs(eta)={eta:g}",
        f"f0: {r_f0:+.2f}, X: {r_x:+.2f}, E1/E2: {r_12:+.2f}"
        if has_ps
        else f"f0: n/a (no PS), X: {r_x:+.2f}, E1/E2: {r_12:+.2f}",
        f"strong, not one-to-one (|r| in {lo_r:g}-{hi_r:g}); signs f0 +, X −, E1/E2 +",
        "[E] card §6 (our numeric reading)",
        verdict,
        ("; ".join(why) + "; " if why else "")
        + (f"E_lost = {off:.2f} GeV + {slope:.2f}·E_PS (§4.5 form)" if has_ps else "no PS")
        + f"; mean loss {100 * np.mean(lost):.1f}%"
        + extra,
    )
    return result, row


def _plot(v, show: list[tuple[str, float, float, dict]]) -> None:
    from matplotlib.colors import LogNorm

    fig, axes = v.plt.subplots(len(show), 2, figsize=(15, 5.2 * len(show)), squeeze=False)
    for (p, eta, e, d), (ax1, ax2) in zip(show, axes):
        lost, f0, X, _ = loss_observables(d)
        for ax, x, xl, r in (
            (ax1, f0, r"$f_0 = E_{PS}/(E_1+E_2+E_3)$", pearson(lost, f0)),
            (ax2, X, r"Shower depth $X$ [$X_0$]", pearson(lost, X)),
        ):
            ok = np.isfinite(x) & np.isfinite(lost)
            if ok.sum() < 10:
                continue
            xlo, xhi = np.percentile(x[ok], [0.5, 99.5])
            ylo, yhi = np.percentile(lost[ok], [0.5, 99.5])
            ax.hist2d(x[ok], 100 * lost[ok], bins=40, range=[[xlo, xhi], [100 * ylo, 100 * yhi]], cmap="Blues",
                      norm=LogNorm())  # fmt: skip
            cc, val, ee, _ = binned(x[ok], 100 * lost[ok], np.linspace(xlo, xhi, 16))
            ax.errorbar(cc, val, yerr=ee, fmt="o-", color=PAL[3], label=f"profile (mean); Pearson r = {r:+.2f}")
            ax.set_xlabel(xl)
            ax.set_ylabel(r"$(E_{lost,upstream}+E_{lost,passive})/E_{true}$ [%]")
            ax.legend(fontsize=10, loc="upper right")
            v.label(ax, rf"{p}s {e:g} GeV, $|\eta|$={eta:g}")
    v.fig(SECTION, "upstream_loss_correlation.png", fig)


def run(v) -> None:
    """Add the section's rows, results and figure to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    cs = cases(v.data)
    out = []
    for c in cs:
        result, row = check(*c)
        out.append(result)
        v.rows.append(row)
    v.results["loss_correlations"] = out
    show = [c for c in cs if c[2] == 50.0 and c[1] in (0.1, 0.9)]
    show = sorted(show, key=lambda c: (c[0], c[1]))[:4] or cs[:2]
    if show:
        _plot(v, show)
