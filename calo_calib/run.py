"""Train and evaluate one energy calibration.

    python -m calo_calib.run model=transformer particle=photon_conv
    python -m calo_calib.run model=bdt particle=photon_conv          # the baseline to compare with
    python -m calo_calib.run model=gnn_edge loss=huber particle=electron trainer.epochs=5
    python -m calo_calib.run resume=runs/electron/transformer-mse/20261123-101500   # after a crash

Config groups: ``model`` (transformer | gnn_edge | bdt), ``loss`` (mse | huber), ``particle``
(electron | photon_unconv | photon_conv), ``data``, ``trainer``, ``logger`` (wandb | none).
Without ``data.train/val/test`` the default dataset is used (generated on first use). The run
directory (``runs/<particle>/<model>-<loss>/<time>``) holds config, checkpoints, metrics.json,
predictions.parquet, summary.md and plots/; see :mod:`calo_calib.pipeline`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from calo_calib.paths import CONF_DIR

log = logging.getLogger(__name__)
logging.getLogger("matplotlib").setLevel(logging.WARNING)  # mathtext font substitutions are not news


def _first_set(value, default):
    """``${calo_or:a,b}``: ``a`` unless it is null (lets ``resume=<dir>`` choose the run directory)."""
    return default if value in (None, "", "None", "null") else value


if not OmegaConf.has_resolver("calo_or"):
    OmegaConf.register_new_resolver("calo_or", _first_set)


def compose_run_config(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Compose ``conf/run.yaml`` with overrides outside a Hydra app (tests, benchmarks, notebooks)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose(config_name="run", overrides=list(overrides))


def resumed_config(cfg: DictConfig) -> DictConfig:
    """For ``resume=<run_dir>``: the run's saved config (so it continues exactly), marked as resumed.

    Only ``trainer.epochs`` may be raised on the command line (to extend a finished run).
    """
    run_dir = Path(str(cfg.resume))
    saved_path = run_dir / "config.yaml"
    if not saved_path.exists():
        raise SystemExit(f"calo_calib.run: error: resume={run_dir}: not a run directory ({saved_path} is missing)")
    saved = OmegaConf.load(saved_path)
    saved.resume = str(run_dir)
    overridden = {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}
    if "trainer.epochs" in overridden:
        saved.trainer.epochs = cfg.trainer.epochs
    ignored = sorted(overridden - {"resume", "trainer.epochs", "hydra.run.dir"})
    if ignored:
        log.warning("resume: the saved config of %s is used; ignoring overrides of %s", run_dir, ", ".join(ignored))
    return saved


@hydra.main(config_path=str(CONF_DIR), config_name="run", version_base=None)
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the inclusive σ_rel of the model (what a sweep optimises)."""
    from calo_calib.pipeline import RunError, train_and_evaluate

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if cfg.resume:
        cfg = resumed_config(cfg)
        run_dir = Path(str(cfg.resume))
    try:
        metrics = train_and_evaluate(cfg, run_dir)
    except (RunError, FileNotFoundError) as err:
        raise SystemExit(f"calo_calib.run: error: {err}") from None
    if not metrics:
        return None  # non-zero rank
    name = str(cfg.model.name)
    inc = metrics["inclusive"]
    log.info("run directory: %s", run_dir)
    for method in inc:
        log.info("σ_rel %-12s %.4f ± %.4f", method, inc[method]["sigma_rel"], inc[method]["sigma_rel_err"])
    return float(inc[name]["sigma_rel"])


if __name__ == "__main__":
    main()
