"""Checks of a run's configuration and data before any work: numbers, particle, splits, fingerprints."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from calo_calib.calibration import (
    cell_and_cluster_features,
    run_calibration_class,
)
from calo_calib.data.loader import ClusterDataset

log = logging.getLogger("calo_calib.pipeline")


TRAINABLE_PARTICLES = ("electron", "photon_unconv", "photon_conv")


SPLITS = ("train", "val", "test")


class RunError(ValueError):
    """A run cannot start: bad configuration or data (the message names what to fix)."""


NUMERIC_KEYS: dict[str, type] = {
    "seed": int, "data.batch_size": int, "data.eval_batch_size": int, "data.buffer_clusters": int,
    "data.norm_max_clusters": int, "data.max_train_clusters": int, "data.min_cluster_et": float,
    "data.max_train_target": float, "data.pad_multiple": int, "loss.delta": float,
    "evaluation.n_boot": int, "evaluation.min_count": int,
}  # fmt: skip
"""Numeric run options checked at start (null allowed where the config allows it): ``key=abc`` is one error line."""


def _check_numbers(cfg: DictConfig) -> None:
    for key, kind in NUMERIC_KEYS.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        ok = isinstance(value, int) and not isinstance(value, bool) if kind is int else (
            isinstance(value, (int, float)) and not isinstance(value, bool))  # fmt: skip
        if not ok:
            raise RunError(f"{key}={value!r}: expected {'an integer' if kind is int else 'a number'}")


def check_config(cfg: DictConfig) -> None:
    """Fail at start, naming the field, on a configuration the run cannot honour (checks in this order)."""
    _check_numbers(cfg)
    particle = str(cfg.particle.name)
    if particle not in TRAINABLE_PARTICLES:
        raise RunError(
            f"particle={particle}: calibrations are trained per reconstructed type; "
            f"choose one of {', '.join(TRAINABLE_PARTICLES)}"
        )
    try:
        kind = run_calibration_class(cfg)
    except ValueError as err:
        raise RunError(str(err)) from None
    adversary = _check_loss_and_adversary(cfg)
    error = kind.config_error(cfg, adversary)  # the BDT: no pull or σ loss, no adversary
    if error:
        raise RunError(error)
    _check_data_options(cfg, adversary)
    cell_and_cluster_features(cfg)  # unknown feature names raise here
    if kind.is_network:
        trainer_config(cfg)
    for key, choices in (("nonfinite", ("error", "drop")), ("out_of_range", ("error", "drop", "allow"))):
        value = cfg.data.get(key, "error")
        if str(value) not in choices:
            raise RunError(f"data.{key}={value!r}: expected one of {', '.join(choices)}")


def _check_loss_and_adversary(cfg: DictConfig) -> str:
    """The loss name and Huber delta, and the adversary name; returns the adversary's name."""
    from calo_calib.training.domain_adaptation import ADVERSARIES
    from calo_calib.training.losses import LOSSES

    if cfg.loss.name not in LOSSES:
        raise RunError(f"loss.name={cfg.loss.name!r}: expected one of {', '.join(LOSSES)}")
    if cfg.loss.name in ("huber", "pull_huber") and not (cfg.loss.delta and float(cfg.loss.delta) > 0):
        raise RunError(f"loss.delta must be > 0 for the Huber loss, got {cfg.loss.delta}")
    adversary = adversary_name(cfg)
    if adversary not in ADVERSARIES:
        raise RunError(f"adversary.name={adversary!r}: expected one of {', '.join(ADVERSARIES)}")
    return adversary


def _check_data_options(cfg: DictConfig, adversary: str) -> None:
    """The unlabelled data-like sets exist (and are given when an adversary trains), the batch size is > 0."""
    if adversary != "none" and not cfg.data.get("unlabelled"):
        raise RunError(f"adversary={adversary} needs unlabelled data-like clusters: set data.unlabelled=<dataset dir>")
    for key in ("unlabelled", "unlabelled_test"):
        value = cfg.data.get(key)
        for path in [] if not value else ([value] if isinstance(value, str) else list(value)):
            if not Path(str(path)).exists():
                raise RunError(f"data.{key}: {path} does not exist")
    if int(cfg.data.batch_size) <= 0:
        raise RunError(f"data.batch_size must be > 0, got {cfg.data.batch_size}")


