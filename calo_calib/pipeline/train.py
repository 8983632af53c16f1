"""Training a network (the training loop, optionally with the domain adversary) or the BDT, for one run."""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from calo_calib.calibration import (
    build_run_network,
    cell_and_cluster_features,
)
from calo_calib.data.loader import ClusterDataset
from calo_calib.io.atomic import write_text_atomic
from calo_calib.pipeline.checks import RunError, adversary_name, as_paths, trainer_config
from calo_calib.tracking import Tracker
from calo_calib.training.distributed import DistEnv

log = logging.getLogger("calo_calib.pipeline")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (weights init, dropout); the data order has its own (seed, epoch) RNG."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train_network(cfg: DictConfig, splits: dict[str, list[Path]], run_dir: Path, env: DistEnv, tracker: Tracker) -> dict[str, Any]:
    """Train a transformer / gnn_edge network; returns a training summary. Best weights: ``checkpoints/best.pt``."""
    # Long (~85 lines) on purpose: one linear recipe (datasets, normalisation, model, fit, best checkpoint,
    # learning-curve verdict) whose steps share the run's state; pieces would hand most of it along.
    from calo_calib.data.checks import data_fingerprint
    from calo_calib.data.normalization import NormStats, compute_norm_stats
    from calo_calib.evaluation.learning_curve import verdict as learning_curve_verdict
    from calo_calib.training import checkpoint as ckpt
    from calo_calib.training.loop import fit
    from calo_calib.training.losses import build_loss

    trainer_cfg = trainer_config(cfg)
    global_batch = int(cfg.data.batch_size)
    if global_batch % env.world_size:
        raise RunError(
            f"data.batch_size={global_batch} is the global batch (all ranks together) and must be a multiple of "
            f"the number of processes ({env.world_size})"
        )
    log.info(
        "global batch %d = %d process(es) x %d clusters; peak learning rate %g (not rescaled with the batch)",
        global_batch, env.world_size, global_batch // env.world_size, trainer_cfg.lr,
    )  # fmt: skip
    max_train = cfg.data.max_train_clusters
    train = ClusterDataset.from_config(
        cfg, splits["train"], shuffle=True, batch_size=int(cfg.data.batch_size),
        max_clusters=int(max_train) if max_train else None, rank=env.rank, world_size=env.world_size, training=True,
    )  # fmt: skip
    val = ClusterDataset.from_config(cfg, splits["val"], rank=env.rank, world_size=env.world_size, training=True)
    if len(train) == 0:
        raise RunError(f"no training clusters left after the selection in {splits['train']}: {train.counts}")

    last = run_dir / "checkpoints" / ckpt.LAST
    resuming = bool(cfg.resume) and last.exists()
    fingerprint = data_fingerprint([*splits["train"], *splits["val"]])  # checked on resume (_checked_splits)
    if resuming:
        norm = NormStats.from_dict(ckpt.load(last)["extra"]["norm"])
    else:
        t0 = time.perf_counter()
        norm = compute_norm_stats(train, max_clusters=int(cfg.data.norm_max_clusters))
        log.info("normalisation statistics from %d training clusters in %.1f s", min(len(train), int(cfg.data.norm_max_clusters)), time.perf_counter() - t0)
    if env.is_main:
        write_text_atomic(run_dir / "norm.json", json.dumps(norm.to_dict(), indent=2))

    seed_everything(int(cfg.seed))
    cells, clusters = cell_and_cluster_features(cfg)
    model = build_run_network(cfg, len(cells), len(clusters), norm.as_tensors())
    n_params = sum(p.numel() for p in model.parameters())
    log.info("%s: %d parameters; %d training / %d validation clusters", cfg.model.name, n_params, len(train), len(val))

    def on_epoch(record: dict[str, float]) -> None:
        tracker.log_scalars(record, step=int(record["epoch"]))

    adversary = _domain_adversary(cfg, model, env)

    t0 = time.perf_counter()
    state = fit(
        model,
        train_batches=train.batches,
        val_batches=lambda: val.batches(0),
        steps_per_epoch=train.steps_per_epoch(),
        loss_fn=build_loss(str(cfg.loss.name), float(cfg.loss.delta or 0.05)),
        cfg=trainer_cfg,
        run_dir=run_dir,
        env=env,
        resume=resuming,
        on_epoch=on_epoch,
        extra_state={"norm": norm.to_dict(), "model": OmegaConf.to_container(cfg.model, resolve=True), "data": fingerprint},
        adversary=adversary,
    )
    seconds = time.perf_counter() - t0
    rates = [h["train_clusters_per_s"] for h in state.history]
    return {
        "kind": "network",
        "n_parameters": n_params,
        "world_size": env.world_size,
        "global_batch": global_batch,
        "peak_lr": trainer_cfg.lr,
        "n_train": len(train),
        "n_val": len(val),
        "selection_train": train.counts,
        "epochs_run": len(state.history),
        "best_epoch": state.best_epoch,
        "best_val_loss": state.best_val,
        "train_seconds_this_session": seconds,
        "train_clusters_per_s": float(np.median(rates)) if rates else None,
        "resumed": resuming,
        "learning_curve": learning_curve_verdict(state.history, source=run_dir / "history.json"),
        **({"adversary": _adversary_summary(state.history, adversary)} if adversary is not None else {}),
    }


