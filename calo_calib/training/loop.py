"""The training loop of the network calibrations: :func:`fit`.

AdamW with linear warm-up and cosine decay, gradient clipping, bf16 autocast on GPU (fp32 on CPU),
early stopping on the validation loss, a checkpoint every epoch (last and best) and ``resume`` from
the last checkpoint with an identical continuation: the data order depends only on (seed, epoch)
and every RNG state is restored. A non-finite loss stops the run with a clear message
(:class:`~calo_calib.training.epoch.NonFiniteLossError`); the last good checkpoint stays on disk.
Ready for DDP: the model is wrapped when the world size is > 1 and only rank 0 writes.

Options: a loss that needs the uncertainty head (``gaussian_nll``) gets the network's full output
(:class:`~calo_calib.models.common.NetworkOutput`); with a :class:`~calo_calib.training.domain_adaptation.DomainAdversary`
every step also trains a domain discriminator on unlabelled data-like clusters through gradient
reversal, and the epoch record gains ``adv_disc_loss``, ``adv_disc_acc`` and ``adv_lambda``.

The pieces: settings and schedule in :mod:`~calo_calib.training.config`, the run's optimiser, state
and checkpoints in :mod:`~calo_calib.training.run_state`, one epoch in :mod:`~calo_calib.training.epoch`,
validation and prediction in :mod:`~calo_calib.training.inference`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from calo_calib.training.config import TrainerConfig
from calo_calib.training.distributed import DistEnv
from calo_calib.training.domain_adaptation import DomainAdversary
from calo_calib.training.epoch import finish_epoch, sum_over_ranks, train_epoch
from calo_calib.training.inference import Batch, evaluate
from calo_calib.training.losses import LossFn
from calo_calib.training.run_state import TrainingRun, TrainState


def fit(
    model: torch.nn.Module,
    train_batches: Callable[[int], Iterable[Batch]],
    val_batches: Callable[[], Iterable[Batch]],
    steps_per_epoch: int,
    loss_fn: LossFn,
    cfg: TrainerConfig,
    run_dir: Path,
    env: DistEnv,
    resume: bool = False,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    extra_state: dict[str, Any] | None = None,
    adversary: DomainAdversary | None = None,
) -> TrainState:
    """Train ``model`` and return its final :class:`~calo_calib.training.run_state.TrainState`; the best
    weights are in ``best.pt``.

    Args:
        train_batches: epoch -> iterable of training batches (deterministic per epoch).
        val_batches: () -> iterable of validation batches.
        steps_per_epoch: optimiser steps per epoch (for the schedule; an estimate is fine).
        run_dir: checkpoints go to ``run_dir/checkpoints``.
        resume: continue from ``checkpoints/last.pt`` if it exists.
        on_epoch: called with the epoch's record (rank 0 only), e.g. to log to W&B.
        extra_state: stored in every checkpoint (normalisation statistics, model hyperparameters).
        adversary: train a domain discriminator on unlabelled clusters with gradient reversal
            (module :mod:`calo_calib.training.domain_adaptation`); ``loss_fn`` stays the regression
            loss and ``val_loss`` is the regression loss on the (labelled) validation split. Its
            discriminator is saved in the checkpoints (``"adversary"``); ``model``'s own state_dict
            stays that of the plain network, so the calibration loads as any other.
    """
    run = TrainingRun.build(model, steps_per_epoch, loss_fn, cfg, run_dir, env, extra_state, adversary)
    if resume and run.last.exists():
        run.resume()
    for epoch in range(run.state.epoch + 1, cfg.epochs):
        if run.state.bad_epochs >= cfg.patience:
            break
        run.net.train()
        t0 = time.perf_counter()
        loss_sum, seen = train_epoch(run, epoch, train_batches, t0)
        train_time = time.perf_counter() - t0
        if env.distributed:  # the epoch's loss and throughput over all ranks, not rank 0's share
            loss_sum, seen = sum_over_ranks(loss_sum, seen, env)
        # With an adversary, `net` is the joint module: validation runs the plain network.
        val, val_sigma = evaluate(run.net if adversary is None else model, val_batches(), loss_fn, env, cfg.precision)
        run.state.clusters_seen += seen
        record = {
            "epoch": epoch,
            "train_loss": loss_sum / max(seen, 1),
            "val_loss": val,
            "val_sigma_rel": val_sigma,
            "clusters_seen": run.state.clusters_seen,
            "lr": run.sched.get_last_lr()[0],
            "train_clusters_per_s": seen / train_time if train_time > 0 else 0.0,
            "epoch_seconds": time.perf_counter() - t0,
        }
        if adversary is not None:
            record.update(adversary.epoch_record(env.distributed, env.device))
        finish_epoch(run, epoch, record, on_epoch)
    return run.state
