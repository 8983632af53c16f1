"""The predictions table of a run: one row per test cluster, truth and every method's E_reco.

Columns (GeV for energies): ``row_id`` (the cluster's stable id in its dataset), ``particle``,
``truth_e``, ``truth_eta``, ``cluster_e``, ``cluster_eta``, ``mu``, ``conversion_type``,
``correction`` (the model's E_reco / cluster_e), and one ``e_<method>`` column per method:
``e_raw`` (= cluster_e), ``e_oracle`` and ``e_<model name>``.

The oracle is the floor no calibration can beat with this detector: it knows every truth loss
(upstream, passive material, leakage, energy outside the cluster) exactly and only keeps the
measurement error of the cluster's accordion cells (sampling fluctuations, noise, modulation):
``E_oracle = (E_L1 + E_L2 + E_L3) - truth_e_dep_cluster + truth_e``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TRUTH_COLUMNS: tuple[str, ...] = (
    "particle",
    "truth_e",
    "truth_eta",
    "cluster_e",
    "cluster_eta",
    "mu",
    "conversion_type",
    "cluster_e_l1",
    "cluster_e_l2",
    "cluster_e_l3",
    "truth_e_dep_cluster",
)
"""Scalar columns of the test data that the predictions table needs."""

KEPT_COLUMNS: tuple[str, ...] = ("particle", "truth_e", "truth_eta", "cluster_e", "cluster_eta", "mu", "conversion_type")


def oracle_energy(truth: dict[str, np.ndarray]) -> np.ndarray:
    """E_oracle (N,) in GeV: the accordion measurement with every truth loss restored (module docstring)."""
    e_acc = truth["cluster_e_l1"] + truth["cluster_e_l2"] + truth["cluster_e_l3"]
    return e_acc - truth["truth_e_dep_cluster"] + truth["truth_e"]


def build_predictions(
    truth: pa.Table, row_id: np.ndarray, correction: np.ndarray, model_name: str
) -> pa.Table:
    """Join a model's per-cluster corrections with the test clusters' truth.

    Args:
        truth: the selected test clusters' scalar columns (:data:`TRUTH_COLUMNS` + ``row_id``),
            e.g. from ``ClusterDataset.scalar_table``.
        row_id: (N,) ids of the predicted clusters, in any order.
        correction: (N,) E_reco / cluster_e for those clusters.
        model_name: the method's name; its energy column is ``e_<model_name>``.

    Raises:
        ValueError: if the predicted ids are not exactly the truth table's ids, or a correction is
            not finite (a silent NaN would bias every σ_rel).
    """
    ids = truth.column("row_id").to_numpy()
    order = np.argsort(row_id, kind="stable")
    row_id, correction = np.asarray(row_id)[order], np.asarray(correction, dtype=np.float64)[order]
    truth = truth.take(pa.array(np.argsort(ids, kind="stable")))
    ids = truth.column("row_id").to_numpy()
    if len(ids) != len(row_id) or not np.array_equal(ids, row_id):
        raise ValueError(
            f"predictions cover {len(row_id)} clusters but the test set has {len(ids)}: every selected test "
            "cluster must be predicted exactly once"
        )
    bad = ~np.isfinite(correction)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} non-finite corrections from {model_name!r} (first row_id {int(row_id[bad][0])})"
        )
    cols = {name: truth.column(name).to_numpy(zero_copy_only=False) for name in truth.column_names}
    out = {"row_id": ids}
    for name in KEPT_COLUMNS:
        out[name] = cols[name]
    out["correction"] = correction
    out["e_raw"] = cols["cluster_e"].astype(np.float64)
    out["e_oracle"] = oracle_energy(cols)
    out[f"e_{model_name}"] = correction * cols["cluster_e"]
    return pa.table(out)


def add_method(predictions: pa.Table, other: pa.Table, method: str) -> pa.Table:
    """Add ``e_<method>`` from another run's predictions on the same clusters (joined on ``row_id``).

    Raises:
        ValueError: if ``other`` does not cover exactly the same clusters.
    """
    column = f"e_{method}"
    ids = predictions.column("row_id").to_numpy()
    oids = other.column("row_id").to_numpy()
    order = np.argsort(oids, kind="stable")
    if len(oids) != len(ids) or not np.array_equal(oids[order], ids):
        raise ValueError(f"cannot add {column}: the other predictions are on different clusters")
    values = other.column(column).to_numpy()[order]
    if column in predictions.column_names:
        predictions = predictions.drop_columns([column])
    return predictions.append_column(column, pa.array(values))


def method_names(predictions: pa.Table) -> list[str]:
    """The methods present: the ``e_<method>`` columns, raw first and oracle last."""
    names = [c[2:] for c in predictions.column_names if c.startswith("e_")]
    middle = [n for n in names if n not in ("raw", "oracle")]
    return [n for n in ("raw",) if n in names] + middle + [n for n in ("oracle",) if n in names]


def write_predictions(table: pa.Table, path: str | os.PathLike[str]) -> Path:
    """Write the predictions Parquet atomically (temporary name, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def dataset_fingerprint(paths: Sequence[str | os.PathLike[str]]) -> str:
    """Identity of a dataset (shard names and sizes): runs compare each other only on the same test data."""
    from calo_calib.io.parquet import list_shards

    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files = [f for p in map(Path, items) for f in (list_shards(p) if p.is_dir() else [p])]
    desc = [(f.name, f.stat().st_size) for f in files]
    return hashlib.sha256(json.dumps(desc).encode()).hexdigest()[:16]