def _domain_adversary(cfg: DictConfig, model: torch.nn.Module, env: DistEnv):
    """The :class:`~calo_calib.training.domain_adaptation.DomainAdversary` of ``adversary=grl``, else None.

    The unlabelled clusters (``data.unlabelled``) are read WITHOUT truth (``with_truth=False``), with
    the run's features and reconstruction-level selection, shuffled per (seed, epoch) like the
    labelled ones, one unlabelled batch of the same size per labelled batch.
    """
    from calo_calib.training.domain_adaptation import AdversaryConfig, DomainAdversary

    if adversary_name(cfg) == "none":
        return None
    try:
        adv_cfg = AdversaryConfig(**OmegaConf.to_container(cfg.adversary, resolve=True))
    except (TypeError, ValueError) as err:  # unknown key or bad value: name it
        raise RunError(f"adversary: {err}") from None
    unlabelled = ClusterDataset.from_config(
        cfg, as_paths(cfg.data.unlabelled), shuffle=True, batch_size=int(cfg.data.batch_size),
        rank=env.rank, world_size=env.world_size, with_truth=False,
    )  # fmt: skip
    if len(unlabelled) == 0:
        raise RunError(f"data.unlabelled: no selected clusters in {cfg.data.unlabelled}: {unlabelled.counts}")
    log.info("domain adversary %s: %d unlabelled clusters from %s", adv_cfg.name, len(unlabelled), cfg.data.unlabelled)
    return DomainAdversary(adv_cfg, int(model.representation_dim), unlabelled.batches)


def _adversary_summary(history: list[dict[str, float]], adversary) -> dict[str, Any]:
    last = history[-1] if history else {}
    return {
        "name": adversary.cfg.name,
        "final_disc_acc": last.get("adv_disc_acc"),
        "final_disc_loss": last.get("adv_disc_loss"),
        "final_lambda": last.get("adv_lambda"),
        "checkpoint": adversary.cfg.checkpoint,
    }


def train_bdt(cfg: DictConfig, splits: dict[str, list[Path]], run_dir: Path) -> dict[str, Any]:
    """Train the XGBoost baseline (per (|η|, E_T) bin by default); saved under ``<run_dir>/bdt``.

    ``model.features`` (``atlas`` by default, ``atlas+shapes`` for ``model=bdt_shapes``) chooses the
    inputs; the saved manifest records it.
    """
    from calo_calib.models import build_bdt

    particle = str(cfg.particle.name)
    bdt_dir = run_dir / "bdt"
    if cfg.resume and (bdt_dir / "bdt.json").exists():
        log.info("resume: the BDT in %s is complete, not retrained", bdt_dir)
        return {"kind": "bdt", "resumed": True}
    m = cfg.model
    features = str(m.get("features", "atlas"))
    try:
        # model.max_train_target: on its own target E_true/E_acc, after data.max_train_target
        bdt = build_bdt(m, particle=particle, loss=str(cfg.loss.name), huber_delta=float(cfg.loss.delta or 0.05), seed=int(cfg.seed))
    except ValueError as err:  # a bad model.* value: name it before any data is read
        raise RunError(f"model ({cfg.model.name}): {err}") from None
    max_train = cfg.data.max_train_clusters
    train = ClusterDataset.from_config(cfg, splits["train"], max_clusters=int(max_train) if max_train else None, training=True)
    val = ClusterDataset.from_config(cfg, splits["val"], training=True)
    t0 = time.perf_counter()
    train_inputs, val_inputs = bdt.dataset_inputs(train, truth=True), bdt.dataset_inputs(val, truth=True)
    input_seconds = time.perf_counter() - t0
    log.info("BDT inputs (%s) of %d + %d clusters in %.1f s", features, len(train), len(val), input_seconds)
    summary = bdt.fit(train_inputs, val_inputs, progress=bool(cfg.progress))
    bdt.save(bdt_dir)
    return {"kind": "bdt", "features": features, "input_seconds": input_seconds, "n_train": len(train), "n_val": len(val),
            "selection_train": train.counts, **summary}  # fmt: skip
