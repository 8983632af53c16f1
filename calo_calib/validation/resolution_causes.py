"""Validation section: what makes the energy resolution deviate from the ATLAS MC model (a diagnosis).

The resolution check (:mod:`~calo_calib.validation.resolution`) compares σ_rel of a linear layer
calibration at fixed (E, |η|, ⟨μ⟩) with the [S12] model and flags the points outside ±20 %. This
section asks, for each such point, which term of the simulation's truth energy budget

    E_true = E_dep,cluster + E_outside,cluster + E_lost,upstream + E_lost,passive + E_leak,behind

makes the difference. A loss L is **put back** by refitting the same linear calibration (no intercept,
fitted on the even clusters, evaluated on the odd ones, as the resolution check does) to the target
E_true − L, the energy the cluster would have measured without that loss, and evaluating
σ_rel of Ê / (E_true − L). With every loss put back, what is left is the floor of the sampling and
the noise. Reading:

* a point **worse** than the model is *explained by L* when putting L back brings σ_rel inside the
  ±20 % band (2σ statistical allowance) and no other single loss does so with a smaller σ_rel;
* for a point **better** than the model, the losses' share σ_loss = √(σ² − σ_floor²) is compared with
  the share the model leaves after the same floor, √(model² − σ_floor²); the material probes
  (``resolution_causes.material_probes``, simulated with ``detector.material.scale`` =
  ``resolution_causes.material_scale``) show how far more upstream material moves σ_rel, and the
  ``resolution_causes.variant_probes`` ([variant, E, |η|]) how far a data-like detector variant of
  ``conf/detector/`` (e.g. the φ-structured services of ``material_phi``) moves it.

Nothing here is a target: the rows are INFO, and the section changes no simulation parameter.
"""

from __future__ import annotations

import numpy as np

from calo_calib.validation import targets as T
from calo_calib.validation.common import INFO, PAL, Row, layers, pct, res_points, tag
from calo_calib.validation.metrics import apply_linear_calibration, bootstrap_error, fit_linear_calibration, sigma_rel
from calo_calib.validation.resolution import TOLERANCE, within_band
from calo_calib.validation.samples import Sample, fixed_overrides

SECTION = "Causes of the resolution deviations (diagnosis)"
LOSSES = {
    "outside": ("truth_e_outside_cluster", "outside the cluster"),
    "upstream": ("truth_e_lost_upstream", "upstream"),
    "passive": ("truth_e_lost_passive", "passive PS→accordion"),
    "leak": ("truth_e_leak_behind", "leakage behind"),
}
"""Put-back terms: key -> (truth column, label)."""
BREM_SPLIT = (0.1, 0.5)  # truth brem fraction: "little" below, "most of the energy" above
MIN_TARGET = 0.2  # put-back targets below this fraction of E_true are left out (see put_back)
SEED_SALT = 0x5E5  # the section's bootstrap stream: SeedSequence([cfg.seed, SEED_SALT])


