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
    from calo_calib.simulate import run_simulation
    from calo_calib.simulation import compose_config

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
