"""Test predictions of a trained calibration, the σ_rel report against the reference BDT, and the data-like evaluation."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from omegaconf import DictConfig

from calo_calib.calibration import (
    Calibration,
)
from calo_calib.evaluation import predictions as P
from calo_calib.evaluation import uncertainty as U
from calo_calib.evaluation.domain_shift import domain_shift_markdown
from calo_calib.io.atomic import write_text_atomic
from calo_calib.pipeline.checks import RunError, adversary_name, as_paths
from calo_calib.provenance import git_commit
from calo_calib.run_status import unfinished_reason
from calo_calib.tracking import Tracker

log = logging.getLogger("calo_calib.pipeline")


def find_reference_run(cfg: DictConfig, run_dir: Path, fingerprint: str) -> Path | None:
    """The BDT run to compare with: ``compare_to`` or, for ``auto``, the newest BDT run of this
    particle whose test data has the same fingerprint."""
    choice = cfg.compare_to
    if choice is None or str(choice) in ("null", "none", ""):
        return None
    if str(choice) != "auto":
        path = Path(str(choice))
        if not (path / "predictions.parquet").exists():
            raise RunError(f"compare_to={path}: no predictions.parquet there")
        return path
    # Single runs live in <runs>/<particle>/<model>-<loss>/<timestamp>; sweep jobs are siblings in
    # <sweep dir>/<job>/ (a BDT job of the same sweep counts once it has finished).
    candidates = list(run_dir.parent.parent.glob("bdt-*/*/metrics.json")) + list(run_dir.parent.glob("*/metrics.json"))
    candidates = sorted(set(candidates), key=lambda p: p.stat().st_mtime, reverse=True)
    for metrics_path in candidates:
        ref = metrics_path.parent
        if ref.resolve() == run_dir.resolve():
            continue
        try:
            meta = json.loads(metrics_path.read_text()).get("run", {})
        except (OSError, json.JSONDecodeError):
            continue
        if unfinished_reason(ref):  # crashed or still running: its predictions are not final
            continue
        if meta.get("model") == "bdt" and meta.get("test_fingerprint") == fingerprint and (ref / "predictions.parquet").exists():
            return ref
    return None


def evaluate_run(cfg: DictConfig, calibration: Calibration, splits: dict[str, list[Path]], run_dir: Path, tracker: Tracker, training: dict[str, Any]) -> dict[str, Any]:
    """Predict the test split, write predictions, metrics, summary and plots; returns the metrics."""
    from calo_calib.evaluation.plots import write_all_plots
    from calo_calib.evaluation.report import compare, evaluate, summary_markdown, write_metrics

    t0 = time.perf_counter()
    prediction, test = calibration.apply(splits["test"])
    predict_seconds = time.perf_counter() - t0
    truth = test.scalar_table(list(P.TRUTH_COLUMNS))
    name = str(cfg.model.name)
    table = P.build_predictions(truth, prediction.row_id, prediction.correction, name)
    if prediction.sigma is not None:
        table = U.add_sigma_column(table, prediction.row_id, prediction.sigma)
    fingerprint = P.dataset_fingerprint(splits["test"])

    reference = find_reference_run(cfg, run_dir, fingerprint) if name != "bdt" else None
    if reference is not None:
        try:
            table = P.add_method(table, pq.read_table(reference / "predictions.parquet"), "bdt")
            log.info("comparing with the BDT run %s", reference)
        except (ValueError, KeyError) as err:
            log.warning("BDT run %s not used for comparison: %s", reference, err)
            reference = None
    P.write_predictions(table, run_dir / "predictions.parquet")

    methods = P.method_names(table)
    metrics = evaluate(table, methods, n_boot=int(cfg.evaluation.n_boot), seed=int(cfg.seed), min_count=int(cfg.evaluation.min_count))
    comparison = compare(metrics, metrics, name, "bdt") if "bdt" in methods and name != "bdt" else None
    metrics["comparison_to_bdt"] = comparison
    metrics["run"] = {
        "model": name,
        "loss": str(cfg.loss.name),
        "adversary": adversary_name(cfg),
        "particle": str(cfg.particle.name),
        "run_dir": str(run_dir),
        "test_data": [str(p) for p in splits["test"]],
        "test_fingerprint": fingerprint,
        "test_selection": test.counts,
        "reference_bdt_run": str(reference) if reference else None,
        "commit": git_commit(),
        "predict_seconds": predict_seconds,
        "predict_clusters_per_s": len(test) / predict_seconds if predict_seconds > 0 else None,
        "training": training,
    }
    extra_md = ""
    uncertainty_pngs: list[Path] = []
    if prediction.sigma is not None:
        report, uncertainty_pngs = U.write_uncertainty(
            table, name, run_dir, min_count=int(cfg.evaluation.min_count), plots=bool(cfg.evaluation.plots)
        )
        metrics["uncertainty"] = {"inclusive": report["inclusive"], "expected": report["expected"], "definition": report["definition"]}
        extra_md += "\n".join(U.summary_lines(report))
    unlabelled_test = cfg.data.get("unlabelled_test")
    if unlabelled_test:
        metrics["data_like"] = evaluate_data_like(cfg, calibration, as_paths(unlabelled_test), run_dir, metrics)
        extra_md += domain_shift_markdown(metrics["data_like"]["shift"], metrics["data_like"]["test_data"])
    write_metrics(metrics, run_dir / "metrics.json")
    write_text_atomic(run_dir / "summary.md", _summary_header(cfg, metrics) + summary_markdown(metrics, methods) + "\n" + extra_md)

    images: dict[str, Path] = {}
    if cfg.evaluation.plots:
        pngs = [*write_all_plots(table, metrics, methods, run_dir / "plots", comparison=comparison), *uncertainty_pngs]
        if (run_dir / "history.json").exists():  # networks: validation sigma_rel versus training clusters seen
            from calo_calib.evaluation.learning_curve import plot_learning_curve

            history_path = run_dir / "history.json"
            history = json.loads(history_path.read_text())
            title = f"{cfg.particle.name}, {cfg.model.name}"
            png = plot_learning_curve(history, run_dir / "plots" / "learning_curve.png", title, source=history_path)
            pngs += [png] if png else []
        for path in pngs:
            images[f"plots/{Path(path).stem}"] = Path(path)
    _log_results(tracker, metrics, methods, images)
    return metrics


def evaluate_data_like(cfg: DictConfig, calibration: Calibration, paths: list[Path], out_dir: Path, mc_metrics: dict[str, Any],
                       stem: str = "predictions_data_like") -> dict[str, Any]:  # fmt: skip
    """Apply the calibration to a LABELLED data-like test set (a detector variant) and compare with MC.

    The truth of ``paths`` is used here only to measure (σ_rel, median response), never in training.
    Writes ``<out_dir>/<stem>.parquet``; returns ``{"test_data", "test_fingerprint", "n_clusters",
    "inclusive", "vs_e", "shift"}`` (``shift``: :func:`calo_calib.evaluation.domain_shift.domain_shift_summary`
    against ``mc_metrics``), plus ``"uncertainty"`` (inclusive pulls/coverage) for a σ-predicting network.
    """
    from calo_calib.evaluation.domain_shift import domain_shift_summary
    from calo_calib.evaluation.report import evaluate

    name = str(cfg.model.name)
    prediction, dataset = calibration.apply(paths)
    table = P.build_predictions(dataset.scalar_table(list(P.TRUTH_COLUMNS)), prediction.row_id, prediction.correction, name)
    if prediction.sigma is not None:
        table = U.add_sigma_column(table, prediction.row_id, prediction.sigma)
    P.write_predictions(table, Path(out_dir) / f"{stem}.parquet")
    methods = P.method_names(table)
    metrics = evaluate(table, methods, n_boot=int(cfg.evaluation.n_boot), seed=int(cfg.seed), min_count=int(cfg.evaluation.min_count))
    out = {
        "test_data": [str(p) for p in paths],
        "test_fingerprint": P.dataset_fingerprint(paths),
        "n_clusters": metrics["n_clusters"],
        "inclusive": metrics["inclusive"],
        "vs_e": metrics["vs_e"],
        "shift": domain_shift_summary(mc_metrics, metrics),
    }
    if prediction.sigma is not None:
        out["uncertainty"] = U.uncertainty_report(table, name, min_count=int(cfg.evaluation.min_count))["inclusive"]
    log.info("data-like sample %s: sigma_rel %.4f (MC %.4f), response shift %+.4f",
             ", ".join(out["test_data"]), out["shift"][name]["sigma_rel_data"], out["shift"][name]["sigma_rel_mc"],
             out["shift"][name]["response_shift"])  # fmt: skip
    return out


def _summary_header(cfg: DictConfig, metrics: dict[str, Any]) -> str:
    run = metrics["run"]
    lines = [
        f"# {run['model']} calibration of {run['particle']} ({run['loss']} loss"
        + (f", domain adversary {run['adversary']})" if run.get("adversary", "none") != "none" else ")"),
        "",
        f"Test clusters: {metrics.get('n_clusters')} from {', '.join(run['test_data'])}.",
        f"σ_rel = IQR / (1.349 ⟨E_reco/E_true⟩); errors from {cfg.evaluation.n_boot} bootstrap resamples.",
    ]
    if run["reference_bdt_run"]:
        lines.append(f"BDT reference: {run['reference_bdt_run']} (same test clusters).")
    elif run["model"] != "bdt":
        lines.append("No BDT run on the same test data was found: run `model=bdt` for this particle to get the ratio.")
    return "\n".join(lines) + "\n\n"


def _log_results(tracker: Tracker, metrics: dict[str, Any], methods: list[str], images: dict[str, Path]) -> None:
    if not tracker.active:
        return
    summary = {}
    for method, vals in metrics["inclusive"].items():
        for key, value in vals.items():
            summary[f"inclusive/{method}/{key}"] = value
    for key, value in (metrics.get("uncertainty") or {}).get("inclusive", {}).items():
        summary[f"uncertainty/{key}"] = value
    for method, vals in (metrics.get("data_like") or {}).get("shift", {}).items():
        for key, value in vals.items():
            summary[f"data_like/{method}/{key}"] = value
    tracker.set_summary(summary)
    for key in ("vs_e", "vs_abs_eta", "vs_e_abs_eta", "vs_mu"):
        if metrics.get(key):
            tracker.log_table(f"sigma_rel/{key}", _flatten_rows(metrics[key]))
    tracker.log_images(images)
    # metrics.json itself goes with the W&B run: calo_calib.comparison.loading.load_wandb reads runs back from it.
    tracker.save_file(Path(metrics["run"]["run_dir"]) / "metrics.json")


def _flatten_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Binned rows with nested per-method dicts -> flat records for a W&B table."""
    flat = []
    for row in rows:
        rec: dict[str, Any] = {}
        for k, v in row.items():
            if isinstance(v, dict):
                for kk, vv in v.items():
                    rec[f"{k}/{kk}"] = vv
            elif not isinstance(v, (list, tuple)):
                rec[k] = v
        flat.append(rec)
    return flat
