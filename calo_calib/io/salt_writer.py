"""Parquet cluster files -> one SALT-style HDF5 file plus its YAML norm dict (:func:`parquet_to_salt_h5`).

The layout written: :mod:`calo_calib.io.salt_h5` (module docstring). A pre-pass over the cheap
columns (:func:`~calo_calib.io.salt_input.scan_input`) fixes the datasets' shapes and string widths
and refuses clusters with too many cells before anything is written; then the data is converted
chunk by chunk (:func:`_write_chunk`), so memory is bounded by one chunk.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow as pa
from tqdm import tqdm

import calo_calib
from calo_calib.io.dataset_stream import (
    DEFAULT_CHUNK_ROWS,
    ParquetChunk,
    check_file_destination,
    common_schema,
    iter_parquet_chunks,
    replace_file,
    resolve_parquet_files,
    source_metadata,
    tmp_file,
)
from calo_calib.io.salt_input import cell_counts, check_no_nulls, flat_values, scan_input, split_columns, to_numpy
from calo_calib.io.salt_layout import (
    CACHE_BYTES,
    CHUNK_BYTES,
    DEFAULT_CELLS,
    DEFAULT_CLUSTERS,
    FORMAT_NAME,
    FORMAT_VERSION,
    MASK_FIELD,
    PathLike,
    default_norm_path,
    is_list,
    is_string,
    numpy_dtype,
)
from calo_calib.io.salt_norm import RunningStats, write_yaml_atomic
from calo_calib.io.schema import COLUMN_BY_NAME

log = logging.getLogger(__name__)


def _keep_mask(e: np.ndarray | None, counts: np.ndarray, max_cells: int) -> np.ndarray:
    """Which flat cells to keep so that no cluster has more than ``max_cells``: the most energetic
    ones (largest ``cell_e``; the first ones without it), in their original order."""
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    seg = np.repeat(np.arange(len(counts)), counts)
    if e is None:
        rank = np.arange(total) - np.repeat(starts, counts)
    else:
        order = np.lexsort((-e.astype(np.float64), seg))  # by cluster, then by decreasing energy
        rank = np.empty(total, dtype=np.int64)
        rank[order] = np.arange(total) - starts[seg[order]]
    return rank < max_cells


def parquet_to_salt_h5(
    src: PathLike | Iterable[PathLike],
    dst: PathLike,
    max_cells: int | None = None,
    *,
    truncate: bool = False,
    clusters_name: str = DEFAULT_CLUSTERS,
    cells_name: str = DEFAULT_CELLS,
    norm_path: PathLike | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    compression: str | None = "gzip",
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Convert Parquet cluster files to one SALT-style HDF5 file plus its YAML norm dict.

    Args:
        src: a dataset directory, a ``.parquet`` file or a list of them (concatenated in that order).
        dst: the ``.h5`` file to write.
        max_cells: width of the padded cells dataset; ``None`` = the largest ``n_cells`` of the data.
        truncate: allow clusters with more than ``max_cells`` cells: keep their ``max_cells`` most
            energetic cells (in the original order) and set ``n_cells`` to the kept number. The
            counts of truncated clusters and dropped cells are stored as file attributes. Without it
            such a cluster is an error: cells are never dropped silently.
        clusters_name, cells_name: names of the two HDF5 datasets.
        norm_path: where to write the norm dict (default :func:`default_norm_path` of ``dst``).
        chunk_rows: clusters converted per step (bounds memory: ~chunk_rows * max_cells * 30 bytes).
        compression: HDF5 filter for both datasets (``"gzip"``, ``"lzf"`` or ``None``).
        overwrite: replace an existing ``dst`` (and norm dict).
        progress: show a tqdm progress bar.

    Returns:
        ``dst``. The clusters dataset has shape (N,), the cells dataset (N, max_cells).

    Raises:
        ValueError: a cluster with more than ``max_cells`` cells without ``truncate`` (file and row
            named), cell lists whose lengths differ from each other or from ``n_cells``, null values,
            files with differing schemas, a column type HDF5 cannot hold here.
        FileExistsError: ``dst`` exists and ``overwrite`` is false.
    """
    files = resolve_parquet_files(src)
    dst = Path(dst)
    norm = Path(norm_path) if norm_path is not None else default_norm_path(dst)
    check_file_destination(dst, overwrite)
    check_file_destination(norm, overwrite)
    if max_cells is not None and int(max_cells) < 1:
        raise ValueError(f"max_cells must be >= 1, got {max_cells}")
    if clusters_name == cells_name:
        raise ValueError(f"the clusters and cells datasets need different names, both are {cells_name!r}")
    plan = _plan(files, max_cells, truncate, chunk_rows)
    stats = {clusters_name: {c: RunningStats() for c in plan.scalars if plan.cl_dtype[c].kind in "biuf"},
             cells_name: {c: RunningStats() for c in plan.cells}}  # fmt: skip
    n_truncated = n_dropped = 0

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_file(dst)
    try:
        with h5py.File(tmp, "w", rdcc_nbytes=CACHE_BYTES) as h5:
            d_cl, d_ce = _create_datasets(h5, plan, clusters_name, cells_name, compression)
            bar = tqdm(total=plan.n_rows, unit="cluster", desc=f"-> {dst.name}", disable=not progress)
            for chunk in iter_parquet_chunks(files, chunk_rows):
                if not chunk.table.num_rows:
                    continue
                truncated, dropped = _write_chunk(chunk, plan, d_cl, d_ce, stats[clusters_name], stats[cells_name])
                n_truncated += truncated
                n_dropped += dropped
                bar.update(chunk.table.num_rows)
            bar.close()
            _write_attrs(h5, (clusters_name, cells_name), plan, n_truncated, n_dropped)
        # The norm dict first: a published .h5 always has its norm dict next to it.
        write_yaml_atomic({ds: {c: s.result() for c, s in per.items()} for ds, per in stats.items()}, norm)
        replace_file(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if n_truncated:
        log.warning(
            "%s: %d cluster(s) truncated to %d cells, %d cell(s) dropped", dst, n_truncated, plan.width, n_dropped
        )
    return dst


@dataclass(frozen=True)
class _WritePlan:
    """What :func:`parquet_to_salt_h5` writes, decided by the pre-pass before anything is written."""

    files: list[Path]
    schema: pa.Schema
    scalars: list[str]  # scalar columns: fields of the clusters dataset
    cells: list[str]  # per-cell list columns: fields of the cells dataset (plus the mask)
    n_rows: int
    width: int  # max_cells: the second dimension of the cells dataset
    cl_dtype: np.dtype
    ce_dtype: np.dtype


def _plan(files: list[Path], max_cells: int | None, truncate: bool, chunk_rows: int) -> _WritePlan:
    """Check the input columns and scan the data: the datasets' shapes and compound dtypes."""
    schema = common_schema(files)
    scalars, cells = split_columns(schema, files[0])
    n_rows, longest, str_len = scan_input(files, scalars, cells, chunk_rows, max_cells, truncate)
    width = int(max_cells) if max_cells is not None else max(1, longest)

    def field_dtype(name: str) -> np.dtype:
        t = schema.field(name).type
        if is_list(t):
            t = t.value_type
        return np.dtype(f"S{str_len[name]}") if is_string(t) else numpy_dtype(t, name)

    cl_dtype = np.dtype([(c, field_dtype(c)) for c in scalars])
    ce_dtype = np.dtype([(c, field_dtype(c)) for c in cells] + [(MASK_FIELD, np.bool_)])
    return _WritePlan(files, schema, scalars, cells, n_rows, width, cl_dtype, ce_dtype)


def _create_datasets(
    h5: h5py.File, plan: _WritePlan, clusters_name: str, cells_name: str, compression: str | None
) -> tuple[h5py.Dataset, h5py.Dataset]:
    """The empty (N,) clusters and (N, max_cells) cells datasets, chunked to ~1 MiB."""
    n_rows, width = plan.n_rows, plan.width
    opts: dict[str, Any] = {}
    if compression is not None and n_rows:  # (HDF5 cannot chunk an empty dataset)
        opts = {"compression": compression, "shuffle": True}
    rows_cl = max(1, min(n_rows, CHUNK_BYTES // max(1, plan.cl_dtype.itemsize)))
    rows_ce = max(1, min(n_rows, CHUNK_BYTES // (width * plan.ce_dtype.itemsize)))
    chunks_cl = {"chunks": (rows_cl,)} if n_rows else {}
    chunks_ce = {"chunks": (rows_ce, width)} if n_rows else {}
    d_cl = h5.create_dataset(clusters_name, shape=(n_rows,), dtype=plan.cl_dtype, **chunks_cl, **opts)
    d_ce = h5.create_dataset(cells_name, shape=(n_rows, width), dtype=plan.ce_dtype, **chunks_ce, **opts)
    return d_cl, d_ce


def _write_chunk(
    chunk: ParquetChunk,
    plan: _WritePlan,
    d_cl: h5py.Dataset,
    d_ce: h5py.Dataset,
    stats_cl: dict[str, RunningStats],
    stats_ce: dict[str, RunningStats],
) -> tuple[int, int]:
    """Write one Parquet chunk into both datasets and the statistics: (truncated clusters, dropped cells)."""
    t, n, width = chunk.table, chunk.table.num_rows, plan.width
    check_no_nulls(t, chunk.path, chunk.file_row)
    counts = cell_counts(t, plan.scalars, plan.cells, chunk.path, chunk.file_row)
    flat = {c: to_numpy(flat_values(t[c])) for c in plan.cells}
    rec = np.empty(n, dtype=plan.cl_dtype)
    for c in plan.scalars:
        col = t[c]
        rec[c] = to_numpy(col.cast(pa.binary()) if is_string(col.type) else col)
    n_truncated = n_dropped = 0
    if (counts > width).any():  # only reachable with truncate (the scan raised otherwise)
        keep = _keep_mask(flat.get("cell_e"), counts, width)
        kept = np.minimum(counts, width)
        n_truncated += int((counts > width).sum())
        n_dropped += int((~keep).sum())
        flat = {c: v[keep] for c, v in flat.items()}
        counts = kept
        if "n_cells" in plan.scalars:
            rec["n_cells"] = counts
    total = int(counts.sum())
    seg = np.repeat(np.arange(n), counts)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    pos = seg * width + within
    grid = np.zeros(n * width, dtype=plan.ce_dtype)  # zeros: padding is all-zero, valid False
    for c, v in flat.items():
        grid[c][pos] = v
        stats_ce[c].update(v)
    grid[MASK_FIELD][pos] = True
    for c, s in stats_cl.items():
        s.update(rec[c])
    d_cl[chunk.row : chunk.row + n] = rec
    d_ce[chunk.row : chunk.row + n] = grid.reshape(n, width)
    return n_truncated, n_dropped


def _write_attrs(
    h5: h5py.File,
    names: tuple[str, str],
    plan: _WritePlan,
    n_truncated: int,
    n_dropped: int,
) -> None:
    """The file's and the datasets' attributes: format, names, provenance, units, truncation counts."""
    clusters_name, cells_name = names
    d_cl, d_ce = h5[clusters_name], h5[cells_name]
    files, scalars, cells = plan.files, plan.scalars, plan.cells
    meta = source_metadata(files[0])
    units = {c: COLUMN_BY_NAME[c].unit for c in scalars + cells if c in COLUMN_BY_NAME}
    h5.attrs.update(
        {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "calo_calib_version": calo_calib.__version__,
            "clusters_dataset": clusters_name,
            "cells_dataset": cells_name,
            "mask_field": MASK_FIELD,
            "max_cells": plan.width,
            "units_convention": "energies GeV, lengths mm, angles rad",
            "column_order": json.dumps(plan.schema.names),
            "source_files": json.dumps([str(f.resolve()) for f in files]),
            "source_metadata": json.dumps(meta),
            "truncated_clusters": n_truncated,
            "dropped_cells": n_dropped,
        }
    )
    d_cl.attrs["units"] = json.dumps({c: units[c] for c in scalars if c in units})
    d_ce.attrs["units"] = json.dumps({c: units[c] for c in cells if c in units})
    d_ce.attrs["mask_field"] = MASK_FIELD
