"""Is the predicted per-cluster resolution right? Pulls and coverage of a network with an uncertainty head.

A network trained with ``loss=gaussian_nll`` predicts, per cluster, the correction c (the mean of
t = E_true / E_cluster) and σ_t, the standard deviation of t. The predictions table stores the
relative form ``sigma`` = σ_t / c = σ(E) / E_reco (dimensionless), the predicted resolution of
E_reco / E_true. The **pull** of a cluster is

    pull = (E_reco − E_true) / (sigma · E_reco)  =  (c − t) / σ_t

i.e. the standardised residual of exactly the Gaussian likelihood the network was trained with
(positive: the cluster is over-calibrated). If the predicted σ is right, pulls follow a unit
Gaussian: mean 0, standard deviation 1, and the **coverage** — the fraction of clusters with
|pull| < 1 (< 2) — is 68.27 % (95.45 %). Coverage is the robust check: e/γ responses have a
low-side tail (energy lost upstream or outside the cluster), which inflates the pull standard
deviation long before it moves the coverage; ``robust_std`` = IQR / 1.349 of the pulls sits in between.

Statistics per sample (:func:`pull_stats`): ``n``, ``mean``, ``std``, ``robust_std``,
``coverage_1sigma``, ``coverage_2sigma`` (binomial errors ``*_err``), ``sigma_pred_median`` (median
predicted ``sigma``) and ``sigma_rel_observed`` (the measured σ_rel = IQR / (1.349 · mean) of
E_reco / E_true, :mod:`calo_calib.evaluation.metrics`): the two resolutions side by side.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from calo_calib.evaluation import binning as B
from calo_calib.evaluation.metrics import sigma_rel
from calo_calib.evaluation.report import write_metrics
from calo_calib.formatting import fmt
from calo_calib.io.atomic import write_text_atomic

SIGMA_COLUMN = "sigma"
"""Predictions-table column of the predicted relative resolution σ(E) / E_reco."""

EXPECTED_COVERAGE = {"coverage_1sigma": math.erf(1 / math.sqrt(2)), "coverage_2sigma": math.erf(2 / math.sqrt(2))}
"""Coverage of ±1σ and ±2σ for a unit Gaussian: 0.6827 and 0.9545."""

DEFINITION = (
    "pull = (E_reco - E_true) / (sigma * E_reco) = (c - t) / sigma_t with t = E_true/E_cluster, c = the predicted "
    "correction, sigma_t the predicted std of t and sigma = sigma_t / c; coverage_k = fraction of |pull| < k "
    "(unit Gaussian: 0.6827, 0.9545)"
)

BINS: dict[str, dict[str, tuple[float, ...]]] = {
    "vs_e": {"truth_e": B.ENERGY_EDGES},
    "vs_e_abs_eta": {"abs_eta": B.ABS_ETA_COARSE_EDGES, "truth_e": B.ENERGY_EDGES},
}
"""Binned tables of :func:`uncertainty_report` (variables and edges as in ``metrics.json``)."""


def add_sigma_column(table: pa.Table, row_id: np.ndarray, sigma: np.ndarray) -> pa.Table:
    """Add the ``sigma`` column (N,) to a predictions table, joined on ``row_id``.

    Raises:
        ValueError: if ``row_id`` are not exactly the table's clusters, or a σ is not finite and > 0.
    """
    ids = table.column("row_id").to_numpy()
    row_id, sigma = np.asarray(row_id), np.asarray(sigma, dtype=np.float64)
    order = np.argsort(row_id, kind="stable")
    pos = np.searchsorted(row_id[order], ids)
    if (
        len(row_id) != len(ids)
        or np.any(pos >= len(row_id))
        or not np.array_equal(row_id[order][np.minimum(pos, len(row_id) - 1)], ids)
    ):
        raise ValueError(
            f"sigma covers {len(row_id)} clusters that are not the predictions table's {len(ids)} clusters"
        )
    values = sigma[order][pos]
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} predicted sigma values are not finite and > 0 (first row_id {int(ids[bad][0])})"
        )
    if SIGMA_COLUMN in table.column_names:
        table = table.drop_columns([SIGMA_COLUMN])
    return table.append_column(SIGMA_COLUMN, pa.array(values))


def pulls(pred: B.Predictions, method: str) -> np.ndarray:
    """(N,) pulls (E_reco − E_true) / (sigma · E_reco) of ``e_<method>`` with the table's ``sigma`` column."""
    e_true = B.get_column(pred, "truth_e")
    e_reco = B.get_column(pred, f"e_{method}")
    sigma = B.get_column(pred, SIGMA_COLUMN)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (e_reco - e_true) / (sigma * e_reco)
    bad = ~np.isfinite(out)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} pulls of {method!r} are not finite (E_reco or sigma is 0 or non-finite)")
    return out


