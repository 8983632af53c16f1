"""Simulate clusters into Parquet shards (the code: :mod:`calo_calib.simulation.runner`).

    python -m calo_calib.simulate particle=photon_conv n_clusters=20000 mu=51 seed=1 out=data/demo

Shards are the unit of parallelism, reproducibility and safety: shard ``i`` is generated from
``SeedSequence(seed).spawn(n_shards)[i]``, so the bytes do not depend on the number of workers; each
shard is written to a temporary name and renamed, so an interrupted run never leaves a corrupt
shard; ``resume=true`` keeps the complete shards and generates the rest; an output directory that
already holds shards is never overwritten unless ``overwrite=true``. Worker processes die with the
run (``prctl(PR_SET_PDEATHSIG)`` on Linux, and a parent check before each write): a killed run
leaves no worker behind writing shards.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from calo_calib.paths import CONF_DIR
from calo_calib.simulation.material import ConfigError
from calo_calib.simulation.runner import run_simulation

__all__ = ["main"]


@hydra.main(config_path=str(CONF_DIR), config_name="simulate", version_base=None)
def main(cfg: DictConfig) -> None:
    """Hydra entry point (see module docstring)."""
    try:
        run_simulation(cfg)
    except (ConfigError, FileExistsError) as err:
        raise SystemExit(f"calo_calib.simulate: error: {err}") from None


if __name__ == "__main__":
    main()
