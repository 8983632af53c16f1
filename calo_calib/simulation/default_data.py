"""The default dataset: train/val/test for electrons, unconverted and converted photons.

Each (particle, split) is one :func:`calo_calib.simulation.runner.run_simulation` output directory
``<root>/<particle>/<split>``. A split that is already complete (its shards match the planned
provenance) is left untouched, so generating is cheap to repeat and resumes after an interruption.
``python -m calo_calib.make_data`` calls :func:`make_default_data`; training code calls
:func:`ensure_default_data` to generate the data on first use.
"""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from calo_calib.simulation.api import compose_config
from calo_calib.simulation.material import ConfigError
from calo_calib.simulation.runner import run_simulation

log = logging.getLogger("calo_calib.make_data")  # the command's logger name, as before the move
SPLIT_SEED_OFFSET = {"train": 0, "val": 1, "test": 2}
PARTICLE_SEED_OFFSET = {"electron": 0, "photon_unconv": 10, "photon_conv": 20, "photon": 30}


def split_dir(root: str | Path, particle: str, split: str) -> Path:
    """Directory of one split of the default dataset."""
    return Path(root) / particle / split


def make_split(cfg: DictConfig, particle: str, split: str) -> Path:
    """Generate (or complete) one split; returns its directory."""
    if split not in SPLIT_SEED_OFFSET:
        raise ConfigError(f"splits: unknown split {split!r}; use train, val, test")
    n = int(cfg.splits[split])
    seed = int(cfg.seed) + 1000 * PARTICLE_SEED_OFFSET[particle] + SPLIT_SEED_OFFSET[split]
    out = split_dir(cfg.root, particle, split)
    sim_cfg = compose_config(
        [
            f"particle={particle}",
            f"n_clusters={n}",
            f"mu={float(cfg.mu)}",
            f"seed={seed}",
            f"out={out}",
            f"workers={int(cfg.workers)}",
            f"shard_size={int(cfg.shard_size)}",
            f"progress={str(bool(cfg.progress)).lower()}",
            "resume=true",
            *[str(o) for o in cfg.overrides],
        ]
    )
    return run_simulation(sim_cfg)


def make_default_data(cfg: DictConfig) -> Path:
    """Generate every (particle, split) of ``cfg``; returns the dataset root."""
    for particle in cfg.particles:
        if particle not in PARTICLE_SEED_OFFSET:
            raise ConfigError(f"particles: unknown particle {particle!r}; choose from {sorted(PARTICLE_SEED_OFFSET)}")
        for split in cfg.splits:
            path = make_split(cfg, str(particle), str(split))
            log.info("%s/%s ready in %s", particle, split, path)
    return Path(str(cfg.root))


def ensure_default_data(
    particle: str, make_data: DictConfig, root: str | Path | None = None, overrides: list[str] | None = None
) -> Path:
    """Make sure the default splits of ``particle`` exist (generating them if needed); returns the root.

    Safe to call inside another Hydra application (the training entry point): nothing is composed
    through Hydra's global state.

    Args:
        make_data: the default dataset's settings (``conf/make_data.yaml`` without its ``defaults``
            and ``hydra`` nodes: :func:`calo_calib.config.make_data_config`); not modified.
        overrides: dotlist overrides of them (e.g. ``["splits.train=1000"]``).
    """
    cfg = OmegaConf.create(OmegaConf.to_container(make_data))
    cfg.particles = [particle]
    if root is not None:
        cfg.root = str(root)
    cfg.merge_with_dotlist(list(overrides or []))
    # The jobs of a sweep may all ask for the same missing data at once: one generates, the others
    # wait for the lock and then find complete splits.
    lock_path = Path(str(cfg.root)) / f".{particle}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return make_default_data(cfg)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
