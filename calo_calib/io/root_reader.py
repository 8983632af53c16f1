"""ROOT ntuples -> Parquet cluster dataset (:func:`root_to_parquet`), streamed with ``uproot.iterate``.

The column mapping: :mod:`calo_calib.io.root_mapping`. Before anything is read, every file's tree is
checked for the mapped branches and their shapes (flat for scalar columns, jagged for cell columns,
:func:`_plan_read`); then each uproot step becomes one Arrow table (:func:`_chunk_to_table`) written
to the Parquet shards as it goes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pyarrow as pa
import uproot
from tqdm import tqdm

from calo_calib.io.dataset_stream import (
    DEFAULT_SHARD_ROWS,
    ParquetDatasetWriter,
    cast_checked,
    check_dataset_destination,
    field_for,
    list_array,
)
from calo_calib.io.root_mapping import DEFAULT_TREE, BranchSpec, ColumnMapping, MappingArg, load_mapping, scaled
from calo_calib.io.schema import CELL_COLUMNS, COLUMN_BY_NAME, COLUMNS

PathLike = str | os.PathLike[str]

DEFAULT_STEP_SIZE = "100 MB"
"""uproot step: bounds the memory of one chunk of branches (an int is a number of entries)."""

DEFAULT_REQUIRED: tuple[str, ...] = tuple(c.name for c in COLUMNS)


def _resolve_root_files(src: PathLike | Iterable[PathLike]) -> list[Path]:
    if isinstance(src, (str, os.PathLike)):
        p = Path(src)
        files = sorted(p.glob("*.root")) if p.is_dir() else [p]
    else:
        files = [Path(s) for s in src]
    if not files:
        raise FileNotFoundError(f"no ROOT files in {src}")
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"ROOT file does not exist: {f}")
    return files


def _open_tree(path: Path, tree: str) -> Any:
    f = uproot.open(path)
    if tree not in f:
        trees = [k.split(";")[0] for k, v in f.classnames().items() if v in ("TTree", "ROOT::RNTuple")]
        raise ValueError(f"{path}: no tree {tree!r} (trees in the file: {sorted(set(trees))})")
    return f[tree]


def root_to_parquet(
    src: PathLike | Iterable[PathLike],
    tree: str | None,
    mapping: MappingArg,
    dst_dir: PathLike,
    *,
    required: Sequence[str] | None = None,
    step_size: int | str = DEFAULT_STEP_SIZE,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Convert ROOT ntuples to a Parquet dataset directory (``docs/data_format.md``).

    Args:
        src: a ROOT file, a directory of ``*.root`` files, or a list of files (read in that order).
        tree: the tree name; ``None`` = the mapping's ``tree``, else ``"clusters"``.
        mapping: a :class:`ColumnMapping`, a mapping file, a dict, or ``None`` (same-name branches).
        dst_dir: the dataset directory to create (must not exist or be empty, unless ``overwrite``).
        required: our columns to produce (default: every column of the format). Extra columns
            listed in the mapping are added after them.
        step_size: entries (int) or memory (e.g. ``"100 MB"``) per ``uproot.iterate`` step.
        shard_rows: clusters per Parquet shard.
        overwrite: replace an existing dataset directory.
        progress: show a tqdm progress bar.

    Returns:
        ``dst_dir``. Scalar columns have shape (N,), cell columns are lists of ``n_cells`` entries,
        values in the format's units after the mapping's factors.

    Raises:
        FileNotFoundError: a missing input file or mapping file.
        ValueError: a missing tree, missing branches (all listed, with the file and tree), a flat
            branch for a cell column or a jagged one for a scalar column, cell branches of different
            lengths or disagreeing with ``n_cells`` (file and entry named), values that do not fit
            the format's types.
    """
    files = _resolve_root_files(src)
    check_dataset_destination(Path(dst_dir), overwrite)  # fail before reading anything
    plan = _plan_read(files, tree, mapping, required)
    tree = plan.tree
    meta = {
        "source_format": "root",
        "source": [str(f.resolve()) for f in files],
        "tree": tree,
        "column_mapping": plan.cmap.source,
    }
    bar = tqdm(total=plan.n_total, unit="cluster", desc=f"{files[0].name} ->", disable=not progress)
    writer: ParquetDatasetWriter | None = None
    try:
        iterator = uproot.iterate(
            {str(f): tree for f in files}, filter_name=plan.branches, step_size=step_size, library="ak", report=True
        )
        for arrays, report in iterator:
            table = _chunk_to_table(arrays, plan.specs, plan.order, plan.cell_cols, plan.derive_n_cells, report)
            if writer is None:
                schema = pa.schema([field_for(f.name, f.type) for f in table.schema])
                writer = ParquetDatasetWriter(dst_dir, schema, meta, plan.n_total, shard_rows, overwrite)
            writer.write(table)
            bar.update(table.num_rows)
        if writer is None:  # no entries at all: an empty dataset with the format's types
            schema = pa.schema([field_for(c, _empty_type(c, plan.specs[c])) for c in plan.order])
            writer = ParquetDatasetWriter(dst_dir, schema, meta, 0, shard_rows, overwrite)
        return writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()


