"""Test-wide settings: W&B offline, headless matplotlib, passive OpenMP waiting.

Set at import, before any test module imports wandb, matplotlib or xgboost.
"""

import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def make_tiny_split(root: Path, particle: str, split: str, n: int, seed: int, mu: float = 51.0) -> Path:
    """Simulate a small real dataset directory (Parquet shards + dataset.json) through the CLI code path."""
    from calo_calib.simulation import compose_config
    from calo_calib.simulation.runner import run_simulation

    out = root / particle / split
    if (out / "dataset.json").exists():
        return out
    cfg = compose_config(
        [
            f"particle={particle}",
            f"n_clusters={n}",
            f"mu={mu}",
            f"seed={seed}",
            f"out={out}",
            "workers=1",
            f"shard_size={max(1, n // 2)}",
            "progress=false",
        ]
    )
    return run_simulation(cfg)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """Factory ``tiny_data(particle, split="train", n=400) -> Path`` of a small simulated dataset directory;
    ``tiny_data.run_overrides(particle)`` gives the run overrides (particle + the three splits) that use it.

    Generated once per test session (per xdist worker) with a fixed seed per (particle, split, n),
    in the layout of ``make data`` (two shards per split). Cheap: ~0.2 s per 400 clusters.
    """
    seeds = {"train": 11, "val": 12, "test": 13}
    base = tmp_path_factory.mktemp("tiny_data")  # pytest cleans it up (keeps the last few sessions)

    def factory(particle: str, split: str = "train", n: int = 400, mu: float = 51.0) -> Path:
        root = base / f"n{n}_mu{mu:g}"
        return make_tiny_split(root, particle, split, n, seeds.get(split, 14), mu)

    def run_overrides(particle: str) -> list[str]:
        """``python -m calo_calib.run`` overrides for the standard tiny splits (400 / 200 / 300 clusters)."""
        return [
            f"particle={particle}",
            f"data.train={factory(particle, 'train', n=400)}",
            f"data.val={factory(particle, 'val', n=200)}",
            f"data.test={factory(particle, 'test', n=300)}",
        ]

    factory.run_overrides = run_overrides  # type: ignore[attr-defined]
    return factory


@pytest.fixture(scope="session")
def nll_run(tmp_path_factory, tiny_data) -> Path:
    """A tiny ``loss=gaussian_nll`` transformer run (one short epoch) made by ``python -m calo_calib.run``;
    shared by ``tests/studies/test_uncertainty_run.py`` and ``tests/studies/test_uncertainty_study.py``."""
    import subprocess
    import sys

    tiny_net = ["model.net.embed_dim=16", "model.net.n_layers=1", "model.net.n_heads=2", "model.net.head_hidden=16"]
    quick = ["trainer.epochs=1", "trainer.max_steps_per_epoch=6", "data.batch_size=64", "evaluation.n_boot=10",
             "progress=false", "logger=none", "compare_to=null"]  # fmt: skip
    tmp = tmp_path_factory.mktemp("nll_run")
    run_dir = tmp / "run"
    args = ["model=transformer", "loss=gaussian_nll", *tiny_data.run_overrides("electron"), *quick, *tiny_net,
            f"hydra.run.dir={run_dir}"]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "offline", "MPLBACKEND": "Agg", "CALO_CALIB_PROGRESS": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "calo_calib.run", *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    return run_dir
