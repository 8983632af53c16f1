"""One calibration run, start to finish: data -> training -> test predictions -> σ_rel report.

``train_and_evaluate(cfg, run_dir)`` is what ``python -m calo_calib.run`` calls (and what tests and
sweeps call). Everything a physicist needs is written to the run directory:

- ``config.yaml``: the resolved configuration (``resume`` reads it back);
- ``checkpoints/{last,best}.pt`` (networks) or ``bdt/`` (XGBoost), ``norm.json``, ``history.json``;
- ``predictions.parquet``: one row per test cluster with truth, raw, oracle and model energies
  (and the BDT's, when a BDT run on the same test data is found);
- ``metrics.json``: inclusive and binned σ_rel and median response with bootstrap errors;
- ``summary.md``: the σ_rel tables in % and the ratio to the BDT;
- ``plots/*.png``;
- with ``loss=gaussian_nll`` (per-cluster uncertainty): a ``sigma`` column in the predictions,
  ``uncertainty.json`` / ``uncertainty.md`` (pulls and coverage per (E, |η|) bin) and
  ``plots/{pulls,coverage_vs_e,sigma_pred_vs_e}.png`` (:mod:`calo_calib.evaluation.uncertainty`);
- with ``data.unlabelled_test=<dir>`` (a labelled data-like test set, labels used only here):
  ``predictions_data_like.parquet`` and ``metrics["data_like"]`` (σ_rel, response shift).

``adversary=grl`` with ``data.unlabelled=<dir>`` trains with a domain discriminator on unlabelled
data-like clusters (:mod:`calo_calib.training.domain_adaptation`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from calo_calib.calibration import (
    run_calibration_class,
)
from calo_calib.io.atomic import write_text_atomic
from calo_calib.pipeline.checks import (
    SPLITS,
    TRAINABLE_PARTICLES,
    RunError,
    adversary_name,
    check_config,
    check_data,
    data_fingerprint_check,
    trainer_config,
)
from calo_calib.pipeline.evaluate import evaluate_data_like, evaluate_run, find_reference_run
from calo_calib.pipeline.resume import continues_in_place, resumed_config
from calo_calib.pipeline.splits import resolve_splits
from calo_calib.pipeline.train import seed_everything, train_bdt, train_network

__all__ = [
    "SPLITS", "TRAINABLE_PARTICLES", "RunError", "adversary_name", "check_config", "check_data", "continues_in_place",
    "data_fingerprint_check", "evaluate_data_like", "evaluate_run", "find_reference_run", "resolve_splits",
    "resumed_config", "seed_everything", "train_and_evaluate", "train_bdt", "train_network", "trainer_config",
]  # fmt: skip
from calo_calib.tracking import open_tracker
from calo_calib.training.distributed import DistEnv


def train_and_evaluate(cfg: DictConfig, run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Train the configured calibration, evaluate it on the test split; returns metrics.json's content.

    Rank 0 writes every file; other ranks (torchrun) only train.
    """
    from calo_calib.run_status import COMPLETED, write_status
    from calo_calib.training.distributed import setup, teardown

    run_dir = Path(run_dir)
    check_config(cfg)
    env = setup(str(cfg.trainer.device))
    try:
        splits = _checked_splits(cfg, run_dir, env)  # before anything is written: a refused run changes nothing
        if env.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_status(run_dir, "running")
            write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        try:
            metrics = _train_and_evaluate(cfg, run_dir, env, splits)
        except BaseException as err:
            if env.is_main:
                write_status(run_dir, "failed", error=" ".join(str(err).split()) or type(err).__name__)
            raise
        if env.is_main:
            write_status(run_dir, COMPLETED)  # the last file of the run: compare/export trust only this
        if env.distributed:
            # The other ranks finish training long before rank 0 has evaluated; one that tore its gloo
            # group down while rank 0 was still connected aborted at exit once in CI ("terminate called
            # without an active exception", 2026-12-02). All ranks leave together. Only on success:
            # after a failure on one rank the others may sit in a collective that never matches.
            torch.distributed.barrier()
        return metrics
    finally:
        teardown()


def _checked_splits(cfg: DictConfig, run_dir: Path, env: DistEnv) -> dict[str, list[Path]]:
    """The splits (the default data generated on first use), checked before the run writes anything:
    :func:`check_data`, and on ``resume`` of a network the checkpoint's data fingerprint."""
    from calo_calib.data.checks import DataError, data_fingerprint
    from calo_calib.training import checkpoint as ckpt

    splits = resolve_splits(cfg) if env.is_main or not env.distributed else None
    if env.distributed:
        box = [splits]
        torch.distributed.broadcast_object_list(box, src=0)  # rank 0 may have generated the data
        splits = box[0]
    assert splits is not None
    check_data(cfg, splits)
    last = run_dir / "checkpoints" / ckpt.LAST
    if cfg.resume and run_calibration_class(cfg).is_network and last.exists():
        try:
            current = data_fingerprint([*splits["train"], *splits["val"]])
        except DataError as err:
            raise RunError(str(err)) from None
        data_fingerprint_check(cfg, ckpt.load(last)["extra"].get("data"), current, run_dir)
    return splits


def _train_and_evaluate(cfg: DictConfig, run_dir: Path, env: DistEnv, splits: dict[str, list[Path]]) -> dict[str, Any]:
    """:func:`train_and_evaluate` after the checks: training, evaluation."""
    tracker = open_tracker(
        str(cfg.logger.mode),
        run_dir,
        OmegaConf.to_container(cfg, resolve=True),
        project=str(cfg.logger.project),
        entity=cfg.logger.entity,
        name=f"{cfg.particle.name}/{cfg.model.name}-{cfg.loss.name}/{run_dir.name}",
        group=str(cfg.logger.group),
        tags=[str(t) for t in cfg.logger.tags],
        enabled=env.is_main,
    )
    try:
        kind = run_calibration_class(cfg)
        if kind.is_network:  # every rank trains (DDP)
            training = train_network(cfg, splits, run_dir, env, tracker)
        else:
            training = train_bdt(cfg, splits, run_dir) if env.is_main else {}
        calibration = kind(run_dir, cfg, device=str(env.device)) if env.is_main else None
        metrics = evaluate_run(cfg, calibration, splits, run_dir, tracker, training) if env.is_main else {}
    finally:
        tracker.finish()
    return metrics
