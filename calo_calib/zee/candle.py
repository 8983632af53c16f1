"""The Z -> ee standard candle: in-situ energy scale of a calibration on a data-like detector.

    python -m calo_calib.studies.zee_candle calibration=<run dir> n_events=20000 data_detector=material_up out=<dir>

1. Z -> ee events are generated and simulated on the nominal detector ("MC") and on a detector
   variant ("data"; unlabelled: its truth serves diagnostics only), see :mod:`calo_calib.zee.sample`.
2. Every method (the raw cluster energy and each calibration given) calibrates both samples; m_ee is
   computed from the calibrated energies and the cluster directions.
3. Per (i ≤ j) |η|-bin category the peak is fitted in MC and data, the scale factors α_i solved,
   applied to the data, and the residual peak and width differences refitted
   (:mod:`calo_calib.zee.scales`). Coarse categories (barrel-barrel, barrel-end-cap, end-cap-end-cap,
   any crack electron, all) are fitted too, for the tables and plots.
4. If a calibration predicts a per-cluster relative resolution ``sigma``, the peak width of events
   whose two electrons are both below a quantile of sigma is compared with all events.

Writes ``zee_candle.json``, ``zee_candle.md`` and PNGs into ``out``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from calo_calib.formatting import jsonable
from calo_calib.io.atomic import write_json_atomic, write_text_atomic
from calo_calib.zee.energies import ClusterEnergies, EnergyMethod
from calo_calib.zee.fit import FitConfig, PeakFit, auto_window, fit_peak
from calo_calib.zee.generator import ZeeConfig
from calo_calib.zee.sample import ZeeSample, compose_sim_config, load_sample, simulate_sample
from calo_calib.zee.scales import EventSet, ScaleResult, derive_scales, eta_bin_index

log = logging.getLogger(__name__)
logging.getLogger("matplotlib").setLevel(logging.WARNING)

BARREL_MAX, ENDCAP_MIN, ENDCAP_MAX = 1.37, 1.52, 2.47
COARSE = ("all", "BB", "BE", "EE", "crack")


def compose_candle_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/zee_candle.yaml`` with Hydra overrides (outside a Hydra app)."""
    from calo_calib.config import compose

    return compose("zee_candle", overrides)


def coarse_masks(abs_eta1: np.ndarray, abs_eta2: np.ndarray) -> dict[str, np.ndarray]:
    """Event masks of the coarse categories from the two cluster |η| (n,)."""

    def barrel(a):
        return a < BARREL_MAX

    def endcap(a):
        return (a >= ENDCAP_MIN) & (a < ENDCAP_MAX)

    def crack(a):
        return (a >= BARREL_MAX) & (a < ENDCAP_MIN)

    return {
        "all": np.ones(abs_eta1.shape, bool),
        "BB": barrel(abs_eta1) & barrel(abs_eta2),
        "BE": (barrel(abs_eta1) & endcap(abs_eta2)) | (endcap(abs_eta1) & barrel(abs_eta2)),
        "EE": endcap(abs_eta1) & endcap(abs_eta2),
        "crack": crack(abs_eta1) | crack(abs_eta2),
    }


def event_set(sample: ZeeSample, energies: ClusterEnergies) -> tuple[EventSet, np.ndarray]:
    """The events whose two clusters have a calibrated energy; returns (events, mask over all events)."""
    r1, r2 = sample.events["row_id_1"], sample.events["row_id_2"]
    e = energies.energy
    ok = np.isfinite(e[r1]) & np.isfinite(e[r2])
    c = sample.clusters
    r1, r2 = r1[ok], r2[ok]
    ev = EventSet(e[r1], c["cluster_eta"][r1].astype(np.float64), c["cluster_phi"][r1].astype(np.float64),
                  e[r2], c["cluster_eta"][r2].astype(np.float64), c["cluster_phi"][r2].astype(np.float64))  # fmt: skip
    return ev, ok


def _fit_or_none(
    m: np.ndarray, cfg: FitConfig, window: tuple[float, float] | None, min_events: int, what: str
) -> PeakFit | None:
    try:
        return fit_peak(m, cfg, window=window, min_events=min_events)
    except ValueError as err:
        log.info("%s: no fit (%s)", what, err)
        return None


