"""Validation section: f1 and f3 against the GFlash profile that makes them, and that profile's tail (a diagnosis).

Two shower-shape deviations are longitudinal: f1 of unconverted photons (0.12 against ≈ 0.27) and f3
(≈ 0.001 against 0.01–0.03). This section asks, for each, whether the simulation reproduces its own
model (the fluctuated GFlash sampling profile [S7] integrated over the configured layer boundaries
[S3]) and, if it does, what in the model or in the target makes the gap.

* **f1 = E_L1 / E_acc** (accordion only, so the presampler's EM scale does not enter) of the ⟨μ⟩ = 0
  shower-shape samples next to the GFlash expectation for the same truth E and |η|: electron showers
  start at the end of the inner detector (X_ID, :mod:`calo_calib.simulation.upstream`), photons that
  did not convert in it at X_ID + Exp(9/7 X0) (the PDG mean free path, memoryless). The strips are
  3.8 X0 deep at η = 0, so a start ~1.3 X0 later removes a large part of their share.
* **f3 = E_L3 / E_cluster** and the truth leakage behind the calorimeter next to the GFlash content of
  the whole back layer and beyond it: if they agree, f3 is what GFlash puts between the [S3]
  middle/back boundary (22 X0 cosh|η| from the IP) and the end of the calorimeter.
* **The tail itself**: the depth (from the shower start) holding 95 % and 99 % of the fluctuated
  GFlash profile against the PDG's 95 % containment depth t_max + 0.08 Z + 9.6 X0 (electron
  t_max = ln(E/E_c) − 0.5) [R: PDG, "Passage of particles through matter", electromagnetic
  cascades], and the profile's local e-folding length deep in the shower against the photon
  attenuation length at its minimum in lead (μ/ρ ≈ 0.042 cm²/g near 3.5 MeV, 1/(μ/ρ · X0) ≈ 3.7 X0
  [R: NIST XCOM]), which sets how slowly the deep tail of a high-Z shower falls.

INFO rows; nothing is tuned. Plot: ``longitudinal_tail.png``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from calo_calib.validation.common import INFO, PAL, tag

SECTION = "f1, f3 and the GFlash longitudinal tail (diagnosis)"
CONVERSION_MEAN_X0 = 9.0 / 7.0  # photon mean free path [R: PDG]
PB_ATTENUATION_MIN_X0 = 3.7  # 1 / (mu/rho_min · X0) of lead, mu/rho ≈ 0.042 cm2/g near 3.5 MeV [R: NIST XCOM]
TAIL_ENERGIES = (10.0, 40.0, 100.0)  # GeV, electron showers of the tail rows
SEED_OFFSET = 9000
N_TAIL = 20000  # fluctuated showers per energy for the tail rows


def pdg_t95(e_gev: float, z_eff: float, ec_mev: float) -> float:
    """PDG 95 % longitudinal containment depth of an electron shower, X0 from its start.

    t_max + 0.08 Z + 9.6 with t_max = ln(E/E_c) − 0.5 [R: PDG]. ``z_eff``, ``ec_mev``: the medium's.
    """
    return float(np.log(e_gev * 1000.0 / ec_mev) - 0.5 + 0.08 * z_eff + 9.6)


def _params(e_gev: np.ndarray, medium_idx: np.ndarray, media, rng: np.random.Generator):
    from calo_calib.simulation.shower import longitudinal_params

    return longitudinal_params(np.asarray(e_gev, float), np.asarray(medium_idx, int), media, rng, 0.0)


def fraction_beyond(e_gev: float, media, depths: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Mean over ``n`` fluctuated GFlash showers (medium ``media[0]``) of the fraction deposited beyond
    each depth of ``depths`` (X0 from the shower start); shape of ``depths``."""
    from scipy.special import gammaincc

    p = _params(np.full(n, float(e_gev)), np.zeros(n, int), media, rng)
    d = np.asarray(depths, float)
    return gammaincc(p.alpha[:, None], p.beta[:, None] * d.reshape(1, -1)).mean(0).reshape(d.shape)


def containment_depth(e_gev: float, media, q: float, n: int, rng: np.random.Generator) -> float:
    """Depth (X0 from the start) before which the mean of ``n`` fluctuated GFlash profiles holds the fraction ``q``."""
    from scipy.optimize import brentq
    from scipy.special import gammaincc

    p = _params(np.full(n, float(e_gev)), np.zeros(n, int), media, rng)
    return float(brentq(lambda t: gammaincc(p.alpha, p.beta * t).mean() - (1.0 - q), 0.0, 200.0, xtol=1e-4))


def efolding(e_gev: float, media, depth: float, n: int, rng: np.random.Generator) -> float:
    """Local e-folding length −(d ln f / dt)⁻¹ (X0) of the mean fluctuated profile f at ``depth`` (X0 from the start).

    f is the mean of the showers' gamma densities; the fraction beyond t, B(t), has −dB/dt = f, so
    the length is taken from B over ±0.5 X0 (same random showers at every depth)."""
    t = depth + np.array([-0.5, 0.0, 0.5])
    b = fraction_beyond(e_gev, media, np.r_[t - 0.05, t + 0.05], n, rng)
    f = (b[:3] - b[3:]) / 0.1
    return float(1.0 / -(np.log(f[2]) - np.log(f[0])))


