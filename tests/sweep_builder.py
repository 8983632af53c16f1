"""A small real Hydra multirun for the comparison tests and the notebook test (built once per session).

Imported by tests/comparison/ and tests/test_notebooks.py (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

MODELS = ("bdt", "transformer")
LOSSES = ("mse", "huber")
N_JOBS = len(MODELS) * len(LOSSES)
# Only these override keys name the job directories (data paths contain '/').
DIRNAME_KEYS = ("model", "loss", "particle")
BROKEN_JSON, FAILED = "4_broken_json", "5_failed"


def _job_dir(model: str, loss: str) -> str:
    """Hydra's job directory name: <job num>_<override_dirname> (sorted keys), models outermost."""
    num = MODELS.index(model) * len(LOSSES) + LOSSES.index(loss)
    return f"{num}_loss={loss},model={model},particle=electron"


def make_real_sweep(base: Path, tiny_data) -> Path:
    """A real multirun ``<base>/runs/sweeps/cmp/<timestamp>`` made by ``python -m calo_calib.run -m``
    (built once: reused when ``<base>/done`` exists), plus two deliberately broken job directories.

    The transformer jobs join the BDT-mse job through ``compare_to`` (their metrics.json has a
    ``bdt`` method and ``comparison_to_bdt``); the BDT-huber job gets its ratio from the BDT-mse run.
    """
    done = base / "done"
    if done.exists():
        return Path(done.read_text())
    sweep_dir = base / "runs" / "sweeps" / "cmp" / time.strftime("%Y%m%d-%H%M%S")
    exclude = ["sweep_name", "resume", "progress", "logger.mode", "data.train", "data.val", "data.test", "compare_to",
               "model.num_boost_round", "trainer.epochs", "trainer.max_steps_per_epoch", "data.batch_size", "logger",
               "evaluation.n_boot", "evaluation.plots", "evaluation.min_count"]  # fmt: skip
    args = [
        sys.executable, "-m", "calo_calib.run", "-m",
        f"model={','.join(MODELS)}", f"loss={','.join(LOSSES)}", "particle=electron",
        f"data.train={tiny_data('electron', 'train', n=400)}",
        f"data.val={tiny_data('electron', 'val', n=200)}",
        f"data.test={tiny_data('electron', 'test', n=300)}",
        "++model.num_boost_round=20",  # ++: also valid in the transformer jobs, where it is unused
        "trainer.epochs=1", "trainer.max_steps_per_epoch=2", "data.batch_size=64",
        "logger=none", "evaluation.n_boot=10", "evaluation.plots=false", "progress=false",
        # ~300 test clusters: a low threshold leaves some (E, |η|) cells with a σ_rel to rank
        "evaluation.min_count=5",
        "sweep_name=cmp",
        f"compare_to='{sweep_dir / _job_dir('bdt', 'mse')}'",  # quoted: the path holds ',' and '='
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.job.config.override_dirname.exclude_keys=[{','.join(exclude)}]",
    ]  # fmt: skip
    env = {**os.environ, "CALO_CALIB_RUNS": str(base / "runs"), "WANDB_MODE": "offline", "MPLBACKEND": "Agg"}
    proc = subprocess.run(args, cwd=base, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"sweep failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    source = sweep_dir / _job_dir("bdt", "huber")
    broken = shutil.copytree(source, sweep_dir / BROKEN_JSON)
    text = (broken / "metrics.json").read_text()
    (broken / "metrics.json").write_text(text[: len(text) // 2])  # a write cut short
    failed = shutil.copytree(source, sweep_dir / FAILED)
    (failed / "metrics.json").unlink()  # a job that died after writing config.yaml
    done.write_text(str(sweep_dir))
    return sweep_dir
