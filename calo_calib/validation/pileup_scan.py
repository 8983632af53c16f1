"""Validation section: electron σ_rel versus ⟨μ⟩ against the card's cluster pile-up term.

Samples (built here, appended to the report's samples by :mod:`calo_calib.validation.sections`):
electrons at fixed E_T (``pileup_scan.e_t``, default 20 and 40 GeV; E = E_T cosh η), |η| < 0.8, fixed ⟨μ⟩
for every ⟨μ⟩ of ``pileup_scan.mus`` (default 0, 20, 40, 60, 80); size ``n_pu_scan``.

Methods, each evaluated per sample on the odd-indexed clusters:

* **raw**: E_cluster (σ_rel is scale-free, so a per-sample response correction does not change it);
* **linear**: the per-sample optimal linear layer weighting E ≈ Σ w_i E_i over (PS, L1, L2, L3),
  fitted without intercept on the even-indexed clusters (as the report's resolution section);
* **oracle**: E_oracle = (E_L1 + E_L2 + E_L3) − truth_e_dep_cluster + E_true
  (:func:`calo_calib.evaluation.predictions.oracle_energy`: every truth loss restored; the noise and
  pile-up in the cells stay, so the oracle's σ_rel grows with ⟨μ⟩ by the pile-up term alone).

Expectation per method: σ_exp(μ) = √(σ(0)² + (σ_pu(E_T, μ)/E_T)²) with σ(0) the same method's σ_rel at
⟨μ⟩ = 0 and σ_pu = √⟨μ⟩ (60 + 40 ln(E_T/10)/ln 5) MeV, E_T clamped to [5, 50] GeV
(detector_card.md §4.1 [S13], :func:`calo_calib.physics.resolution.pileup_noise_run2`). Verdict on
σ_rel(μ)/σ_exp(μ) within ±:data:`TOLERANCE` (+2σ statistical, bootstrap) for the linear calibration and
the oracle; raw is INFO. The comment gives the pile-up term the simulation implies,
E_T √(σ(μ)² − σ(0)²), against [S13]. [S13] is the Run-2 term of the ATLAS calibrated cluster
(a 3×7 window); the simulated cluster is the egamma supercluster of the topo-cluster cells.
"""

from __future__ import annotations

import math

import numpy as np

from calo_calib.physics.resolution import pileup_noise_run2

SECTION = "Electron resolution vs ⟨μ⟩ (cluster pile-up term)"
SRC = "[S13] √μ·(60+40ln(E_T/10)/ln5) MeV ⊕ σ(μ=0) (detector_card.md §4.1)"
TOLERANCE = 0.10  # relative, on sigma_rel(mu) / expectation [E]
LAYER_COLS = ("cluster_e_ps", "cluster_e_l1", "cluster_e_l2", "cluster_e_l3")
METHODS = ("raw", "linear", "oracle")


def _section_cfg(cfg):
    c = cfg.get("pileup_scan") if hasattr(cfg, "get") else None
    if c is None or not bool(c.get("enabled", True)):
        return None
    return c


def _mus(c) -> list[float]:
    return sorted({0.0} | {float(m) for m in c.get("mus", [0, 20, 40, 60, 80])})


def _key(e_t: float, mu: float) -> str:
    return f"puscan/electron/et{e_t:g}/mu{mu:g}"


def samples(cfg) -> list:
    from calo_calib.validation.samples import Sample

    c = _section_cfg(cfg)
    if c is None:
        return []
    s = cfg.quick_sizes if cfg.quick else cfg
    n = int(s.get("n_pu_scan", 3000))
    eta_max = float(c.get("abs_eta_max", 0.8))
    extra = list(cfg.get("sim_overrides") or [])
    out = []
    for e_t in [float(e) for e in c.get("e_t", [20, 40])]:
        for mu in _mus(c):
            ov = [
                "particle=electron",
                "gun.spectrum=flat_et",
                f"gun.e_min={e_t:g}",
                f"gun.e_max={e_t:g}",
                "gun.abs_eta_min=0",
                f"gun.abs_eta_max={eta_max:g}",
                f"mu={mu:g}",
                "pileup.mu_rel_sigma=0",
            ]
            out.append(
                Sample(
                    _key(e_t, mu),
                    "pileup_scan",
                    ov + extra,
                    n,
                    {"particle": "electron", "e_t": e_t, "mu": mu, "e": e_t},
                )
            )
    return out