def _split(n: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(n)
    return idx % 2 == 0, idx % 2 == 1


def put_back(d: dict, subtract: np.ndarray | None) -> np.ndarray:
    """E_reco / E_target of the odd clusters: linear layer calibration refitted to E_target = truth_e − ``subtract``.

    ``d``: a fixed-point sample (layer energies and truth columns [GeV], (N,) each); ``subtract``: (N,)
    [GeV] or ``None`` (the resolution check's own calibration). Clusters whose target is below
    :data:`MIN_TARGET` × E_true are left out of the fit and the evaluation. Returns (≤ N_odd,).
    """
    X = layers(d)
    y = d["truth_e"].astype(np.float64)
    target = y - (0.0 if subtract is None else subtract)
    fit, ev = _split(target.size)
    # A target near 0 (a cluster that kept almost nothing of E_true) would dominate the mean response.
    keep = target > MIN_TARGET * y
    fit, ev = fit & keep, ev & keep
    w, c = fit_linear_calibration(X[fit], target[fit], intercept=False)
    return apply_linear_calibration(X[ev], w, c) / target[ev]


def decompose(d: dict, nboot: int, rng: np.random.Generator) -> dict:
    """σ_rel (and bootstrap error) of one sample: nominal, each loss of :data:`LOSSES` put back, all put back.

    Also the mean and standard deviation of each loss / E_true and the cluster noise / E_true
    (``cluster_noise`` = √Σσ²_cell). Fractions throughout.
    """
    y = d["truth_e"].astype(np.float64)
    out: dict = {}
    terms = {"nominal": None, **{k: d[col].astype(np.float64) for k, (col, _) in LOSSES.items()}}
    terms["all"] = sum(d[col].astype(np.float64) for col, _ in LOSSES.values())
    for name, sub in terms.items():
        r = put_back(d, sub)
        out[name] = (sigma_rel(r), bootstrap_error(sigma_rel, r, nboot, rng))
    out["loss_mean"] = {k: float(np.mean(d[col] / y)) for k, (col, _) in LOSSES.items()}
    out["loss_std"] = {k: float(np.std(d[col] / y)) for k, (col, _) in LOSSES.items()}
    out["noise"] = float(np.median(d["cluster_noise"] / y)) if "cluster_noise" in d else float("nan")
    if "truth_brem_fraction" in d:  # is the energy outside the cluster brem energy?
        brem, outside = d["truth_brem_fraction"], d["truth_e_outside_cluster"] / y
        soft, hard = brem < BREM_SPLIT[0], brem > BREM_SPLIT[1]
        out["outside_by_brem"] = [float(outside[m].mean()) if m.any() else float("nan") for m in (soft, hard)]
        out["hard_brem_fraction"] = float(hard.mean())
    return out


def diagnosis(r: dict) -> str:
    """The cause sentence of one point of :func:`results` (``r``: its decomposition plus ``model``)."""
    model, (s, _) = r["model"], r["nominal"]
    if s > model:
        inside = [k for k in LOSSES if within_band(r[k][0] / model, r[k][1] / model)]
        best = min(LOSSES, key=lambda k: r[k][0])
        if inside:
            k = min(inside, key=lambda k: r[k][0])
            text = (f"explained by the loss {LOSSES[k][1]}: put back, σ_rel {pct(r[k][0])} = "
                    f"{r[k][0] / model:.2f} × model (loss {pct(r['loss_mean'][k], 1)} ± {pct(r['loss_std'][k], 1)} of E)")  # fmt: skip
            if k == "outside" and "outside_by_brem" in r:
                lo, hi = r["outside_by_brem"]
                text += (f"; outside the cluster {pct(lo, 1)} of E for brem fraction < {BREM_SPLIT[0]:g}, "
                         f"{pct(hi, 1)} for > {BREM_SPLIT[1]:g} ({pct(r['hard_brem_fraction'], 0)} of the electrons)")  # fmt: skip
            return text
        return (f"no single loss closes it; the largest step is {LOSSES[best][1]} ({pct(r[best][0])}, loss "
                f"{pct(r['loss_mean'][best], 1)} ± {pct(r['loss_std'][best], 1)}); all put back {pct(r['all'][0])}")  # fmt: skip
    floor = r["all"][0]
    share = np.sqrt(max(s**2 - floor**2, 0.0))
    need = np.sqrt(max(model**2 - floor**2, 0.0))
    return (f"floor (all losses put back) {pct(floor)}; the losses add {pct(share)} in quadrature, the model "
            f"leaves {pct(need)} for them ({need / share:.1f}×)" if share > 0 else f"floor {pct(floor)}")  # fmt: skip


def results(v) -> list[dict]:
    """:func:`decompose` of every resolution point of ``v.data`` with ``particle``, ``mu``, ``eta``, ``e``, ``model``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(v.cfg.seed), SEED_SALT]))
    # The resolution check's own bootstrap error decides which points deviate, so that this section
    # lists exactly the points the check flags (its σ_rel is the same number as "nominal" here).
    check = {(c["particle"], c["mu"], c["eta"], c["e"]): c["err_lin"] for c in v.results["resolution"]}
    out = []
    for particle in v.cfg.resolution_particles:
        for (mu, eta, e), d in sorted(res_points(v.data, particle).items()):
            r = decompose(d, v.nboot, rng)
            r.update(particle=particle, mu=mu, eta=eta, e=e, model=float(T.resolution_model(e, eta, mu)))
            r["check_err"] = check[(particle, mu, eta, e)]
            out.append(r)
    return out


def _deviates(r: dict) -> bool:
    return not within_band(r["nominal"][0] / r["model"], r["check_err"] / r["model"])


def rows(res: list[dict]) -> list[Row]:
    """One INFO row per deviating point of :func:`results`: σ_rel with each loss put back and the diagnosis."""
    out = []
    for r in res:
        if not _deviates(r):
            continue
        steps = ", ".join(f"{k} {pct(r[k][0])}" for k in (*LOSSES, "all"))
        out.append(Row(
            SECTION,
            f"σ_rel {r['particle']} |η|={r['eta']:g} E={r['e']:g} GeV ⟨μ⟩={r['mu']:g}: losses put back",
            f"{pct(r['nominal'][0])} → {steps}",
            f"model {pct(r['model'])}",
            "[S12] (+[S13]); truth energy budget of the simulation",
            INFO,
            diagnosis(r) + f"; cluster noise {pct(r['noise'])} of E",
        ))  # fmt: skip
    return out


def samples(cfg) -> list[Sample]:
    """Electrons at the material probe points with ``detector.material.scale`` = ``material_scale`` and at the
    variant probe points with ``detector=<variant>`` (μ = 0)."""
    sec = cfg.get("resolution_causes", {})
    if not sec.get("enabled", True):
        return []
    s = cfg.quick_sizes if cfg.quick else cfg
    scale = float(sec.get("material_scale", 1.5))
    out = []
    for e, eta in sec.get("material_probes", []):
        out.append(Sample(
            f"rescause/electron/material{scale:g}/eta{float(eta):g}/E{float(e):g}", "resolution_causes",
            fixed_overrides("electron", float(e), float(eta), float(cfg.eta_half_width), 0.0)
            + [f"detector.material.scale={scale:g}"] + list(cfg.sim_overrides or []),
            int(s.n_per_point), {"particle": "electron", "e": float(e), "eta": float(eta), "scale": scale},
        ))  # fmt: skip
    for variant, e, eta in sec.get("variant_probes", []):
        out.append(Sample(
            f"rescause/electron/variant-{variant}/eta{float(eta):g}/E{float(e):g}", "resolution_causes",
            fixed_overrides("electron", float(e), float(eta), float(cfg.eta_half_width), 0.0)
            + [f"detector={variant}"] + list(cfg.sim_overrides or []),
            int(s.n_per_point), {"particle": "electron", "e": float(e), "eta": float(eta), "variant": str(variant)},
        ))  # fmt: skip
    return out


def probe_rows(v, res: list[dict], rng: np.random.Generator) -> list[Row]:
    """σ_rel at ×material against the nominal point and the model (INFO)."""
    out = []
    nominal = {(r["eta"], r["e"]): r for r in res if r["mu"] == 0 and r["particle"] == "electron"}
    for key, d in sorted(v.data.items()):
        if not key.startswith("rescause/electron/"):
            continue
        _, _, mat, eta, e = key.split("/")
        variant = mat[len("variant-") :] if mat.startswith("variant-") else None
        scale = None if variant else float(mat[len("material") :])
        eta, e = float(eta[3:]), float(e[1:])
        r_probe = decompose(d, v.nboot, rng)
        base = nominal.get((eta, e))
        model = float(T.resolution_model(e, eta, 0.0))
        s, err = r_probe["nominal"]
        s0 = base["nominal"][0] if base else float("nan")
        up0 = base["loss_mean"]["upstream"] + base["loss_mean"]["passive"] if base else float("nan")
        up = r_probe["loss_mean"]["upstream"] + r_probe["loss_mean"]["passive"]
        out.append(Row(
            SECTION,
            f"σ_rel electron |η|={eta:g} E={e:g} GeV ⟨μ⟩=0 "
            + (f"with the {variant} detector variant" if variant else f"with ×{scale:g} upstream material"),
            f"{pct(s)} ± {pct(err)} (nominal material {pct(s0)})",
            f"model {pct(model)}",
            f"[S12]; detector={variant} probe (an [E] variant)" if variant else "[S12]; detector.material.scale probe",
            INFO,
            f"{s / model:.2f} × model (nominal {s0 / model:.2f}×); mean upstream + passive loss {pct(up0, 1)} → "
            f"{pct(up, 1)} of E",
        ))  # fmt: skip
        v.results.setdefault("resolution_causes_probes", []).append(
            {"eta": eta, "e": e, "scale": scale, "variant": variant, "sigma": s, "err": err, "sigma_nominal": s0, "model": model}
        )
    return out


def _plot(v, res: list[dict]) -> None:
    """σ_rel / model of every deviating point: nominal and with each loss put back (the ±20 % band shaded)."""
    dev = [r for r in res if _deviates(r)]
    if not dev:
        return
    fig, ax = v.plt.subplots(figsize=(14, 6.5))
    x = np.arange(len(dev))
    names = ("nominal", *LOSSES, "all")
    width = 0.8 / len(names)
    labels = {
        "nominal": "as simulated",
        "all": "all losses put back",
        **{k: f"{lab} put back" for k, (_, lab) in LOSSES.items()},
    }
    for j, name in enumerate(names):
        ax.bar(x + (j - len(names) / 2 + 0.5) * width, [r[name][0] / r["model"] for r in dev], width,
               yerr=[r[name][1] / r["model"] for r in dev], color=PAL[j % len(PAL)], label=labels[name])  # fmt: skip
    ax.axhspan(1 - TOLERANCE, 1 + TOLERANCE, color="green", alpha=0.12, label="±20% of the model")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xticks(x, [f"{r['e']:g} GeV\n|η|={r['eta']:g}\nμ={r['mu']:g}" for r in dev], fontsize=10)
    ax.set_ylabel(r"$\sigma_{rel}$ / ATLAS MC model")
    ax.legend(fontsize=9, ncol=3, loc="upper left")
    tag(ax, "electrons, linear layer calibration refitted to $E_{true} - L$", "upper right", fontsize=11)
    v.fig(SECTION, "resolution_causes.png", fig)


def run(v) -> None:
    """Add the section's results, figure and rows to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    if not v.cfg.get("resolution_causes", {}).get("enabled", True):
        return
    res = results(v)
    if not res:
        return
    v.results["resolution_causes"] = [
        {k: (list(val) if isinstance(val, tuple) else val) for k, val in r.items()} for r in res
    ]
    _plot(v, res)
    v.rows.extend(rows(res))
    rng = np.random.default_rng(np.random.SeedSequence([int(v.cfg.seed), SEED_SALT, 1]))
    v.rows.extend(probe_rows(v, res, rng))
