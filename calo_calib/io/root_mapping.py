"""The ROOT column mapping: which branch holds which column of the format, with which unit factor.

The mapping file's format: :mod:`calo_calib.io.root_io` (module docstring). :func:`load_mapping`
parses it; :func:`scaled` and :func:`unscaled` apply a column's factor when reading and writing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import yaml

from calo_calib.io.schema import CELL_COLUMNS, COLUMN_BY_NAME

PathLike = str | os.PathLike[str]

DEFAULT_TREE = "clusters"


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


def scaled(values: np.ndarray, spec: BranchSpec) -> np.ndarray:
    """Branch values -> our unit: times ``spec.scale``, in float64 (unchanged when the scale is 1)."""
    # float64 arithmetic, then one rounding to the stored type: a float32 GeV value written in MeV as
    # float64 comes back bit-identical (x * 1000 is exact in float64, and x * 1000 * 0.001 is within an
    # ulp of float64, far below the float32 rounding step).
    return values if spec.scale == 1.0 else values.astype(np.float64) * spec.scale


def unscaled(values: np.ndarray, spec: BranchSpec) -> np.ndarray:
    """Our unit -> branch values: divided by ``spec.scale``, in float64 (unchanged when the scale is 1)."""
    # The inverse of scaled, in float64 (see there for why the round trip is exact).
    return values if spec.scale == 1.0 else values.astype(np.float64) / spec.scale