def responses(d: dict) -> dict[str, np.ndarray]:
    """E_reco/E_true of the evaluation half (odd-indexed clusters) for every method of :data:`METHODS`."""
    from calo_calib.evaluation.predictions import oracle_energy
    from calo_calib.validation.metrics import apply_linear_calibration, fit_linear_calibration

    y = np.asarray(d["truth_e"], dtype=np.float64)
    X = np.stack([np.asarray(d[c], dtype=np.float64) for c in LAYER_COLS], axis=-1)
    idx = np.arange(y.size)
    fit, ev = idx % 2 == 0, idx % 2 == 1
    w, c0 = fit_linear_calibration(X[fit], y[fit], intercept=False)
    truth = {
        k: np.asarray(d[k], dtype=np.float64)
        for k in ("cluster_e_l1", "cluster_e_l2", "cluster_e_l3", "truth_e_dep_cluster", "truth_e")
    }
    return {
        "raw": np.asarray(d["cluster_e"], dtype=np.float64)[ev] / y[ev],
        "linear": apply_linear_calibration(X[ev], w, c0) / y[ev],
        "oracle": oracle_energy(truth)[ev] / y[ev],
    }


def expected(sigma0: float, e_t: float, mu) -> np.ndarray:
    """σ_exp(μ) = √(σ(0)² + (σ_pu(E_T, μ)/E_T)²) (module docstring)."""
    return np.sqrt(sigma0**2 + (pileup_noise_run2(e_t, np.asarray(mu, dtype=np.float64)) / e_t) ** 2)


def implied_pileup(sigma_mu: float, sigma0: float, e_t: float) -> float:
    """E_T √(σ(μ)² − σ(0)²) in GeV (NaN when σ(μ) < σ(0))."""
    d = sigma_mu**2 - sigma0**2
    return float(e_t * math.sqrt(d)) if d >= 0 else float("nan")


def run(v) -> None:
    from calo_calib.validation.common import DEV, INFO, OK, PAL
    from calo_calib.validation.metrics import bootstrap_error, sigma_rel

    c = _section_cfg(v.cfg)
    if c is None:
        return
    mus = _mus(c)
    ets = [float(e) for e in c.get("e_t", [20, 40])]
    ets = [e for e in ets if all(_key(e, m) in v.data for m in mus)]
    if not ets:
        return
    nboot = int(v.nboot)
    res: dict = {}
    for e_t in ets:
        pts = []
        for mu in mus:
            r = responses(v.data[_key(e_t, mu)])
            pt = {"mu": mu, "n_eval": int(r["raw"].size)}
            for m in METHODS:
                pt[m] = float(sigma_rel(r[m]))
                pt[m + "_err"] = bootstrap_error(sigma_rel, r[m], nboot, v.rng)
            pts.append(pt)
        ref = pts[0]
        for pt in pts:
            for m in METHODS:
                exp = float(expected(ref[m], e_t, pt["mu"]))
                pt[m + "_expected"] = exp
                pt[m + "_implied_pu_gev"] = implied_pileup(pt[m], ref[m], e_t)
        res[f"{e_t:g}"] = pts
        for pt in pts[1:]:
            card = float(pileup_noise_run2(e_t, pt["mu"]))
            for m in METHODS:
                exp = pt[m + "_expected"]
                ratio = pt[m] / exp
                # error of the ratio: sigma(mu) and the mu=0 reference (through the expectation)
                d_exp = ref[m] * ref[m + "_err"] / exp if np.isfinite(ref[m + "_err"]) else 0.0
                err = math.hypot(np.nan_to_num(pt[m + "_err"]) / exp, ratio * d_exp / exp)
                ok = abs(ratio - 1) <= TOLERANCE + 2 * err
                verdict = INFO if m == "raw" else (OK if ok else DEV)
                implied = pt[m + "_implied_pu_gev"]
                v.row(
                    SECTION,
                    f"σ_rel {m}, electron E_T={e_t:g} GeV abs(eta)<{float(c.get('abs_eta_max', 0.8)):g} mu={pt['mu']:g}",
                    f"{100 * pt[m]:.2f}% ± {100 * np.nan_to_num(pt[m + '_err']):.2f}%",
                    f"{100 * exp:.2f}% (σ(0) = {100 * ref[m]:.2f}%, σ_pu = {1000 * card:.0f} MeV)",
                    SRC,
                    verdict,
                    f"ratio {ratio:.2f} ± {err:.2f} (tol. ±{100 * TOLERANCE:.0f}%); implied pile-up term "
                    + (
                        "n/a" if not np.isfinite(implied) else f"{1000 * implied:.0f} MeV ({implied / card:.2f}× [S13])"
                    ),
                )
    v.results["pileup_scan"] = res
    v.note(
        SECTION,
        "Electrons at fixed E_T, |η| < 0.8, fixed ⟨μ⟩. raw = E_cluster; linear = per-sample layer weights fitted "
        "(no intercept) on the even-indexed clusters, evaluated on the odd ones; oracle = E_acc − truth_e_dep_cluster "
        "+ E_true (noise and pile-up kept). Expectation: the method's own ⟨μ⟩ = 0 σ_rel ⊕ σ_pu/E_T [S13]. "
        f"Verdict on σ_rel/expectation within ±{100 * TOLERANCE:.0f}% (+2σ stat.); raw is INFO.",
    )
    _plot(v, ets, res, c, PAL)


