"""Simulate clusters into Parquet shards (the code: :mod:`calo_calib.simulation.runner`).

    python -m calo_calib.simulate particle=photon_conv n_clusters=20000 mu=51 seed=1 out=data/demo

Sharding, seeds, resume and overwrite rules: :mod:`calo_calib.simulation.runner`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

import calo_calib.config  # noqa: F401  (registers the config schemas of conf/particle before Hydra composes)
from calo_calib.paths import CONF_DIR
from calo_calib.simulation.material import ConfigError
from calo_calib.simulation.runner import run_simulation

__all__ = ["main"]


@hydra.main(config_path=str(CONF_DIR), config_name="simulate", version_base=None)
def main(cfg: DictConfig) -> None:
    """Hydra entry point (see module docstring)."""
    from calo_calib.config import detector_config
    from calo_calib.simulation.api import validate_config

    try:
        validate_config(cfg, nominal=detector_config("nominal"))  # unknown detector.* keys too
        run_simulation(cfg)
    except (ConfigError, FileExistsError) as err:
        raise SystemExit(f"calo_calib.simulate: error: {err}") from None


if __name__ == "__main__":
    main()
