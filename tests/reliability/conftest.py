"""Shared helpers for the reliability tests: a tiny exported model, byte snapshots, CLI runs.

Every test here checks three things of a failure: the exit status (or exception), a message that
names the file / column / key at fault, and that no file of the user's changed (bytes compared
before and after).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "MPLBACKEND": "Agg"}


def snapshot(*roots: Path) -> dict[str, bytes]:
    """{path: bytes} of every file (symlinks as their target's bytes) under ``roots``, hidden files included."""
    out: dict[str, bytes] = {}
    for root in map(Path, roots):
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            out[str(f)] = f.read_bytes()
    return out


def listing(*roots: Path) -> list[str]:
    """Every entry (files, directories, links; hidden included) under ``roots``: temporaries would show."""
    return sorted(str(p) for root in map(Path, roots) for p in root.rglob("*"))


def run_cli(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m calo_calib.<module> args...`` in a subprocess (text output captured)."""
    return subprocess.run([sys.executable, "-m", f"calo_calib.{module}", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=ENV)  # fmt: skip


def assert_one_error_line(proc: subprocess.CompletedProcess, cmd: str, *needles: str) -> str:
    """Non-zero exit, no traceback, and stderr ends in ONE ``calo_calib.<cmd>: error: ...`` line naming ``needles``."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines, "no error message"
    last = lines[-1]
    assert last.startswith(f"calo_calib.{cmd}: error: "), proc.stderr
    assert sum("error:" in line for line in lines) == 1, proc.stderr
    for needle in needles:
        assert needle in last, f"{needle!r} not in {last!r}"
    return last


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory, tiny_data) -> Path:
    """A tiny transformer (photon_conv) trained on ``tiny_data`` and exported: the batched ONNX file.

    As tests/deploy/test_export_predict.py does it, smaller (1 epoch of 2 steps): only the file
    handling of predict is tested here, not the calibration.
    """
    from calo_calib.export import export_run
    from calo_calib.pipeline import train_and_evaluate
    from calo_calib.run import compose_run_config

    root = tmp_path_factory.mktemp("reliability_model")
    overrides = [
        "model=transformer", *tiny_data.run_overrides("photon_conv"), "logger=none", "evaluation.n_boot=5",
        "evaluation.plots=false", "progress=false", "compare_to=null", "trainer.epochs=1", "trainer.max_steps_per_epoch=2",
        "data.batch_size=32", "model.net.n_layers=1",
    ]  # fmt: skip
    run_dir = root / "run"
    train_and_evaluate(compose_run_config(overrides), run_dir)
    manifest = export_run(run_dir, root / "export")
    return root / "export" / manifest["files"]["batched"]


@pytest.fixture
def user_data(tmp_path, tiny_data) -> Path:
    """A private copy of a tiny photon_conv test split (two shards + dataset.json) the test may try to destroy."""
    dst = tmp_path / "user" / "clusters"
    shutil.copytree(tiny_data("photon_conv", "test", n=300), dst)
    return dst
