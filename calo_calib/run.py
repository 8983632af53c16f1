"""Train and evaluate one energy calibration.

    python -m calo_calib.run model=transformer particle=photon_conv
    python -m calo_calib.run model=bdt particle=photon_conv          # the baseline to compare with
    python -m calo_calib.run model=gnn_edge loss=huber particle=electron trainer.epochs=5
    python -m calo_calib.run resume=runs/electron/transformer-pull_huber/20261123-101500   # after a crash

Config groups: ``model`` (transformer | gnn_edge | bdt), ``loss`` (mse | huber | gaussian_nll), ``particle``
(electron | photon_unconv | photon_conv), ``data``, ``trainer``, ``adversary`` (none | grl), ``logger`` (wandb | none).
Without ``data.train/val/test`` the default dataset is used (generated on first use). The run
directory (``runs/<particle>/<model>-<loss>/<time>``) holds config, checkpoints, metrics.json,
predictions.parquet, summary.md and plots/; see :mod:`calo_calib.pipeline` (the run, resume included)
and :mod:`calo_calib.config` (composition, the resolvers of ``conf/run.yaml``).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import calo_calib.config  # noqa: F401  (registers the resolvers of conf/run.yaml before Hydra composes it)
from calo_calib.launch.requeue import install as _install_requeue_fix
from calo_calib.paths import CONF_DIR

_install_requeue_fix()  # submitit requeue on preemption: see calo_calib/launch/requeue.py

log = logging.getLogger(__name__)
logging.getLogger("matplotlib").setLevel(logging.WARNING)  # mathtext font substitutions are not news


@hydra.main(config_path=str(CONF_DIR), config_name="run", version_base=None)
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the inclusive σ_rel of the model (what a sweep optimises)."""
    from calo_calib.data.checks import DataError
    from calo_calib.pipeline import RunError, continues_in_place, resumed_config, train_and_evaluate

    if int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0"))) > 0:
        logging.getLogger().setLevel(logging.WARNING)  # rank 0 reports; the others only warn
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        if cfg.resume:
            cfg = resumed_config(cfg)
            run_dir = Path(str(cfg.resume))
        elif continues_in_place(cfg, run_dir):
            with open_dict(cfg):
                cfg.resume = str(run_dir)
        metrics = train_and_evaluate(cfg, run_dir)
    except (RunError, DataError, FileNotFoundError) as err:  # config and data errors: one line, no traceback
        raise SystemExit(f"calo_calib.run: error: {' '.join(str(err).split())}") from None
    if not metrics:
        return None  # non-zero rank
    name = str(cfg.model.name)
    inc = metrics["inclusive"]
    log.info("run directory: %s", run_dir)
    for method in inc:
        log.info("σ_rel %-12s %.4f ± %.4f", method, inc[method]["sigma_rel"], inc[method]["sigma_rel_err"])
    return float(inc[name]["sigma_rel"])


if __name__ == "__main__":
    from calo_calib.training.distributed import shared_run_stamp

    shared_run_stamp()  # torchrun: every worker must compose the same run directory
    calo_calib.config.exit_on_composition_error("run", sys.argv[1:], "run")  # a bad key or value: one line
    main()