@dataclass(frozen=True)
class _ReadPlan:
    """What :func:`root_to_parquet` reads, checked against every file's tree before reading."""

    tree: str
    cmap: ColumnMapping
    specs: dict[str, BranchSpec]  # our column -> where it comes from, for every column produced
    order: list[str]  # the output column order: the format's, then the extra columns
    branches: list[str]  # the branches read
    cell_cols: list[str]  # columns read from jagged branches (one value per cell)
    derive_n_cells: bool  # n_cells counted from the cell branches (the ntuple has no n_cells branch)
    n_total: int  # entries in all files


def _plan_read(files: list[Path], tree: str | None, mapping: MappingArg, required: Sequence[str] | None) -> _ReadPlan:
    """The columns to produce and the branches to read; raises on missing or wrongly shaped branches."""
    cmap = load_mapping(mapping)
    tree = tree or cmap.tree or DEFAULT_TREE
    wanted = list(DEFAULT_REQUIRED if required is None else required)
    wanted += [c for c in cmap.columns if c not in wanted]
    specs = {c: cmap.spec(c) for c in wanted}

    # n_cells equals the length of the cell lists: when the ntuple has no such branch (and the
    # mapping does not name one) it is derived from the cell branches instead of being an error.
    first = _open_tree(files[0], tree)
    derive_n_cells = (
        "n_cells" in specs and "n_cells" not in cmap.columns and "n_cells" not in first.keys()
        and any(c in CELL_COLUMNS for c in wanted)
    )  # fmt: skip
    branches = sorted(
        {s.branch for c, s in specs.items() if s.branch is not None and not (c == "n_cells" and derive_n_cells)}
    )
    jagged, n_total = _check_trees(files, first, tree, cmap, specs, branches)
    _check_branch_shapes(files[0], tree, specs, jagged)
    cell_cols = [
        c for c in wanted if c in CELL_COLUMNS or (specs[c].branch is not None and jagged.get(specs[c].branch, False))
    ]
    order = [c.name for c in COLUMNS if c.name in specs] + [c for c in wanted if c not in COLUMN_BY_NAME]
    return _ReadPlan(tree, cmap, specs, order, branches, cell_cols, derive_n_cells, n_total)


def _check_trees(
    files: list[Path], first: Any, tree: str, cmap: ColumnMapping, specs: dict[str, BranchSpec], branches: list[str]
) -> tuple[dict[str, bool], int]:
    """(branch -> jagged, total entries) over all files; raises on a missing branch or a branch
    that is jagged in one file and flat in another."""
    n_total = 0
    jagged: dict[str, bool] = {}
    for path in files:
        t = first if path == files[0] else _open_tree(path, tree)
        keys = set(t.keys())
        missing = [
            c if s.branch == c else f"{c} <- {s.branch}"  # "column <- branch" when the names differ
            for c, s in specs.items()
            if s.branch in branches and s.branch not in keys
        ]
        if missing:
            shown = sorted(keys)[:40]
            more = f" ... ({len(keys)} in all)" if len(keys) > len(shown) else ""
            raise ValueError(
                f"{path}: tree {tree!r} lacks branch(es) for column(s) {missing} "
                f"(column mapping: {cmap.source}; the tree has {shown}{more})"
            )
        for b in branches:
            is_jagged = _is_jagged(t[b])
            if jagged.setdefault(b, is_jagged) != is_jagged:
                raise ValueError(
                    f"{path}: tree {tree!r}: branch {b!r} is {'jagged' if is_jagged else 'flat'} here but not in {files[0]}"
                )
        n_total += int(t.num_entries)
    return jagged, n_total


def _check_branch_shapes(first_file: Path, tree: str, specs: dict[str, BranchSpec], jagged: dict[str, bool]) -> None:
    """Cell columns need jagged branches (one value per cell), scalar columns of the format flat ones."""
    for c, s in specs.items():
        if s.branch is None or s.branch not in jagged:
            continue
        if c in CELL_COLUMNS and not jagged[s.branch]:
            raise ValueError(
                f"{first_file}: tree {tree!r}: branch {s.branch!r} for cell column {c!r} must be jagged (one value per cell)"
            )
        if c in COLUMN_BY_NAME and c not in CELL_COLUMNS and jagged[s.branch]:
            raise ValueError(
                f"{first_file}: tree {tree!r}: branch {s.branch!r} for scalar column {c!r} must be flat (one value per cluster)"
            )


