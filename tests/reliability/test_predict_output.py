"""predict never writes over its input or model, never replaces a file unasked, checks the output
path before any work, and leaves no temporary file behind on failure."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest

from calo_calib.deploy.batch_predict import predict
from calo_calib.io.outputs import OutputError
from tests.reliability.conftest import assert_one_error_line, listing, run_cli, snapshot


def _args(model, data, output, *extra):
    return [f"model={model}", f"input={data}", f"output={output}", "progress=false", *extra]


@pytest.mark.parametrize("how", ["same", "dotdot", "symlink"])
def test_predict_refuses_an_output_that_is_an_input_shard(exported_model, user_data, tmp_path, how):
    shard = user_data / "shard_00000.parquet"
    output = {
        "same": shard,
        "dotdot": user_data / ".." / user_data.name / shard.name,
        "symlink": tmp_path / "predictions.parquet",
    }[how]
    if how == "symlink":
        os.symlink(shard, output)
    before, entries = snapshot(user_data, exported_model), listing(user_data, tmp_path)
    proc = run_cli("predict", *_args(exported_model, user_data, output, "overwrite=true"))
    line = assert_one_error_line(proc, "predict", str(output), "is the input file", str(shard))
    if how != "same":
        assert str(shard.resolve()) in line  # what the output resolves to
    assert "ClusterDataset" not in proc.stdout  # refused before any data was read
    assert snapshot(user_data, exported_model) == before and listing(user_data, tmp_path) == entries


@pytest.mark.parametrize("target", ["model", "dataset_dir", "dataset_json", "new_file_in_dataset_dir"])
def test_predict_refuses_the_model_the_dataset_directory_and_files_inside_it(exported_model, user_data, target):
    output, needle = {
        "model": (exported_model, "is the model file"),
        "dataset_dir": (user_data, "is the input directory"),
        "dataset_json": (user_data / "dataset.json", "is the input file"),
        "new_file_in_dataset_dir": (user_data / "predictions.parquet", "inside the input dataset directory"),
    }[target]
    before, entries = snapshot(user_data, exported_model), listing(user_data)
    with pytest.raises(OutputError, match=needle) as err:
        predict(str(exported_model), str(user_data), str(output), progress=False, overwrite=True)
    assert str(output) in str(err.value)
    assert snapshot(user_data, exported_model) == before and listing(user_data) == entries


def test_predict_refuses_to_overwrite_an_existing_output_without_overwrite(exported_model, user_data, tmp_path):
    output = tmp_path / "out" / "calibrated.parquet"
    output.parent.mkdir()
    output.write_bytes(b"the user's previous results")
    before = snapshot(user_data, exported_model, output)
    proc = run_cli("predict", *_args(exported_model, user_data, output))
    assert_one_error_line(proc, "predict", str(output), "already exists", "overwrite=true")
    assert "ClusterDataset" not in proc.stdout
    assert snapshot(user_data, exported_model, output) == before

    proc = run_cli("predict", *_args(exported_model, user_data, output, "overwrite=true"))
    assert proc.returncode == 0, proc.stderr
    assert pq.read_table(output).num_rows > 0
    assert snapshot(user_data, exported_model) == {k: v for k, v in before.items() if k != str(output)}
    assert listing(output.parent) == [str(output)]  # no temporary left next to it


def test_predict_refuses_an_existing_directory_before_any_work(exported_model, user_data, tmp_path):
    output = tmp_path / "results"
    output.mkdir()
    (output / "notes.txt").write_text("keep me")
    before, entries = snapshot(user_data, exported_model, output), listing(tmp_path)
    proc = run_cli("predict", *_args(exported_model, user_data, output, "overwrite=true"))
    assert_one_error_line(proc, "predict", str(output), "is a directory")
    assert "ClusterDataset" not in proc.stdout and "calibrated" not in proc.stdout  # nothing computed
    assert snapshot(user_data, exported_model, output) == before
    assert listing(tmp_path) == entries  # in particular no results.tmp


def test_predict_leaves_no_temporary_when_it_fails_while_writing(exported_model, user_data, tmp_path, monkeypatch):
    from calo_calib.calibration import ExportedOnnxCalibration

    real = ExportedOnnxCalibration.iter_predictions

    def fail_after_first_chunk(self, dataset):
        it = real(self, dataset)
        yield next(it)
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(ExportedOnnxCalibration, "iter_predictions", fail_after_first_chunk)
    output = tmp_path / "new" / "dirs" / "calibrated.parquet"
    before, entries = snapshot(user_data, exported_model), listing(tmp_path)
    with pytest.raises(RuntimeError, match="disk full"):
        predict(str(exported_model), str(user_data), str(output), batch_size=16, progress=False)
    assert listing(tmp_path) == entries  # no temporary file, and the directories it created are gone
    assert snapshot(user_data, exported_model) == before
