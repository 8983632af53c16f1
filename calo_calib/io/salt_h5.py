"""The HDF5 layout of SALT (the ATLAS ``salt`` ML framework): write from and read into Parquet datasets.

SALT trains on HDF5 files holding one *structured* (compound dtype) dataset per object type: a 1-D
dataset of the global objects (here: clusters) and 2-D ``(n_objects, max_constituents)`` padded
datasets of their constituents (here: cells), whose boolean field ``valid`` marks the real entries.
The input-variable means and standard deviations come from a YAML "norm dict"
``{dataset: {variable: {mean: .., std: ..}}}``. Layout written here (names configurable):

* ``clusters``: shape (N,), one row per cluster, one field per scalar column of the Parquet data
  (``docs/data_format.md``), with the same dtype (float32, int32, int8, bool; ``particle`` as fixed
  length UTF-8 bytes);
* ``cells``: shape (N, max_cells), one field per per-cell list column (``cell_e``, ``cell_eta``, ...)
  plus ``valid`` (bool). Cell ``j`` of cluster ``i`` is ``cells[i, j]`` for ``j < n_cells[i]``; the
  padding entries are all-zero with ``valid = False``;
* attributes: on the file the format name/version, the package version, the dataset and mask names,
  the original column order, the source files and their ``calo_calib`` provenance metadata (JSON);
  on each dataset ``units`` (JSON ``{field: unit}``; GeV, mm, rad);
* ``<file stem>.norm.yaml`` next to the file: mean and std of every numeric field over all clusters
  (``clusters``) and over the valid cells only (``cells``).

Conversions stream: Parquet is read chunk by chunk (``chunk_rows`` clusters) and HDF5 slice by
slice, so memory is bounded by one chunk whatever the dataset size. Files are written under a
temporary name and renamed when complete. A Parquet -> HDF5 -> Parquet round trip returns every value
of every column bit for bit, with the types of the format.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from tqdm import tqdm

import calo_calib
from calo_calib.io.dataset_stream import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_SHARD_ROWS,
    ParquetDatasetWriter,
    cast_checked,
    check_file_destination,
    common_schema,
    field_for,
    iter_parquet_chunks,
    list_array,
    replace_file,
    resolve_parquet_files,
    source_metadata,
    tmp_file,
)
from calo_calib.io.schema import CELL_COLUMNS, COLUMN_BY_NAME, COLUMNS
from calo_calib.moments import EXACT_ZERO_FLOOR, StreamingMoments

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

FORMAT_NAME = "calo_calib/salt_h5"
FORMAT_VERSION = 1
"""Version of this HDF5 layout (attribute ``format_version``); bumped on incompatible changes."""

DEFAULT_CLUSTERS = "clusters"
DEFAULT_CELLS = "cells"
MASK_FIELD = "valid"

SALT_STD_FLOOR = EXACT_ZERO_FLOOR
"""Std floor of the norm dict: only an exactly zero std (a constant variable) is written as 1."""

# Fields every file must provide to become a dataset of the format: all columns except n_cells,
# which is the number of valid cells and is derived when absent (SALT files usually lack it).
DEFAULT_REQUIRED: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.name != "n_cells")

_CHUNK_BYTES = 1 << 20  # ~1 MiB HDF5 chunks: the usual sweet spot between compression and random access
_CACHE_BYTES = 64 << 20  # chunk cache: our write slices need not align with the HDF5 chunks


def default_norm_path(h5_path: PathLike) -> Path:
    """``<dir>/<stem>.norm.yaml`` for ``<dir>/<stem>.h5``: where the norm dict is written by default."""
    p = Path(h5_path)
    return p.with_name(p.stem + ".norm.yaml")


# --------------------------------------------------------------------------------------------- types
def _numpy_dtype(t: pa.DataType, what: str) -> np.dtype:
    """The numpy (and so HDF5) dtype of an Arrow scalar type; strings are handled by the caller."""
    if pa.types.is_boolean(t):
        return np.dtype(np.bool_)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return np.dtype(t.to_pandas_dtype())
    raise TypeError(f"{what}: Arrow type {t} has no HDF5 equivalent here (numbers, bool and strings only)")


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _split_columns(schema: pa.Schema, path: Path) -> tuple[list[str], list[str]]:
    """(scalar columns, per-cell list columns) of a Parquet schema, checked against the format."""
    scalars, cells = [], []
    for f in schema:
        if _is_list(f.type):
            if f.name in COLUMN_BY_NAME and f.name not in CELL_COLUMNS:
                raise ValueError(f"{path}: column {f.name!r} must be a scalar column, has type {f.type}")
            _numpy_dtype(f.type.value_type, f"{path}: column {f.name!r}")
            cells.append(f.name)
        else:
            if f.name in CELL_COLUMNS:
                raise ValueError(
                    f"{path}: column {f.name!r} must be a list column (one entry per cell), has type {f.type}"
                )
            if not _is_string(f.type):
                _numpy_dtype(f.type, f"{path}: column {f.name!r}")
            scalars.append(f.name)
    if MASK_FIELD in cells:
        raise ValueError(f"{path}: a cell column is named {MASK_FIELD!r}, which is the HDF5 mask field")
    return scalars, cells


def _to_numpy(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return col.to_numpy(zero_copy_only=False)


def _flat(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The values of a list column, with slicing offsets respected."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return col.flatten()


def _check_no_nulls(table: pa.Table, path: Path, file_row: int) -> None:
    """HDF5 compound fields have no null: refuse nulls (naming file, row and column) rather than invent values."""
    for name in table.column_names:
        col = table[name]
        if col.null_count:
            r = int(np.flatnonzero(~_to_numpy(pc.is_valid(col)).astype(bool))[0])
            raise ValueError(f"{path}: row {file_row + r}: null value in column {name!r}")
        if _is_list(col.type):
            flat = _flat(col)
            if flat.null_count:
                parents = _to_numpy(pc.list_parent_indices(col.combine_chunks()))
                r = int(parents[np.flatnonzero(~_to_numpy(pc.is_valid(flat)).astype(bool))[0]])
                raise ValueError(f"{path}: row {file_row + r}: null cell value in column {name!r}")


# --------------------------------------------------------------------------------------------- norm
class _RunningStats(StreamingMoments):
    """Mean and std of one variable of the stream for the norm dict: NaN marks "not applicable"
    (truth_conv_r of unconverted photons), so non-finite values are left out."""

    def __init__(self) -> None:
        # A constant variable (e.g. cluster_e_tg3, always 0) has std 0: dividing by it would give inf,
        # so 1 is written instead (the scikit-learn StandardScaler convention); the mean still centres it.
        super().__init__(1, std_floor=SALT_STD_FLOOR)

    def update(self, values: np.ndarray) -> int:  # type: ignore[override]
        v = np.asarray(values, dtype=np.float64)
        return super().update(v, np.isfinite(v))

    def result(self) -> dict[str, float]:
        return {"mean": float(self.mean[0]), "std": float(self.std()[0])}


def read_norm_dict(path: PathLike) -> dict[str, dict[str, dict[str, float]]]:
    """Read a SALT norm dict ``{dataset: {variable: {mean, std}}}`` from YAML.

    Raises:
        ValueError: if the file is not a mapping of that shape (the offending entry is named).
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a norm dict must be a mapping {{dataset: {{variable: {{mean, std}}}}}}")
    for ds, variables in data.items():
        if not isinstance(variables, dict):
            raise ValueError(f"{path}: entry {ds!r} must map variables to {{mean, std}}")
        for var, ms in variables.items():
            if not (isinstance(ms, dict) and {"mean", "std"} <= set(ms)):
                raise ValueError(f"{path}: {ds}.{var} must have 'mean' and 'std'")
    return data


