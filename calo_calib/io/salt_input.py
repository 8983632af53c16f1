"""The Parquet input of the SALT writer: column checks, null and cell-count checks, and the pre-pass.

:func:`scan_input` reads only the cheap columns (strings, ``n_cells``) to fix the HDF5 datasets'
shapes and string widths, and raises the "too many cells" error before anything is written. Used by
:func:`calo_calib.io.salt_writer.parquet_to_salt_h5`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from calo_calib.io.dataset_stream import common_schema, iter_parquet_chunks
from calo_calib.io.salt_layout import MASK_FIELD, is_list, is_string, numpy_dtype
from calo_calib.io.schema import CELL_COLUMNS, COLUMN_BY_NAME


def split_columns(schema: pa.Schema, path: Path) -> tuple[list[str], list[str]]:
    """(scalar columns, per-cell list columns) of a Parquet schema, checked against the format."""
    scalars, cells = [], []
    for f in schema:
        if is_list(f.type):
            if f.name in COLUMN_BY_NAME and f.name not in CELL_COLUMNS:
                raise ValueError(f"{path}: column {f.name!r} must be a scalar column, has type {f.type}")
            numpy_dtype(f.type.value_type, f"{path}: column {f.name!r}")
            cells.append(f.name)
        else:
            if f.name in CELL_COLUMNS:
                raise ValueError(
                    f"{path}: column {f.name!r} must be a list column (one entry per cell), has type {f.type}"
                )
            if not is_string(f.type):
                numpy_dtype(f.type, f"{path}: column {f.name!r}")
            scalars.append(f.name)
    if MASK_FIELD in cells:
        raise ValueError(f"{path}: a cell column is named {MASK_FIELD!r}, which is the HDF5 mask field")
    return scalars, cells


def to_numpy(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return col.to_numpy(zero_copy_only=False)


def flat_values(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The values of a list column, with slicing offsets respected."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return col.flatten()


def check_no_nulls(table: pa.Table, path: Path, file_row: int) -> None:
    """HDF5 compound fields have no null: refuse nulls (naming file, row and column) rather than invent values."""
    for name in table.column_names:
        col = table[name]
        if col.null_count:
            r = int(np.flatnonzero(~to_numpy(pc.is_valid(col)).astype(bool))[0])
            raise ValueError(f"{path}: row {file_row + r}: null value in column {name!r}")
        if is_list(col.type):
            flat = flat_values(col)
            if flat.null_count:
                parents = to_numpy(pc.list_parent_indices(col.combine_chunks()))
                r = int(parents[np.flatnonzero(~to_numpy(pc.is_valid(flat)).astype(bool))[0]])
                raise ValueError(f"{path}: row {file_row + r}: null cell value in column {name!r}")


def scan_input(
    files: list[Path], scalars: list[str], cells: list[str], chunk_rows: int, max_cells: int | None, truncate: bool
) -> tuple[int, int, dict[str, int]]:
    """Pre-pass over the cheap columns: (n_rows, largest cell count, max UTF-8 length per string column).

    Raises the "too many cells" error here, before anything is written.
    """
    schema = common_schema(files)
    strings = [c for c in scalars if is_string(schema.field(c).type)]
    count_col = "n_cells" if "n_cells" in scalars else (cells[0] if cells else None)
    n_rows, longest = 0, 0
    str_len = dict.fromkeys(strings, 1)
    columns = strings + ([count_col] if count_col else [])
    if not columns:
        return sum(num_rows(f) for f in files), 0, str_len
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
        counts = to_numpy(col if count_col == "n_cells" else pc.list_value_length(col)).astype(np.int64)
        longest = max(longest, int(counts.max()))
        if max_cells is not None and not truncate and (counts > max_cells).any():
            r = int(np.flatnonzero(counts > max_cells)[0])
            raise ValueError(
                f"{chunk.path}: row {chunk.file_row + r} (cluster {chunk.row + r} of the input): "
                f"{int(counts[r])} cells > max_cells = {max_cells}; raise max_cells, or pass truncate=True "
                f"(--truncate) to keep only the {max_cells} most energetic cells of such clusters"
            )
    return n_rows, longest, str_len


def num_rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def cell_counts(t: pa.Table, scalars: list[str], cells: list[str], path: Path, file_row: int) -> np.ndarray:
    """Cells per cluster (n,), checking that every list column and ``n_cells`` agree (else: file/row/column)."""
    if not cells:
        return np.zeros(t.num_rows, dtype=np.int64)
    counts = to_numpy(pc.list_value_length(t[cells[0]])).astype(np.int64)
    for c in cells[1:]:
        other = to_numpy(pc.list_value_length(t[c])).astype(np.int64)
        if (other != counts).any():
            r = int(np.flatnonzero(other != counts)[0])
            raise ValueError(
                f"{path}: row {file_row + r}: column {c!r} has {int(other[r])} entries but {cells[0]!r} has {int(counts[r])}"
            )
    if "n_cells" in scalars:
        n_cells = to_numpy(t["n_cells"]).astype(np.int64)
        if (n_cells != counts).any():
            r = int(np.flatnonzero(n_cells != counts)[0])
            raise ValueError(
                f"{path}: row {file_row + r}: n_cells = {int(n_cells[r])} but the cell lists have {int(counts[r])} entries"
            )
    return counts