def pull_stats(pull: np.ndarray, sigma: np.ndarray, ratio: np.ndarray, min_count: int = 30) -> dict[str, Any]:
    """Pull and coverage statistics of one sample (module docstring); NaN if n < ``min_count``.

    Args:
        pull: (n,) pulls; sigma: (n,) predicted relative resolutions; ratio: (n,) E_reco / E_true.
    """
    n = int(pull.size)
    keys = ("mean", "std", "robust_std", "coverage_1sigma", "coverage_1sigma_err", "coverage_2sigma",
            "coverage_2sigma_err", "sigma_pred_median", "sigma_rel_observed")  # fmt: skip
    if n < max(min_count, 2):
        return {"n": n, "low_count": True, **{k: float("nan") for k in keys}}
    q25, q75 = np.percentile(pull, [25.0, 75.0])
    c1, c2 = float(np.mean(np.abs(pull) < 1.0)), float(np.mean(np.abs(pull) < 2.0))
    return {
        "n": n,
        "low_count": False,
        "mean": float(np.mean(pull)),
        "std": float(np.std(pull, ddof=1)),
        "robust_std": float((q75 - q25) / 1.349),
        "coverage_1sigma": c1,
        "coverage_1sigma_err": math.sqrt(c1 * (1 - c1) / n),
        "coverage_2sigma": c2,
        "coverage_2sigma_err": math.sqrt(c2 * (1 - c2) / n),
        "sigma_pred_median": float(np.median(sigma)),
        "sigma_rel_observed": float(sigma_rel(ratio)),
    }


def uncertainty_report(pred: B.Predictions, method: str, min_count: int = 30) -> dict[str, Any]:
    """Inclusive and binned pull / coverage statistics of ``e_<method>`` (needs the ``sigma`` column).

    Returns:
        ``{"method", "definition", "expected", "inclusive": stats, "vs_e": rows, "vs_e_abs_eta": rows,
        "edges"}``; each row has ``<var>_lo``, ``<var>_hi`` per binning variable and the stats.
    """
    pull = pulls(pred, method)
    sigma = B.get_column(pred, SIGMA_COLUMN)
    ratio = B.get_column(pred, f"e_{method}") / B.get_column(pred, "truth_e")
    report: dict[str, Any] = {
        "method": method,
        "definition": DEFINITION,
        "expected": dict(EXPECTED_COVERAGE),
        "inclusive": pull_stats(pull, sigma, ratio, min_count=0),
        "edges": {"truth_e": list(B.ENERGY_EDGES), "abs_eta": list(B.ABS_ETA_COARSE_EDGES)},
    }
    for table, by in BINS.items():
        variables = list(by)
        idx = [B.assign_bins(B.get_column(pred, v), by[v]) for v in variables]
        rows = []
        for bins in itertools.product(*(range(len(by[v]) - 1) for v in variables)):
            members = np.all([i == k for i, k in zip(idx, bins)], axis=0)
            row: dict[str, Any] = {}
            for v, k in zip(variables, bins):
                row[f"{v}_lo"], row[f"{v}_hi"] = float(by[v][k]), float(by[v][k + 1])
            row.update(pull_stats(pull[members], sigma[members], ratio[members], min_count=min_count))
            rows.append(row)
        report[table] = rows
    return report


def _pct(x: float, err: float | None = None) -> str:
    return fmt(x, err, scale=100, digits=1)


def _num(x: float) -> str:
    return fmt(x, digits=2)