def _write_yaml_atomic(data: Any, path: Path) -> None:
    tmp = tmp_file(path)
    try:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        replace_file(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------- write
def _scan(
    files: list[Path], scalars: list[str], cells: list[str], chunk_rows: int, max_cells: int | None, truncate: bool
) -> tuple[int, int, dict[str, int]]:
    """Pre-pass over the cheap columns: (n_rows, largest cell count, max UTF-8 length per string column).

    Raises the "too many cells" error here, before anything is written.
    """
    schema = common_schema(files)
    strings = [c for c in scalars if _is_string(schema.field(c).type)]
    count_col = "n_cells" if "n_cells" in scalars else (cells[0] if cells else None)
    n_rows, longest = 0, 0
    str_len = dict.fromkeys(strings, 1)
    columns = strings + ([count_col] if count_col else [])
    if not columns:
        return sum(_num_rows(f) for f in files), 0, str_len
    for chunk in iter_parquet_chunks(files, chunk_rows, columns=columns):
        t = chunk.table
        n_rows += t.num_rows
        for c in strings:
            if t.num_rows:
                lengths = pc.binary_length(t[c].cast(pa.binary()))
                str_len[c] = max(str_len[c], int(pc.max(lengths).as_py() or 0))
        if count_col is None or not t.num_rows:
            continue
        col = t[count_col]
        counts = _to_numpy(col if count_col == "n_cells" else pc.list_value_length(col)).astype(np.int64)
        longest = max(longest, int(counts.max()))
        if max_cells is not None and not truncate and (counts > max_cells).any():
            r = int(np.flatnonzero(counts > max_cells)[0])
            raise ValueError(
                f"{chunk.path}: row {chunk.file_row + r} (cluster {chunk.row + r} of the input): "
                f"{int(counts[r])} cells > max_cells = {max_cells}; raise max_cells, or pass truncate=True "
                f"(--truncate) to keep only the {max_cells} most energetic cells of such clusters"
            )
    return n_rows, longest, str_len


def _num_rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


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
    schema = common_schema(files)
    scalars, cells = _split_columns(schema, files[0])
    n_rows, longest, str_len = _scan(files, scalars, cells, chunk_rows, max_cells, truncate)
    width = int(max_cells) if max_cells is not None else max(1, longest)

    def field_dtype(name: str) -> np.dtype:
        t = schema.field(name).type
        if _is_list(t):
            t = t.value_type
        return np.dtype(f"S{str_len[name]}") if _is_string(t) else _numpy_dtype(t, name)

    cl_dtype = np.dtype([(c, field_dtype(c)) for c in scalars])
    ce_dtype = np.dtype([(c, field_dtype(c)) for c in cells] + [(MASK_FIELD, np.bool_)])
    stats = {clusters_name: {c: _RunningStats() for c in scalars if cl_dtype[c].kind in "biuf"},
             cells_name: {c: _RunningStats() for c in cells}}  # fmt: skip
    n_truncated = n_dropped = 0

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_file(dst)
    try:
        with h5py.File(tmp, "w", rdcc_nbytes=_CACHE_BYTES) as h5:
            opts: dict[str, Any] = {}
            if compression is not None and n_rows:  # (HDF5 cannot chunk an empty dataset)
                opts = {"compression": compression, "shuffle": True}
            rows_cl = max(1, min(n_rows, _CHUNK_BYTES // max(1, cl_dtype.itemsize)))
            rows_ce = max(1, min(n_rows, _CHUNK_BYTES // (width * ce_dtype.itemsize)))
            chunks_cl = {"chunks": (rows_cl,)} if n_rows else {}
            chunks_ce = {"chunks": (rows_ce, width)} if n_rows else {}
            d_cl = h5.create_dataset(clusters_name, shape=(n_rows,), dtype=cl_dtype, **chunks_cl, **opts)
            d_ce = h5.create_dataset(cells_name, shape=(n_rows, width), dtype=ce_dtype, **chunks_ce, **opts)
            bar = tqdm(total=n_rows, unit="cluster", desc=f"-> {dst.name}", disable=not progress)
            for chunk in iter_parquet_chunks(files, chunk_rows):
                t, n = chunk.table, chunk.table.num_rows
                if not n:
                    continue
                _check_no_nulls(t, chunk.path, chunk.file_row)
                counts = _cell_counts(t, scalars, cells, chunk.path, chunk.file_row)
                flat = {c: _to_numpy(_flat(t[c])) for c in cells}
                rec = np.empty(n, dtype=cl_dtype)
                for c in scalars:
                    col = t[c]
                    rec[c] = _to_numpy(col.cast(pa.binary()) if _is_string(col.type) else col)
                if (counts > width).any():  # only reachable with truncate (the scan raised otherwise)
                    keep = _keep_mask(flat.get("cell_e"), counts, width)
                    kept = np.minimum(counts, width)
                    n_truncated += int((counts > width).sum())
                    n_dropped += int((~keep).sum())
                    flat = {c: v[keep] for c, v in flat.items()}
                    counts = kept
                    if "n_cells" in scalars:
                        rec["n_cells"] = counts
                total = int(counts.sum())
                seg = np.repeat(np.arange(n), counts)
                within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
                pos = seg * width + within
                grid = np.zeros(n * width, dtype=ce_dtype)  # zeros: padding is all-zero, valid False
                for c, v in flat.items():
                    grid[c][pos] = v
                    stats[cells_name][c].update(v)
                grid[MASK_FIELD][pos] = True
                for c, s in stats[clusters_name].items():
                    s.update(rec[c])
                d_cl[chunk.row : chunk.row + n] = rec
                d_ce[chunk.row : chunk.row + n] = grid.reshape(n, width)
                bar.update(n)
            bar.close()

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
                    "max_cells": width,
                    "units_convention": "energies GeV, lengths mm, angles rad",
                    "column_order": json.dumps(schema.names),
                    "source_files": json.dumps([str(f.resolve()) for f in files]),
                    "source_metadata": json.dumps(meta),
                    "truncated_clusters": n_truncated,
                    "dropped_cells": n_dropped,
                }
            )
            d_cl.attrs["units"] = json.dumps({c: units[c] for c in scalars if c in units})
            d_ce.attrs["units"] = json.dumps({c: units[c] for c in cells if c in units})
            d_ce.attrs["mask_field"] = MASK_FIELD
        # The norm dict first: a published .h5 always has its norm dict next to it.
        _write_yaml_atomic({ds: {c: s.result() for c, s in per.items()} for ds, per in stats.items()}, norm)
        replace_file(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if n_truncated:
        log.warning("%s: %d cluster(s) truncated to %d cells, %d cell(s) dropped", dst, n_truncated, width, n_dropped)
    return dst


def _cell_counts(t: pa.Table, scalars: list[str], cells: list[str], path: Path, file_row: int) -> np.ndarray:
    """Cells per cluster (n,), checking that every list column and ``n_cells`` agree (else: file/row/column)."""
    if not cells:
        return np.zeros(t.num_rows, dtype=np.int64)
    counts = _to_numpy(pc.list_value_length(t[cells[0]])).astype(np.int64)
    for c in cells[1:]:
        other = _to_numpy(pc.list_value_length(t[c])).astype(np.int64)
        if (other != counts).any():
            r = int(np.flatnonzero(other != counts)[0])
            raise ValueError(
                f"{path}: row {file_row + r}: column {c!r} has {int(other[r])} entries but {cells[0]!r} has {int(counts[r])}"
            )
    if "n_cells" in scalars:
        n_cells = _to_numpy(t["n_cells"]).astype(np.int64)
        if (n_cells != counts).any():
            r = int(np.flatnonzero(n_cells != counts)[0])
            raise ValueError(
                f"{path}: row {file_row + r}: n_cells = {int(n_cells[r])} but the cell lists have {int(counts[r])} entries"
            )
    return counts


# --------------------------------------------------------------------------------------------- read
def _arrow_type(name: str, dtype: np.dtype, cell: bool) -> pa.DataType:
    """The Arrow type of an HDF5 field: the format's type for known columns, else the field's own."""
    col = COLUMN_BY_NAME.get(name)
    if col is not None:
        return col.type.value_type if cell and _is_list(col.type) else col.type
    if dtype.kind in "SOU":
        return pa.string()
    return pa.from_numpy_dtype(dtype)


def _field_to_arrow(values: np.ndarray, type_: pa.DataType, what: str) -> pa.Array:
    if values.dtype.kind == "S":
        arr = pa.array(values, type=pa.binary())
    elif values.dtype.kind in "OU":  # variable-length strings (h5py gives bytes or str objects)
        arr = pa.array([v.decode() if isinstance(v, bytes) else v for v in values], type=pa.string())
    else:
        arr = pa.array(values)
    if pa.types.is_binary(arr.type) and _is_string(type_):
        try:
            arr = arr.cast(pa.string())
        except pa.ArrowInvalid as err:
            raise ValueError(f"{what}: not valid UTF-8: {err}") from None
    return cast_checked(arr, type_, what)


def salt_h5_to_parquet(
    src: PathLike,
    dst_dir: PathLike,
    *,
    clusters_name: str = DEFAULT_CLUSTERS,
    cells_name: str = DEFAULT_CELLS,
    mask_field: str = MASK_FIELD,
    required: Sequence[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Convert a SALT-style HDF5 file to a Parquet dataset directory (``docs/data_format.md``).

    Every field of the clusters dataset (N,) becomes a scalar column, every field of the cells dataset
    (N, max_cells) except the mask a list column holding the cluster's valid cells in slot order.
    Columns of the format get the format's types (e.g. float64 fields are cast to float32; an
    overflow is an error); other fields keep their dtype. ``n_cells`` is the number of valid cells: it
    is checked against an ``n_cells`` field, or created when there is none. The column order is the
    one recorded by :func:`parquet_to_salt_h5` (else the format's order, then extra fields).

    Args:
        src: the ``.h5`` file.
        dst_dir: the dataset directory to create (must not exist or be empty, unless ``overwrite``).
        clusters_name, cells_name, mask_field: dataset and mask names in the file.
        required: fields that must be present (default: every column of the format but ``n_cells``).
        chunk_rows: clusters read per step (bounds memory).
        shard_rows: clusters per Parquet shard.
        overwrite: replace an existing dataset directory.
        progress: show a tqdm progress bar.

    Returns:
        ``dst_dir``.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ValueError: missing datasets or fields (all listed, with the file), wrong shapes, an
            ``n_cells`` that disagrees with the mask (row named), values that do not fit the format's types.
    """
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"HDF5 file does not exist: {src}")
    required = tuple(DEFAULT_REQUIRED if required is None else required)
    with h5py.File(src, "r", rdcc_nbytes=_CACHE_BYTES) as h5:
        lay = _salt_layout(h5, src, clusters_name, cells_name, mask_field)
        _check_salt_fields(lay, required)
        types = {c: _arrow_type(c, lay.clusters.dtype[c], False) for c in lay.cl_fields}
        types |= {c: pa.list_(_arrow_type(c, lay.cells.dtype[c], True)) for c in lay.ce_fields}  # none without cells
        if "n_cells" not in types:
            types["n_cells"] = COLUMN_BY_NAME["n_cells"].type
        order = _column_order(h5.attrs.get("column_order"), list(types))
        schema = pa.schema([field_for(c, types[c]) for c in order])
        n = int(lay.clusters.shape[0])
        meta = {
            "source_format": "salt_h5",
            "source": str(src.resolve()),
            "source_metadata": _json_attr(h5.attrs.get("source_metadata")),
        }
        with ParquetDatasetWriter(dst_dir, schema, meta, n, shard_rows, overwrite) as writer:
            bar = tqdm(total=n, unit="cluster", desc=f"{src.name} ->", disable=not progress)
            # Chunk by chunk: the (N, max_cells) cells dataset of a full sample does not fit in memory.
            for a in range(0, n, chunk_rows):
                b = min(n, a + chunk_rows)
                cols = _salt_chunk_columns(lay, types, a, b)
                writer.write(pa.table({c: cols[c] for c in order}))
                bar.update(b - a)
            bar.close()
            return writer.close()


@dataclass(frozen=True)
class _SaltLayout:
    """The datasets of an open SALT-style HDF5 file and the fields :func:`salt_h5_to_parquet` converts."""

    src: Path
    clusters_name: str
    cells_name: str
    mask_field: str
    clusters: h5py.Dataset  # (N,) structured
    cells: h5py.Dataset | None  # (N, max_cells) structured, or None when the file has no cells dataset
    cl_fields: list[str]  # the clusters dataset's fields: scalar columns
    ce_fields: list[str]  # the cells dataset's fields but the mask: list columns


def _salt_layout(h5: h5py.File, src: Path, clusters_name: str, cells_name: str, mask_field: str) -> _SaltLayout:
    """The clusters dataset (and the optional cells dataset) of ``h5``.

    Raises:
        ValueError: no clusters dataset, or a dataset that is not structured or has the wrong shape.
    """
    if clusters_name not in h5:
        raise ValueError(f"{src}: no dataset {clusters_name!r} (the file has {sorted(h5.keys())})")
    d_cl = h5[clusters_name]
    d_ce = h5[cells_name] if cells_name in h5 else None
    if not isinstance(d_cl, h5py.Dataset) or d_cl.dtype.names is None or d_cl.ndim != 1:
        raise ValueError(f"{src}: {clusters_name!r} must be a 1-D structured (compound) dataset")
    ce_fields: list[str] = []
    if d_ce is not None:
        if not isinstance(d_ce, h5py.Dataset) or d_ce.dtype.names is None or d_ce.ndim != 2:
            raise ValueError(f"{src}: {cells_name!r} must be a 2-D structured (compound) dataset (clusters, max_cells)")
        if d_ce.shape[0] != d_cl.shape[0]:
            raise ValueError(
                f"{src}: {cells_name!r} has {d_ce.shape[0]} rows but {clusters_name!r} has {d_cl.shape[0]}"
            )
        ce_fields = [f for f in d_ce.dtype.names if f != mask_field]
    return _SaltLayout(src, clusters_name, cells_name, mask_field, d_cl, d_ce, list(d_cl.dtype.names), ce_fields)


def _check_salt_fields(lay: _SaltLayout, required: Sequence[str]) -> None:
    """Raise ValueError on missing required fields (all listed, with what the file has) or misplaced ones.

    A cell_* field in the clusters dataset, or a scalar column of the format in the cells dataset,
    would be converted with the wrong shape: it is refused rather than silently moved.
    """
    present = set(lay.cl_fields) | set(lay.ce_fields)
    missing = [c for c in required if c not in present]
    if lay.cells is not None and lay.mask_field not in lay.cells.dtype.names:
        missing.append(f"{lay.cells_name}.{lay.mask_field}")
    if missing:
        where = f"dataset {lay.clusters_name!r} has {lay.cl_fields}; " + (
            f"dataset {lay.cells_name!r} has {list(lay.cells.dtype.names)}"
            if lay.cells is not None
            else f"there is no dataset {lay.cells_name!r}"
        )
        raise ValueError(f"{lay.src}: missing field(s) {missing} ({where})")
    misplaced = [c for c in lay.cl_fields if c in CELL_COLUMNS] + [
        c for c in lay.ce_fields if c in COLUMN_BY_NAME and c not in CELL_COLUMNS
    ]
    if misplaced:
        raise ValueError(
            f"{lay.src}: field(s) {misplaced} are in the wrong dataset (cell_* fields belong in {lay.cells_name!r})"
        )


def _salt_chunk_columns(lay: _SaltLayout, types: dict[str, pa.DataType], a: int, b: int) -> dict[str, pa.Array]:
    """The Arrow columns of clusters [a, b): the valid cells of each cluster in slot order, and n_cells.

    ``n_cells`` is checked against a stored field (row named on disagreement), else created from the mask.
    """
    src, cells_name = lay.src, lay.cells_name
    cl = lay.clusters[a:b]
    cols: dict[str, pa.Array] = {}
    for c in lay.cl_fields:
        cols[c] = _field_to_arrow(cl[c], types[c], f"{src}: {lay.clusters_name}.{c}")
    if lay.cells is not None:
        ce = lay.cells[a:b]
        valid = ce[lay.mask_field].astype(bool)
        counts = valid.sum(axis=1).astype(np.int64)
        flat = ce[valid]  # row-major: cluster after cluster, cells in slot order
        offsets = np.concatenate([[0], np.cumsum(counts)])
        for c in lay.ce_fields:
            values = _field_to_arrow(flat[c], types[c].value_type, f"{src}: {cells_name}.{c}")
            cols[c] = list_array(offsets, values)
    else:
        counts = np.zeros(b - a, dtype=np.int64)
    if "n_cells" in lay.cl_fields:
        stored = cl["n_cells"].astype(np.int64)
        if (stored != counts).any():
            r = int(np.flatnonzero(stored != counts)[0])
            raise ValueError(
                f"{src}: row {a + r}: {lay.clusters_name}.n_cells = {int(stored[r])} but {cells_name} has "
                f"{int(counts[r])} valid cells"
            )
    else:
        cols["n_cells"] = pa.array(counts.astype(np.int32))
    return cols


def _column_order(attr: Any, names: list[str]) -> list[str]:
    """The recorded column order restricted to ``names``, then the format's order, then the rest."""
    recorded: list[str] = []
    if attr is not None:
        try:
            recorded = [c for c in json.loads(attr) if c in names]
        except (TypeError, ValueError):
            recorded = []
    known = [c.name for c in COLUMNS if c.name in names and c.name not in recorded]
    return recorded + known + [c for c in names if c not in recorded and c not in known]


def _json_attr(attr: Any) -> Any:
    if attr is None:
        return None
    try:
        return json.loads(attr)
    except (TypeError, ValueError):
        return None