def medium_index(abs_eta: np.ndarray, accordion) -> np.ndarray:
    """Index into :func:`~calo_calib.simulation.shower.accordion_media`: 0 thick-lead barrel, 1 thin, 2 end-cap."""
    a = np.asarray(abs_eta, float)
    return np.where(a < float(accordion.thin_lead_eta), 0, np.where(a < float(accordion.barrel_end), 1, 2))


def expected_fractions(
    e_gev: np.ndarray, abs_eta: np.ndarray, start: np.ndarray, det, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """GFlash layer contents of showers of energy ``e_gev`` [GeV] at ``abs_eta`` starting at ``start`` (X0 from the IP).

    ``det``: the detector config. Returns (n,) arrays: ``f1_acc`` = E_L1 / E_acc, ``back`` = E_L3 / E
    (the whole back layer) and ``leak`` = fraction beyond the calorimeter's end, from the fluctuated
    profile integrated over the configured boundaries (:func:`~calo_calib.validation.longitudinal.layer_boundaries`).
    """
    from omegaconf import OmegaConf

    from calo_calib.simulation.shower import accordion_media, cumulative
    from calo_calib.validation.longitudinal import layer_boundaries

    d = OmegaConf.to_container(det, resolve=True) if OmegaConf.is_config(det) else det
    acc = OmegaConf.create(d["accordion"])
    media = accordion_media(acc)
    p = _params(e_gev, medium_index(abs_eta, acc), media, rng)
    b = np.array([layer_boundaries(d, x) for x in np.asarray(abs_eta, float)])
    t0 = np.asarray(start, float)
    c = [cumulative(p, t0, b[:, k]) for k in range(4)]
    acc_sum = np.maximum(c[3] - c[0], 1e-12)
    return {"f1_acc": (c[1] - c[0]) / acc_sum, "back": c[3] - c[2], "leak": 1.0 - c[3]}


def x_id(det, abs_eta: np.ndarray) -> np.ndarray:
    """Inner-detector material X_ID(|η|) [X0] of the config (times ``material.scale``)."""
    tab = np.asarray(det.material.table, float)
    return np.interp(np.asarray(abs_eta, float), tab[:, 0], tab[:, 1]) * float(det.material.scale)


def _f1_acc(d: Mapping[str, np.ndarray]) -> np.ndarray:
    acc = d["cluster_e_l1"] + d["cluster_e_l2"] + d["cluster_e_l3"]
    return d["cluster_e_l1"] / np.where(acc > 0, acc, np.nan)


def _sample_rows(v, det, rng) -> dict:
    """f1 (electrons, unconverted photons) and f3 / leakage (electrons) against GFlash on the ⟨μ⟩ = 0 shapes samples."""
    from calo_calib.validation import shower_shapes as ss

    out: dict = {}
    for particle in ("electron", "photon_unconv"):
        key = ss.sample_key(particle, 0.0)
        if key not in v.data:
            continue
        d = v.data[key]
        e, a = np.asarray(d["truth_e"], float), np.abs(np.asarray(d["truth_eta"], float))
        start = x_id(det, a) + (rng.exponential(CONVERSION_MEAN_X0, a.size) if particle != "electron" else 0.0)
        g = expected_fractions(e, a, start, det, rng)
        f1 = _f1_acc(d)
        out[particle] = {"f1_sim": float(np.nanmedian(f1)), "f1_gflash": float(np.median(g["f1_acc"])),
                         "f1_sim_mean": float(np.nanmean(f1)), "f1_gflash_mean": float(g["f1_acc"].mean())}  # fmt: skip
        start_txt = "X_ID" if particle == "electron" else "X_ID + Exp(9/7 X0)"
        v.row(
            SECTION, f"f1 = E_L1/E_acc median, {particle}, ⟨μ⟩ = 0 (sim / GFlash)",
            f"{out[particle]['f1_sim']:.3f}", f"GFlash expectation {out[particle]['f1_gflash']:.3f} (start at {start_txt})",
            "[S7] fluctuated profile over the config's [S3] layer boundaries, same truth E and |η|", INFO,
            f"means {out[particle]['f1_sim_mean']:.3f} / {out[particle]['f1_gflash_mean']:.3f}",
        )  # fmt: skip
        if particle == "electron":
            f3 = d["cluster_e_l3"] / d["cluster_e"]
            leak = d["truth_e_leak_behind"] / e
            out["f3"] = {"f3_sim": float(f3.mean()), "back_gflash": float(g["back"].mean()),
                         "leak_sim": float(leak.mean()), "leak_gflash": float(g["leak"].mean())}  # fmt: skip
            r = out["f3"]
            v.row(
                SECTION, "f3 = E_L3/E mean, electron, ⟨μ⟩ = 0 (cluster) / GFlash content of the whole back layer",
                f"{100 * r['f3_sim']:.2f} % / {100 * r['back_gflash']:.2f} %",
                "f3 target 1–3 % [R] (physics_cells.md §2)",
                "[S7] profile between the [S3] middle/back boundary and the calorimeter's end", INFO,
                f"the cluster's back cells keep {r['f3_sim'] / max(r['back_gflash'], 1e-12):.0%} of the layer's "
                f"GFlash content; leakage behind: truth {100 * r['leak_sim']:.2f} %, GFlash {100 * r['leak_gflash']:.2f} %",
            )  # fmt: skip
    if {"electron", "photon_unconv"} <= out.keys():
        e, g = out["electron"], out["photon_unconv"]
        v.row(
            SECTION, "f1 median ratio photon_unconv / electron (sim / GFlash)",
            f"{g['f1_sim'] / e['f1_sim']:.2f}", f"GFlash {g['f1_gflash'] / e['f1_gflash']:.2f}",
            "a later shower start (9/7 X0 mean free path) in 3.8 X0 deep strips", INFO,
            "the f1 target ≈ 0.27 [R] is one value for every particle type",
        )  # fmt: skip
    return out


def _tail_rows(v, media, rng) -> dict:
    """GFlash 95/99 % containment depths and deep e-folding length against the PDG's t_95% and lead's photon attenuation."""
    m = media[0]
    out = {}
    for e in TAIL_ENERGIES:
        t95 = containment_depth(e, media, 0.95, N_TAIL, rng)
        t99 = containment_depth(e, media, 0.99, N_TAIL, rng)
        pdg = pdg_t95(e, m.z_eff, m.ec_mev)
        beyond = float(fraction_beyond(e, media, np.array([pdg]), N_TAIL, rng)[0])
        out[e] = {"t95": t95, "t99": t99, "pdg_t95": pdg, "beyond_pdg_t95": beyond}
        v.row(
            SECTION, f"95 % containment depth from the shower start, e−, {e:g} GeV, thick-lead barrel medium",
            f"GFlash {t95:.1f} X0 (99 %: {t99:.1f} X0)", f"PDG t_max + 0.08 Z + 9.6 = {pdg:.1f} X0 (Z_eff {m.z_eff:.1f})",
            "[R] PDG electromagnetic cascades; [S7] GFlash", INFO,
            f"GFlash leaves {100 * beyond:.2f} % beyond the PDG's 95 % depth (the PDG: 5 %)",
        )  # fmt: skip
    e = 40.0
    lam = efolding(e, media, out[e]["pdg_t95"], N_TAIL, rng)
    out["efolding_40"] = lam
    v.row(
        SECTION, f"local e-folding length of the GFlash profile at {out[e]['pdg_t95']:.1f} X0, e−, {e:g} GeV",
        f"{lam:.2f} X0", f"lead: photon attenuation length at its minimum ≈ {PB_ATTENUATION_MIN_X0:g} X0",
        "[R] NIST XCOM (μ/ρ ≈ 0.042 cm²/g near 3.5 MeV)", INFO,
        "the deep tail of a high-Z shower is carried by photons near the attenuation minimum",
    )  # fmt: skip
    return out


def _plot(v, media, rng, det) -> None:
    fig, ax = v.plt.subplots(figsize=(8, 5.5))
    t = np.linspace(0.0, 35.0, 351)
    m = media[0]
    for k, e in enumerate(TAIL_ENERGIES):
        ax.plot(t, fraction_beyond(e, media, t, 4000, rng), color=PAL[k], label=f"GFlash {e:g} GeV")
        ax.plot([pdg_t95(e, m.z_eff, m.ec_mev)], [0.05], "o", color=PAL[k], mfc="none", ms=9)
    ax.plot([], [], "o", color="k", mfc="none", label="PDG 95 % depth")
    tab = np.asarray(det.accordion.table, float)
    xid0 = float(x_id(det, np.array([0.0]))[0])
    ax.axvspan(tab[0, 2] - xid0, tab[0, 3] - xid0, color="grey", alpha=0.2, label="back layer at η = 0")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 1.2)
    ax.set_xlabel("depth from the shower start [X$_0$]")
    ax.set_ylabel("fraction of the energy beyond the depth")
    ax.legend(fontsize=10, loc="lower left")
    tag(ax, "electrons, thick-lead barrel medium", "upper right", fontsize=11)
    v.fig(SECTION, "longitudinal_tail.png", fig)


def run(v) -> None:
    """Add the section's rows, results and figure to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    if not v.cfg.get("longitudinal_tail", {}).get("enabled", True):
        return
    from calo_calib.simulation import compose_config
    from calo_calib.simulation.shower import accordion_media

    det = compose_config(["particle=electron", *list(v.cfg.sim_overrides or [])]).detector
    rng = np.random.default_rng(int(v.cfg.seed) + SEED_OFFSET)
    media = accordion_media(det.accordion)
    res = {"samples": _sample_rows(v, det, rng), "tail": _tail_rows(v, media, rng)}
    v.results["longitudinal_tail"] = res
    _plot(v, media, rng, det)


def samples(cfg) -> list:
    """No report samples: the section reads the ⟨μ⟩ = 0 shower-shape samples and integrates the profile."""
    return []
