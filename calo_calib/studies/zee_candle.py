"""Z -> ee standard candle: in-situ energy scale of a calibration on a data-like detector variant.

    python -m calo_calib.studies.zee_candle calibration=<run dir> n_events=20000 data_detector=material_up out=<dir>

(``python experiments/zee_candle.py ...`` is the same command.) The arguments are Hydra overrides of
``conf/zee_candle.yaml`` (an unknown key is an error; ``--help``, ``--cfg job`` as for any Hydra app).
``calibration=null`` studies the raw cluster energy only; the raw energy is always analysed next to the
calibrations. The logic is :func:`calo_calib.zee.candle.run_candle` (``docs/zee.md``).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from calo_calib.paths import CONF_DIR
from calo_calib.zee.candle import run_candle


@hydra.main(config_path=str(CONF_DIR), config_name="zee_candle", version_base=None)
def main(cfg: DictConfig) -> None:
    """Hydra entry point (see module docstring)."""
    try:
        run_candle(cfg)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"zee_candle: error: {err}") from None


if __name__ == "__main__":
    main()