def check_data(cfg: DictConfig, splits: dict[str, list[Path]]) -> None:
    """Before any training: the data's particle type, and non-empty validation and test splits.

    Every split (and ``data.unlabelled``/``unlabelled_test``) must hold the run's particle type
    (``particle`` column and conversion types, :func:`calo_calib.data.checks.check_particle`) unless
    ``data.allow_particle_mismatch=true`` (then logged loudly). A validation or test split with no
    cluster left after the selection is an error naming the split, its paths and the selection
    counts (an empty validation split gave a validation loss of 0 and a silent early stop; an
    empty test split crashed after the training).

    Raises:
        RunError: naming the split, the file or the key to fix.
    """
    from calo_calib.data.checks import DataError, check_particle
    from calo_calib.io.dataset_stream import resolve_parquet_files

    particle = str(cfg.particle.name)
    allow = bool(cfg.data.get("allow_particle_mismatch", False))
    named = {f"data.{s}": v for s, v in splits.items()}
    for key in ("unlabelled", "unlabelled_test"):
        if cfg.data.get(key):
            named[f"data.{key}"] = as_paths(cfg.data.get(key))
    try:
        for what, paths in named.items():
            files = [f for p in paths for f in resolve_parquet_files(p)]
            for problem in check_particle(files, particle, what=what, override="data.allow_particle_mismatch=true", allow=allow):
                log.warning("PARTICLE MISMATCH (data.allow_particle_mismatch=true): %s", problem)
        for split, training in (("val", True), ("test", False)):
            dataset = ClusterDataset.from_config(cfg, splits[split], training=training)
            if len(dataset) == 0:
                raise RunError(
                    f"{split} split is empty after the selection: no clusters left in "
                    f"{', '.join(map(str, splits[split]))} (data.{split}); selection counts {dataset.counts}"
                )
    except DataError as err:
        raise RunError(str(err)) from None


def data_fingerprint_check(cfg: DictConfig, saved: dict[str, Any] | None, current: dict[str, Any], run_dir: Path) -> None:
    """On ``resume``: the training/validation data must be those of the checkpoint.

    ``saved`` is the fingerprint stored in the checkpoint (``extra["data"]``). A mismatch is a
    :class:`RunError` naming the files that changed, unless ``resume_allow_data_change=true`` (then a
    loud warning and the training continues on the new data); so is a checkpoint without a fingerprint
    (saved by an older version: its data cannot be checked).
    """
    if saved is None:
        raise RunError(f"resume={run_dir}: the checkpoint records no data fingerprint (extra['data'], saved by an "
                       "older version), so its training data cannot be checked; start a new run")  # fmt: skip
    if saved.get("digest") == current.get("digest"):
        return
    old = {f[0]: f for f in saved.get("files", [])}
    new = {f[0]: f for f in current.get("files", [])}
    changes = [f"{n}: removed" for n in sorted(set(old) - set(new))] + [f"{n}: new" for n in sorted(set(new) - set(old))]
    changes += [f"{n}: changed (size, rows or provenance)" for n in sorted(set(old) & set(new)) if old[n] != new[n]]
    what = "; ".join(changes[:5]) + (f"; ... ({len(changes)} in all)" if len(changes) > 5 else "")
    if bool(cfg.get("resume_allow_data_change", False)):
        log.warning("RESUME ON CHANGED DATA (resume_allow_data_change=true): the training/validation data of %s "
                    "differ from the checkpoint's: %s", run_dir, what)  # fmt: skip
        return
    raise RunError(f"resume={run_dir}: the training/validation data changed since the checkpoint ({what}); "
                   "continuing would train on different data. Pass resume_allow_data_change=true to continue anyway")


def trainer_config(cfg: DictConfig):
    """``cfg.trainer`` as a :class:`~calo_calib.training.config.TrainerConfig`; an unknown key (with the
    closest known one) or a value of the wrong type is a :class:`RunError` naming ``trainer.<key>``."""
    import difflib
    import typing

    from calo_calib.training.config import TrainerConfig

    values = {k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items() if k != "device"}
    fields = typing.get_type_hints(TrainerConfig)  # field name -> bool | int | float | str
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields) + ["device"], n=1)
            hint = f"; did you mean trainer.{close[0]}?" if close else f"; known keys: {', '.join(fields)}, device"
            raise RunError(f"trainer.{key}: unknown key{hint}")
        kind = fields[key]
        ok = (isinstance(value, bool) if kind is bool else
              isinstance(value, int) and not isinstance(value, bool) if kind is int else
              isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else
              isinstance(value, str) if kind is str else True)  # fmt: skip
        if not ok:
            want = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[kind]
            raise RunError(f"trainer.{key}={value!r}: expected {want}")
    try:
        return TrainerConfig(**values)
    except ValueError as err:
        raise RunError(str(err)) from None


def adversary_name(cfg: DictConfig) -> str:
    """``adversary.name`` (``none``: no domain adversary)."""
    return str(cfg.adversary.name)



def as_paths(value: Any) -> list[Path]:
    """A configured path or list of paths as a list of Paths."""
    return [Path(str(p)) for p in ([value] if isinstance(value, str) else list(value))]
