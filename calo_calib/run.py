"""Train and evaluate one energy calibration.

    python -m calo_calib.run model=transformer particle=photon_conv
    python -m calo_calib.run model=bdt particle=photon_conv          # the baseline to compare with
    python -m calo_calib.run model=gnn_edge loss=huber particle=electron trainer.epochs=5
    python -m calo_calib.run resume=runs/electron/transformer-pull_huber/20261123-101500   # after a crash

Config groups: ``model`` (transformer | gnn_edge | bdt), ``loss`` (mse | huber | gaussian_nll), ``particle``
(electron | photon_unconv | photon_conv), ``data``, ``trainer``, ``adversary`` (none | grl), ``logger`` (wandb | none).
Without ``data.train/val/test`` the default dataset is used (generated on first use). The run
directory (``runs/<particle>/<model>-<loss>/<time>``) holds config, checkpoints, metrics.json,
predictions.parquet, summary.md and plots/; see :mod:`calo_calib.pipeline`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from calo_calib.launch.requeue import install as _install_requeue_fix
from calo_calib.paths import CONF_DIR

_install_requeue_fix()  # submitit requeue on preemption: see calo_calib/launch/requeue.py

log = logging.getLogger(__name__)
logging.getLogger("matplotlib").setLevel(logging.WARNING)  # mathtext font substitutions are not news


def _first_set(value, default):
    """``${calo_or:a,b}``: ``a`` unless it is null (lets ``resume=<dir>`` choose the run directory)."""
    return default if value in (None, "", "None", "null") else value


STAMP_FORMAT = "%Y%m%d-%H%M%S-%f"
"""Run directory timestamps, to the microsecond: two runs started in the same second (a loop over
seeds, a job array) get different directories instead of overwriting each other's checkpoints."""
_last_stamp: str | None = None


def _run_stamp() -> str:
    """``${calo_stamp:}``: the run directory's timestamp (:data:`STAMP_FORMAT`, never the same twice in
    one process). ``CALO_CALIB_RUN_STAMP`` when set (all torchrun workers agree on it, see
    :func:`calo_calib.training.distributed.shared_run_stamp`)."""
    global _last_stamp
    if os.environ.get("CALO_CALIB_RUN_STAMP"):
        return os.environ["CALO_CALIB_RUN_STAMP"]
    stamp = dt.datetime.now().strftime(STAMP_FORMAT)
    while stamp == _last_stamp:
        stamp = dt.datetime.now().strftime(STAMP_FORMAT)
    _last_stamp = stamp
    return stamp


def _default_loss(model_kind: str, field: str = "name"):
    """``${calo_default_loss:${model.kind}[,delta]}``: the loss of ``loss=auto`` for this kind of model.

    Networks: ``pull_huber`` (residuals in units of the expected resolution, Huber beyond 2 pulls),
    the BDT: ``mse`` (trained per E_T bin, it needs no rescaling); measured in docs/models.md
    "Training recipe".
    """
    name, delta = DEFAULT_LOSS.get(str(model_kind), DEFAULT_LOSS["bdt"])
    return name if field == "name" else delta


DEFAULT_LOSS: dict[str, tuple[str, float | None]] = {"network": ("pull_huber", 2.0), "bdt": ("mse", None)}
"""model.kind -> (loss name, delta) chosen by ``loss=auto``, the default."""

if not OmegaConf.has_resolver("calo_default_loss"):
    OmegaConf.register_new_resolver("calo_default_loss", _default_loss)
if not OmegaConf.has_resolver("calo_or"):
    OmegaConf.register_new_resolver("calo_or", _first_set)
if not OmegaConf.has_resolver("calo_stamp"):
    OmegaConf.register_new_resolver("calo_stamp", _run_stamp, use_cache=True)

# What must match for a run directory's checkpoint to be continued automatically.
_IDENTITY_KEYS = ("model", "loss", "particle", "data", "trainer", "adversary", "seed")


def compose_run_config(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Compose ``conf/run.yaml`` with overrides outside a Hydra app (tests, benchmarks, notebooks)."""
    from calo_calib.config import compose

    return compose("run", overrides)


def resumed_config(cfg: DictConfig) -> DictConfig:
    """For ``resume=<run_dir>``: the run's saved config (so it continues exactly), marked as resumed.

    Only ``trainer.epochs`` may be raised on the command line (to extend a finished run), and
    ``resume_allow_data_change=true`` continues although the training data changed (see
    :func:`calo_calib.pipeline.data_fingerprint_check`).
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
    saved.resume_allow_data_change = bool(cfg.get("resume_allow_data_change", False))
    ignored = sorted(overridden - {"resume", "trainer.epochs", "hydra.run.dir", "resume_allow_data_change"})
    if ignored:
        log.warning("resume: the saved config of %s is used; ignoring overrides of %s", run_dir, ", ".join(ignored))
    return saved


def continues_in_place(cfg: DictConfig, run_dir: Path) -> bool:
    """True if ``run_dir`` already holds a started run of this very configuration, which then resumes.

    This is how a SLURM job requeued after preemption or timeout (same job directory, same
    overrides) and a restarted torchrun worker continue from the last checkpoint. A directory
    holding a *different* configuration is an error, never overwritten.
    """
    saved_path = run_dir / "config.yaml"
    started = (run_dir / "checkpoints" / "last.pt").exists() or (run_dir / "bdt" / "bdt.json").exists()
    if not (saved_path.exists() and started):
        return False
    saved = OmegaConf.to_container(OmegaConf.load(saved_path), resolve=True)
    current = OmegaConf.to_container(cfg, resolve=True)
    saved.setdefault("adversary", {"name": "none"})  # runs saved before the adversary option trained without one
    for key, default in (("out_of_range", "error"), ("allow_particle_mismatch", False)):  # saved before these existed
        saved.get("data", {}).setdefault(key, default)
    differ = [k for k in _IDENTITY_KEYS if saved.get(k) != current.get(k)]
    if differ:
        raise SystemExit(
            f"calo_calib.run: error: {run_dir} already holds a run with a different {', '.join(differ)}; "
            "choose another directory (hydra.run.dir=...)"
        )
    log.info("%s already holds a checkpoint of this configuration: resuming it (requeued or restarted job)", run_dir)
    return True


@hydra.main(config_path=str(CONF_DIR), config_name="run", version_base=None)
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the inclusive σ_rel of the model (what a sweep optimises)."""
    from calo_calib.data.checks import DataError
    from calo_calib.pipeline import RunError, train_and_evaluate

    if int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0"))) > 0:
        logging.getLogger().setLevel(logging.WARNING)  # rank 0 reports; the others only warn
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if cfg.resume:
        cfg = resumed_config(cfg)
        run_dir = Path(str(cfg.resume))
    elif continues_in_place(cfg, run_dir):
        with open_dict(cfg):
            cfg.resume = str(run_dir)
    try:
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
    main()
