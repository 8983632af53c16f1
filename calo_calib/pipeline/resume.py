"""Resuming a run: the saved configuration, and whether a command continues a run in place."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from calo_calib.pipeline.checks import RunError

log = logging.getLogger("calo_calib.pipeline")


# What must match for a run directory's checkpoint to be continued automatically.
_IDENTITY_KEYS = ("model", "loss", "particle", "data", "trainer", "adversary", "seed")

REQUIRED_SAVED_KEYS = ("adversary.name", "data.out_of_range", "data.allow_particle_mismatch")
"""Keys a saved ``config.yaml`` must hold to be resumed (a run saved before these options existed lacks them)."""

_ABSENT = object()


def load_saved_config(run_dir: Path) -> DictConfig:
    """``<run_dir>/config.yaml``, which must hold every key of :data:`REQUIRED_SAVED_KEYS`.

    Raises:
        RunError: a required key is missing (the message names it and the run directory): the run
            was saved by an older version and is not continued with guessed defaults.
    """
    saved_path = run_dir / "config.yaml"
    saved = OmegaConf.load(saved_path)
    missing = [key for key in REQUIRED_SAVED_KEYS if OmegaConf.select(saved, key, default=_ABSENT) is _ABSENT]
    if missing:
        raise RunError(
            f"{run_dir}: the saved config {saved_path} has no {', '.join(missing)} (saved by an older version); "
            "it cannot be resumed: start a new run (another hydra.run.dir) or add the key(s) to the saved config"
        )
    return saved


def resumed_config(cfg: DictConfig) -> DictConfig:
    """For ``resume=<run_dir>``: the run's saved config (so it continues exactly), marked as resumed.

    Only ``trainer.epochs`` may be raised on the command line (to extend a finished run), and
    ``resume_allow_data_change=true`` continues although the training data changed (see
    :func:`calo_calib.pipeline.data_fingerprint_check`). Called inside the Hydra app (reads its overrides).

    Raises:
        RunError: ``cfg.resume`` is not a run directory, or its saved config lacks a key of
            :data:`REQUIRED_SAVED_KEYS`.
    """
    run_dir = Path(str(cfg.resume))
    saved_path = run_dir / "config.yaml"
    if not saved_path.exists():
        raise RunError(f"resume={run_dir}: not a run directory ({saved_path} is missing)")
    saved = load_saved_config(run_dir)
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
    holding a *different* configuration is an error (:class:`RunError`), never overwritten, and so is
    one whose saved config lacks a key of :data:`REQUIRED_SAVED_KEYS`.
    """
    saved_path = run_dir / "config.yaml"
    started = (run_dir / "checkpoints" / "last.pt").exists() or (run_dir / "bdt" / "bdt.json").exists()
    if not (saved_path.exists() and started):
        return False
    saved = OmegaConf.to_container(load_saved_config(run_dir), resolve=True)
    current = OmegaConf.to_container(cfg, resolve=True)
    differ = [k for k in _IDENTITY_KEYS if saved.get(k) != current.get(k)]
    if differ:
        raise RunError(
            f"{run_dir} already holds a run with a different {', '.join(differ)}; "
            "choose another directory (hydra.run.dir=...)"
        )
    log.info("%s already holds a checkpoint of this configuration: resuming it (requeued or restarted job)", run_dir)
    return True
