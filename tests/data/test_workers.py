"""Batches assembled in worker processes are exactly the batches of one process (order aside)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from calo_calib.calibration import loader_workers
from calo_calib.config import compose_run_config
from calo_calib.data.features import DEFAULT_CELL_FEATURES, default_cluster_features
from calo_calib.data.loader import ClusterDataset

CLUSTER = default_cluster_features("electron")


def make(path, **kw) -> ClusterDataset:
    return ClusterDataset(path, DEFAULT_CELL_FEATURES, CLUSTER, **kw)


def key(batch: dict[str, torch.Tensor]) -> tuple[int, ...]:
    return tuple(batch["row_id"].tolist())


@pytest.fixture(scope="module")
def data(tiny_data) -> Path:
    return tiny_data("electron")


@pytest.mark.parametrize("workers", [1, 3])
def test_workers_give_the_same_batches_each_cluster_once(data, workers):
    kw = dict(batch_size=16, shuffle=True, buffer_clusters=64, seed=3)
    one = {key(b): b for b in make(data, **kw).batches(2)}
    par = list(make(data, workers=workers, **kw).batches(2))
    assert len(par) == len(one) == make(data, **kw).steps_per_epoch()
    ids = [r for b in par for r in b["row_id"].tolist()]
    assert len(ids) == len(set(ids)) == len(make(data, **kw))  # nothing dropped, nothing twice
    for b in par:
        ref = one[key(b)]  # the very same batch (same clusters in the same slots) ...
        for name, value in ref.items():
            assert torch.equal(value, b[name]), name  # ... with the same tensors
    # deterministic: a second pass gives the same order
    assert [key(b) for b in make(data, workers=workers, **kw).batches(2)] == [key(b) for b in par]


def test_workers_under_ddp_slice_the_same_global_batches(data):
    kw = dict(batch_size=32, shuffle=True, buffer_clusters=64, seed=1, workers=2)
    full = list(make(data, **kw).batches(4))
    r0 = list(make(data, rank=0, world_size=2, **kw).batches(4))
    r1 = list(make(data, rank=1, world_size=2, **kw).batches(4))
    assert len(r0) == len(r1) == len(full)
    for b0, b1, b in zip(r0, r1, full, strict=True):
        assert b0["row_id"].tolist() + b1["row_id"].tolist() == b["row_id"].tolist()


def test_read_error_names_the_file_with_and_without_workers(data, tmp_path):
    import shutil

    shutil.copytree(data, tmp_path / "d")
    plain = make(tmp_path / "d", batch_size=16, buffer_clusters=64)
    par = make(tmp_path / "d", batch_size=16, buffer_clusters=64, workers=2)
    shard = sorted((tmp_path / "d").glob("*.parquet"))[0]
    shard.write_bytes(b"not parquet any more")  # damaged after the scan
    with pytest.raises(OSError, match=f"{shard.name}: cannot read row group 0"):
        list(plain.batches(0))
    with pytest.raises(Exception, match=f"{shard.name}: cannot read row group 0"):  # re-raised by the DataLoader
        list(par.batches(0))


def test_workers_config():
    cfg = compose_run_config(["trainer.device=cpu"])
    assert cfg.data.workers == "auto" and loader_workers(cfg) == 0  # CPU training: the cores train
    assert loader_workers(compose_run_config(["data.workers=3"])) == 3
    with pytest.raises(ValueError, match="data.workers"):
        loader_workers(compose_run_config(["data.workers=-1"]))
