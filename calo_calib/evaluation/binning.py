"""Bin edges and binned resolution tables.

Bin convention (:func:`assign_bins`): every bin is half-open ``[lo, hi)`` except the last, which is
closed ``[lo, hi]`` so that a value exactly on the upper edge of the range (e.g. |η| = 2.47) is
counted. Values below the first edge, above the last edge, or NaN get bin -1.

Binning variables are predictions-table columns or derived ones (:data:`DERIVED`):
``abs_eta = |cluster_eta|`` and ``e_t_true = truth_e / cosh(cluster_eta)`` [GeV].
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from calo_calib.evaluation.metrics import bootstrap_stats, check_ratio, median_response, sigma_rel

ABS_ETA_EDGES: tuple[float, ...] = (0.0, 0.05, 0.65, 0.8, 1.0, 1.2, 1.37, 1.52, 1.55, 1.74, 1.82, 2.0, 2.2, 2.47)
"""|η| edges of the Run-1 egamma MVA calibration (detector card §5.1). The card's last bin
2.47-2.5 is dropped: it is outside the e/γ precision acceptance |η| < 2.47 that the gun covers."""

ABS_ETA_COARSE_EDGES: tuple[float, ...] = (0.0, 0.6, 0.8, 1.15, 1.37, 1.52, 1.81, 2.01, 2.37, 2.47)
"""Coarser |η| edges for plots and 2-D tables: the bins ATLAS e/γ calibration papers show
resolutions in. They keep the detector boundaries (barrel lead-thickness change at 0.8, crack
1.37-1.52, end of the presampler at 1.8) with ~3x fewer bins than the card's, so each E × |η| cell
of a typical test set has enough clusters for a stable IQR."""

ENERGY_EDGES: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 120.0, 250.0, 500.0)
"""True-energy edges [GeV] for the default 5-500 GeV log-uniform particle gun."""

ET_EDGES: tuple[float, ...] = (0.0, 10.0, 20.0, 40.0, 60.0, 80.0, 120.0, 500.0, 1000.0)
"""E_T edges [GeV] of the card's §5.1 calibration bins (its overflow bin up to 50 TeV dropped)."""

MU_EDGES: tuple[float, ...] = (0.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0)
"""Pile-up <μ> edges."""

DERIVED: dict[str, str] = {
    "abs_eta": "|cluster_eta|",
    "e_t_true": "truth_e / cosh(cluster_eta) [GeV]",
}
"""Derived binning variables :func:`get_column` computes from the predictions table."""

RESERVED_KEYS = ("n", "low_count")
"""Row keys of :func:`binned_table` that a method may not be named."""

Predictions = pa.Table | Mapping[str, Any]


def check_edges(edges: Sequence[float], name: str = "edges") -> np.ndarray:
    """``edges`` as a float64 array, checked to be finite and strictly increasing (>= 2 values)."""
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise ValueError(f"{name}: need >= 2 finite, strictly increasing edges, got {list(np.ravel(e))}")
    return e


