"""The training loop of the network calibrations.

AdamW with linear warm-up and cosine decay, gradient clipping, bf16 autocast on GPU (fp32 on CPU),
early stopping on the validation loss, a checkpoint every epoch (last and best) and ``resume`` from
the last checkpoint with an identical continuation: the data order depends only on (seed, epoch)
and every RNG state is restored. A non-finite loss stops the run with a clear message; the last
good checkpoint stays on disk. Ready for DDP: the model is wrapped when the world size is > 1 and
only rank 0 writes.

Options: a loss that needs the uncertainty head (``gaussian_nll``) gets the network's full output
(:class:`~calo_calib.models.common.NetworkOutput`); with a :class:`~calo_calib.training.domain_adaptation.DomainAdversary`
every step also trains a domain discriminator on unlabelled data-like clusters through gradient
reversal, and the epoch record gains ``adv_disc_loss``, ``adv_disc_acc`` and ``adv_lambda``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from calo_calib.data.prefetch import prefetch
from calo_calib.evaluation.metrics import sigma_rel
from calo_calib.io.atomic import write_json_atomic
from calo_calib.models.common import as_output, relative_sigma
from calo_calib.training import checkpoint as ckpt
from calo_calib.training.distributed import DistEnv
from calo_calib.training.domain_adaptation import AdversarialNetwork, DomainAdversary
from calo_calib.training.losses import LossFn

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def _from_schema(name: str) -> Any:
    """The default of ``trainer.<name>``: the field of :class:`~calo_calib.config_schema.TrainerSchema`,
    the one place the trainer defaults are written (the schema of ``conf/trainer``)."""
    from calo_calib.config_schema import TrainerSchema

    return field(default=TrainerSchema.__dataclass_fields__[name].default)


@dataclass(frozen=True)
class TrainerConfig:
    """Optimisation settings (``cfg.trainer`` less ``device``); defaults from the schema of ``conf/trainer``."""

    epochs: int = _from_schema("epochs")
    lr: float = _from_schema("lr")
    weight_decay: float = _from_schema("weight_decay")
    warmup_fraction: float = _from_schema("warmup_fraction")  # of all optimiser steps
    min_lr_ratio: float = _from_schema("min_lr_ratio")  # final lr / peak lr of the cosine decay
    grad_clip: float = _from_schema("grad_clip")
    patience: int = _from_schema("patience")  # epochs without validation improvement before stopping
    min_delta: float = _from_schema("min_delta")
    precision: str = _from_schema("precision")  # auto: bf16 autocast on CUDA, fp32 on CPU; or fp32 | bf16
    max_steps_per_epoch: int = _from_schema("max_steps_per_epoch")  # 0 = the whole training split; > 0 caps an epoch
    prefetch: int = _from_schema("prefetch")  # batches assembled ahead in a background thread (0: off)
    compile: bool = _from_schema("compile")  # torch.compile the training forward (static shapes: data.pad_multiple=32)
    compile_cache_limit: int = _from_schema("compile_cache_limit")  # recompilations allowed (one per batch shape)

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ValueError(f"trainer.epochs must be > 0, got {self.epochs}")
        if self.lr <= 0:
            raise ValueError(f"trainer.lr must be > 0, got {self.lr}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"trainer.precision must be auto, fp32 or bf16, got {self.precision!r}")


@dataclass
class TrainState:
    """What a checkpoint restores besides the weights."""

    epoch: int = -1  # last completed epoch
    step: int = 0
    best_val: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    clusters_seen: int = 0  # training clusters of all completed epochs (the learning curve's x axis)
    history: list[dict[str, float]] = field(default_factory=list)


def lr_lambda(total_steps: int, warmup_steps: int, min_ratio: float) -> Callable[[int], float]:
    """Multiplier of the peak learning rate: linear warm-up, then cosine decay to ``min_ratio``."""

    def fn(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return fn


def _to_device(batch: Batch, device: torch.device) -> Batch:
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) else v for k, v in batch.items()}


def _forward(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    return model(batch["cells"], batch["valid"], batch["cluster"], batch.get("pair"))


def _autocast(env: DistEnv, precision: str):
    use_bf16 = precision == "bf16" or (precision == "auto" and env.device.type == "cuda")
    return torch.autocast(device_type=env.device.type, dtype=torch.bfloat16, enabled=use_bf16)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, batches: Iterable[Batch], loss_fn: LossFn, env: DistEnv, precision: str
) -> tuple[float, float]:
    """(cluster-weighted mean loss, σ_rel of E_reco/E_true) over ``batches``, across all ranks.

    E_reco/E_true = correction / target for every cluster (E_reco = correction · E_cluster and
    E_true = target · E_cluster), so the figure of merit comes from the same pass as the loss: what the
    learning curve of a run plots. σ_rel is NaN without clusters.
    """
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=env.device)
    ratios: list[np.ndarray] = []
    for batch in batches:
        batch = _to_device(batch, env.device)
        with _autocast(env, precision):
            pred = _forward(model, batch)
        n = batch["target"].shape[0]
        total[0] += loss_fn(pred, batch["target"], batch).double() * n
        total[1] += n
        ratios.append((as_output(pred).correction.double() / batch["target"].double()).cpu().numpy())
    if env.distributed:
        torch.distributed.all_reduce(total)
        gathered: list[list[np.ndarray] | None] = [None] * env.world_size
        torch.distributed.all_gather_object(gathered, ratios)
        ratios = [r for part in gathered for r in (part or [])]
    ratio = np.concatenate(ratios) if ratios else np.empty(0)
    # A non-finite ratio (a diverging network) must not stop the epoch here: the loss reports it.
    return float(total[0] / total[1].clamp(min=1)), float(sigma_rel(ratio[np.isfinite(ratio)]))


def evaluate_loss(model: torch.nn.Module, batches: Iterable[Batch], loss_fn: LossFn, env: DistEnv, precision: str) -> float:
    """Cluster-weighted mean loss over ``batches`` (all-reduced across ranks)."""
    return evaluate(model, batches, loss_fn, env, precision)[0]


@torch.no_grad()
def predict(model: torch.nn.Module, batches: Iterable[Batch], env: DistEnv, precision: str = "fp32") -> dict[str, np.ndarray]:
    """Corrections for every cluster of ``batches``: {"row_id": (n,), "correction": (n,)}.

    A network with an uncertainty head adds ``"sigma"`` (n,): the predicted relative resolution
    σ / correction (:func:`~calo_calib.models.common.relative_sigma`), dimensionless.
    """
    model.eval()
    rows, corr, sigma = [], [], []
    for batch in batches:
        batch = _to_device(batch, env.device)
        with _autocast(env, precision):
            out = as_output(_forward(model, batch))
        rows.append(batch["row_id"].cpu().numpy())
        corr.append(out.correction.float().cpu().numpy())
        if out.log_sigma is not None:
            sigma.append(relative_sigma(out.correction.float(), out.log_sigma.float()).cpu().numpy())
    result = {"row_id": np.concatenate(rows), "correction": np.concatenate(corr)}
    if sigma:
        result["sigma"] = np.concatenate(sigma)
    return result


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
    """Train ``model`` and return its final :class:`TrainState`; the best weights are in ``best.pt``.

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
    trained, net = _wrap_for_training(model, adversary, cfg, env)
    opt = _optimizer(model, adversary, cfg, env)
    if cfg.max_steps_per_epoch > 0:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    total = max(1, steps_per_epoch * cfg.epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(total, int(cfg.warmup_fraction * total), cfg.min_lr_ratio))
    run = _Run(model, trained, net, opt, sched, cfg, env, loss_fn, adversary, steps_per_epoch, total, Path(run_dir), extra_state)
    if resume and run.last.exists():
        _resume(run)
    for epoch in range(run.state.epoch + 1, cfg.epochs):
        if run.state.bad_epochs >= cfg.patience:
            break
        net.train()
        t0 = time.perf_counter()
        loss_sum, seen = _train_epoch(run, epoch, train_batches, t0)
        train_time = time.perf_counter() - t0
        if env.distributed:  # the epoch's loss and throughput over all ranks, not rank 0's share
            loss_sum, seen = _sum_over_ranks(loss_sum, seen, env)
        # With an adversary, `net` is the joint module: validation runs the plain network.
        val, val_sigma = evaluate(net if adversary is None else model, val_batches(), loss_fn, env, cfg.precision)
        run.state.clusters_seen += seen
        record = {
            "epoch": epoch,
            "train_loss": loss_sum / max(seen, 1),
            "val_loss": val,
            "val_sigma_rel": val_sigma,
            "clusters_seen": run.state.clusters_seen,
            "lr": sched.get_last_lr()[0],
            "train_clusters_per_s": seen / train_time if train_time > 0 else 0.0,
            "epoch_seconds": time.perf_counter() - t0,
        }
        if adversary is not None:
            record.update(adversary.epoch_record(env.distributed, env.device))
        _finish_epoch(run, epoch, record, on_epoch)
    return run.state


