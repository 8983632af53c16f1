"""Resuming a run (``calo_calib.pipeline.resume``): ``resume=<run_dir>`` and a started run directory
continuing in place, through ``python -m calo_calib.run``; and a run saved without a key this version
reads is refused, naming the key and the run directory.

Runs saved before the ``adversary`` option and ``data.out_of_range`` / ``data.allow_particle_mismatch``
existed used to be continued with guessed defaults; they are now an error, both for a job continuing
in place (:func:`continues_in_place`) and for ``resume=<run_dir>`` (:func:`resumed_config`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from calo_calib.config import compose_run_config
from calo_calib.pipeline import RunError, continues_in_place
from calo_calib.pipeline.resume import REQUIRED_SAVED_KEYS, load_saved_config, resumed_config

# A tiny run of a 1-layer transformer without plots: these tests check the run's bookkeeping, not the
# network or the plots (tests/test_run.py's smoke runs do), and plots are most of a tiny run's time.
QUICK = ["trainer.epochs=1", "trainer.max_steps_per_epoch=4", "data.batch_size=64", "evaluation.n_boot=20", "progress=false",
         "model.net.embed_dim=16", "model.net.n_layers=1", "model.net.n_heads=2", "model.net.head_hidden=16",
         "evaluation.plots=false", "logger=none"]  # fmt: skip


def _run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "MPLBACKEND": "Agg", "CALO_CALIB_PROGRESS": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "calo_calib.run", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="module")
def composed():
    """A run config, composed once for the module (composition is the slow part of these tests)."""
    return compose_run_config(["model=transformer"])


def saved_run(tmp_path, drop: str | None, cfg):
    """A started run directory (config.yaml + checkpoints/last.pt) of ``cfg`` whose saved config lacks ``drop``."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"")
    saved = OmegaConf.to_container(cfg, resolve=True)
    if drop is not None:
        parent, key = drop.rsplit(".", 1)
        del saved[parent][key]
    OmegaConf.save(OmegaConf.create(saved), run_dir / "config.yaml")
    return cfg, run_dir


def test_a_complete_saved_config_continues_in_place(tmp_path, composed):
    cfg, run_dir = saved_run(tmp_path, None, composed)
    assert continues_in_place(cfg, run_dir)
    assert load_saved_config(run_dir).adversary.name == "none"


@pytest.mark.parametrize("key", REQUIRED_SAVED_KEYS)
def test_a_saved_config_without_a_key_is_refused_naming_it_and_the_run(tmp_path, key, composed):
    cfg, run_dir = saved_run(tmp_path, key, composed)
    for call in (lambda: continues_in_place(cfg, run_dir), lambda: load_saved_config(run_dir)):
        with pytest.raises(RunError) as err:
            call()
        assert key in str(err.value) and str(run_dir) in str(err.value) and "older version" in str(err.value)


def test_resume_of_a_run_saved_without_the_adversary_is_refused(tmp_path, composed):
    """``resume=<run_dir>``: refused before the Hydra overrides are read (``calo_calib.run`` prints a RunError
    as its one error line)."""
    _, run_dir = saved_run(tmp_path, "adversary.name", composed)
    with pytest.raises(RunError, match=rf"{run_dir}: the saved config .* has no adversary.name"):
        resumed_config(OmegaConf.create({"resume": str(run_dir)}))


def test_resume_continues_a_run_from_its_last_checkpoint(tmp_path, tiny_data):
    run_dir = tmp_path / "run"
    args = ["model=transformer", *tiny_data.run_overrides("electron"), *QUICK]
    _run([*args, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    proc = _run([f"resume={run_dir}", "trainer.epochs=2"], cwd=tmp_path)
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1]
    assert "resumed from" in proc.stdout + proc.stderr


def test_a_started_run_directory_continues_in_place_and_refuses_another_config(tmp_path, tiny_data):
    """What a requeued SLURM job or a restarted torchrun worker does: same directory, same overrides."""
    run_dir = tmp_path / "run"
    args = ["model=transformer", *tiny_data.run_overrides("electron"), *QUICK, f"hydra.run.dir={run_dir}"]
    _run(args, cwd=tmp_path)
    proc = _run(args, cwd=tmp_path)
    assert "resuming it" in proc.stdout + proc.stderr
    assert [h["epoch"] for h in json.loads((run_dir / "history.json").read_text())] == [0]  # not retrained
    proc = _run([*args, "loss=huber"], cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "different loss" in proc.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["run"]["loss"] == "pull_huber"  # nothing overwritten
