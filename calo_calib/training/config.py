"""The trainer's settings (:class:`TrainerConfig`, config group ``trainer``) and the learning-rate schedule.

The defaults are written once, in :class:`calo_calib.config_schema.TrainerSchema` (the schema of ``conf/trainer``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


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


def lr_lambda(total_steps: int, warmup_steps: int, min_ratio: float) -> Callable[[int], float]:
    """Multiplier of the peak learning rate: linear warm-up, then cosine decay to ``min_ratio``."""

    def fn(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return fn
