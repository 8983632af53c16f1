"""ClusterDataset on real simulated shards: selection, padding, epochs, DDP split, data checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from calo_calib.data.features import DEFAULT_CELL_FEATURES, default_cluster_features
from calo_calib.data.loader import ClusterDataset
from calo_calib.io.parquet import read_clusters

CLUSTER = default_cluster_features("electron")


def make(path, **kw) -> ClusterDataset:
    return ClusterDataset(path, DEFAULT_CELL_FEATURES, CLUSTER, **kw)


def row_ids(batches) -> list[int]:
    return [r for b in batches for r in b["row_id"].tolist()]


@pytest.fixture(scope="module")
def data(tiny_data) -> Path:
    return tiny_data("electron")


def test_batch_contract_and_padding(data):
    ds = make(data, batch_size=50, shuffle=True, buffer_clusters=100)
    table = read_clusters(data, columns=["n_cells", "truth_e", "cluster_e"])
    n_cells = table["n_cells"].to_numpy()
    n_padded = 0
    for b in ds.batches(0):
        bsz, length, nf = b["cells"].shape
        assert nf == 7 and b["pair"].shape == (bsz, length, 7) and b["cluster"].shape == (bsz, 11)
        assert b["cells"].dtype == b["pair"].dtype == b["cluster"].dtype == b["target"].dtype == torch.float32
        assert b["valid"].dtype == torch.bool and b["row_id"].dtype == torch.int64
        rid = b["row_id"].numpy()
        np.testing.assert_array_equal(b["valid"].sum(1).numpy(), n_cells[rid])
        assert length == n_cells[rid].max()
        # valid cells are a prefix of each row; padding is exactly zero
        assert torch.equal(b["valid"], torch.arange(length)[None, :] < b["valid"].sum(1, keepdim=True))
        assert (b["cells"][~b["valid"]] == 0).all() and (b["pair"][~b["valid"]] == 0).all()
        n_padded += int((~b["valid"]).sum())
        np.testing.assert_allclose(b["cluster_e"].numpy(), table["cluster_e"].to_numpy()[rid])
        np.testing.assert_allclose(
            b["target"].numpy(), (table["truth_e"].to_numpy() / table["cluster_e"].to_numpy())[rid], rtol=1e-6
        )
    assert n_padded > 0  # the padding checks above were exercised


def test_each_cluster_once_crack_excluded(data):
    table = read_clusters(data, columns=["is_crack"])
    crack = table["is_crack"].to_numpy(zero_copy_only=False)
    assert 0 < crack.sum() < len(crack)  # the sample exercises the crack selection
    ds = make(data, batch_size=32, shuffle=True, buffer_clusters=64)
    ids = row_ids(ds.batches(3))
    assert sorted(ids) == np.flatnonzero(~crack).tolist()  # each non-crack cluster exactly once
    assert len(ds) == len(ids) and ds.counts["n_crack_excluded"] == crack.sum() and ds.counts["n_rows"] == len(crack)
    assert sorted(row_ids(make(data, exclude_crack=False).batches(0))) == list(range(len(crack)))
    st = ds.scalar_table(["cluster_e", "is_crack"])
    assert st["row_id"].to_pylist() == np.flatnonzero(~crack).tolist()
    assert not any(st["is_crack"].to_pylist())
    with pytest.raises(ValueError, match="no_such_column"):
        ds.scalar_table(["cluster_e", "no_such_column"])


def test_epochs_deterministic_and_shuffled(data):
    ds = make(data, batch_size=32, shuffle=True, buffer_clusters=128, seed=5)
    a, b = list(ds.batches(1)), list(ds.batches(1))
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for k in x:
            assert torch.equal(x[k], y[k]), k
    assert row_ids(ds.batches(2)) != row_ids(a)
    assert row_ids(make(data, batch_size=32, shuffle=True, buffer_clusters=128, seed=6).batches(1)) != row_ids(a)
    # no shuffle: identical for every epoch
    plain = make(data, batch_size=32)
    assert row_ids(plain.batches(0)) == row_ids(plain.batches(7))


def test_bucketing_keeps_padding_low(data):
    ds = make(data, batch_size=32, shuffle=True, buffer_clusters=400)
    valid = [b["valid"] for b in ds.batches(0)]
    frac = sum(int(v.sum()) for v in valid) / sum(v.numel() for v in valid)
    assert frac > 0.8, frac


@pytest.mark.parametrize(
    "batch_size,buffer,world_size,max_clusters",
    [(32, 64, 1, None), (50, 1000, 1, None), (9, 30, 3, None), (32, 64, 2, 150), (1000, 16384, 1, None), (4, 16, 4, 149)],
)
def test_steps_per_epoch_exact(data, batch_size, buffer, world_size, max_clusters):
    for rank in range(world_size):
        ds = make(
            data,
            batch_size=batch_size,
            shuffle=True,
            buffer_clusters=buffer,
            world_size=world_size,
            rank=rank,
            max_clusters=max_clusters,
        )
        for epoch in (0, 1):
            assert sum(1 for _ in ds.batches(epoch)) == ds.steps_per_epoch()
    if max_clusters is not None:
        assert len(ds) == max_clusters


def test_ddp_ranks_slice_the_global_batches(data):
    """N ranks with a global batch B together see exactly the batches of one process with batch B."""
    kw = dict(batch_size=32, shuffle=True, buffer_clusters=64, seed=1)
    full = list(make(data, **kw).batches(4))
    r0 = list(make(data, rank=0, world_size=2, **kw).batches(4))
    r1 = list(make(data, rank=1, world_size=2, **kw).batches(4))
    assert len(r0) == len(r1) == len(full)
    ids0, ids1 = set(row_ids(r0)), set(row_ids(r1))
    assert not ids0 & ids1
    assert ids0 | ids1 == set(row_ids(full))
    for b0, b1, b in zip(r0, r1, full):
        assert b0["row_id"].tolist() + b1["row_id"].tolist() == b["row_id"].tolist()
        # Each rank takes half of the global batch (the first rank the larger half of an odd one: the
        # selection can leave a batch of odd size).
        assert len(b0["row_id"]) == (len(b["row_id"]) + 1) // 2


def test_global_batch_must_split_over_ranks(data):
    with pytest.raises(ValueError, match="batch_size=30 .*world_size=4"):
        make(data, batch_size=30, world_size=4, rank=0)


def _copy_modified(data: Path, dst: Path, fn) -> Path:
    """Copy the dataset, apply ``fn(table) -> table`` to the second shard."""
    shutil.copytree(data, dst)
    shard = sorted(dst.glob("*.parquet"))[1]
    pq.write_table(fn(pq.read_table(shard)), shard)
    return shard


def test_missing_columns_error_lists_all(data, tmp_path):
    shard = _copy_modified(data, tmp_path / "d", lambda t: t.drop_columns(["cell_z", "cluster_e_l3"]))
    with pytest.raises(ValueError) as err:
        make(tmp_path / "d")
    msg = str(err.value)
    assert str(shard) in msg and "cell_z" in msg and "cluster_e_l3" in msg


def _set_cell(table: pa.Table, column: str, row: int, index: int, value: float) -> pa.Table:
    lists = table[column].to_pylist()
    lists[row][index] = value
    field = table.schema.field(column)
    return table.set_column(table.schema.get_field_index(column), field, pa.array(lists, field.type))


def test_nonfinite_cell_error_and_drop(data, tmp_path):
    crack = pq.read_table(sorted(data.glob("*.parquet"))[1], columns=["is_crack"])["is_crack"].to_pylist()
    row = next(i for i in range(10, 200) if not crack[i])
    shard = _copy_modified(data, tmp_path / "d", lambda t: _set_cell(t, "cell_e", row, 2, float("nan")))
    with pytest.raises(ValueError, match=rf"{shard.name}: row {row}: .*\['cell_e'\]"):
        make(tmp_path / "d")
    ds = make(tmp_path / "d", nonfinite="drop")
    clean = make(data)
    n_first = pq.ParquetFile(sorted(data.glob("*.parquet"))[0]).metadata.num_rows
    assert ds.counts["n_nonfinite_dropped"] == 1 and len(ds) == len(clean) - 1
    assert set(row_ids(clean.batches(0))) - set(row_ids(ds.batches(0))) == {n_first + row}


def test_empty_and_nonpositive_clusters_skipped(data, tmp_path):
    def fn(t: pa.Table) -> pa.Table:
        d = t.to_pydict()
        d["is_crack"][3] = d["is_crack"][4] = False
        d["cluster_e"][3] = -1.0
        d["n_cells"][4] = 0
        for c in [c for c in d if c.startswith("cell_")]:
            d[c][4] = []
        return pa.table(d, schema=t.schema)

    _copy_modified(data, tmp_path / "d", fn)
    ds = make(tmp_path / "d")
    assert ds.counts["n_nonpositive_e"] == 1 and ds.counts["n_no_cells"] == 1
    n_first = pq.ParquetFile(sorted(data.glob("*.parquet"))[0]).metadata.num_rows
    ids = set(row_ids(ds.batches(0)))
    assert n_first + 3 not in ids and n_first + 4 not in ids and len(ids) == len(ds)


def test_cell_list_length_mismatch(data, tmp_path):
    def fn(t: pa.Table) -> pa.Table:
        n_cells = [n + (i == 7) for i, n in enumerate(t["n_cells"].to_pylist())]  # one more than the lists hold
        return t.set_column(
            t.schema.get_field_index("n_cells"), t.schema.field("n_cells"), pa.array(n_cells, pa.int32())
        )

    shard = _copy_modified(data, tmp_path / "d", fn)
    with pytest.raises(ValueError, match=rf"{shard.name}: row 7: column 'cell_\w+' has \d+ entries but n_cells"):
        make(tmp_path / "d")


def test_bad_arguments(data):
    with pytest.raises(ValueError, match="nonfinite"):
        make(data, nonfinite="ignore")
    with pytest.raises(ValueError, match="rank"):
        make(data, rank=2, world_size=2)
    with pytest.raises(FileNotFoundError):
        make(data / "nope")


def test_min_cluster_et_and_max_target_cuts(data):
    t = read_clusters(data, columns=["truth_e", "cluster_e", "cluster_eta", "is_crack"])
    e, eta = t["cluster_e"].to_numpy(), t["cluster_eta"].to_numpy()
    target = t["truth_e"].to_numpy() / e
    not_crack = ~t["is_crack"].to_numpy()
    et = e / np.cosh(eta)
    ds = make(data, min_cluster_et=10.0, max_target=1.05)
    expect_low = not_crack & (e > 0) & (et < 10.0)
    expect_high = not_crack & (e > 0) & (et >= 10.0) & (target > 1.05)
    assert expect_low.sum() > 0 and expect_high.sum() > 0  # the cuts are exercised
    assert ds.counts["n_low_et"] == expect_low.sum()
    assert ds.counts["n_target_above_max"] == expect_high.sum()
    ids = np.array(row_ids(ds.batches(0)))
    assert set(ids) == set(np.flatnonzero(not_crack & (e > 0) & ~expect_low & ~expect_high))
