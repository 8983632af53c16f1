"""Parquet cluster files -> a ROOT file with one flat TTree (:func:`parquet_to_root`), via ``TTree.extend``.

Branch names and unit factors come from the column mapping (:mod:`calo_calib.io.root_mapping`);
scalar columns become flat branches, cell columns jagged branches sharing the ``n_cells`` counter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import uproot
from tqdm import tqdm

from calo_calib.io.dataset_stream import (
    ParquetChunk,
    check_file_destination,
    common_schema,
    iter_parquet_chunks,
    replace_file,
    resolve_parquet_files,
    tmp_file,
)
from calo_calib.io.root_mapping import DEFAULT_TREE, ColumnMapping, MappingArg, PathLike, load_mapping, unscaled


def parquet_to_root(
    src: PathLike | Iterable[PathLike],
    dst: PathLike,
    tree: str | None = None,
    mapping: MappingArg = None,
    *,
    chunk_rows: int = 10_000,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write Parquet cluster files to a ROOT file with one flat TTree (the inverse of :func:`~calo_calib.io.root_reader.root_to_parquet`).

    Scalar columns become flat branches, cell columns jagged branches sharing one counter branch,
    which is the ``n_cells`` branch (int32, the number of cells of the entry). Branch names and
    unit factors come from ``mapping`` (branch value = column value / scale; a scaled column is
    written as float64 so that reading it back with the same mapping is exact); columns the mapping
    sets to a constant are not written; unlisted columns keep their names.

    Args:
        src: a dataset directory, a ``.parquet`` file or a list of them.
        dst: the ``.root`` file to write (atomically: temporary name, then rename).
        tree: the tree name (default: the mapping's ``tree``, else ``"clusters"``).
        mapping: as for :func:`~calo_calib.io.root_reader.root_to_parquet`.
        chunk_rows: clusters per ``TTree.extend`` call (one basket per branch each).
        overwrite: replace an existing ``dst``.
        progress: show a tqdm progress bar.

    Returns:
        ``dst``.

    Raises:
        ValueError: two columns mapped to one branch, cell lists of different lengths or disagreeing
            with ``n_cells`` (file and row named), null values.
        FileExistsError: ``dst`` exists and ``overwrite`` is false.
    """
    files = resolve_parquet_files(src)
    dst = Path(dst)
    check_file_destination(dst, overwrite)
    cmap = load_mapping(mapping)
    tree = tree or cmap.tree or DEFAULT_TREE
    schema = common_schema(files)
    layout = _branch_layout(schema, cmap)
    types = _tree_types(schema, cmap, layout)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_file(dst)
    n_total = sum(_parquet_rows(f) for f in files)
    bar = tqdm(total=n_total, unit="cluster", desc=f"-> {dst.name}", disable=not progress)
    try:
        with uproot.recreate(tmp) as out:
            ttree = out.mktree(
                tree, types, title="calo_calib clusters",
                counter_name=lambda _: layout.counter, field_name=lambda _outer, inner: inner,
            )  # fmt: skip
            for chunk in iter_parquet_chunks(files, chunk_rows):
                if not chunk.table.num_rows:
                    continue
                ttree.extend(_chunk_branches(chunk, cmap, layout))
                bar.update(chunk.table.num_rows)
        replace_file(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave a half-written file next to dst
        raise
    finally:
        bar.close()
    return dst


@dataclass(frozen=True)
class _BranchLayout:
    """Which Parquet columns :func:`parquet_to_root` writes, and as which branches."""

    scalars: list[str]  # columns written as flat branches (n_cells excluded when there are cells)
    cells: list[str]  # list columns, written as jagged branches of one record (one shared counter)
    counter: str  # the counter branch of the cells: the n_cells branch
    branch_of: dict[str, str]  # column -> branch name


def _branch_layout(schema: pa.Schema, cmap: ColumnMapping) -> _BranchLayout:
    """The scalar and cell columns of ``schema`` that ``cmap`` writes, and their branches.

    Raises:
        ValueError: two columns mapped to one branch, or a column mapped to the counter's branch.
    """
    columns = [c for c in schema.names if cmap.spec(c).branch is not None]
    cells = [
        c for c in columns if pa.types.is_list(schema.field(c).type) or pa.types.is_large_list(schema.field(c).type)
    ]
    scalars = [c for c in columns if c not in cells]
    counter = cmap.spec("n_cells").branch or "n_cells"
    if cells and "n_cells" in scalars:
        scalars.remove("n_cells")  # written as the cells' counter branch (same values, checked per chunk)
    branch_of = {c: cmap.spec(c).branch for c in scalars + cells}
    seen: dict[str, str] = {}
    for c, b in branch_of.items():
        if b in seen:
            raise ValueError(f"column mapping {cmap.source}: columns {seen[b]!r} and {c!r} both map to branch {b!r}")
        seen[str(b)] = c
    if cells and counter in seen:
        raise ValueError(
            f"column mapping {cmap.source}: branch {counter!r} is the cells' counter (n_cells) and column {seen[counter]!r}"
        )
    return _BranchLayout(scalars, cells, counter, branch_of)  # type: ignore[arg-type]  # None branches filtered above


def _branch_dtype(t: pa.DataType, scaled: bool) -> Any:
    """The uproot branch type of Arrow type ``t`` (a scaled column is float64: see :func:`~calo_calib.io.root_mapping.scaled`)."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if scaled:
        return np.float64
    return np.dtype(np.bool_) if pa.types.is_boolean(t) else np.dtype(t.to_pandas_dtype())


def _tree_types(schema: pa.Schema, cmap: ColumnMapping, layout: _BranchLayout) -> dict[str, Any]:
    """Branch name -> type for ``mktree``; the cell branches are one record ``__cells__`` (one shared counter)."""
    branch_of = layout.branch_of
    types: dict[str, Any] = {
        branch_of[c]: _branch_dtype(schema.field(c).type, cmap.spec(c).scale != 1.0) for c in layout.scalars
    }
    if layout.cells:
        empty = {
            branch_of[c]: ak.unflatten(
                np.zeros(0, _branch_dtype(schema.field(c).type.value_type, cmap.spec(c).scale != 1.0)),
                np.zeros(0, np.int64),
            )
            for c in layout.cells
        }
        types["__cells__"] = ak.zip(empty).type
    return types


def _chunk_branches(chunk: ParquetChunk, cmap: ColumnMapping, layout: _BranchLayout) -> dict[str, Any]:
    """The branch arrays of one Parquet chunk, for ``TTree.extend``.

    Raises:
        ValueError: a null value, or cell lists that disagree with each other or with n_cells.
    """
    t = chunk.table
    data: dict[str, Any] = {}
    for c in layout.scalars:
        col = t[c]
        if col.null_count:
            raise ValueError(f"{chunk.path}: null value in column {c!r} near row {chunk.file_row}")
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            data[layout.branch_of[c]] = ak.from_arrow(col.combine_chunks(), highlevel=True)
        else:
            data[layout.branch_of[c]] = unscaled(col.to_numpy(), cmap.spec(c))
    if layout.cells:
        counts = _check_counts(t, layout.cells, chunk.path, chunk.file_row)
        jag = {}
        for c in layout.cells:
            flat = t[c].combine_chunks().flatten()
            if flat.null_count:
                raise ValueError(f"{chunk.path}: null cell value in column {c!r} near row {chunk.file_row}")
            jag[layout.branch_of[c]] = ak.unflatten(unscaled(flat.to_numpy(zero_copy_only=False), cmap.spec(c)), counts)
        data["__cells__"] = ak.zip(jag)
    return data


def _parquet_rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def _check_counts(t: pa.Table, cells: list[str], path: Path, file_row: int) -> np.ndarray:
    counts = pc.list_value_length(t[cells[0]]).to_numpy().astype(np.int64)
    for c in cells[1:]:
        other = pc.list_value_length(t[c]).to_numpy().astype(np.int64)
        if (other != counts).any():
            r = int(np.flatnonzero(other != counts)[0])
            raise ValueError(
                f"{path}: row {file_row + r}: column {c!r} has {int(other[r])} entries but {cells[0]!r} has {int(counts[r])}"
            )
    if "n_cells" in t.column_names:
        n_cells = t["n_cells"].to_numpy().astype(np.int64)
        if (n_cells != counts).any():
            r = int(np.flatnonzero(n_cells != counts)[0])
            raise ValueError(
                f"{path}: row {file_row + r}: n_cells = {int(n_cells[r])} but the cell lists have {int(counts[r])} entries"
            )
    return counts
