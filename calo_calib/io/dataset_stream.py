"""Streaming helpers shared by the format converters (SALT HDF5, ROOT): chunked reading of Parquet
cluster files and atomic writing of a Parquet dataset directory.

A converted dataset has the layout of ``docs/data_format.md``: ``shard_00000.parquet``, ... plus
``dataset.json``. It is built in a hidden temporary directory next to the destination and renamed
into place when complete, so the destination either does not exist or holds a whole dataset; an
interrupted conversion leaves only the hidden temporary directory (removed on any Python-level error).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import calo_calib
from calo_calib.io.parquet import COMPRESSION, METADATA_KEY, fsync_dir, resolve_paths
from calo_calib.io.schema import COLUMN_BY_NAME

PathLike = str | os.PathLike[str]

SHARD_PATTERN = "shard_{:05d}.parquet"
DEFAULT_SHARD_ROWS = 100_000
DEFAULT_CHUNK_ROWS = 4096


def resolve_parquet_files(src: PathLike | Iterable[PathLike]) -> list[Path]:
    """A dataset directory, one ``.parquet`` file or several (in the given order) -> list of files.

    Raises:
        FileNotFoundError: a path that does not exist, a directory without shards, an empty list.
    """
    files = resolve_paths(src)
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"Parquet file does not exist: {f}")
    return files


def common_schema(files: list[Path]) -> pa.Schema:
    """The schema shared by all ``files`` (metadata ignored); its metadata is the first file's.

    Raises:
        ValueError: if a file's columns or types differ from the first file's (both named).
    """
    first = pq.read_schema(files[0])
    for f in files[1:]:
        s = pq.read_schema(f)
        if not s.equals(first, check_metadata=False):
            raise ValueError(f"{f}: schema differs from {files[0]}:\n{s}\nvs\n{first}")
    return first


def source_metadata(path: Path) -> dict[str, Any] | None:
    """The ``calo_calib`` JSON metadata of a Parquet file, or None if it has none (foreign data)."""
    meta = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in meta:
        return None
    try:
        return json.loads(meta[METADATA_KEY])
    except ValueError:
        return None


@dataclass
class ParquetChunk:
    """Consecutive rows of one Parquet file.

    ``file_row`` is the index of the first row within ``path``; ``row`` its index in the
    concatenation of all input files (the ``row_id`` of :class:`calo_calib.data.loader.ClusterDataset`
    when the files are in sorted order).
    """

    path: Path
    file_row: int
    row: int
    table: pa.Table


def iter_parquet_chunks(
    files: list[Path], chunk_rows: int = DEFAULT_CHUNK_ROWS, columns: list[str] | None = None
) -> Iterator[ParquetChunk]:
    """Yield the rows of ``files`` in order, at most ``chunk_rows`` at a time.

    Memory is bounded by one row group of the file being read plus one chunk: pyarrow's
    ``iter_batches`` decodes a row group column chunk by column chunk.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    row = 0
    for path in files:
        pf = pq.ParquetFile(path)
        file_row = 0
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
            yield ParquetChunk(path, file_row, row, pa.Table.from_batches([batch]))
            file_row += batch.num_rows
            row += batch.num_rows


def field_for(name: str, type_: pa.DataType) -> pa.Field:
    """A non-nullable Arrow field; a column of the format gets its unit and doc as field metadata."""
    col = COLUMN_BY_NAME.get(name)
    meta = {b"unit": col.unit.encode(), b"doc": col.doc.encode()} if col is not None else None
    return pa.field(name, type_, nullable=False, metadata=meta)


