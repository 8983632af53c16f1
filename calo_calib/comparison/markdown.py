"""Markdown tables of a comparison: the ranking, the best configuration per bin, the report, and the
per-run inclusive table of ``notebooks/compare_runs``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calo_calib.comparison.ranking import METRICS, best_per_bin, rank_runs
from calo_calib.comparison.table import finite, particles
from calo_calib.formatting import as_float, fmt

if TYPE_CHECKING:
    from calo_calib.comparison.loading import Unreadable
    from calo_calib.comparison.schema import RunResult


def format_value(value: float, err: float, scale: float = 1.0, digits: int = 2) -> str:
    """``value ± err`` (both times ``scale``) with ``digits`` decimals; ``–`` for a NaN value."""
    return fmt(value, err, scale=scale, digits=digits)


def edges_text(lo: float, hi: float) -> str:
    """A bin as ``lo–hi``."""
    return f"{lo:g}–{hi:g}"


def _metric_text(metric: str) -> tuple[str, int]:
    """Column title and decimals of a metric in the markdown tables."""
    return ("σ_rel [%]", 2) if metric == "sigma_rel" else ("median E_reco/E_true", 4)


def ranking_markdown(records: Sequence[Mapping[str, Any]], particle: str, metric: str = "sigma_rel") -> str:
    """Markdown: the runs of ``particle`` ranked by inclusive ``metric`` (σ_rel in %), with the ratio
    to the BDT ± error and where the BDT came from; a note if they used different test datasets."""
    m, (name, digits) = METRICS[metric], _metric_text(metric)
    show_ratio = metric == "sigma_rel"  # the ratio to the BDT is a ratio of σ_rel's
    ranking = rank_runs(records, particle, metric)
    lines = [f"## {particle}: {len(ranking)} runs ranked by inclusive {name}", ""]
    fingerprints = {r["test_fingerprint"] for r in ranking}
    if len(fingerprints) > 1:
        lines += [
            f"Note: these runs used {len(fingerprints)} different test datasets: their values are not measured on the same clusters.",
            "",
        ]
    head = (
        ["rank", "configuration", "sweep", name]
        + (["σ_rel / σ_rel(BDT)", "BDT reference"] if show_ratio else [])
        + ["run"]
    )
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in ranking:
        cells = [str(r["rank"]), r["config"], r["sweep"], format_value(r["value"], r["err"], m.scale, digits)]
        if show_ratio:
            cells += [format_value(r["ratio_to_bdt"], r["ratio_to_bdt_err"], 1.0, 3), _ref_text(r["bdt_reference"])]
        lines.append("| " + " | ".join(cells + [r["run_dir"]]) + " |")
    return "\n".join(lines) + "\n"


def best_per_bin_markdown(records: Sequence[Mapping[str, Any]], particle: str, metric: str = "sigma_rel") -> str:
    """Markdown: the best configuration of ``particle`` in each (E_true, |η|) bin (see :func:`best_per_bin`)."""
    m, (name, digits) = METRICS[metric], _metric_text(metric)
    show_ratio = metric == "sigma_rel"
    best = best_per_bin(records, particle, metric)
    lines = [f"### {particle}: best configuration per (E_true, |η|) bin", ""]
    if not best:
        return "\n".join(lines + ["No (E_true, |η|) bin has enough test clusters for a value."]) + "\n"
    head = (
        [r"\|η\|", "E_true [GeV]", "best", name]
        + (["σ_rel / σ_rel(BDT)"] if show_ratio else [])
        + ["runner-up", "margin [σ]", "configs"]
    )
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for b in best:
        cells = [edges_text(b["abs_eta_lo"], b["abs_eta_hi"]), edges_text(b["truth_e_lo"], b["truth_e_hi"]), b["best"],
                 format_value(b["value"], b["err"], m.scale, digits)]  # fmt: skip
        if show_ratio:
            cells.append(format_value(b["ratio_to_bdt"], b["ratio_to_bdt_err"], 1.0, 3))
        cells += [b["runner_up"] or "–", f"{b['margin']:.1f}" if finite(b["margin"]) else "–", str(b["n_configs"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report_markdown(
    records: Sequence[Mapping[str, Any]],
    unreadable: Sequence[Unreadable] = (),
    metric: str = "sigma_rel",
    particle: str | None = None,
) -> str:
    """Markdown report: per particle (or only ``particle``), :func:`ranking_markdown` and
    :func:`best_per_bin_markdown`; then the run directories that could not be read, with the reason."""
    parts = []
    for p in [particle] if particle else particles(records):
        parts += [ranking_markdown(records, p, metric), best_per_bin_markdown(records, p, metric)]
    if unreadable:
        parts.append(
            "\n".join([f"## Not read ({len(unreadable)})", ""] + [f"- {u.path}: {u.reason}" for u in unreadable]) + "\n"
        )
    return "\n".join(parts)


def _ref_text(ref: str) -> str:
    return ref if ref in ("", "joined", "self") else f"run {Path(ref).name}"


def inclusive_table(runs: Sequence[RunResult]) -> str:
    """Markdown table: per run, inclusive σ_rel (%) of raw, the model, the oracle, and the ratio to the BDT."""
    lines = [
        "| particle | model | σ_rel raw (%) | σ_rel model (%) | σ_rel oracle (%) | model / BDT | run |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        raw, model, oracle = (r.sigma_rel(m) for m in ("raw", None, "oracle"))
        comp = (r.metrics.get("comparison_to_bdt") or {}).get("inclusive") or {}
        ratio = f"{as_float(comp.get('ratio')):.3f} ± {as_float(comp.get('ratio_err')):.3f}" if comp else "–"
        lines.append(
            f"| {r.particle} | {r.label} | {100 * raw[0]:.2f} | {100 * model[0]:.2f} ± {100 * model[1]:.2f} | "
            f"{100 * oracle[0]:.2f} | {ratio} | {r.run_dir} |"
        )
    return "\n".join(lines) + "\n"