def truth_alphas(
    sample_mc: ZeeSample, e_mc: np.ndarray, sample_data: ZeeSample, e_data: np.ndarray, edges: np.ndarray
) -> tuple[list, list]:
    """Diagnostic only (uses the data truth): per cluster-|η| bin, median(E/E_true)_data / median_MC - 1
    and its error (median error 1.2533 σ/√n with σ = IQR/1.349)."""

    def medians(sample: ZeeSample, e: np.ndarray):
        c = sample.clusters
        ok = np.isfinite(e)
        b = eta_bin_index(np.abs(c["cluster_eta"][ok]), edges)
        r = e[ok] / c["truth_e"][ok]
        out = []
        for i in range(len(edges) - 1):
            ri = r[b == i]
            if ri.size < 20:
                out.append((math.nan, math.nan))
                continue
            q1, med, q3 = np.percentile(ri, [25, 50, 75])
            out.append((med, 1.2533 * (q3 - q1) / 1.349 / math.sqrt(ri.size)))
        return out

    md, mm = medians(sample_data, e_data), medians(sample_mc, e_mc)
    alpha = [d / m - 1.0 for (d, _), (m, _) in zip(md, mm)]
    err = [d / m * math.hypot(ed / d, em / m) for (d, ed), (m, em) in zip(md, mm)]
    return alpha, err


def uncertainty_study(
    mc: EventSet,
    data: EventSet,
    sig_mc: np.ndarray,
    sig_data: np.ndarray,
    quantile: float,
    cfg: FitConfig,
    min_events: int,
) -> dict[str, Any]:
    """Peak width of events with both predicted σ below the ``quantile`` of the MC clusters' σ, vs all."""
    threshold = float(np.nanquantile(np.concatenate([sig_mc[:, 0], sig_mc[:, 1]]), quantile))
    out: dict[str, Any] = {"quantile": quantile, "threshold": threshold}
    for name, ev, sig in (("mc", mc, sig_mc), ("data", data, sig_data)):
        good = np.all(sig < threshold, axis=1)
        m = ev.masses()
        window = auto_window(m, cfg)
        rows = {}
        for tag, sel in (("all", np.ones(good.shape, bool)), ("low_sigma", good)):
            f = _fit_or_none(m[sel], cfg, window, min_events, f"uncertainty study {name}/{tag}")
            rows[tag] = {"n": int(sel.sum()), "fit": f.to_dict() if f else None,
                         "rel_sigma": f.sigma / f.peak if f else None,
                         "rel_sigma_err": f.sigma_err / f.peak if f else None}  # fmt: skip
        rows["fraction_kept"] = float(good.mean()) if good.size else None
        # the predicted resolution of m_ee: (1/2) sqrt(s1² + s2²), averaged over the events
        rows["predicted_rel_sigma_mean"] = {
            "all": float(np.mean(0.5 * np.hypot(sig[:, 0], sig[:, 1]))),
            "low_sigma": float(np.mean(0.5 * np.hypot(sig[good, 0], sig[good, 1]))) if good.any() else None,
        }
        out[name] = rows
    return out


def _scale_record(
    res: ScaleResult | None, alpha_truth: list, alpha_truth_err: list, error: str | None
) -> dict[str, Any]:
    if res is None:
        return {"error": error}
    pair_key = {p: f"{p[0]}-{p[1]}" for p in res.mc_fits}
    cats = {}
    for p, key in pair_key.items():
        cats[key] = {tag: (fits.get(p).to_dict() if fits.get(p) else None)
                     for tag, fits in (("mc", res.mc_fits), ("data", res.data_fits), ("corrected", res.corrected_fits))}  # fmt: skip
    ct = res.constant
    return {
        "alpha": res.alpha.tolist(), "alpha_err": res.alpha_err.tolist(), "chi2": res.chi2, "ndf": res.ndf,
        "alpha_truth": alpha_truth, "alpha_truth_err": alpha_truth_err, "history": res.history,
        "constant_term": None if ct is None else {
            "c2": ct.c2.tolist(), "c2_err": ct.c2_err.tolist(), "c": ct.c.tolist(), "c_err": ct.c_err.tolist(), "chi2": ct.chi2, "ndf": ct.ndf,
        },
        "categories": cats, "residuals": res.residuals(),
    }  # fmt: skip


