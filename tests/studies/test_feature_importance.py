"""``calo_calib.studies.feature_importance`` (``experiments/feature_importance.py``) on a real
one-epoch run: the permutation importance, its outputs, and the command's argument checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from calo_calib.studies.feature_importance import main

TINY_NET = ["model.net.embed_dim=16", "model.net.n_layers=1", "model.net.n_heads=2", "model.net.head_hidden=16"]
QUICK = ["trainer.epochs=1", "trainer.max_steps_per_epoch=4", "data.batch_size=64", "evaluation.n_boot=10", "progress=false",
         "logger=none", "compare_to=null"]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_data) -> Path:
    tmp = tmp_path_factory.mktemp("importance_run")
    run_dir = tmp / "run"
    args = ["model=transformer", *tiny_data.run_overrides("electron"), *QUICK, *TINY_NET, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "WANDB_MODE": "offline", "MPLBACKEND": "Agg", "CALO_CALIB_PROGRESS": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "calo_calib.run", *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    return run_dir


def test_command_on_a_trained_run(tiny_run, tmp_path):
    out = tmp_path / "imp"
    res = main([f"run={tiny_run}", "max_clusters=250", "repeats=2", "n_boot=10", "progress=false", f"out={out}"])
    assert res["n_clusters"] == 250
    # the simulation has no TileGap3 energy: e_tg3 and f_tg3 are constant, so permuting them changes nothing
    by = {e["label"]: e for e in res["inputs"]}
    assert by["cluster: e_tg3"]["repeats"] == [0.0, 0.0] and by["cluster: f_tg3"]["repeats"] == [0.0, 0.0]
    # the nominal resolution is the run's own calibration on those clusters
    assert 0 < res["nominal"]["sigma_rel"] < 0.2
    for name in ("importance.json", "importance.md", "plots/importance_bars.png", "plots/importance_heatmap.png"):
        assert (out / name).is_file(), name
    with pytest.raises(SystemExit, match="repeats"):
        main([f"run={tiny_run}", "repeats=0"])
    with pytest.raises(SystemExit, match="bad argument"):
        main([f"run={tiny_run}", "epochs=3"])
