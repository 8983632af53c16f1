"""metrics.json of a run: inclusive and binned σ_rel, comparisons between runs, a markdown summary.

The metrics dict (:func:`evaluate`) is plain JSON: NaN (empty or low-count bins) becomes ``null``
when written (:func:`write_metrics`) and is read back as NaN by :func:`compare`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calo_calib.evaluation import binning as B
from calo_calib.evaluation.metrics import bootstrap_stats, median_response, sigma_rel
from calo_calib.formatting import as_float, fmt, jsonable
from calo_calib.io.atomic import write_json_atomic

DEFINITION = "sigma_rel = IQR(E_reco/E_true) / (1.349 * mean(E_reco/E_true)); errors: bootstrap std"

TABLES: dict[str, dict[str, str]] = {
    "vs_e": {"truth_e": "truth_e"},
    "vs_abs_eta": {"abs_eta": "abs_eta"},
    "vs_e_abs_eta": {"abs_eta": "abs_eta_coarse", "truth_e": "truth_e"},
    "vs_mu": {"mu": "mu"},
    "vs_e_t": {"e_t_true": "e_t_true"},
}
"""Binned tables of :func:`evaluate`: ``{table: {variable: key of the edges in metrics["edges"]}}``.
vs_abs_eta uses the card's fine |η| bins; the 2-D table uses the coarse ones so that each cell has
enough clusters."""

EDGES: dict[str, tuple[float, ...]] = {
    "truth_e": B.ENERGY_EDGES,
    "abs_eta": B.ABS_ETA_EDGES,
    "abs_eta_coarse": B.ABS_ETA_COARSE_EDGES,
    "mu": B.MU_EDGES,
    "e_t_true": B.ET_EDGES,
}

COMPARED_TABLES = ("vs_e", "vs_abs_eta", "vs_e_abs_eta", "vs_mu")


def evaluate(
    pred: B.Predictions, methods: Sequence[str], n_boot: int = 200, seed: int = 0, min_count: int = 30
) -> dict[str, Any]:
    """Inclusive and binned resolution of each method on a predictions table.

    Args:
        pred: predictions (pyarrow Table or dict of (N,) arrays) with ``truth_e`` [GeV],
            ``cluster_eta``, ``mu`` and ``e_<method>`` [GeV] per method.
        methods: method names (``raw``, ``oracle``, ``transformer``, ...).
        n_boot: bootstrap resamples for the errors.
        seed: bootstrap seed.
        min_count: binned cells with fewer clusters are NaN and flagged ``low_count``.

    Returns:
        ``{"inclusive": {method: {sigma_rel, sigma_rel_err, median, median_err, n}}, "vs_e": rows,
        "vs_abs_eta": rows, "vs_e_abs_eta": rows, "vs_mu": rows, "vs_e_t": rows, "edges": {...},
        "methods", "n_clusters", "n_boot", "min_count", "definition"}`` (rows: :func:`binning.binned_table`).

    Raises:
        ValueError: if a method's E_reco / truth_e is NaN or infinite for any cluster.
    """
    names, ratios = B.response_ratios(pred, methods)
    values, errors = bootstrap_stats(ratios, [sigma_rel, median_response], n_boot=n_boot, seed=seed)
    inclusive = {
        name: {
            "sigma_rel": float(values[j, 0]),
            "sigma_rel_err": float(errors[j, 0]),
            "median": float(values[j, 1]),
            "median_err": float(errors[j, 1]),
            "n": int(ratios.shape[1]),
        }
        for j, name in enumerate(names)
    }
    metrics: dict[str, Any] = {"inclusive": inclusive}
    for table, variables in TABLES.items():
        by = {var: EDGES[key] for var, key in variables.items()}
        metrics[table] = B.binned_table(pred, methods, by, n_boot=n_boot, min_count=min_count, seed=seed)
    metrics.update(
        edges={k: list(v) for k, v in EDGES.items()},
        methods=names,
        n_clusters=B.n_rows(pred),
        n_boot=int(n_boot),
        min_count=int(min_count),
        definition=DEFINITION,
    )
    return metrics


def write_metrics(metrics: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``metrics`` as JSON atomically (temporary name + rename); NaN/inf are written as null.

    Returns:
        The output path.
    """
    path = Path(path)
    return write_json_atomic(path, jsonable(metrics), allow_nan=False)


def _ratio(s: Any, s_err: Any, r: Any, r_err: Any) -> tuple[float, float]:
    """s / r with the error propagated as if s and r were independent.

    On the same test clusters the two are positively correlated, so this error is conservative.
    """
    s, s_err, r, r_err = map(as_float, (s, s_err, r, r_err))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = s / r if r != 0 else float("nan")
        err = abs(q) * math.hypot(s_err / s, r_err / r) if s != 0 and r != 0 else float("nan")
    return float(q), float(err)


def _bin_keys(row: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, v) for k, v in row.items() if k.endswith(("_bin", "_lo", "_hi"))))