def analyse_method(
    calib: EnergyMethod, mc: ZeeSample, data: ZeeSample, cfg: DictConfig, fit_cfg: FitConfig, out: Path
) -> dict[str, Any]:
    """Everything the candle measures for one method; writes its mass plots into ``out/plots``."""
    from calo_calib.zee.plots import plot_mass

    method = calib.method
    e_mc, e_data = calib.energies(mc), calib.energies(data)
    ev_mc, ok_mc = event_set(mc, e_mc)
    ev_data, ok_data = event_set(data, e_data)
    min_events = int(cfg.fit.min_events)
    edges = np.asarray(list(cfg.scales.abs_eta_edges), np.float64)
    record: dict[str, Any] = {"method": method, "n_events_mc": ev_mc.n, "n_events_data": ev_data.n,
                              "n_events_dropped_mc": int((~ok_mc).sum()), "n_events_dropped_data": int((~ok_data).sum())}  # fmt: skip
    log.info("%s: %d MC and %d data events with both clusters calibrated", method, ev_mc.n, ev_data.n)

    res, error = None, None
    try:
        res = derive_scales(
            ev_mc, ev_data, edges, fit_cfg, iterations=int(cfg.scales.iterations), min_events=min_events
        )
    except ValueError as err:  # too few events for the categories: reported, the coarse fits still run
        error = str(err)
        log.warning("%s: no scale factors: %s", method, err)
    a_truth, a_truth_err = truth_alphas(mc, e_mc.energy, data, e_data.energy, edges)
    record["scales"] = _scale_record(res, a_truth, a_truth_err, error)
    corrected = ev_data.scaled(res.alpha, edges) if res is not None else None

    m_mc, m_data = ev_mc.masses(), ev_data.masses()
    m_corr = corrected.masses() if corrected is not None else None
    masks_mc = coarse_masks(np.abs(ev_mc.eta1), np.abs(ev_mc.eta2))
    masks_data = coarse_masks(np.abs(ev_data.eta1), np.abs(ev_data.eta2))
    coarse = {}
    for cat in COARSE:
        sel_mc, sel_d = masks_mc[cat], masks_data[cat]
        fits: dict[str, PeakFit | None] = {"mc": None, "data": None, "corrected": None}
        if sel_mc.sum() >= min_events:
            fits["mc"] = _fit_or_none(m_mc[sel_mc], fit_cfg, None, min_events, f"{method} {cat} MC")
        window = fits["mc"].window if fits["mc"] else None
        if window is not None:
            fits["data"] = _fit_or_none(m_data[sel_d], fit_cfg, window, min_events, f"{method} {cat} data")
            if m_corr is not None:
                fits["corrected"] = _fit_or_none(
                    m_corr[sel_d], fit_cfg, window, min_events, f"{method} {cat} corrected data"
                )
        coarse[cat] = {k: (f.to_dict() if f else None) for k, f in fits.items()} | {
            "n_mc": int(sel_mc.sum()),
            "n_data": int(sel_d.sum()),
        }
        if bool(cfg.plots) and fits["mc"] is not None and cat in cfg.plot_categories:
            plot_mass(m_mc[sel_mc], m_data[sel_d], m_corr[sel_d] if m_corr is not None else None, fits,
                      out / "plots" / f"mee_{method}_{cat}.png", f"{method}, {cat}")  # fmt: skip
    record["coarse"] = coarse

    if e_mc.sigma is None or e_data.sigma is None:
        log.info("%s: the calibration predicts no per-cluster uncertainty; uncertainty study skipped", method)
        record["uncertainty_study"] = None
    else:
        r1, r2 = mc.events["row_id_1"][ok_mc], mc.events["row_id_2"][ok_mc]
        s_mc = np.stack([e_mc.sigma[r1], e_mc.sigma[r2]], axis=1)
        r1, r2 = data.events["row_id_1"][ok_data], data.events["row_id_2"][ok_data]
        s_data = np.stack([e_data.sigma[r1], e_data.sigma[r2]], axis=1)
        record["uncertainty_study"] = uncertainty_study(
            ev_mc, ev_data, s_mc, s_data, float(cfg.uncertainty.quantile), fit_cfg, min_events
        )
    return record


