"""``resume=`` refuses to continue a training on data that differ from the checkpoint's.

Before: after the data were regenerated (or ``data.train`` pointed elsewhere) a resumed run went on
training on different clusters without a word. The checkpoint now records a fingerprint of the
training and validation data (paths, sizes, row counts, shard provenance hashes).
"""

from __future__ import annotations

import logging
import shutil

import pytest
from omegaconf import OmegaConf

from calo_calib.pipeline import RunError, train_and_evaluate
from calo_calib.training import checkpoint as ckpt
from tests.reliability.conftest import assert_one_error_line, run_cli, snapshot


@pytest.fixture
def run_copy(trained_run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(trained_run, dst)
    return dst


def test_the_checkpoint_records_the_data_fingerprint(trained_run):
    data = ckpt.load(trained_run / "checkpoints" / "last.pt")["extra"]["data"]
    assert data["digest"] and len(data["files"]) == 4  # 2 training + 2 validation shards
    name, size, rows, provenance = data["files"][0]
    assert name.endswith(".parquet") and size > 0 and rows > 0 and len(provenance) == 16


def test_resume_on_other_data_is_refused_unless_allowed(run_copy, tiny_data, caplog):
    other = tiny_data("photon_conv", "train", n=300)
    cfg = OmegaConf.load(run_copy / "config.yaml")
    cfg.resume, cfg.data.train = str(run_copy), str(other)
    before = snapshot(run_copy)
    with pytest.raises(RunError) as err:
        train_and_evaluate(cfg, run_copy)
    msg = str(err.value)
    assert f"resume={run_copy}" in msg and "data changed since the checkpoint" in msg
    assert str(other / "shard_00000.parquet") in msg and "resume_allow_data_change=true" in msg
    assert snapshot(run_copy) == before  # nothing written: not even the status marker

    cfg.resume_allow_data_change = True
    with caplog.at_level(logging.WARNING):
        train_and_evaluate(cfg, run_copy)
    assert "RESUME ON CHANGED DATA" in caplog.text


def test_calo_calib_run_resume_refusal_is_one_line(run_copy, tiny_data):
    config = run_copy / "config.yaml"
    cfg = OmegaConf.load(config)
    cfg.data.train = str(tiny_data("photon_conv", "train", n=300))  # as if data.train had been regenerated elsewhere
    config.write_text(OmegaConf.to_yaml(cfg))
    before = snapshot(run_copy)
    proc = run_cli("run", f"resume={run_copy}")
    assert proc.returncode == 1
    assert_one_error_line(proc, "run", "data changed since the checkpoint", "resume_allow_data_change=true")
    after = snapshot(run_copy)
    assert {k: v for k, v in after.items() if "/.hydra/" not in k and not k.endswith(".log")} == before
