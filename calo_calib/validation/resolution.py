"""Check family: the energy resolution at fixed (E, |η|, ⟨μ⟩) points against the ATLAS MC model.

Samples ``res/<particle>/mu<mu>/eta<eta>/E<e>`` (``resolution_particles`` × ``mus`` × ``eta_points`` ×
``energies`` of ``conf/validate.yaml``). Per point, a linear layer calibration E ≈ Σ w_i E_i without
intercept is fitted on the even-indexed clusters and σ_rel = IQR / (1.349 ⟨E/E_true⟩) evaluated on the
odd ones (bootstrap error); "scale only" is σ_rel of E_cluster/E_true. Target: the [S12] model, plus the
[S13] pile-up term at ⟨μ⟩ > 0 (:func:`calo_calib.validation.targets.resolution_model`); verdict OK if
|σ/model − 1| ≤ :data:`TOLERANCE` + 2σ_stat/model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from calo_calib.validation import targets as T
from calo_calib.validation.common import DEV, OK, PAL, Row, layers, pct, res_points, tag
from calo_calib.validation.metrics import (
    apply_linear_calibration,
    bootstrap_error,
    fit_linear_calibration,
    median_response,
    sigma_rel,
)

SECTION = "Energy resolution vs the ATLAS MC model"
TOLERANCE = 0.2  # relative, on sigma_rel(linear) / model [E]: a simple linear calibration lands "near" it (card §6)


def point(d: Mapping[str, np.ndarray], nboot: int, rng: np.random.Generator) -> dict:
    """σ_rel of one fixed-energy sample ``d`` (layer energies and ``truth_e`` [GeV], (N,) each).

    Returns ``sigma_lin``/``err_lin`` (linear calibration, fitted on the even, evaluated on the odd
    clusters), ``sigma_scale``/``err_scale`` (E_cluster/E_true), the ``weights`` (4,), the medians and
    ``n_eval``. Draws 2 × ``nboot`` bootstrap replicas from ``rng`` (linear first).
    """
    X = layers(d)
    y = d["truth_e"].astype(float)
    idx = np.arange(y.size)
    fit_m, ev_m = idx % 2 == 0, idx % 2 == 1
    w, c = fit_linear_calibration(X[fit_m], y[fit_m], intercept=False)
    r_lin = apply_linear_calibration(X[ev_m], w, c) / y[ev_m]
    r_raw = d["cluster_e"].astype(float)[ev_m] / y[ev_m]
    e_lin = bootstrap_error(sigma_rel, r_lin, nboot, rng)
    e_raw = bootstrap_error(sigma_rel, r_raw, nboot, rng)
    return dict(n_eval=int(ev_m.sum()), sigma_lin=sigma_rel(r_lin), err_lin=e_lin, sigma_scale=sigma_rel(r_raw),
                err_scale=e_raw, weights=w.tolist(), median_lin=median_response(r_lin),
                median_raw=median_response(r_raw))  # fmt: skip


def results(data: Mapping[str, dict], particles: Sequence[str], nboot: int, rng: np.random.Generator) -> list[dict]:
    """:func:`point` with ``particle``, ``mu``, ``eta``, ``e`` and the ``model`` σ_rel for every resolution
    sample of ``data``, sorted by (mu, eta, E) per particle (the bootstrap draws follow this order)."""
    out = []
    for particle in particles:
        for (mu, eta, e), d in sorted(res_points(data, particle).items()):
            r = point(d, nboot, rng)
            model = float(T.resolution_model(e, eta, mu))
            out.append({"particle": particle, "mu": mu, "eta": eta, "e": e, "n_eval": r["n_eval"],
                        "sigma_lin": r["sigma_lin"], "err_lin": r["err_lin"], "sigma_scale": r["sigma_scale"],
                        "err_scale": r["err_scale"], "model": model, "weights": r["weights"],
                        "median_lin": r["median_lin"], "median_raw": r["median_raw"]})  # fmt: skip
    return out


def within_band(ratio: float, err_ratio: float) -> bool:
    """σ_rel / model within ±:data:`TOLERANCE` of 1, allowing 2 × its statistical error ``err_ratio``."""
    return abs(ratio - 1) <= TOLERANCE + 2 * err_ratio


def rows(res: Sequence[dict]) -> list[Row]:
    """One row per point of :func:`results`: OK within ±:data:`TOLERANCE` (+2σ stat.), else DEVIATION
    with the direction (better or worse than the full-simulation model)."""
    out = []
    for r in res:
        ratio = r["sigma_lin"] / r["model"]
        source = "[S12] mc{Sampling,Noise,Constant}Term" + (
            " + [S13] pile-up √32·(60+40ln(E_T/10)/ln5) MeV" if r["mu"] > 0 else ""
        )
        err_ratio = r["err_lin"] / r["model"]
        if within_band(ratio, err_ratio):
            verdict, why = OK, "within ±20% (+2σ stat.)"
        elif ratio < 1:
            verdict, why = DEV, "BETTER than the ATLAS full-sim model (simulation may be too optimistic)"
        else:
            verdict, why = DEV, "WORSE than the ATLAS full-sim model"
        out.append(Row(
            SECTION,
            f"σ_rel {r['particle']} abs(eta)={r['eta']:g} E={r['e']:g} GeV mu={r['mu']:g}",
            f"{pct(r['sigma_lin'])} ± {pct(r['err_lin'])}",
            pct(r["model"]),
            source,
            verdict,
            f"ratio {ratio:.2f}, {why}; scale-only {pct(r['sigma_scale'])}",
        ))  # fmt: skip
    return out


# ================================================================================================
# Plots
# ================================================================================================


def _panel(ax, sel: list[dict], eta: float, mu: float, half_width: float) -> None:
    """σ_rel vs E at one |η| (``sel``: that |η|'s points sorted by E) with the model curve."""
    eg = np.geomspace(7, 700, 200)
    es = [r["e"] for r in sel]
    ax.errorbar(es, [100 * r["sigma_lin"] for r in sel], yerr=[100 * r["err_lin"] for r in sel], fmt="o",
                color=PAL[0], label="sim, linear layer calibration")  # fmt: skip
    ax.errorbar(es, [100 * r["sigma_scale"] for r in sel], yerr=[100 * r["err_scale"] for r in sel], fmt="s",
                mfc="none", color=PAL[1], label="sim, scale only")  # fmt: skip
    ax.plot(eg, 100 * T.resolution_model(eg, eta, mu), "-", color="k",
            label="ATLAS MC model [S12]" + (" + pile-up [S13]" if mu > 0 else ""))  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(6, 800)
    vals = [100 * r[k] for r in sel for k in ("sigma_lin", "sigma_scale")] + list(100 * T.resolution_model(eg, eta, mu))
    vals = [x for x in vals if np.isfinite(x) and x > 0]
    ax.set_ylim(min(vals) / 1.6, max(vals) * 2.5)
    ax.set_xlabel(r"$E_{true}$ [GeV]")
    ax.set_ylabel(r"$\sigma_{rel}$ [%]")
    tag(ax, rf"$|\eta|$ = {eta:g} ± {half_width:g}", "lower left")
    ax.legend(fontsize=10, loc="upper right")


def _ratio_panel(ax, rs: list[dict], etas: list[float]) -> None:
    """σ_rel(linear) / model vs E, one curve per |η| (slightly shifted in E to separate the error bars)."""
    for j, eta in enumerate(etas):
        sel = sorted([r for r in rs if r["eta"] == eta], key=lambda r: r["e"])
        ax.errorbar([r["e"] * (1 + 0.03 * j) for r in sel], [r["sigma_lin"] / r["model"] for r in sel],
                    yerr=[r["err_lin"] / r["model"] for r in sel], fmt="o-", color=PAL[j],
                    label=rf"$|\eta|$={eta:g}")  # fmt: skip
    ax.axhspan(0.8, 1.2, color="green", alpha=0.12, label="±20% band")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel(r"$E_{true}$ [GeV]")
    ax.set_ylabel(r"$\sigma_{rel}$(linear calib) / model")
    ax.legend(fontsize=9, ncol=2)


def _plot(v, particle: str, mu: float, rs: list[dict]) -> None:
    etas = sorted({r["eta"] for r in rs})
    ncol = 3
    nrow = math.ceil((len(etas) + 1) / ncol)
    fig, axes = v.plt.subplots(nrow, ncol, figsize=(20, 6.3 * nrow), squeeze=False)
    axes = axes.ravel()
    for ax, eta in zip(axes, etas):
        _panel(ax, sorted([r for r in rs if r["eta"] == eta], key=lambda r: r["e"]), eta, mu, v.cfg.eta_half_width)
    _ratio_panel(axes[len(etas)], rs, etas)
    for extra in axes[len(etas) + 1 :]:
        extra.set_visible(False)
    v.label(axes[0], rf"{particle}s, $\langle\mu\rangle$ = {mu:g}")
    fig.suptitle(
        r"$\sigma_{rel}$ = IQR / (1.349 $\langle E/E_{true}\rangle$); linear calibration fitted on one half, evaluated on the other",
        fontsize=14,
        y=1.04,
    )
    v.fig(SECTION, f"resolution_{particle}_mu{mu:g}.png", fig)


def run(v) -> None:
    """Add the section's results, figures and rows to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    res = results(v.data, v.cfg.resolution_particles, v.nboot, v.rng)
    v.results["resolution"] = res
    if not res:
        return
    for particle in v.cfg.resolution_particles:
        for mu in sorted({r["mu"] for r in res if r["particle"] == particle}):
            _plot(v, particle, mu, [r for r in res if r["particle"] == particle and r["mu"] == mu])
    v.rows.extend(rows(res))