def assign_bins(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bin index of each value: (N,) int64, -1 outside ``[edges[0], edges[-1]]`` or NaN.

    Bins are ``[lo, hi)`` except the last one, ``[lo, hi]`` (module docstring).
    """
    e = check_edges(edges)
    v = np.asarray(values, dtype=np.float64)
    idx = np.searchsorted(e, v, side="right") - 1
    idx[v == e[-1]] = e.size - 2  # closed last bin
    idx[(idx < 0) | (idx > e.size - 2) | np.isnan(v)] = -1
    return idx.astype(np.int64)


def get_column(pred: Predictions, name: str) -> np.ndarray:
    """Column ``name`` of the predictions (pyarrow Table or dict of arrays) as a float64 array (N,),
    or one of the :data:`DERIVED` variables.

    Raises:
        KeyError: naming the missing column and the available ones.
    """
    if name == "abs_eta":
        return np.abs(get_column(pred, "cluster_eta"))
    if name == "e_t_true":
        return get_column(pred, "truth_e") / np.cosh(get_column(pred, "cluster_eta"))
    names = pred.column_names if isinstance(pred, pa.Table) else list(pred.keys())
    if name not in names:
        raise KeyError(f"predictions have no column {name!r} (columns: {sorted(names)}; derived: {sorted(DERIVED)})")
    col = pred.column(name).to_numpy() if isinstance(pred, pa.Table) else pred[name]
    return np.asarray(col, dtype=np.float64)


def n_rows(pred: Predictions) -> int:
    """Number of clusters in the predictions."""
    return pred.num_rows if isinstance(pred, pa.Table) else len(get_column(pred, "truth_e"))


def method_column(pred: Predictions, method: str) -> tuple[str, str]:
    """``(method name, E_reco column)`` for ``method`` given as ``raw`` or ``e_raw``."""
    names = pred.column_names if isinstance(pred, pa.Table) else list(pred.keys())
    if f"e_{method}" in names:
        return method, f"e_{method}"
    if method.startswith("e_") and method in names:
        return method[2:], method
    raise KeyError(f"predictions have no energy column for method {method!r} (looked for 'e_{method}')")


def response_ratios(pred: Predictions, methods: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Method names and their responses E_reco / E_true, (m, N).

    Raises:
        ValueError: naming the method column and the number of NaN/inf ratios (e.g. a NaN
            prediction or truth_e = 0).
    """
    truth = get_column(pred, "truth_e")
    names, rows = [], []
    for method in methods:
        name, col = method_column(pred, method)
        if name in RESERVED_KEYS:
            raise ValueError(f"method name {name!r} clashes with a table key {RESERVED_KEYS}")
        with np.errstate(divide="ignore", invalid="ignore"):
            rows.append(check_ratio(get_column(pred, col) / truth, name=f"{col} / truth_e"))
        names.append(name)
    return names, np.stack(rows) if rows else np.empty((0, truth.size))


def binned_table(
    pred: Predictions,
    method_columns: Sequence[str],
    by: Mapping[str, Sequence[float]],
    n_boot: int = 200,
    min_count: int = 30,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """σ_rel and median response per method in the bins of one or two variables.

    Args:
        pred: predictions table (pyarrow Table or dict of (N,) arrays) with ``truth_e`` and the
            energy columns; binning variables may be :data:`DERIVED` ones.
        method_columns: methods as names (``raw``) or energy columns (``e_raw``).
        by: ``{variable: edges}``, one or two variables, e.g. ``{"abs_eta": ABS_ETA_COARSE_EDGES,
            "truth_e": ENERGY_EDGES}``. The first variable varies slowest in the output.
        n_boot: bootstrap resamples per bin (shared by all methods of a bin).
        min_count: bins with fewer clusters report NaN statistics and ``low_count = True``.
        seed: bootstrap seed; each bin uses the seed sequence ``(seed, flat bin index)``.

    Returns:
        One dict per bin (all bins, empty ones included), with ``<var>_bin``, ``<var>_lo``,
        ``<var>_hi`` for each variable, ``n``, ``low_count`` and, per method name,
        ``{"sigma_rel", "sigma_rel_err", "median", "median_err"}``.

    Raises:
        ValueError: bad edges, more than two variables, or NaN/inf responses.
    """
    if not 1 <= len(by) <= 2:
        raise ValueError(f"by: bin in one or two variables, got {list(by)}")
    names, ratios = response_ratios(pred, method_columns)
    variables = list(by)
    edges = [check_edges(by[v], name=f"edges of {v}") for v in variables]
    idx = [assign_bins(get_column(pred, v), e) for v, e in zip(variables, edges)]
    shape = tuple(e.size - 1 for e in edges)
    inside = np.all([i >= 0 for i in idx], axis=0)
    flat = np.full(inside.shape, -1, dtype=np.int64)
    flat[inside] = np.ravel_multi_index(tuple(i[inside] for i in idx), shape)
    # group rows by flat bin once (stable sort), then slice: no per-row Python work
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(int(np.prod(shape)) + 1), side="left")

    rows = []
    for b, bins in enumerate(itertools.product(*(range(s) for s in shape))):
        members = order[bounds[b] : bounds[b + 1]]
        row: dict[str, Any] = {}
        for v, e, k in zip(variables, edges, bins):
            row[f"{v}_bin"] = int(k)
            row[f"{v}_lo"] = float(e[k])
            row[f"{v}_hi"] = float(e[k + 1])
        row["n"] = int(members.size)
        row["low_count"] = bool(members.size < min_count)
        if row["low_count"]:
            values = errors = np.full((len(names), 2), np.nan)
        else:
            values, errors = bootstrap_stats(
                ratios[:, members], [sigma_rel, median_response], n_boot=n_boot, seed=(seed, b)
            )
        for j, name in enumerate(names):
            row[name] = {
                "sigma_rel": float(values[j, 0]),
                "sigma_rel_err": float(errors[j, 0]),
                "median": float(values[j, 1]),
                "median_err": float(errors[j, 1]),
            }
        rows.append(row)
    return rows
