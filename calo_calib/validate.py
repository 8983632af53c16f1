"""Validate the fast simulation against the detector card: ``python -m calo_calib.validate``.

Hydra entry point with config ``conf/validate.yaml``; any key can be overridden on the command line,
e.g. ``python -m calo_calib.validate out=/tmp/val quick=true workers=4``. Writes PNG plots,
``README.md`` and ``results.json`` to ``out`` (default ``docs/validation``). See
:mod:`calo_calib.validation.report` (the check order) and :mod:`calo_calib.validation.samples`.
"""

from __future__ import annotations

from collections.abc import Sequence

import hydra
from omegaconf import DictConfig

from calo_calib.paths import CONF_DIR


def compose_validate_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/validate.yaml`` with Hydra overrides (outside a Hydra app)."""
    from calo_calib.config import compose

    return compose("validate", overrides)


def run(cfg: DictConfig):
    """Run the validation for a composed config; returns the output directory."""
    from calo_calib.validation.report import run_validation

    return run_validation(cfg)


@hydra.main(config_path=str(CONF_DIR), config_name="validate", version_base=None)
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
