"""Check family: the photon conversion probability and the reconstructed conversion fraction vs |η|.

Sample ``scan/photon`` (log-uniform 5-500 GeV, |η| < 2.47, ⟨μ⟩ = 0). Target: P = 1 − exp(−7 X_ID/9)
with X_ID the config's material table (:func:`calo_calib.validation.targets.conversion_probability`,
card §2.2 [E], [R-PDG]); verdict on |P_sim − P| ≤ max(3σ, 0.015) per |η| window (0.01 overall).
The reconstructed fraction (``conversion_type > 0``) is compared with a rough [E] expectation
from the config's efficiency vs radius and fake rate: INFO.
"""

from __future__ import annotations

import math

import numpy as np

from calo_calib.validation import targets as T
from calo_calib.validation.common import DEV, INFO, OK, PAL, Row, abs_eta_edges, binned

SECTION = "Photon conversions"
WINDOWS = ((0.0, 0.2), (0.4, 0.6), (0.8, 1.0), (1.1, 1.3), (1.55, 1.75), (1.9, 2.1), (2.2, 2.47))
"""|η| windows of the table rows (representative of barrel, crack neighbourhood and end-cap)."""


def profile(a: np.ndarray, conv: np.ndarray, reco: np.ndarray, p_t: np.ndarray, p_r: np.ndarray) -> dict:
    """Binned fractions in 0.1-wide |η| bins.

    ``a`` (N,) truth |η|; ``conv``/``reco`` (N,) 0/1 truth-converted / reconstructed-as-converted;
    ``p_t``/``p_r`` (N,) per-photon target probability / expected reconstructed fraction. Returns
    lists (per bin) ``eta``, ``truth``, ``reco``, ``target``, ``reco_expected``, ``n`` and the binomial
    errors ``truth_err``, ``reco_err`` (floored at √(1e-4/n) so empty-ish bins get a visible bar).
    """
    edges = abs_eta_edges(0.1)
    c, fc, ec, n = binned(a, conv, edges)
    _, fr, er, _ = binned(a, reco, edges)
    _, tc, _, _ = binned(a, p_t, edges)
    _, tr, _, _ = binned(a, p_r, edges)
    ec = np.sqrt(np.clip(fc * (1 - fc), 1e-4, None) / np.maximum(n, 1))
    er = np.sqrt(np.clip(fr * (1 - fr), 1e-4, None) / np.maximum(n, 1))
    return {
        "eta": c.tolist(),
        "truth": fc.tolist(),
        "reco": fr.tolist(),
        "target": tc.tolist(),
        "reco_expected": tr.tolist(),
        "n": n.tolist(),
        "truth_err": ec,
        "reco_err": er,
    }


def rows(a: np.ndarray, conv: np.ndarray, reco: np.ndarray, p_t: np.ndarray, p_r: np.ndarray) -> list[Row]:
    """Table rows (arrays as in :func:`profile`): per :data:`WINDOWS` window with ≥ 20 photons a truth
    row (OK/DEVIATION) and a reconstructed row (INFO), then the all-|η| truth row."""
    out = []
    for lo, hi in WINDOWS:
        m = (a >= lo) & (a < hi)
        if m.sum() < 20:
            continue
        f, t = conv[m].mean(), p_t[m].mean()
        e = math.sqrt(max(f * (1 - f), 1e-4) / m.sum())
        pull = (f - t) / e
        ok = abs(f - t) <= max(3 * e, 0.015)
        out.append(Row(
            SECTION,
            f"P_conv truth, {lo:g} < abs(eta) < {hi:g}",
            f"{f:.3f} ± {e:.3f}",
            f"{t:.3f}",
            "[E] card §2.2 table, [R-PDG] 1-exp(-7X/9)",
            OK if ok else DEV,
            f"pull {pull:+.1f} (tolerance max(3σ, 0.015))",
        ))  # fmt: skip
        fr_m, tr_m = reco[m].mean(), p_r[m].mean()
        out.append(Row(
            SECTION,
            f"reco conversion fraction, {lo:g} < abs(eta) < {hi:g}",
            f"{fr_m:.3f} ± {math.sqrt(max(fr_m * (1 - fr_m), 1e-4) / m.sum()):.3f}",
            f"≈{tr_m:.3f}",
            "[E] derived from config eff(R), fake rate",
            INFO,
            f"reco/truth = {fr_m / max(f, 1e-9):.2f}; expected ≈ {tr_m / max(t, 1e-9):.2f} (rough: no pT thresholds, barrel radii)",
        ))  # fmt: skip
    f, t = conv.mean(), p_t.mean()
    e = math.sqrt(f * (1 - f) / conv.size)
    out.append(Row(
        SECTION,
        "P_conv truth, all abs(eta) < 2.47",
        f"{f:.3f} ± {e:.3f}",
        f"{t:.3f}",
        "[E] card §2.2, [R-PDG]",
        OK if abs(f - t) <= max(3 * e, 0.01) else DEV,
        f"pull {(f - t) / e:+.1f}; card quotes a 20-65% range [E]",
    ))  # fmt: skip
    return out


def _plot(v, prof: dict, n_photons: int) -> None:
    plt = v.plt
    c, fc, fr = np.asarray(prof["eta"]), np.asarray(prof["truth"]), np.asarray(prof["reco"])
    fig, ax = plt.subplots(figsize=(9, 6.5))
    ax.errorbar(c, fc, yerr=prof["truth_err"], xerr=0.05, fmt="o", color=PAL[0],
                label="simulated: truth converted (R < 800 mm)")  # fmt: skip
    ax.errorbar(c, fr, yerr=prof["reco_err"], xerr=0.05, fmt="s", color=PAL[1], mfc="none",
                label="simulated: reconstructed (conversion_type > 0)")  # fmt: skip
    g = np.linspace(0, 2.47, 300)
    ax.plot(g, T.conversion_probability(g, v.det), "-", color=PAL[0],
            label=r"target $1-e^{-7X_{ID}/9}$ (card §2.2 [E], [R-PDG])")  # fmt: skip
    ax.plot(g, T.expected_reco_conversion_fraction(g, v.det), "--", color=PAL[1],
            label="expected reco (config eff(R) + fakes) [E]")  # fmt: skip
    ax.set_xlabel(r"Truth $|\eta|$")
    ax.set_ylabel("Fraction of photons")
    ax.set_xlim(0, 2.5)
    ax.set_ylim(0, 1.0)
    ax.legend(loc="upper left", fontsize=11)
    v.label(ax, f"photons, 5-500 GeV, N = {n_photons}")
    v.fig(SECTION, "conversion_fraction.png", fig)


def run(v) -> None:
    """Add the section's results, figure and rows to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    d = v.data.get("scan/photon")
    if d is None:
        return
    a = np.abs(d["truth_eta"].astype(float))
    conv = d["truth_converted"].astype(float)
    reco = (d["conversion_type"].astype(int) > 0).astype(float)
    p_t = T.conversion_probability(a, v.det)
    p_r = T.expected_reco_conversion_fraction(a, v.det)
    prof = profile(a, conv, reco, p_t, p_r)
    v.results["conversion"] = {k: prof[k] for k in ("eta", "truth", "reco", "target", "reco_expected", "n")}
    _plot(v, prof, a.size)
    v.rows.extend(rows(a, conv, reco, p_t, p_r))