def uncertainty_markdown(report: Mapping[str, Any]) -> str:
    """The report as markdown: inclusive numbers, then one row per (|η|, E) bin."""
    exp = report["expected"]
    inc = report["inclusive"]
    lines = [
        f"# Per-cluster uncertainty of {report['method']}: pulls and coverage",
        "",
        f"pull = (E_reco − E_true) / (σ · E_reco), σ = predicted relative resolution; expected coverage "
        f"{100 * exp['coverage_1sigma']:.1f} % (±1σ) and {100 * exp['coverage_2sigma']:.1f} % (±2σ), pull mean 0, std 1.",
        "",
        "| sample | n | pull mean | pull std | pull IQR/1.349 | coverage ±1σ [%] | coverage ±2σ [%] | median σ pred. [%] | σ_rel observed [%] |",
        "|---|---|---|---|---|---|---|---|---|",
        _row("inclusive", inc),
        "",
        "## Per (|η|, E_true) bin",
        "",
        "| \\|η\\| | E_true [GeV] | n | pull mean | pull std | pull IQR/1.349 | coverage ±1σ [%] | coverage ±2σ [%] | median σ pred. [%] | σ_rel observed [%] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["vs_e_abs_eta"]:
        lines.append(_row(f"{r['abs_eta_lo']:g}–{r['abs_eta_hi']:g} | {r['truth_e_lo']:g}–{r['truth_e_hi']:g}", r))
    return "\n".join(lines) + "\n"


def _row(first: str, s: Mapping[str, Any]) -> str:
    return (
        f"| {first} | {s['n']} | {_num(s['mean'])} | {_num(s['std'])} | {_num(s['robust_std'])} | "
        f"{_pct(s['coverage_1sigma'], s['coverage_1sigma_err'])} | {_pct(s['coverage_2sigma'], s['coverage_2sigma_err'])} | "
        f"{_pct(s['sigma_pred_median'])} | {_pct(s['sigma_rel_observed'])} |"
    )


def write_uncertainty(pred: B.Predictions, method: str, out_dir: str | os.PathLike[str], min_count: int = 30,
                      plots: bool = True) -> tuple[dict[str, Any], list[Path]]:  # fmt: skip
    """Write ``uncertainty.json``, ``uncertainty.md`` and (``plots``) ``plots/pulls.png``,
    ``plots/coverage_vs_e.png``, ``plots/sigma_pred_vs_e.png`` into ``out_dir``.

    Returns:
        The report and the PNG paths.
    """
    out_dir = Path(out_dir)
    report = uncertainty_report(pred, method, min_count=min_count)
    write_metrics(report, out_dir / "uncertainty.json")
    write_text_atomic(out_dir / "uncertainty.md", uncertainty_markdown(report))
    pngs: list[Path] = []
    if plots:
        from calo_calib.evaluation.uncertainty_plots import plot_coverage_vs_e, plot_pulls, plot_sigma_vs_e

        pngs = [
            plot_pulls(pulls(pred, method), report, out_dir / "plots" / "pulls.png"),
            plot_coverage_vs_e(report, out_dir / "plots" / "coverage_vs_e.png"),
            plot_sigma_vs_e(report, out_dir / "plots" / "sigma_pred_vs_e.png"),
        ]
    return report, pngs


def summary_lines(report: Mapping[str, Any]) -> Sequence[str]:
    """A few markdown lines for a run's summary.md."""
    inc = report["inclusive"]
    return [
        "## Per-cluster uncertainty (gaussian_nll)",
        "",
        f"Pulls (E_reco − E_true)/(σ·E_reco) on {inc['n']} test clusters: mean {_num(inc['mean'])}, std {_num(inc['std'])}, "
        f"IQR/1.349 {_num(inc['robust_std'])}; coverage ±1σ {_pct(inc['coverage_1sigma'], inc['coverage_1sigma_err'])} % "
        f"(expected 68.3), ±2σ {_pct(inc['coverage_2sigma'], inc['coverage_2sigma_err'])} % (expected 95.4). "
        "Per (|η|, E) bin: `uncertainty.md`.",
        "",
    ]