def _is_jagged(branch: Any) -> bool:
    interp = getattr(branch, "interpretation", None)
    return isinstance(interp, uproot.AsJagged)


def _empty_type(col: str, spec: BranchSpec) -> pa.DataType:
    known = COLUMN_BY_NAME.get(col)
    if known is not None:
        return known.type
    return pa.float32() if spec.value is None else pa.array([spec.value]).type


def _chunk_to_table(
    arrays: ak.Array,
    specs: dict[str, BranchSpec],
    order: list[str],
    cell_cols: list[str],
    derive_n_cells: bool,
    report: Any,
) -> pa.Table:
    """One uproot step (awkward record array of branches) -> an Arrow table of our columns."""
    n = len(arrays)
    where = f"{report.file_path}: tree {report.tree.name!r}"
    start = int(report.tree_entry_start)
    cols, counts = _cell_columns(arrays, specs, cell_cols, where, start)
    for c in order:
        if c in cols:
            continue
        if c == "n_cells" and derive_n_cells:
            cols[c] = pa.array((counts if counts is not None else np.zeros(n, np.int64)).astype(np.int32))
            continue
        cols[c] = _scalar_column(arrays, c, specs[c], n, where, start)
    if counts is not None and "n_cells" in cols and not derive_n_cells:
        stored = cols["n_cells"].to_numpy(zero_copy_only=False).astype(np.int64)
        if (stored != counts).any():
            r = int(np.flatnonzero(stored != counts)[0])
            raise ValueError(
                f"{where}: entry {start + r}: {specs['n_cells'].branch!r} (n_cells) = {int(stored[r])} but the cell "
                f"branches have {int(counts[r])} values"
            )
    return pa.table({c: cols[c] for c in order})


def _cell_columns(
    arrays: ak.Array, specs: dict[str, BranchSpec], cell_cols: list[str], where: str, start: int
) -> tuple[dict[str, pa.Array], np.ndarray | None]:
    """The list columns of one step and the cells per entry (None without cell columns); raises
    when two cell branches have different lengths (entry named)."""
    counts: np.ndarray | None = None
    ref = None
    cols: dict[str, pa.Array] = {}
    for c in cell_cols:
        s = specs[c]
        arr = arrays[s.branch]
        cnt = ak.to_numpy(ak.num(arr, axis=1)).astype(np.int64)
        if counts is None:
            counts, ref = cnt, c
        elif (cnt != counts).any():
            r = int(np.flatnonzero(cnt != counts)[0])
            raise ValueError(
                f"{where}: entry {start + r}: branch {s.branch!r} ({c}) has {int(cnt[r])} values but "
                f"{specs[ref].branch!r} ({ref}) has {int(counts[r])}"  # type: ignore[index]
            )
        values = scaled(ak.to_numpy(ak.flatten(arr, axis=1)), s)
        target = _target_type(c, values, cell=True)
        values_pa = cast_checked(pa.array(values), target, f"{where}: branch {s.branch!r} ({c})")
        cols[c] = list_array(np.concatenate([[0], np.cumsum(counts)]), values_pa)
    return cols, counts


def _scalar_column(arrays: ak.Array, c: str, s: BranchSpec, n: int, where: str, start: int) -> pa.Array:
    """Scalar column ``c`` of one step of ``n`` entries: a mapped constant, or its flat branch scaled."""
    if s.branch is None:
        target = COLUMN_BY_NAME[c].type if c in COLUMN_BY_NAME else pa.array([s.value]).type
        return cast_checked(pa.array([s.value] * n), target, f"column mapping: constant for {c!r}")
    arr = arrays[s.branch]
    if _is_string_array(arr):
        values_pa: pa.Array = ak.to_arrow(arr, extensionarray=False, string_to32=True)
        values_pa = values_pa.cast(pa.string())
    else:
        values_pa = pa.array(scaled(ak.to_numpy(arr), s))
    target = _target_type(c, values_pa, cell=False)
    return cast_checked(values_pa, target, f"{where}: entries {start}-{start + n - 1}: branch {s.branch!r} ({c})")


def _is_string_array(arr: ak.Array) -> bool:
    return arr.layout.parameter("__array__") == "string"


def _target_type(col: str, values: np.ndarray | pa.Array, cell: bool) -> pa.DataType:
    known = COLUMN_BY_NAME.get(col)
    if known is not None:
        return known.type.value_type if cell and pa.types.is_list(known.type) else known.type
    return values.type if isinstance(values, pa.Array) else pa.from_numpy_dtype(values.dtype)