def cast_checked(arr: pa.Array, type_: pa.DataType, what: str) -> pa.Array:
    """Cast ``arr`` to ``type_``, refusing lossy integer casts and float overflow.

    Arrow's safe cast already rejects out-of-range integers; a float64 -> float32 cast silently turns
    values above 3.4e38 into inf, which is checked here. ``what`` (e.g. "file.root: column cell_e")
    prefixes the error message.

    Raises:
        ValueError: a value that does not fit ``type_``.
    """
    if arr.type == type_:
        return arr
    try:
        out = arr.cast(type_, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise ValueError(f"{what}: cannot convert {arr.type} to {type_}: {err}") from None
    if pa.types.is_floating(type_) and pa.types.is_floating(arr.type) and type_.bit_width < arr.type.bit_width:
        overflow = pc.and_(pc.is_finite(arr), pc.invert(pc.is_finite(out)))
        if pc.any(overflow).as_py():
            i = int(np.flatnonzero(overflow.to_numpy(zero_copy_only=False))[0])
            raise ValueError(f"{what}: value {arr[i].as_py()!r} (entry {i}) overflows {type_}")
    return out


def list_array(offsets: np.ndarray, values: pa.Array) -> pa.ListArray:
    """A ``list<values.type>`` array from int offsets (n+1,) and flat values (offsets[-1],)."""
    if offsets[-1] > np.iinfo(np.int32).max:
        # list<> uses int32 offsets; a chunk this large would need large_list, which the format does not use.
        raise ValueError(f"{int(offsets[-1])} cells in one chunk: too many for list offsets; use a smaller chunk")
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values)


