"""Pile-up study: σ_rel versus ⟨μ⟩ for trained calibrations (the code: :mod:`calo_calib.studies.pileup_study`).

    python -m calo_calib.pileup_study 'runs=[runs/electron/transformer-pull_huber/T1,runs/electron/bdt-mse/T2]'

Options in ``conf/pileup_study.yaml``. Writes ``pileup.json``, ``pileup.md`` and ``sigma_rel_vs_mu.png``.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from calo_calib.paths import CONF_DIR
from calo_calib.studies.pileup_study import study

__all__ = ["main"]


@hydra.main(config_path=str(CONF_DIR), config_name="pileup_study", version_base=None)
def main(cfg: DictConfig) -> None:
    """Hydra entry point (see module docstring)."""
    try:
        study(cfg)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"calo_calib.pileup_study: error: {err}") from None


if __name__ == "__main__":
    main()
