"""One training epoch: the optimiser steps (with the domain adversary, if any), the progress bar, and the
epoch's bookkeeping (history, early stopping, best and last checkpoints, ``history.json``)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator

import torch
from tqdm import tqdm

from calo_calib.data.prefetch import prefetch
from calo_calib.io.atomic import write_json_atomic
from calo_calib.training import checkpoint as ckpt
from calo_calib.training.distributed import DistEnv
from calo_calib.training.inference import Batch, autocast, forward, to_device
from calo_calib.training.run_state import TrainingRun

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def train_epoch(run: TrainingRun, epoch: int, train_batches: Callable[[int], Iterable[Batch]], t0: float) -> tuple[float, int]:
    """One epoch of optimiser steps (at most ``cfg.max_steps_per_epoch``).

    Returns (sum over clusters of the loss, clusters) of this rank. ``t0`` is the epoch's start, for
    the throughput and time-left estimates of the progress bar.
    """
    cfg, env = run.cfg, run.env
    seen, loss_sum = 0, 0.0
    bar = tqdm(
        total=run.steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
        disable=not env.is_main or not _show_progress(),
    )  # fmt: skip
    batches = prefetch(train_batches(epoch), depth=cfg.prefetch, pin_memory=env.device.type == "cuda")
    unlabelled = None
    if run.adversary is not None:
        unlabelled = prefetch(run.adversary.stream(epoch), depth=cfg.prefetch, pin_memory=env.device.type == "cuda")
    for i, batch in enumerate(batches):
        if cfg.max_steps_per_epoch and i >= cfg.max_steps_per_epoch:
            break
        loss, n = train_step(run, epoch, batch, unlabelled)
        seen += n
        loss_sum += loss * n
        bar.update(1)
        elapsed = time.perf_counter() - t0
        # Remaining time of the whole run if every later epoch runs to the end (early stopping may cut it).
        steps_left = (run.steps_per_epoch - i - 1) + run.steps_per_epoch * (cfg.epochs - epoch - 1)
        bar.set_postfix(
            loss=f"{loss_sum / seen:.5f}", cl_per_s=f"{seen / elapsed:.0f}",
            run_left=_duration(steps_left * elapsed / (i + 1)),
        )  # fmt: skip
    bar.close()
    if unlabelled is not None:
        unlabelled.close()  # stops its background thread (the stream itself is endless)
    return loss_sum, seen


def train_step(run: TrainingRun, epoch: int, batch: Batch, unlabelled: Iterator[Batch] | None) -> tuple[float, int]:
    """One optimiser step on ``batch``: (regression loss, clusters in the batch).

    With an adversary the step also trains the discriminator on the next unlabelled batch; the
    returned loss is the regression term alone (what ``train_loss`` reports in either case).
    """
    cfg, env, adversary = run.cfg, run.env, run.adversary
    batch = to_device(batch, env.device)
    with autocast(env, cfg.precision):
        if unlabelled is None:
            loss = run.loss_fn(forward(run.net, batch), batch["target"], batch)
            total_loss = loss
        else:
            assert adversary is not None
            lam = adversary.lam(run.state.step, run.total)
            loss, disc, _ = adversary.losses(run.net, batch, to_device(next(unlabelled), env.device), run.loss_fn, lam)
            total_loss = loss + adversary.cfg.weight * disc
    if not torch.isfinite(total_loss):
        last = run.last
        raise NonFiniteLossError(
            f"training loss is {total_loss.item()} at epoch {epoch}, step {run.state.step}; stopping. "
            f"The last good checkpoint is {last if last.exists() else 'not written yet'}. "
            "Try a lower trainer.lr, loss=huber, or check the inputs for extreme values."
        )
    run.opt.zero_grad(set_to_none=True)
    total_loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(run.trained.parameters(), cfg.grad_clip)
    run.opt.step()
    run.sched.step()
    run.state.step += 1
    return loss.item(), batch["target"].shape[0]


def sum_over_ranks(loss_sum: float, seen: int, env: DistEnv) -> tuple[float, int]:
    """(loss_sum, seen) summed over all DDP ranks (float64, so the cluster count stays exact)."""
    totals = torch.tensor([loss_sum, float(seen)], dtype=torch.float64, device=env.device)
    torch.distributed.all_reduce(totals)
    return float(totals[0]), int(totals[1])


def finish_epoch(run: TrainingRun, epoch: int, record: dict[str, float], on_epoch: Callable[[dict[str, float]], None] | None) -> None:
    """Book the epoch: history, early-stopping counters, best and last checkpoints, log, ``history.json``."""
    state, val = run.state, record["val_loss"]
    state.history.append(record)
    state.epoch = epoch
    if run.select_last or val < state.best_val - run.cfg.min_delta:
        state.best_val, state.best_epoch, state.bad_epochs = val, epoch, 0
        run.save(run.ckpt_dir / ckpt.BEST)
    else:
        state.bad_epochs += 1
    run.save(run.last)  # after best.pt: a crash between the two loses this epoch, never best.pt
    if run.env.is_main:
        log.info(
            "epoch %d: train %.6g val %.6g (best %.6g @ %d), %.0f clusters/s",
            epoch, record["train_loss"], val, state.best_val, state.best_epoch, record["train_clusters_per_s"],
        )  # fmt: skip
        if on_epoch is not None:
            on_epoch(record)
        write_json_atomic(run.run_dir / "history.json", state.history)


def _duration(seconds: float) -> str:
    """``seconds`` as h:mm:ss (the tqdm style)."""
    seconds = int(max(0.0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _show_progress() -> bool:
    return os.environ.get("CALO_CALIB_PROGRESS", "1") != "0"
