"""Generate the default dataset (train/val/test for electrons, unconverted and converted photons).

    python -m calo_calib.make_data            # or: make data
    python -m calo_calib.make_data splits.train=200000 root=/scratch/calo

Each (particle, split) is one ``calo_calib.simulate`` output directory ``<root>/<particle>/<split>``.
A split that is already complete (its shards match the planned provenance) is left untouched, so
the command is cheap to re-run and resumes after an interruption. The code is in
:mod:`calo_calib.simulation.default_data` (training calls its ``ensure_default_data`` on first use).
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from calo_calib.paths import CONF_DIR
from calo_calib.simulation.default_data import make_default_data
from calo_calib.simulation.material import ConfigError

log = logging.getLogger(__name__)
__all__ = ["main"]


@hydra.main(config_path=str(CONF_DIR), config_name="make_data", version_base=None)
def main(cfg: DictConfig) -> None:
    """Hydra entry point (see module docstring)."""
    log.info("default dataset in %s: %s", cfg.root, OmegaConf.to_container(cfg.splits))
    try:
        make_default_data(cfg)
    except (ConfigError, FileExistsError) as err:
        raise SystemExit(f"calo_calib.make_data: error: {err}") from None


if __name__ == "__main__":
    main()
