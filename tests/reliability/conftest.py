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


FAST = ["logger=none", "evaluation.n_boot=5", "evaluation.plots=false", "progress=false", "compare_to=null",
        "trainer.epochs=1", "trainer.max_steps_per_epoch=2", "data.batch_size=32"]  # fmt: skip
"""Run overrides of the smallest useful training (1 epoch of 2 steps, no plots, no tracker)."""


def fast_overrides(model: str = "transformer", particle: str = "photon_conv", tiny_data=None, **data: Path) -> list[str]:
    """Overrides of a tiny run: ``model``, the tiny splits of ``particle`` with ``data`` (split -> path) replacing some."""
    base = [o for o in tiny_data.run_overrides(particle) if o.split("=", 1)[0].removeprefix("data.") not in data]
    small = ["model.net.n_layers=1"] if model == "transformer" else []
    return [f"model={model}", *base, *(f"data.{k}={v}" for k, v in data.items()), *FAST, *small]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_data) -> Path:
    """A tiny transformer (photon_conv) run directory trained on ``tiny_data`` (1 epoch of 2 steps).

    Shared: tests that modify a run copy it first (:func:`shutil.copytree`).
    """
    from calo_calib.config import compose_run_config
    from calo_calib.pipeline import train_and_evaluate

    run_dir = tmp_path_factory.mktemp("reliability_model") / "run"
    train_and_evaluate(compose_run_config(fast_overrides(tiny_data=tiny_data)), run_dir)
    return run_dir


@pytest.fixture(scope="session")
def exported_model(trained_run) -> Path:
    """The tiny transformer of :func:`trained_run` exported: the batched ONNX file.

    As tests/deploy/test_export_predict.py does it, smaller (1 epoch of 2 steps): only the file
    handling of predict is tested here, not the calibration.
    """
    from calo_calib.deploy.run_export import export_run

    out = trained_run.parent / "export"
    manifest = export_run(trained_run, out)
    return out / manifest["files"]["batched"]


def write_column(shard: Path, column: str, values) -> None:
    """Replace ``column`` of the Parquet file ``shard`` (keeping its schema metadata)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(shard)
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
    t = t.set_column(t.column_names.index(column), column, arr)
    pq.write_table(t, shard)


@pytest.fixture
def user_split(tmp_path, tiny_data):
    """Factory ``user_split(particle, split, n, name)``: a private copy of a tiny split the test may damage."""

    def make(particle: str = "photon_conv", split: str = "train", n: int = 400, name: str | None = None) -> Path:
        dst = tmp_path / "user" / (name or f"{particle}_{split}")
        shutil.copytree(tiny_data(particle, split, n=n), dst)
        return dst

    return make


@pytest.fixture
def user_data(tmp_path, tiny_data) -> Path:
    """A private copy of a tiny photon_conv test split (two shards + dataset.json) the test may try to destroy."""
    dst = tmp_path / "user" / "clusters"
    shutil.copytree(tiny_data("photon_conv", "test", n=300), dst)
    return dst
