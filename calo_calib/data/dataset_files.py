"""The Parquet files of a :class:`~calo_calib.data.loader.ClusterDataset`: which files, in which order,
and whether their schemas hold the columns the features need."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from calo_calib.data.checks import DataError, check_column_types, check_dataset_complete, open_parquet
from calo_calib.io.parquet import resolve_paths

PathArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def expand_paths(paths: PathArg) -> list[Path]:
    """Dataset dirs and/or .parquet files -> unique files sorted by path (row ids follow this order)."""
    if isinstance(paths, (str, os.PathLike)):
        items: list[str | os.PathLike[str]] = [paths]
    else:
        items = list(paths)
    if not items:
        raise FileNotFoundError("ClusterDataset: empty list of paths")
    files: list[Path] = []
    for item in items:
        shards = resolve_paths(item)
        if Path(item).is_dir():  # all shards of a generated set, one provenance, dataset.json
            check_dataset_complete(item, shards)
        files += shards
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"Parquet file does not exist: {f}")
    # Duplicates (a file given twice, or a file inside a given directory) would give clusters twice.
    return sorted({f.resolve() for f in files})


def check_schemas(
    files: Sequence[Path],
    scalar_columns: list[str],
    cell_columns: list[str],
    cell_features: list[str],
    cluster_features: list[str],
) -> None:
    """Raise :class:`~calo_calib.data.checks.DataError` on a file that lacks a needed column (all
    listed, with the features that need them) or has one of the wrong kind or type."""
    needed = scalar_columns + cell_columns
    for path in files:
        schema = open_parquet(path).schema_arrow
        missing = [c for c in needed if c not in schema.names]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {missing} needed for cell features {cell_features} "
                f"and cluster features {cluster_features}"
            )
        for c in cell_columns:
            t = schema.field(c).type
            if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
                raise DataError(f"{path}: column {c!r} must be a list column (one entry per cell), has type {t}")
        for c in scalar_columns:
            t = schema.field(c).type
            if pa.types.is_nested(t):
                raise DataError(f"{path}: column {c!r} must be a scalar column, has type {t}")
        check_column_types(path, schema, scalar_columns, cell_columns)
