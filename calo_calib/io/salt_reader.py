"""SALT-style HDF5 file -> Parquet cluster dataset (:func:`salt_h5_to_parquet`), slice by slice.

The layout read: :mod:`calo_calib.io.salt_h5` (module docstring); files written elsewhere are
accepted too (no ``n_cells`` field, no recorded column order, float64 fields).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow as pa
from tqdm import tqdm

from calo_calib.io.dataset_stream import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_SHARD_ROWS,
    ParquetDatasetWriter,
    cast_checked,
    field_for,
    list_array,
)
from calo_calib.io.salt_layout import (
    CACHE_BYTES,
    DEFAULT_CELLS,
    DEFAULT_CLUSTERS,
    DEFAULT_REQUIRED,
    MASK_FIELD,
    PathLike,
    is_list,
    is_string,
)
from calo_calib.io.schema import CELL_COLUMNS, COLUMN_BY_NAME, COLUMNS


def _arrow_type(name: str, dtype: np.dtype, cell: bool) -> pa.DataType:
    """The Arrow type of an HDF5 field: the format's type for known columns, else the field's own."""
    col = COLUMN_BY_NAME.get(name)
    if col is not None:
        return col.type.value_type if cell and is_list(col.type) else col.type
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
    if pa.types.is_binary(arr.type) and is_string(type_):
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
    with h5py.File(src, "r", rdcc_nbytes=CACHE_BYTES) as h5:
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
