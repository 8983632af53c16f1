"""A dataset directory is used only when complete: all its shards, one provenance, its dataset.json.

Before: an interrupted ``make data`` / ``simulate`` (missing shards, no dataset.json) or a directory
mixing two generations was read as if complete; a truncated shard ended in a raw pyarrow traceback
("Parquet magic bytes not found") that did not name the file.
"""

from __future__ import annotations

import shutil

import pytest

from calo_calib.data.checks import DataError
from calo_calib.data.features import DEFAULT_CELL_FEATURES, default_cluster_features
from calo_calib.data.loader import ClusterDataset
from tests.reliability.conftest import assert_one_error_line, listing, run_cli, snapshot


def _load(path):
    return ClusterDataset(path, DEFAULT_CELL_FEATURES, default_cluster_features("photon_conv"))


def test_a_missing_shard_is_refused_with_how_to_resume(user_split):
    data = user_split("photon_conv", "train", n=400)
    (data / "shard_00001.parquet").unlink()
    before = snapshot(data)
    with pytest.raises(DataError) as err:
        _load(data)
    msg = str(err.value)
    assert str(data) in msg and "1 of 2 shards present" in msg and "missing shard index(es) 1" in msg
    assert "python -m calo_calib.simulate particle=photon_conv n_clusters=400 shard_size=200" in msg
    assert f"out={data} resume=true" in msg
    assert snapshot(data) == before

    # The hint, as printed, completes the dataset (the missing shard is generated, the other kept).
    from calo_calib.simulation import compose_config
    from calo_calib.simulation.runner import run_simulation

    command = msg.split("`python -m calo_calib.simulate ")[1].split("`")[0].split()
    run_simulation(compose_config([*command, "workers=1", "progress=false"]))
    assert len(_load(data)) > 0 and (data / "shard_00000.parquet").read_bytes() == before[str(data / "shard_00000.parquet")]


def test_a_missing_dataset_json_is_refused(user_split):
    data = user_split("photon_conv", "train", n=400)
    (data / "dataset.json").unlink()
    with pytest.raises(DataError, match=r"dataset.json is missing .* interrupted.*resume=true"):
        _load(data)


def test_shards_of_two_generations_are_refused(user_split, tiny_data):
    data = user_split("photon_conv", "train", n=400)
    shutil.copy(tiny_data("photon_conv", "val", n=200) / "shard_00001.parquet", data / "shard_00001.parquet")
    with pytest.raises(DataError, match=r"mixed provenance: shard_00001.parquet differs from shard_00000.parquet in .*seed"):
        _load(data)


def test_predict_names_a_truncated_shard_in_one_line(exported_model, user_split, tmp_path):
    data = user_split("photon_conv", "test", n=300)
    shard = data / "shard_00001.parquet"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    before, entries = snapshot(data, exported_model), listing(tmp_path / "out")
    proc = run_cli("predict", f"model={exported_model}", f"input={data}", f"output={tmp_path / 'out' / 'p.parquet'}",
                   "progress=false")  # fmt: skip
    assert proc.returncode == 1
    assert_one_error_line(proc, "predict", str(shard), "not a readable Parquet file")
    assert snapshot(data, exported_model) == before and listing(tmp_path / "out") == entries


def test_a_truncated_shard_given_as_a_file_is_named(user_split):
    data = user_split("photon_conv", "test", n=300)
    shard = data / "shard_00000.parquet"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(DataError, match="shard_00000.parquet: not a readable Parquet file"):
        _load([shard])