class ParquetDatasetWriter:
    """Write a Parquet dataset directory (shards + ``dataset.json``) atomically, chunk by chunk.

    Each :meth:`write` call appends one row group (a chunk is split where a shard boundary falls).
    :meth:`close` writes ``dataset.json`` and renames the hidden temporary directory to ``dst_dir``;
    leaving the ``with`` block by an exception removes the temporary directory instead.

    Args:
        dst_dir: the dataset directory to create.
        schema: the Arrow schema of the shards (metadata is replaced).
        metadata: JSON-serialisable provenance stored in every shard under the ``calo_calib`` key
            (``shard_index`` and ``n_shards`` are added).
        n_rows: the number of rows that will be written (fixes the shard count up front).
        shard_rows: clusters per shard.
        overwrite: replace an existing ``dst_dir``; it must then look like a dataset (only ``*.parquet``
            files and ``dataset.json``), so that a wrong path cannot delete unrelated files.

    Raises:
        FileExistsError: ``dst_dir`` exists and is not empty, without ``overwrite``.
        ValueError: ``overwrite`` but ``dst_dir`` holds something other than a dataset.
    """

    def __init__(
        self,
        dst_dir: PathLike,
        schema: pa.Schema,
        metadata: dict[str, Any],
        n_rows: int,
        shard_rows: int = DEFAULT_SHARD_ROWS,
        overwrite: bool = False,
    ) -> None:
        if shard_rows < 1:
            raise ValueError(f"shard_rows must be >= 1, got {shard_rows}")
        self.dst = Path(dst_dir)
        check_dataset_destination(self.dst, overwrite)
        self.schema = schema.remove_metadata()
        self.metadata = dict(metadata)
        self.n_rows = int(n_rows)
        self.shard_rows = int(shard_rows)
        self.n_shards = max(1, math.ceil(self.n_rows / self.shard_rows))
        self.dst.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.dst.parent / f".{self.dst.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        self.tmp.mkdir()
        self.written = 0
        self.particles: set[str] = set()
        self._shard = -1
        self._writer: pq.ParquetWriter | None = None
        self._t0 = time.perf_counter()
        self._closed = False

    def __enter__(self) -> ParquetDatasetWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None or not self._closed:
            self.abort()

    def _open_shard(self, index: int) -> None:
        if self._writer is not None:
            self._writer.close()
        meta = dict(self.metadata, shard_index=index, n_shards=self.n_shards)
        schema = self.schema.with_metadata({METADATA_KEY: json.dumps(meta, sort_keys=True).encode()})
        self._writer = pq.ParquetWriter(self.tmp / SHARD_PATTERN.format(index), schema, compression=COMPRESSION)
        self._shard = index

    def write(self, table: pa.Table) -> None:
        """Append ``table`` (columns in the order of ``schema``; cast to it where types differ)."""
        if table.num_rows and self.written + table.num_rows > self.n_rows:
            raise ValueError(f"{self.dst}: more rows than announced ({self.written + table.num_rows} > {self.n_rows})")
        table = table.select(self.schema.names).cast(self.schema)
        if "particle" in table.column_names:
            self.particles.update(str(v) for v in pc.unique(table["particle"]).to_pylist())
        offset = 0
        while offset < table.num_rows:
            shard = self.written // self.shard_rows
            if shard != self._shard:
                self._open_shard(shard)
            take = min(table.num_rows - offset, (shard + 1) * self.shard_rows - self.written)
            assert self._writer is not None
            self._writer.write_table(table.slice(offset, take), row_group_size=take)
            offset += take
            self.written += take

    def close(self, summary: dict[str, Any] | None = None) -> Path:
        """Finish the shards, write ``dataset.json`` and move the dataset into place; returns ``dst_dir``.

        Raises:
            ValueError: if fewer rows were written than announced.
        """
        if self.written != self.n_rows:
            raise ValueError(f"{self.dst}: {self.written} rows written, {self.n_rows} announced")
        if self._writer is None:  # no rows: still write one (empty) shard, so the directory is a dataset
            self._open_shard(0)
        assert self._writer is not None
        self._writer.close()
        self._writer = None
        wall = time.perf_counter() - self._t0
        info = {
            "calo_calib_version": calo_calib.__version__,
            "particle": next(iter(self.particles)) if len(self.particles) == 1 else sorted(self.particles),
            "n_clusters": self.written,
            "n_shards": self.n_shards,
            "wall_seconds": round(wall, 3),
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **self.metadata,
            **(summary or {}),
        }
        (self.tmp / "dataset.json").write_text(json.dumps(info, indent=2, default=str))
        for p in self.tmp.iterdir():  # make the shards durable before the rename publishes them
            with open(p, "rb") as f:
                os.fsync(f.fileno())
        _replace_dir(self.tmp, self.dst)
        self._closed = True
        return self.dst

    def abort(self) -> None:
        """Drop everything written (the destination is untouched)."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - best effort while cleaning up after another error
                pass
            self._writer = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._closed = True


def check_dataset_destination(dst: Path, overwrite: bool) -> None:
    """Refuse to write over a non-empty directory (or a file), unless ``overwrite`` and it is a dataset."""
    if not dst.exists():
        return
    if not dst.is_dir():
        raise FileExistsError(f"destination exists and is not a directory: {dst}")
    entries = list(dst.iterdir())
    if not entries:
        return
    if not overwrite:
        raise FileExistsError(f"destination directory is not empty: {dst} (use overwrite to replace a dataset)")
    foreign = [p.name for p in entries if not (p.is_file() and (p.suffix == ".parquet" or p.name == "dataset.json"))]
    if foreign:
        raise ValueError(
            f"refusing to overwrite {dst}: it holds {sorted(foreign)[:5]}, not only *.parquet shards and dataset.json"
        )


def _replace_dir(src: Path, dst: Path) -> None:
    """Rename directory ``src`` to ``dst``; an existing (checked) ``dst`` is moved aside and removed."""
    old = None
    if dst.exists():
        old = dst.parent / f".{dst.name}.{os.getpid()}-{secrets.token_hex(4)}.old"
        os.replace(dst, old)
    try:
        os.replace(src, dst)
    except BaseException:
        if old is not None:
            os.replace(old, dst)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(dst.parent)


def tmp_file(path: Path) -> Path:
    """A unique temporary name next to ``path`` (hidden, ``.tmp`` suffix) for an atomic write."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def replace_file(tmp: Path, path: Path) -> None:
    """fsync ``tmp`` and rename it over ``path`` (atomic on POSIX)."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def check_file_destination(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing file without ``overwrite``, and never replace a directory."""
    if path.is_dir():
        raise IsADirectoryError(f"destination is a directory: {path}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"destination exists: {path} (use overwrite to replace it)")
