"""Hydra multiruns through a REAL SLURM: a single-node slurmctld + slurmd on loopback.

``tools/slurm/loopback.sh`` installs (apt, once) and starts SLURM with a private configuration and
an ``sacct`` stand-in (no accounting daemon here; submitit polls sacct to notice dead jobs). The
tests run ``python -m calo_calib.run -m ... hydra/launcher=slurm`` as a user would and check:
a small sweep returns every result; a 2-task job trains with DDP from SLURM's variables; a job
preempted with USR2 is requeued and resumes from its checkpoint; a job killed mid-run makes the
sweep fail cleanly (with the other job's result kept) instead of hanging.

Needs root (apt, daemons). CI runs as root; elsewhere the module is skipped, except with CI=true,
where a SLURM that cannot start is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = ROOT / "tools" / "slurm" / "loopback.sh"

# There is one slurmctld per machine: all tests of this file must run in one xdist worker, which
# `make test` ensures with `--dist loadfile` (xdist 3.8's `loadgroup` did not group tests here).


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"SLURM loopback unavailable in CI: {reason}")
    pytest.skip(reason)


# Ports away from SLURM's defaults: a developer's own SLURM may be running.
PORTS = {"CALO_SLURM_CTLD_PORT": "16817", "CALO_SLURM_SLURMD_PORT": "16818"}


@pytest.fixture(scope="session")
def slurm_env(tmp_path_factory):
    """Start the loopback SLURM once per test session (xdist: on the one worker of the "slurm" group;
    session scope, because xdist may interleave other modules' tests with this module's); yields
    the environment for client commands."""
    if os.geteuid() != 0:
        _unavailable("the loopback SLURM needs root (apt-get, daemons)")
    state = tmp_path_factory.mktemp("slurm_state")
    for step in (["install"], ["start", str(state)]):
        proc = subprocess.run(["bash", str(LOOPBACK), *step], env={**os.environ, **PORTS}, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            _unavailable(f"loopback.sh {' '.join(step)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    exports = subprocess.run(["bash", str(LOOPBACK), "env", str(state)], env={**os.environ, **PORTS}, capture_output=True, text=True, check=True).stdout
    env = dict(os.environ)
    for line in exports.splitlines():
        if line.startswith("export "):
            key, value = line[len("export ") :].split("=", 1)
            env[key] = os.path.expandvars(value.strip().strip('"').strip("'").replace("$PATH", os.environ["PATH"]))
    yield env
    subprocess.run(["bash", str(LOOPBACK), "stop", str(state)], env={**os.environ, **PORTS}, capture_output=True, text=True, timeout=120)


SLURM = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.gpus_per_node=null",
         "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=60", "hydra.launcher.tasks_per_node=1"]  # fmt: skip
QUICK = ["evaluation.n_boot=10", "evaluation.plots=false", "progress=false", "logger=none"]


def _command(tmp_path: Path, tiny_data, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "calo_calib.run", "-m", *tiny_data.run_overrides("electron"), *QUICK, *SLURM, f"hydra.sweep.dir={tmp_path / 'sweep'}", *args]


def _env(slurm_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**slurm_env, "OMP_NUM_THREADS": "1", "CALO_CALIB_PROGRESS": "0", "CALO_CALIB_RUNS": str(tmp_path / "runs"), "WANDB_MODE": "offline"}


def _results(tmp_path: Path) -> list[dict]:
    return json.loads((tmp_path / "sweep" / "launcher_results.json").read_text())


def _squeue(env: dict[str, str]) -> list[tuple[str, str]]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %T"], env=env, capture_output=True, text=True, check=True).stdout
    return [tuple(line.split()) for line in out.splitlines() if line.strip()]


def _wait_for(predicate, seconds: float, what: str):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def test_small_sweep_runs_through_slurm(slurm_env, tmp_path, tiny_data):
    cmd = _command(tmp_path, tiny_data, ["model=bdt", "loss=mse,huber", "model.num_boost_round=20"])
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(slurm_env, tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    results = _results(tmp_path)
    assert [r["status"] for r in results] == ["COMPLETED", "COMPLETED"]
    array_ids = {r["slurm_job_id"].split("_")[0] for r in results}
    assert len(array_ids) == 1  # one array job for the sweep
    for r, loss in zip(results, ("mse", "huber")):
        metrics = json.loads((Path(r["run_dir"]) / "metrics.json").read_text())
        assert metrics["run"]["loss"] == loss
        assert r["return_value"] == pytest.approx(metrics["inclusive"]["bdt"]["sigma_rel"])


def test_two_tasks_per_job_train_with_ddp_from_the_slurm_environment(slurm_env, tmp_path, tiny_data):
    args = ["model=transformer", "model.net.n_layers=1", "trainer.epochs=1", "trainer.max_steps_per_epoch=3",
            "data.batch_size=64", "hydra.launcher.tasks_per_node=2"]  # fmt: skip
    proc = subprocess.run(_command(tmp_path, tiny_data, args), cwd=tmp_path, env=_env(slurm_env, tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    (result,) = _results(tmp_path)
    training = json.loads((Path(result["run_dir"]) / "metrics.json").read_text())["run"]["training"]
    assert training["world_size"] == 2 and training["global_batch"] == 64


def test_preempted_job_is_requeued_and_resumes_from_its_checkpoint(slurm_env, tmp_path, tiny_data):
    env = _env(slurm_env, tmp_path)
    args = ["model=transformer", "model.net.n_layers=1", "trainer.epochs=40", "trainer.patience=100", "trainer.max_steps_per_epoch=4",
            "data.batch_size=32"]  # fmt: skip
    sweep = subprocess.Popen(_command(tmp_path, tiny_data, args), cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        last = _wait_for(lambda: next((tmp_path / "sweep").glob("*/checkpoints/last.pt"), None), 180, "the first checkpoint")
        run_dir = last.parents[1]
        (job_id, _state), *_ = _squeue(env)
        # What SLURM sends before a time limit or on preemption: submitit checkpoints and requeues.
        subprocess.run(["scancel", "--signal=USR2", job_id], env=env, check=True)
        out, _ = sweep.communicate(timeout=300)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, out[-5000:]
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(40))  # every epoch once: continued, not restarted
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "sweep" / ".submitit").rglob("*.out"))
    logs += "".join(p.read_text(errors="replace") for p in (tmp_path / "sweep" / ".submitit").rglob("*.err"))
    assert "resumed from" in logs and "requeue" in logs.lower()
    assert _results(tmp_path)[0]["status"] == "COMPLETED"


def test_a_killed_job_fails_the_sweep_cleanly_and_keeps_the_other_result(slurm_env, tmp_path, tiny_data):
    env = _env(slurm_env, tmp_path)
    # Job 0 trains long enough to be killed; job 1 (a BDT) finishes normally.
    args = ["model=transformer,bdt", "++model.net.n_layers=1", "trainer.epochs=40", "trainer.patience=100",
            "trainer.max_steps_per_epoch=4", "data.batch_size=32", "++model.num_boost_round=20"]  # fmt: skip
    t0 = time.time()
    sweep = subprocess.Popen(_command(tmp_path, tiny_data, args), cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: next((tmp_path / "sweep").glob("0_*/checkpoints/last.pt"), None), 180, "job 0 to train")
        job0 = _wait_for(lambda: next((j for j, s in _squeue(env) if j.endswith("_0")), None), 30, "job 0 in squeue")
        subprocess.run(["scancel", "--signal=KILL", job0], env=env, check=True)  # like the OOM killer: no result file
        out, _ = sweep.communicate(timeout=240)  # a hang would end here as a test failure
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode != 0
    results = _results(tmp_path)
    assert results[0]["status"] == "FAILED" and "without a result" in results[0]["error"]
    assert results[1]["status"] == "COMPLETED"
    assert "without a result" in out
    assert time.time() - t0 < 300
