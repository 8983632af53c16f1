"""Rank the configurations of the long table: inclusive ranking and the best configuration per bin.

A :class:`Metric` names the long-table column to rank by and how to sort it (:data:`METRICS`:
σ_rel, smaller is better; the median response, closer to 1 is better).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from calo_calib.comparison.schema import BINNED_TABLES
from calo_calib.comparison.table import finite, model_rows


@dataclass(frozen=True)
class Metric:
    """A quantity to rank and plot: ``column`` of the long table, how to sort it, how to show it."""

    column: str
    axis_label: str
    scale: float
    unit: str

    def badness(self, value: float) -> float:
        """Sort key (smaller is better): σ_rel itself; for the median response, its distance to 1."""
        return abs(value - 1.0) if self.column == "median" else value


METRICS: dict[str, Metric] = {
    "sigma_rel": Metric("sigma_rel", r"$\sigma_\mathrm{rel}$ [%]", 100.0, "%"),
    "median": Metric("median", r"median $E_\mathrm{reco}/E_\mathrm{true}$", 1.0, ""),
}
"""``--metric`` choices: σ_rel (smaller is better) or the median response (closer to 1 is better)."""


def rank_runs(records: Sequence[Mapping[str, Any]], particle: str, metric: str = "sigma_rel") -> list[dict[str, Any]]:
    """The runs of ``particle`` ranked by their model's inclusive ``metric`` (best first; NaN last).

    Returns:
        One dict per run: ``rank`` (1 = best), ``config``, ``sweep``, ``run_dir``, ``model``,
        ``loss``, ``value``, ``err`` (the metric, a fraction for σ_rel), ``ratio_to_bdt``,
        ``ratio_to_bdt_err``, ``bdt_reference``, ``test_fingerprint``.
    """
    m = METRICS[metric]
    rows = model_rows(records, particle, "inclusive")
    rows = sorted(
        rows,
        key=lambda r: (not finite(r[m.column]), m.badness(r[m.column]) if finite(r[m.column]) else 0, r["config"]),
    )
    return [
        {
            "rank": i + 1,
            **{
                k: r[k]
                for k in (
                    "config",
                    "sweep",
                    "run_dir",
                    "model",
                    "loss",
                    "ratio_to_bdt",
                    "ratio_to_bdt_err",
                    "bdt_reference",
                    "test_fingerprint",
                )
            },
            "value": r[m.column],
            "err": r[f"{m.column}_err"],
        }
        for i, r in enumerate(rows)
    ]


def best_per_bin(
    records: Sequence[Mapping[str, Any]], particle: str, metric: str = "sigma_rel", table: str = "vs_e_abs_eta"
) -> list[dict[str, Any]]:
    """The best configuration of ``particle`` in each bin of ``table`` (default: the (E, |η|) grid).

    Bins where no configuration has a finite value (empty / low count) are left out.

    Returns:
        One dict per bin, in the table's bin order: the bin edges (``truth_e_lo`` ... as in the long
        table), ``best`` (config label), ``value``, ``err``, ``ratio_to_bdt``, ``ratio_to_bdt_err``,
        ``runner_up`` (label or ""), ``runner_up_value``, ``margin`` ((runner-up - best) in units of
        the two errors added in quadrature, NaN without a runner-up) and ``n_configs`` (configs
        with a finite value there).
    """
    m = METRICS[metric]
    edge_keys = [f"{v}_{s}" for v in BINNED_TABLES[table] for s in ("lo", "hi")]
    bins: dict[tuple[float, ...], list[Mapping[str, Any]]] = {}
    for r in model_rows(records, particle, table):
        bins.setdefault(tuple(r[k] for k in edge_keys), []).append(r)
    out = []
    for edges, rows in bins.items():
        ok = sorted((r for r in rows if finite(r[m.column])), key=lambda r: (m.badness(r[m.column]), r["config"]))
        if not ok:
            continue
        best, second = ok[0], (ok[1] if len(ok) > 1 else None)
        margin = math.nan
        if second is not None:
            err = math.hypot(best[f"{m.column}_err"], second[f"{m.column}_err"])
            margin = (m.badness(second[m.column]) - m.badness(best[m.column])) / err if err > 0 else math.nan
        out.append(
            {
                **dict(zip(edge_keys, edges)),
                "best": best["config"],
                "value": best[m.column],
                "err": best[f"{m.column}_err"],
                "ratio_to_bdt": best["ratio_to_bdt"],
                "ratio_to_bdt_err": best["ratio_to_bdt_err"],
                "runner_up": second["config"] if second else "",
                "runner_up_value": second[m.column] if second else math.nan,
                "margin": margin,
                "n_configs": len(ok),
            }
        )
    return out
