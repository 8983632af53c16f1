"""Parquet shards of clusters: atomic writing, metadata and column-checked reading.

A data set is a directory of ``*.parquet`` shards. Each shard carries the generating configuration
and provenance as JSON in its Arrow schema metadata under the key ``b"calo_calib"``. Shards are
written to a temporary file in the same directory and renamed into place, so a shard path either
does not exist or holds a complete file; temporary files never match ``*.parquet``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

METADATA_KEY = b"calo_calib"
"""Schema metadata key holding the JSON metadata (same as :data:`calo_calib.io.schema.METADATA_KEY`)."""

COMPRESSION = "zstd"

PathLike = str | os.PathLike[str]


def _tmp_path(path: Path) -> Path:
    """A unique temporary name next to ``path`` that does not match ``*.parquet``."""
    return path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def write_table_atomic(table: pa.Table, path: PathLike, metadata: dict[str, Any]) -> None:
    """Write ``table`` to ``path`` as zstd-compressed Parquet, atomically.

    ``metadata`` is stored as JSON under the schema metadata key ``b"calo_calib"`` (other schema
    metadata of ``table`` is kept). The data go to a temporary file in the same directory, are
    fsync'ed, and the file is renamed over ``path``; on any error the temporary file is removed and
    ``path`` is untouched. Parent directories are created.

    Raises:
        TypeError: if ``metadata`` is not JSON-serialisable (nothing is written then).
    """
    path = Path(path)
    payload = json.dumps(metadata, sort_keys=True).encode()
    schema_metadata = dict(table.schema.metadata or {})
    schema_metadata[METADATA_KEY] = payload
    table = table.replace_schema_metadata(schema_metadata)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        with open(tmp, "wb") as f:
            pq.write_table(table, f, compression=COMPRESSION)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Best-effort fsync of a directory so a rename survives a crash (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_metadata(path: PathLike) -> dict[str, Any]:
    """Return the ``calo_calib`` JSON metadata stored in the Parquet file ``path``.

    Raises:
        ValueError: if the file has no ``calo_calib`` metadata (it was not written by this package).
    """
    schema_metadata = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in schema_metadata:
        raise ValueError(f"{path}: no {METADATA_KEY.decode()!r} metadata in the Parquet schema")
    return json.loads(schema_metadata[METADATA_KEY])


def list_shards(directory: PathLike) -> list[Path]:
    """Return the ``*.parquet`` files of ``directory``, sorted by name.

    Temporary files (``*.tmp``) and hidden files are ignored.

    Raises:
        FileNotFoundError: if ``directory`` does not exist or contains no ``*.parquet`` file.
        NotADirectoryError: if ``directory`` is not a directory.
    """
    directory = Path(directory)
    if not directory.exists():
        raise FileNotFoundError(f"data directory does not exist: {directory}")
    if not directory.is_dir():
        raise NotADirectoryError(f"not a directory: {directory}")
    shards = sorted(p for p in directory.glob("*.parquet") if p.is_file() and not p.name.startswith("."))
    if not shards:
        raise FileNotFoundError(f"no *.parquet shards in directory: {directory}")
    return shards


def resolve_paths(paths_or_dir: PathLike | Iterable[PathLike]) -> list[Path]:
    """Turn a directory, a single file or an iterable of files into a list of file paths."""
    if isinstance(paths_or_dir, (str, os.PathLike)):
        p = Path(paths_or_dir)
        return list_shards(p) if p.is_dir() else [p]
    paths = [Path(p) for p in paths_or_dir]
    if not paths:
        raise FileNotFoundError("read_clusters: empty list of Parquet files")
    return paths


def read_clusters(paths_or_dir: PathLike | Iterable[PathLike], columns: Sequence[str] | None = None) -> pa.Table:
    """Read cluster shards into one table.

    Args:
        paths_or_dir: a directory of shards (see :func:`list_shards`), one Parquet file, or an
            iterable of Parquet files (read in the given order).
        columns: columns to read (all if ``None``).

    Returns:
        The concatenated table; its schema metadata is the first file's.

    Raises:
        FileNotFoundError: if a file or the directory does not exist, or the directory has no shards.
        ValueError: if a file lacks requested columns (the message names the file and the columns),
            or if the files' schemas differ.
    """
    paths = resolve_paths(paths_or_dir)
    tables: list[pa.Table] = []
    first_schema: pa.Schema | None = None
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"Parquet file does not exist: {path}")
        schema = pq.read_schema(path)
        if columns is not None:
            missing = [c for c in columns if c not in schema.names]
            if missing:
                raise ValueError(f"{path}: missing columns {missing} (file has {schema.names})")
        table = pq.read_table(path, columns=list(columns) if columns is not None else None)
        if first_schema is None:
            first_schema = table.schema
        elif not table.schema.equals(first_schema, check_metadata=False):
            raise ValueError(f"{path}: schema differs from {paths[0]}:\n{table.schema}\nvs\n{first_schema}")
        tables.append(table)
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables)
