"""Tests of calo_calib.io.parquet: atomic writes, metadata, shard listing, column checks."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calo_calib.io import parquet as pio


def _table(n: int = 3, offset: float = 0.0) -> pa.Table:
    return pa.table(
        {
            "cluster_e": pa.array([offset + i for i in range(n)], pa.float32()),
            "cell_e": pa.array([[1.0, 2.0]] * n, pa.list_(pa.float32())),
        }
    )


def test_atomic_write_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "shard_00000.parquet"
    meta = {"seed": 1, "particle": "electron", "nested": {"mu": 51.0}}
    pio.write_table_atomic(_table(), path, meta)
    assert sorted(p.name for p in path.parent.iterdir()) == ["shard_00000.parquet"], "temp file left"
    assert pio.read_metadata(path) == meta
    assert pq.read_metadata(path).row_group(0).column(0).compression.lower() == "zstd"
    assert pio.read_clusters(path).equals(_table())


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "shard.parquet"

    def broken_write(table: pa.Table, where: BinaryIO, **kwargs: object) -> None:
        where.write(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(pio.pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        pio.write_table_atomic(_table(), path, {})
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "shard.parquet"
    pio.write_table_atomic(_table(), path, {"version": 1})

    def broken_write(*args: object, **kwargs: object) -> None:
        raise OSError("boom")

    monkeypatch.setattr(pio.pq, "write_table", broken_write)
    with pytest.raises(OSError):
        pio.write_table_atomic(_table(5), path, {"version": 2})
    assert pio.read_metadata(path) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["shard.parquet"]


def test_non_json_metadata_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        pio.write_table_atomic(_table(), tmp_path / "x.parquet", {"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_read_metadata_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "foreign.parquet"
    pq.write_table(_table(), path)
    with pytest.raises(ValueError, match="foreign.parquet"):
        pio.read_metadata(path)


def test_missing_columns_error_names_file_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "shard_00000.parquet"
    pio.write_table_atomic(_table(), path, {})
    with pytest.raises(ValueError) as excinfo:
        pio.read_clusters(tmp_path, columns=["cluster_e", "truth_e", "cell_eta"])
    message = str(excinfo.value)
    assert "shard_00000.parquet" in message
    assert "truth_e" in message and "cell_eta" in message


def test_read_clusters_directory_and_columns(tmp_path: Path) -> None:
    pio.write_table_atomic(_table(2, offset=10.0), tmp_path / "shard_00001.parquet", {"shard": 1})
    pio.write_table_atomic(_table(3), tmp_path / "shard_00000.parquet", {"shard": 0})
    (tmp_path / "shard_00002.parquet.123-abcd.tmp").write_bytes(b"partial")
    table = pio.read_clusters(tmp_path, columns=["cluster_e"])
    assert table.column_names == ["cluster_e"]
    assert table.column("cluster_e").to_pylist() == [0.0, 1.0, 2.0, 10.0, 11.0]


def test_read_clusters_schema_mismatch(tmp_path: Path) -> None:
    pio.write_table_atomic(_table(), tmp_path / "a.parquet", {})
    pio.write_table_atomic(pa.table({"cluster_e": [1.0]}), tmp_path / "b.parquet", {})
    with pytest.raises(ValueError, match="b.parquet"):
        pio.read_clusters(tmp_path)


def test_list_shards_sorted_ignores_temp(tmp_path: Path) -> None:
    for name in ["shard_00002.parquet", "shard_00000.parquet", "shard_00001.parquet"]:
        pio.write_table_atomic(_table(1), tmp_path / name, {})
    (tmp_path / "shard_00003.parquet.tmp").write_bytes(b"")
    (tmp_path / ".hidden.parquet").write_bytes(b"")
    assert [p.name for p in pio.list_shards(tmp_path)] == [
        "shard_00000.parquet",
        "shard_00001.parquet",
        "shard_00002.parquet",
    ]


def test_list_shards_empty_dir_names_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty_dataset"
    empty.mkdir()
    (empty / "leftover.parquet.tmp").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="empty_dataset"):
        pio.list_shards(empty)


def test_list_shards_missing_dir_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        pio.list_shards(tmp_path / "no_such_dir")
