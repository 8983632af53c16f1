"""The local launcher: GPU scheduling of a job queue, and Hydra multiruns under torchrun on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from calo_calib.launch.local_jobs import JobSpec, run_jobs


def _probe(tmp_path: Path, index: int, seconds: float) -> list[str]:
    """A job that records which GPUs it was given and when it ran."""
    script = textwrap.dedent(
        f"""
        import json, os, time
        t0 = time.time(); time.sleep({seconds}); t1 = time.time()
        json.dump({{"gpus": os.environ.get("CUDA_VISIBLE_DEVICES"), "t0": t0, "t1": t1}}, open({str(tmp_path / f"job{index}.json")!r}, "w"))
        """
    )
    return [sys.executable, "-c", script]


def test_jobs_get_disjoint_gpus_and_wait_for_busy_ones(tmp_path):
    need = [2, 1, 2, 1]
    specs = [JobSpec(i, _probe(tmp_path, i, 1.0), tmp_path / f"job{i}.log", n_gpus=n) for i, n in enumerate(need)]
    outcomes = run_jobs(specs, gpus=[0, 1, 2], max_parallel=3, poll_seconds=0.05)
    assert [o.returncode for o in outcomes] == [0, 0, 0, 0]
    runs = [json.loads((tmp_path / f"job{i}.json").read_text()) for i in range(4)]
    for i, r in enumerate(runs):
        assert len(r["gpus"].split(",")) == need[i]
    assert runs[0]["gpus"] == "0,1" and runs[1]["gpus"] == "2"
    # Jobs that overlapped in time never shared a GPU.
    for i in range(4):
        for j in range(i + 1, 4):
            overlap = runs[i]["t0"] < runs[j]["t1"] and runs[j]["t0"] < runs[i]["t1"]
            if overlap:
                assert not set(runs[i]["gpus"].split(",")) & set(runs[j]["gpus"].split(",")), (i, j)
    # Job 2 needs 2 GPUs while jobs 0 and 1 hold all 3: it had to wait for one of them.
    assert runs[2]["t0"] >= min(runs[0]["t1"], runs[1]["t1"])


def test_a_failing_job_is_reported_and_the_others_finish(tmp_path):
    bad = [sys.executable, "-c", "import sys; print('something broke'); sys.exit(3)"]
    specs = [JobSpec(0, bad, tmp_path / "bad.log"), JobSpec(1, _probe(tmp_path, 1, 0.2), tmp_path / "ok.log")]
    outcomes = run_jobs(specs, max_parallel=1, poll_seconds=0.05)
    assert outcomes[0].returncode == 3 and "something broke" in outcomes[0].log_tail
    assert outcomes[1].ok and (tmp_path / "job1.json").exists()


def test_a_job_needing_more_gpus_than_exist_is_refused_before_anything_runs(tmp_path):
    specs = [JobSpec(0, _probe(tmp_path, 0, 0.1), tmp_path / "a.log", n_gpus=1), JobSpec(1, _probe(tmp_path, 1, 0.1), tmp_path / "b.log", n_gpus=3)]
    with pytest.raises(ValueError, match="job #1 needs 3 GPUs but only 2"):
        run_jobs(specs, gpus=[0, 1])
    assert not (tmp_path / "job0.json").exists()


# --- through Hydra: python -m calo_calib.run -m ... hydra/launcher=torchrun ---------------------


def _multirun(tmp_path: Path, tiny_data, args: list[str]) -> subprocess.CompletedProcess:
    data = tiny_data.run_overrides("electron")
    quick = ["trainer.epochs=1", "trainer.max_steps_per_epoch=3", "evaluation.n_boot=10",
             "evaluation.plots=false", "progress=false", "logger=none"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CALO_CALIB_PROGRESS": "0", "CALO_CALIB_RUNS": str(tmp_path / "runs")}
    cmd = [sys.executable, "-m", "calo_calib.run", "-m", *data, *quick, "hydra/launcher=torchrun", f"hydra.sweep.dir={tmp_path / 'sweep'}", *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def test_two_job_sweep_on_cpu_collects_every_result(tmp_path, tiny_data):
    proc = _multirun(tmp_path, tiny_data, ["model=transformer", "model.net.n_layers=1", "loss=mse,huber", "hydra.launcher.gpus_per_job=0", "hydra.launcher.max_parallel=2"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    results = json.loads((tmp_path / "sweep" / "launcher_results.json").read_text())
    assert [r["status"] for r in results] == ["COMPLETED", "COMPLETED"]
    for r, loss in zip(results, ("mse", "huber")):
        run_dir = Path(r["run_dir"])
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["run"]["loss"] == loss
        assert r["return_value"] == pytest.approx(metrics["inclusive"]["transformer"]["sigma_rel"])
        assert "torch.distributed.run" not in (run_dir / "config.yaml").read_text()
        assert (run_dir / "torchrun.log").is_file() and (run_dir / "checkpoints" / "best.pt").is_file()
    assert (tmp_path / "sweep" / "multirun.yaml").is_file()


def test_a_failing_sweep_job_is_reported_while_the_others_finish(tmp_path, tiny_data):
    # loss.delta=-1 passes composition but the run refuses it at start: a job failing at run time.
    proc = _multirun(tmp_path, tiny_data, ["model=bdt", "loss=huber", "loss.delta=-1.0,0.05", "hydra.launcher.gpus_per_job=0",
                                           "model.num_boost_round=20"])  # fmt: skip
    assert proc.returncode != 0
    assert "loss.delta must be > 0" in proc.stderr + proc.stdout
    results = json.loads((tmp_path / "sweep" / "launcher_results.json").read_text())
    assert [r["status"] for r in results] == ["FAILED", "COMPLETED"]
    assert (Path(results[1]["run_dir"]) / "metrics.json").is_file()


@pytest.mark.parametrize(
    "option,message",
    [
        ("hydra.launcher.gpus_per_job=99", "gpus_per_job=99 but only"),
        ("hydra.launcher.gpus_per_jobs=2", "gpus_per_jobs"),  # a typo: Hydra's structured config rejects it
    ],
)
def test_bad_launcher_options_fail_before_any_job_starts(tmp_path, tiny_data, option, message):
    proc = _multirun(tmp_path, tiny_data, ["model=bdt", "loss=mse,huber", option])
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert not list((tmp_path / "sweep").glob("*/metrics.json")) and not list((tmp_path / "sweep").glob("*/torchrun.log"))