def _plot(v, ets, res, c, PAL) -> None:
    plt = v.plt
    fig, axes = plt.subplots(1, len(ets) + 1, figsize=(8.5 * (len(ets) + 1), 6.5), squeeze=False)
    fig.subplots_adjust(wspace=0.3)
    axes = axes.ravel()
    mg = np.linspace(0, max(p["mu"] for p in res[f"{ets[0]:g}"]) * 1.05, 100)
    styles = {"raw": ("s", PAL[1]), "linear": ("o", PAL[0]), "oracle": ("*", "k")}
    for ax, e_t in zip(axes, ets):
        pts = res[f"{e_t:g}"]
        mus = np.array([p["mu"] for p in pts])
        for m in METHODS:
            mk, col = styles[m]
            ax.errorbar(mus, [100 * p[m] for p in pts], yerr=[100 * np.nan_to_num(p[m + "_err"]) for p in pts], fmt=mk,
                        color=col, mfc="none" if m == "raw" else col, label=f"{m}")  # fmt: skip
            ax.plot(mg, 100 * expected(pts[0][m], e_t, mg), "--", color=col, lw=1.2)
        ax.plot([], [], "k--", lw=1.2, label=r"$\sigma(0) \oplus \sigma_{pu}/E_T$ [S13]")
        ax.set_xlabel(r"$\langle\mu\rangle$")
        ax.set_ylabel(r"$\sigma_{rel}$ = IQR/(1.349 mean) [%]")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)
        ax.legend(fontsize=10, loc="upper left", title=rf"electrons, $E_T$ = {e_t:g} GeV", title_fontsize=11)
    ax = axes[len(ets)]
    for j, e_t in enumerate(ets):
        pts = res[f"{e_t:g}"][1:]
        mus = np.array([p["mu"] for p in pts])
        for m, mk in (("linear", "o"), ("oracle", "*")):
            ax.plot(mus, [1000 * p[m + "_implied_pu_gev"] for p in pts], mk, color=PAL[j + 2],
                    mfc="none" if m == "oracle" else PAL[j + 2], label=rf"{m}, $E_T$={e_t:g} GeV")  # fmt: skip
        ax.plot(
            mg, 1000 * pileup_noise_run2(e_t, mg), "-", color=PAL[j + 2], lw=1.2, label=rf"[S13], $E_T$={e_t:g} GeV"
        )
    ax.set_xlabel(r"$\langle\mu\rangle$")
    ax.set_ylabel(r"implied pile-up term $E_T$·√($\sigma^2(\mu)-\sigma^2(0)$) [MeV]")
    ax.legend(fontsize=9, loc="upper left")
    v.label(axes[0], rf"$|\eta|<{float(c.get('abs_eta_max', 0.8)):g}$")
    v.fig(SECTION, "pileup_scan_electron.png", fig)