def fit_config(cfg: DictConfig) -> FitConfig:
    """The :class:`FitConfig` of the candle config (the truth range is the generator's mass window)."""
    gen = ZeeConfig.from_mapping(OmegaConf.to_container(cfg.generator, resolve=True))
    f = cfg.fit
    return FitConfig(model=str(f.model), bin_width=float(f.bin_width), half_window=float(f.half_window), cb_n=float(f.cb_n),
                     m_z=gen.m_z, gamma_z=gen.gamma_z, truth_range=(gen.m_min, gen.m_max))  # fmt: skip


def run_candle(cfg: DictConfig) -> dict[str, Any]:
    """Run the candle for a composed ``conf/zee_candle.yaml``; returns the JSON record (also written)."""
    from calo_calib.provenance import git_commit
    from calo_calib.zee.plots import plot_alphas
    from calo_calib.zee.report import markdown

    if OmegaConf.is_missing(cfg, "out"):
        raise ValueError("out is required: the output directory")
    out = Path(str(cfg.out))
    samples_dir = Path(str(cfg.samples_dir)) if cfg.samples_dir else out / "samples"
    gen = ZeeConfig.from_mapping(OmegaConf.to_container(cfg.generator, resolve=True))
    fit_cfg = fit_config(cfg)
    sources = ([cfg.calibration] if cfg.calibration else []) + list(cfg.extra_calibrations or [])
    energy_methods = [EnergyMethod(None)] + [EnergyMethod(str(s), device=str(cfg.device)) for s in sources]

    sim_over = [str(o) for o in cfg.sim_overrides]
    specs = {
        "mc": (str(cfg.mc_detector), sim_over, int(cfg.seed)),
        "data": (str(cfg.data_detector), sim_over + [str(o) for o in cfg.data_overrides], int(cfg.seed) + 1),
    }
    samples = {}
    for name, (detector, overrides, seed) in specs.items():
        sim_cfg = compose_sim_config(detector, overrides)
        path = simulate_sample(sim_cfg, gen, int(cfg.n_events), seed, samples_dir / f"{name}_{detector}",
                               shard_events=int(cfg.shard_events), progress=bool(cfg.progress))  # fmt: skip
        samples[name] = load_sample(path)

    methods = {}
    for calib in energy_methods:
        name = calib.method if calib.method not in methods else f"{calib.method}_{len(methods)}"
        calib.method = name
        methods[name] = analyse_method(calib, samples["mc"], samples["data"], cfg, fit_cfg, out)

    record = {
        "commit": git_commit(),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "samples": {
            k: {kk: v for kk, v in s.summary.items() if kk != "provenance"} | {"path": str(s.path)}
            for k, s in samples.items()
        },
        "abs_eta_edges": list(cfg.scales.abs_eta_edges),
        "methods": methods,
    }
    record = jsonable(record)  # NaN -> None: the JSON and the markdown show the same values
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "zee_candle.json", record)
    write_text_atomic(out / "zee_candle.md", markdown(record))
    with_scales = {m: r["scales"] for m, r in record["methods"].items() if r["scales"].get("alpha") is not None}
    if bool(cfg.plots) and with_scales:
        edges = np.asarray(record["abs_eta_edges"], float)
        plot_alphas(with_scales, edges, out / "plots" / "alpha.png")
        with_c = {m: s["constant_term"] for m, s in with_scales.items() if s.get("constant_term")}
        if with_c:
            plot_alphas(
                with_c, edges, out / "plots" / "constant_term.png", key="c", ylabel=r"extra constant term $c'_i$ [%]"
            )
    log.info("wrote %s", out)
    return record
