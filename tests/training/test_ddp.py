"""Distributed data parallel training on CPU (gloo) with real torchrun processes.

* 2 ranks with a global batch B end with the same parameters on both ranks, and the same
  parameters and losses as one process with batch B (the loader gives each rank one half of every
  global batch; DDP averages the gradients);
* ``torchrun -m calo_calib.run`` writes ONE run directory (rank 0 writes it; all ranks agree on its
  name), and ``resume`` continues a DDP run from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "MPLBACKEND": "Agg", "CALO_CALIB_PROGRESS": "0"}
    env.pop("CALO_CALIB_RUN_STAMP", None)
    return {**env, **extra}


def _check(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    if proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def _torchrun(nproc: int, args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    return _check(subprocess.run(cmd, cwd=cwd, env=_env(**extra), capture_output=True, text=True, timeout=600))


def test_two_ranks_match_each_other_and_one_process_with_the_same_global_batch(tmp_path, tiny_data):
    data = ["--train", str(tiny_data("electron", "train", n=400)), "--val", str(tiny_data("electron", "val", n=200))]
    out = ["--out", str(tmp_path), "--global-batch", "32", "--epochs", "1"]
    _torchrun(2, [str(WORKER), *data, *out], cwd=tmp_path)
    _check(subprocess.run([sys.executable, str(WORKER), *data, *out], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600))

    r0, r1 = (torch.load(tmp_path / f"rank{r}_of2.pt", weights_only=False) for r in (0, 1))
    single = torch.load(tmp_path / "rank0_of1.pt", weights_only=False)
    assert r0["steps"] == r1["steps"] == single["steps"] > 10  # every global batch of the epoch
    for name, p in r0["params"].items():
        assert torch.equal(p, r1["params"][name]), f"ranks disagree on {name}"
    moved = 0.0
    for name, p in r0["params"].items():
        ref = single["params"][name]
        # Same clusters, same averaged gradient; only the float summation order differs, which Adam's
        # normalised steps amplify to ~2e-5 after 12 steps. A real mismatch (other clusters, a wrong
        # gradient average) moves weights by ~lr per step, i.e. ~1e-2 here: far outside this tolerance.
        torch.testing.assert_close(p, ref, rtol=1e-3, atol=2e-4, msg=lambda m, n=name: f"{n}: {m}")
        moved = max(moved, float((ref - single["initial"][name]).abs().max()))
    assert moved > 10 * 2e-4  # training moved the weights far more than the tolerance above
    # The losses follow the weights: the ~2e-5 weight differences above move them by ~1e-6 relative
    # (measured 1.7e-6 in CI, 2026-12-02); other clusters or a wrong average would move them by ~1e-2.
    for h_ddp, h_one in zip(r0["history"], single["history"], strict=True):
        assert h_ddp["train_loss"] == pytest.approx(h_one["train_loss"], rel=1e-4)
        assert h_ddp["val_loss"] == pytest.approx(h_one["val_loss"], rel=1e-4)
    # Only rank 0 wrote checkpoints; the single process wrote its own.
    assert (tmp_path / "run_ws2" / "checkpoints" / "last.pt").is_file()


def test_torchrun_entry_point_writes_one_run_directory_and_resumes(tmp_path, tiny_data):
    runs = tmp_path / "runs"
    args = ["-m", "calo_calib.run", "model=transformer", *tiny_data.run_overrides("electron"), "trainer.epochs=1",
            "trainer.max_steps_per_epoch=3", "data.batch_size=64", "evaluation.n_boot=10", "evaluation.plots=false",
            "model.net.n_layers=1", "progress=false"]  # fmt: skip
    _torchrun(2, args, cwd=tmp_path, CALO_CALIB_RUNS=str(runs))
    (run_dir,) = (runs / "electron" / "transformer-pull_huber").iterdir()  # one directory for both ranks
    metrics = json.loads((run_dir / "metrics.json").read_text())
    training = metrics["run"]["training"]
    assert training["world_size"] == 2 and training["global_batch"] == 64
    assert len(list(run_dir.rglob("offline-run-*"))) == 1  # W&B from rank 0 only
    assert (run_dir / "checkpoints" / "last.pt").is_file()

    proc = _torchrun(2, ["-m", "calo_calib.run", f"resume={run_dir}", "trainer.epochs=2"], cwd=tmp_path, CALO_CALIB_RUNS=str(runs))
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1]
    assert "resumed from" in proc.stdout + proc.stderr
    assert len(list((runs / "electron" / "transformer-pull_huber").iterdir())) == 1
