"""A run directory says whether it finished (``status.json``, written last), and runs never share one.

Before: a crashed run's directory looked like a finished one to ``calo_calib.compare`` and
``calo_calib.export``; two runs started in the same second got the same ``${calo_stamp:}``
directory and overwrote each other's checkpoints.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from calo_calib.config import compose_run_config
from calo_calib.pipeline import train_and_evaluate
from calo_calib.run_status import read_status
from tests.reliability.conftest import ENV, fast_overrides, run_cli, snapshot


def test_a_finished_run_is_marked_completed_last(trained_run):
    status = read_status(trained_run)
    assert status["state"] == "completed"
    newest = max((p for p in trained_run.rglob("*") if p.is_file() and "wandb" not in p.parts), key=lambda p: p.stat().st_mtime_ns)
    assert newest.name == "status.json"


def test_a_crashed_run_is_marked_failed(tiny_data, tmp_path, monkeypatch):
    import calo_calib.pipeline as pipeline

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C during the evaluation

    monkeypatch.setattr(pipeline, "evaluate_run", crash)
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(compose_run_config(fast_overrides(tiny_data=tiny_data)), run_dir)
    assert read_status(run_dir)["state"] == "failed"


def test_compare_skips_unfinished_runs_with_the_reason(trained_run, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(trained_run, runs / "done")
    shutil.copytree(trained_run, runs / "crashed")  # metrics.json present, but the run never finished
    status = runs / "crashed" / "status.json"
    status.write_text(json.dumps({"state": "running", "updated_utc": "2026-12-01T10:00:00Z"}))
    before = snapshot(runs)
    proc = run_cli("compare", str(runs), "--out", str(tmp_path / "cmp"))
    assert proc.returncode == 0, proc.stderr
    assert "1 runs read" in proc.stdout
    assert re.search(r"not read: .*crashed.*unfinished run \(status.json: still running, or crashed", proc.stderr), proc.stderr
    assert snapshot(runs) == before


def test_export_refuses_an_unfinished_run(trained_run, tmp_path):
    from calo_calib.deploy.run_export import ExportError, export_run

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "status.json").write_text(json.dumps({"state": "failed", "error": "killed"}))
    with pytest.raises(ExportError, match=r"unfinished run \(status.json: failed: killed"):
        export_run(run, tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_run_stamps_differ_within_one_second():
    """Runs started in the same second (a loop over seeds, a job array) get different directories."""
    from calo_calib.config import _run_stamp

    stamps = [_run_stamp() for _ in range(200)]
    assert len(set(stamps)) == len(stamps)
    assert re.fullmatch(r"\d{8}-\d{6}-\d{6}", stamps[0])
    code = "from calo_calib.config import _run_stamp; print(_run_stamp())"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV) for _ in range(2)]
    out = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert out[0] != out[1] and all(re.fullmatch(r"\d{8}-\d{6}-\d{6}", s) for s in out)