def compare(
    metrics: Mapping[str, Any], reference_metrics: Mapping[str, Any], method: str, reference_method: str
) -> dict[str, Any]:
    """σ_rel(method) / σ_rel(reference_method), inclusive and per bin (< 1: ``method`` is better).

    ``metrics`` and ``reference_metrics`` may be the same dict (two methods of one run) or come from
    two runs on the same test data (e.g. a network against a BDT run, from metrics.json).

    Returns:
        ``{"method", "reference_method", "inclusive": {ratio, ratio_err, sigma_rel, sigma_rel_ref},
        "vs_e": rows, "vs_abs_eta": rows, "vs_e_abs_eta": rows, "vs_mu": rows}``; each row keeps the
        bin keys and ``n`` and adds ``ratio``, ``ratio_err``, ``sigma_rel``, ``sigma_rel_ref``
        (NaN where either is NaN). The error assumes independent σ_rel's (conservative).

    Raises:
        KeyError: if a method is missing; ValueError: if the binnings differ.
    """
    for m, name in ((metrics, method), (reference_metrics, reference_method)):
        if name not in m["inclusive"]:
            raise KeyError(f"method {name!r} not in the metrics (methods: {sorted(m['inclusive'])})")
    a, b = metrics["inclusive"][method], reference_metrics["inclusive"][reference_method]
    q, q_err = _ratio(a["sigma_rel"], a["sigma_rel_err"], b["sigma_rel"], b["sigma_rel_err"])
    out: dict[str, Any] = {
        "method": method,
        "reference_method": reference_method,
        "inclusive": {
            "ratio": q,
            "ratio_err": q_err,
            "sigma_rel": as_float(a["sigma_rel"]),
            "sigma_rel_ref": as_float(b["sigma_rel"]),
        },
    }
    for table in COMPARED_TABLES:
        rows, ref_rows = metrics.get(table), reference_metrics.get(table)
        if rows is None or ref_rows is None:
            continue
        if [_bin_keys(r) for r in rows] != [_bin_keys(r) for r in ref_rows]:
            raise ValueError(f"{table}: the two metrics use different bins; cannot compare")
        out_rows = []
        for row, ref in zip(rows, ref_rows):
            s, r = row[method], ref[reference_method]
            q, q_err = _ratio(s["sigma_rel"], s["sigma_rel_err"], r["sigma_rel"], r["sigma_rel_err"])
            out_rows.append(
                {**dict(_bin_keys(row)), "n": row["n"], "ratio": q, "ratio_err": q_err,
                 "sigma_rel": as_float(s["sigma_rel"]), "sigma_rel_ref": as_float(r["sigma_rel"])}
            )  # fmt: skip
        out[table] = out_rows
    return out


# --- markdown --------------------------------------------------------------------------------------

_DISPLAY = {"raw": "raw", "oracle": "oracle", "bdt": "BDT", "transformer": "transformer", "gnn_edge": "GNN (edge)"}


def display_name(method: str) -> str:
    """Human-readable method name for tables and legends."""
    return _DISPLAY.get(method, method)


def _pct(value: Any, err: Any) -> str:
    """value ± err in %, with enough decimals (2 to 4) for the error to show a significant digit."""
    return fmt(value, err, scale=100, digits="auto")


def _ratio_cell(q: float, err: float) -> str:
    if not math.isfinite(q):
        return "–"
    return f"{q:.3f} ± {err:.3f}" if math.isfinite(err) else f"{q:.3f}"


def summary_markdown(metrics: Mapping[str, Any], methods: Sequence[str]) -> str:
    """Markdown tables: inclusive σ_rel (%) and median per method, then σ_rel (%) versus E_true in
    each coarse |η| bin, with the ratio σ_rel(model) / σ_rel(BDT) for each model when ``bdt`` is
    among the methods. Empty / low-count cells show "–"."""
    methods = [m for m in methods if m in metrics["inclusive"]]
    ref = "bdt" if "bdt" in methods else None
    models = [m for m in methods if ref and m not in ("raw", "oracle", ref)]
    inc = metrics["inclusive"]
    lines = ["## Inclusive", ""]
    head = ["method", "σ_rel (%)", "median E_reco/E_true", "clusters"] + (["σ_rel / σ_rel(BDT)"] if ref else [])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        cells = [display_name(m), _pct(inc[m]["sigma_rel"], inc[m]["sigma_rel_err"])]
        med, med_err = as_float(inc[m]["median"]), as_float(inc[m]["median_err"])
        cells.append(f"{med:.4f} ± {med_err:.4f}" if math.isfinite(med) else "–")
        cells.append(str(inc[m]["n"]))
        if ref == m:
            cells.append("1 (reference)")
        elif ref:
            cells.append(
                _ratio_cell(
                    *_ratio(
                        inc[m]["sigma_rel"], inc[m]["sigma_rel_err"], inc[ref]["sigma_rel"], inc[ref]["sigma_rel_err"]
                    )
                )
            )
        lines.append("| " + " | ".join(cells) + " |")

    rows = metrics.get("vs_e_abs_eta") or []
    etas = sorted({(r["abs_eta_lo"], r["abs_eta_hi"]) for r in rows})
    if etas:
        lines += [
            "",
            f"## σ_rel (%) versus E_true, in |η| bins (bins with < {metrics.get('min_count', '?')} clusters: –)",
        ]
    for lo, hi in etas:
        head = ["E_true [GeV]", "n"] + [display_name(m) for m in methods] + [f"{display_name(m)} / BDT" for m in models]
        lines += ["", f"### {lo:g} ≤ |η| < {hi:g}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in (r for r in rows if (r["abs_eta_lo"], r["abs_eta_hi"]) == (lo, hi)):
            cells = [f"{r['truth_e_lo']:g}–{r['truth_e_hi']:g}", str(r["n"])]
            cells += [_pct(r[m]["sigma_rel"], r[m]["sigma_rel_err"]) for m in methods]
            cells += [
                _ratio_cell(
                    *_ratio(r[m]["sigma_rel"], r[m]["sigma_rel_err"], r[ref]["sigma_rel"], r[ref]["sigma_rel_err"])
                )
                for m in models
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