@dataclass
class _Run:
    """What one :func:`fit` call trains with, shared by its helpers (they would otherwise take ten arguments)."""

    model: torch.nn.Module  # the plain network: its state_dict is the calibration that is saved
    trained: torch.nn.Module  # what the optimiser updates: model, or model + domain discriminator
    net: torch.nn.Module  # what runs the training forward: trained, wrapped in DDP and/or torch.compile
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    cfg: TrainerConfig
    env: DistEnv
    loss_fn: LossFn
    adversary: DomainAdversary | None
    steps_per_epoch: int  # already capped by cfg.max_steps_per_epoch
    total: int  # optimiser steps of the whole run (the schedule's and the reversal ramp's length)
    run_dir: Path
    extra_state: dict[str, Any] | None
    state: TrainState = field(default_factory=TrainState)

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def last(self) -> Path:
        return self.ckpt_dir / ckpt.LAST

    @property
    def select_last(self) -> bool:
        """Keep the final weights as ``best.pt`` instead of the lowest validation loss.

        Model selection on the labelled validation loss alone cannot see the domain term (it would
        favour the early epochs, before the reversal ramps up): checkpoint=last keeps the final weights.
        """
        return self.adversary is not None and self.adversary.cfg.checkpoint == "last"


def _wrap_for_training(
    model: torch.nn.Module, adversary: DomainAdversary | None, cfg: TrainerConfig, env: DistEnv
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(trained, net): the module the optimiser updates, on the device, and the one that runs forward."""
    # With an adversary the network and its discriminator train as one module (one DDP wrapper).
    trained: torch.nn.Module = model if adversary is None else AdversarialNetwork(model, adversary.discriminator)
    trained.to(env.device)
    net: torch.nn.Module = trained
    if env.distributed:
        net = torch.nn.parallel.DistributedDataParallel(trained, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    if cfg.compile:
        # Static shapes: one graph per (batch, padded length) bucket; dynamic shapes recompiled
        # unstably in the platform measurements. Checkpoints keep saving the plain module.
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, cfg.compile_cache_limit)
        net = torch.compile(net, dynamic=False)
    return trained, net


def _optimizer(model: torch.nn.Module, adversary: DomainAdversary | None, cfg: TrainerConfig, env: DistEnv) -> torch.optim.AdamW:
    """AdamW over the network (and the discriminator, with its own learning rate)."""
    # The fused (single-kernel) AdamW on CUDA: same update, fewer launches.
    groups: list[dict[str, Any]] = [{"params": list(model.parameters())}]
    if adversary is not None:  # the discriminator may learn faster than the network it plays against
        groups.append({"params": list(adversary.discriminator.parameters()), "lr": cfg.lr * adversary.cfg.lr_mult})
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=env.device.type == "cuda")


def _resume(run: _Run) -> None:
    """Restore weights, optimiser, schedule, train state and every RNG from ``checkpoints/last.pt``."""
    last, adversary = run.last, run.adversary
    payload = ckpt.load(last, run.env.device)
    run.model.load_state_dict(payload["model"])
    if adversary is not None:
        if "adversary" not in payload:
            raise ValueError(f"{last} holds no domain discriminator: it was trained without the adversary")
        adversary.discriminator.load_state_dict(payload["adversary"])
    run.opt.load_state_dict(payload["optimizer"])
    run.sched.load_state_dict(payload["scheduler"])
    run.state = TrainState(**payload["state"])
    ckpt.set_rng_state(payload["rng"])  # last, so that nothing above draws from the restored streams
    state = run.state
    log.info("resumed from %s after epoch %d (best val %.6g at epoch %d)", last, state.epoch, state.best_val, state.best_epoch)


def _checkpoint(run: _Run, path: Path) -> None:
    """Save everything :func:`_resume` restores to ``path`` (rank 0 only: the ranks hold the same weights)."""
    if not run.env.is_main:
        return
    payload = {
        "model": run.model.state_dict(),
        "optimizer": run.opt.state_dict(),
        "scheduler": run.sched.state_dict(),
        "state": asdict(run.state),
        "rng": ckpt.rng_state(),
        "extra": run.extra_state or {},
    }
    if run.adversary is not None:
        payload["adversary"] = run.adversary.discriminator.state_dict()
    ckpt.save(path, payload)


def _train_epoch(run: _Run, epoch: int, train_batches: Callable[[int], Iterable[Batch]], t0: float) -> tuple[float, int]:
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
        loss, n = _train_step(run, epoch, batch, unlabelled)
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


def _train_step(run: _Run, epoch: int, batch: Batch, unlabelled: Iterator[Batch] | None) -> tuple[float, int]:
    """One optimiser step on ``batch``: (regression loss, clusters in the batch).

    With an adversary the step also trains the discriminator on the next unlabelled batch; the
    returned loss is the regression term alone (what ``train_loss`` reports in either case).
    """
    cfg, env, adversary = run.cfg, run.env, run.adversary
    batch = _to_device(batch, env.device)
    with _autocast(env, cfg.precision):
        if unlabelled is None:
            loss = run.loss_fn(_forward(run.net, batch), batch["target"], batch)
            total_loss = loss
        else:
            assert adversary is not None
            lam = adversary.lam(run.state.step, run.total)
            loss, disc, _ = adversary.losses(run.net, batch, _to_device(next(unlabelled), env.device), run.loss_fn, lam)
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


def _sum_over_ranks(loss_sum: float, seen: int, env: DistEnv) -> tuple[float, int]:
    """(loss_sum, seen) summed over all DDP ranks (float64, so the cluster count stays exact)."""
    totals = torch.tensor([loss_sum, float(seen)], dtype=torch.float64, device=env.device)
    torch.distributed.all_reduce(totals)
    return float(totals[0]), int(totals[1])


def _finish_epoch(run: _Run, epoch: int, record: dict[str, float], on_epoch: Callable[[dict[str, float]], None] | None) -> None:
    """Book the epoch: history, early-stopping counters, best and last checkpoints, log, ``history.json``."""
    state, val = run.state, record["val_loss"]
    state.history.append(record)
    state.epoch = epoch
    if run.select_last or val < state.best_val - run.cfg.min_delta:
        state.best_val, state.best_epoch, state.bad_epochs = val, epoch, 0
        _checkpoint(run, run.ckpt_dir / ckpt.BEST)
    else:
        state.bad_epochs += 1
    _checkpoint(run, run.last)  # after best.pt: a crash between the two loses this epoch, never best.pt
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

