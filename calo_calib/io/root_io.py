"""ROOT ntuples (flat TTrees) <-> Parquet cluster datasets, through uproot and awkward.

A ntuple has one entry per cluster: flat branches for the cluster quantities and jagged
(variable-length) branches for the cells, one element per cell. Which branch holds which column of
the format (``docs/data_format.md``), and with which unit factor, is given by a *column mapping*, a
YAML file (``conf/data/root_columns/default.yaml`` maps every column to a branch of the same name)::

    tree: clusters                      # default tree name (optional)
    columns:
      cluster_e: {branch: el_cl_E, scale: 0.001}   # our column: {ROOT branch, factor to our unit}
      cell_e: {branch: el_cell_E, scale: 0.001}    # MeV -> GeV
      cluster_eta: el_cl_eta                        # shorthand: only the branch name
      particle: {value: electron}                   # a constant for a column the ntuple lacks

Columns not listed are read from the branch of the same name with factor 1. ``scale`` multiplies
the branch values (in float64, then the value is stored with the format's type); only float columns
may have a scale other than 1. Columns that are not part of the format may be listed too: they are
carried along with the branch's type.

Reading streams with ``uproot.iterate`` (``step_size`` entries or bytes per step) and writes Parquet
shards as it goes; writing (:func:`parquet_to_root`) streams Parquet chunks into ``TTree.extend``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import uproot
import yaml
from tqdm import tqdm

from calo_calib.io.dataset_stream import (
    DEFAULT_SHARD_ROWS,
    ParquetChunk,
    ParquetDatasetWriter,
    cast_checked,
    check_dataset_destination,
    check_file_destination,
    common_schema,
    field_for,
    iter_parquet_chunks,
    list_array,
    replace_file,
    resolve_parquet_files,
    tmp_file,
)
from calo_calib.io.schema import CELL_COLUMNS, COLUMN_BY_NAME, COLUMNS
from calo_calib.paths import CONF_DIR

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

DEFAULT_TREE = "clusters"
DEFAULT_MAPPING_PATH: Path = CONF_DIR / "data" / "root_columns" / "default.yaml"
DEFAULT_STEP_SIZE = "100 MB"
"""uproot step: bounds the memory of one chunk of branches (an int is a number of entries)."""

DEFAULT_REQUIRED: tuple[str, ...] = tuple(c.name for c in COLUMNS)


@dataclass(frozen=True)
class BranchSpec:
    """Where one of our columns comes from: a ``branch`` times ``scale``, or a constant ``value``."""

    column: str
    branch: str | None
    scale: float = 1.0
    value: Any = None


@dataclass(frozen=True)
class ColumnMapping:
    """A column mapping: ``columns`` (our name -> :class:`BranchSpec`), an optional default ``tree``
    and the file it was read from (for error messages)."""

    columns: dict[str, BranchSpec]
    tree: str | None = None
    source: str = "<built-in identity mapping>"

    def spec(self, column: str) -> BranchSpec:
        """The spec of ``column``; unlisted columns map to a same-name branch with factor 1."""
        return self.columns.get(column) or BranchSpec(column, column)


MappingArg = ColumnMapping | Mapping[str, Any] | PathLike | None


def load_mapping(mapping: MappingArg = None) -> ColumnMapping:
    """Parse a column mapping from a YAML file, a dict of the same shape, or ``None`` (identity).

    Raises:
        FileNotFoundError: a mapping file that does not exist.
        ValueError: a malformed entry (named with the file): unknown keys, both ``branch`` and
            ``value``, a non-numeric or zero ``scale``, a scale on a non-float column of the format,
            or a constant for a cell (list) column.
    """
    if isinstance(mapping, ColumnMapping):
        return mapping
    if mapping is None:
        return ColumnMapping({})
    source = "<dict>"
    if isinstance(mapping, (str, os.PathLike)):
        path = Path(mapping)
        if not path.is_file():
            raise FileNotFoundError(f"column mapping file does not exist: {path}")
        source = str(path)
        mapping = yaml.safe_load(path.read_text()) or {}
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{source}: a column mapping must be a mapping with a 'columns' entry")
    unknown = set(mapping) - {"tree", "columns"}
    if unknown:
        raise ValueError(f"{source}: unknown top-level key(s) {sorted(unknown)}; expected 'tree' and 'columns'")
    columns: dict[str, BranchSpec] = {}
    for col, entry in (mapping.get("columns") or {}).items():
        columns[str(col)] = _parse_entry(str(col), entry, source)
    tree = mapping.get("tree")
    return ColumnMapping(columns, str(tree) if tree is not None else None, source)


def _parse_entry(col: str, entry: Any, source: str) -> BranchSpec:
    where = f"{source}: column {col!r}"
    if entry is None or isinstance(entry, str):
        return BranchSpec(col, entry or col)
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a branch name or {{branch, scale}} / {{value}}, got {entry!r}")
    bad = set(entry) - {"branch", "scale", "value"}
    if bad:
        raise ValueError(f"{where}: unknown key(s) {sorted(bad)}; allowed: branch, scale, value")
    if "value" in entry:
        if "branch" in entry or "scale" in entry:
            raise ValueError(f"{where}: give either 'value' (a constant) or 'branch'/'scale', not both")
        if col in CELL_COLUMNS:
            raise ValueError(f"{where}: a cell (list) column cannot be a constant")
        return BranchSpec(col, None, 1.0, entry["value"])
    try:
        scale = float(entry.get("scale", 1.0))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: scale must be a number, got {entry.get('scale')!r}") from None
    if not np.isfinite(scale) or scale == 0:
        raise ValueError(f"{where}: scale must be finite and non-zero, got {scale}")
    known = COLUMN_BY_NAME.get(col)
    if scale != 1.0 and known is not None:
        t = known.type.value_type if pa.types.is_list(known.type) else known.type
        if not pa.types.is_floating(t):
            raise ValueError(f"{where}: scale {scale} on a {t} column; only float columns can be scaled")
    return BranchSpec(col, str(entry.get("branch", col)), scale)


# --------------------------------------------------------------------------------------------- read
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
    for c, s in specs.items():
        if s.branch is None or s.branch not in jagged:
            continue
        if c in CELL_COLUMNS and not jagged[s.branch]:
            raise ValueError(
                f"{files[0]}: tree {tree!r}: branch {s.branch!r} for cell column {c!r} must be jagged (one value per cell)"
            )
        if c in COLUMN_BY_NAME and c not in CELL_COLUMNS and jagged[s.branch]:
            raise ValueError(
                f"{files[0]}: tree {tree!r}: branch {s.branch!r} for scalar column {c!r} must be flat (one value per cluster)"
            )
    cell_cols = [
        c for c in wanted if c in CELL_COLUMNS or (specs[c].branch is not None and jagged.get(specs[c].branch, False))
    ]

    order = [c.name for c in COLUMNS if c.name in specs] + [c for c in wanted if c not in COLUMN_BY_NAME]
    schema: pa.Schema | None = None
    meta = {
        "source_format": "root",
        "source": [str(f.resolve()) for f in files],
        "tree": tree,
        "column_mapping": cmap.source,
    }
    bar = tqdm(total=n_total, unit="cluster", desc=f"{files[0].name} ->", disable=not progress)
    writer: ParquetDatasetWriter | None = None
    try:
        iterator = uproot.iterate(
            {str(f): tree for f in files}, filter_name=branches, step_size=step_size, library="ak", report=True
        )
        for arrays, report in iterator:
            table = _chunk_to_table(arrays, specs, order, cell_cols, derive_n_cells, report)
            if writer is None:
                schema = pa.schema([field_for(f.name, f.type) for f in table.schema])
                writer = ParquetDatasetWriter(dst_dir, schema, meta, n_total, shard_rows, overwrite)
            writer.write(table)
            bar.update(table.num_rows)
        if writer is None:  # no entries at all: an empty dataset with the format's types
            schema = pa.schema([field_for(c, _empty_type(c, specs[c])) for c in order])
            writer = ParquetDatasetWriter(dst_dir, schema, meta, 0, shard_rows, overwrite)
        return writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()


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
        values = _scaled(ak.to_numpy(ak.flatten(arr, axis=1)), s)
        target = _target_type(c, values, cell=True)
        values_pa = cast_checked(pa.array(values), target, f"{where}: branch {s.branch!r} ({c})")
        cols[c] = list_array(np.concatenate([[0], np.cumsum(counts)]), values_pa)
    for c in order:
        if c in cols:
            continue
        s = specs[c]
        if c == "n_cells" and derive_n_cells:
            cols[c] = pa.array((counts if counts is not None else np.zeros(n, np.int64)).astype(np.int32))
            continue
        if s.branch is None:
            target = COLUMN_BY_NAME[c].type if c in COLUMN_BY_NAME else pa.array([s.value]).type
            cols[c] = cast_checked(pa.array([s.value] * n), target, f"column mapping: constant for {c!r}")
            continue
        arr = arrays[s.branch]
        if _is_string_array(arr):
            values_pa: pa.Array = ak.to_arrow(arr, extensionarray=False, string_to32=True)
            values_pa = values_pa.cast(pa.string())
        else:
            values_pa = pa.array(_scaled(ak.to_numpy(arr), s))
        target = _target_type(c, values_pa, cell=False)
        cols[c] = cast_checked(
            values_pa, target, f"{where}: entries {start}-{start + n - 1}: branch {s.branch!r} ({c})"
        )
    if counts is not None and "n_cells" in cols and not derive_n_cells:
        stored = cols["n_cells"].to_numpy(zero_copy_only=False).astype(np.int64)
        if (stored != counts).any():
            r = int(np.flatnonzero(stored != counts)[0])
            raise ValueError(
                f"{where}: entry {start + r}: {specs['n_cells'].branch!r} (n_cells) = {int(stored[r])} but the cell "
                f"branches have {int(counts[r])} values"
            )
    return pa.table({c: cols[c] for c in order})


def _is_string_array(arr: ak.Array) -> bool:
    return arr.layout.parameter("__array__") == "string"


def _scaled(values: np.ndarray, spec: BranchSpec) -> np.ndarray:
    # float64 arithmetic, then one rounding to the stored type: a float32 GeV value written in MeV as
    # float64 comes back bit-identical (x * 1000 is exact in float64, and x * 1000 * 0.001 is within an
    # ulp of float64, far below the float32 rounding step).
    return values if spec.scale == 1.0 else values.astype(np.float64) * spec.scale


def _target_type(col: str, values: np.ndarray | pa.Array, cell: bool) -> pa.DataType:
    known = COLUMN_BY_NAME.get(col)
    if known is not None:
        return known.type.value_type if cell and pa.types.is_list(known.type) else known.type
    return values.type if isinstance(values, pa.Array) else pa.from_numpy_dtype(values.dtype)


# --------------------------------------------------------------------------------------------- write
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
    """Write Parquet cluster files to a ROOT file with one flat TTree (the inverse of :func:`root_to_parquet`).

    Scalar columns become flat branches, cell columns jagged branches sharing one counter branch,
    which is the ``n_cells`` branch (int32, the number of cells of the entry). Branch names and
    unit factors come from ``mapping`` (branch value = column value / scale; a scaled column is
    written as float64 so that reading it back with the same mapping is exact); columns the mapping
    sets to a constant are not written; unlisted columns keep their names.

    Args:
        src: a dataset directory, a ``.parquet`` file or a list of them.
        dst: the ``.root`` file to write (atomically: temporary name, then rename).
        tree: the tree name (default: the mapping's ``tree``, else ``"clusters"``).
        mapping: as for :func:`root_to_parquet`.
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
    """The uproot branch type of Arrow type ``t`` (a scaled column is float64: see :func:`_scaled`)."""
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
            data[layout.branch_of[c]] = _unscaled(col.to_numpy(), cmap.spec(c))
    if layout.cells:
        counts = _check_counts(t, layout.cells, chunk.path, chunk.file_row)
        jag = {}
        for c in layout.cells:
            flat = t[c].combine_chunks().flatten()
            if flat.null_count:
                raise ValueError(f"{chunk.path}: null cell value in column {c!r} near row {chunk.file_row}")
            jag[layout.branch_of[c]] = ak.unflatten(
                _unscaled(flat.to_numpy(zero_copy_only=False), cmap.spec(c)), counts
            )
        data["__cells__"] = ak.zip(jag)
    return data


def _parquet_rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def _unscaled(values: np.ndarray, spec: BranchSpec) -> np.ndarray:
    # The inverse of _scaled, in float64 (see there for why the round trip is exact).
    return values if spec.scale == 1.0 else values.astype(np.float64) / spec.scale


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
