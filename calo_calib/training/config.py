"""The trainer's settings (:class:`TrainerConfig`, config group ``trainer``) and the learning-rate schedule.

The defaults are written once, in ``conf/trainer/default.yaml`` (:func:`trainer_defaults`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TRAINER_DEFAULTS_FILE = ("trainer", "default.yaml")
"""Where the trainer defaults live (under :func:`calo_calib.paths.conf_dir`): the single source."""


@functools.cache
def trainer_defaults() -> dict[str, Any]:
    """The default of every :class:`TrainerConfig` field: ``conf/trainer/default.yaml`` (less ``device``).

    The YAML is the one place the defaults are written: every run composes it (and records it in
    its ``config.yaml``), and its comments document each key. :class:`TrainerConfig` has no
    literal defaults of its own; a field left out of the constructor takes its value from here.
    """
    from omegaconf import OmegaConf

    from calo_calib.paths import conf_dir

    values = OmegaConf.to_container(OmegaConf.load(conf_dir().joinpath(*TRAINER_DEFAULTS_FILE)), resolve=True)
    values.pop("device", None)  # chosen by the entry point (DistEnv), not a TrainerConfig field
    return values


def _from_yaml(name: str) -> Any:
    def default() -> Any:
        values = trainer_defaults()
        if name not in values:
            raise KeyError(f"TrainerConfig.{name}: no default in conf/{'/'.join(TRAINER_DEFAULTS_FILE)}")
        return values[name]

    return field(default_factory=default)


@dataclass(frozen=True)
class TrainerConfig:
    """Optimisation settings (``conf/trainer/*.yaml``); defaults from :func:`trainer_defaults`."""

    epochs: int = _from_yaml("epochs")
    lr: float = _from_yaml("lr")
    weight_decay: float = _from_yaml("weight_decay")
    warmup_fraction: float = _from_yaml("warmup_fraction")  # of all optimiser steps
    min_lr_ratio: float = _from_yaml("min_lr_ratio")  # final lr / peak lr of the cosine decay
    grad_clip: float = _from_yaml("grad_clip")
    patience: int = _from_yaml("patience")  # epochs without validation improvement before stopping
    min_delta: float = _from_yaml("min_delta")
    precision: str = _from_yaml("precision")  # auto: bf16 autocast on CUDA, fp32 on CPU; or fp32 | bf16
    max_steps_per_epoch: int = _from_yaml("max_steps_per_epoch")  # 0 = the whole training split; > 0 caps an epoch
    prefetch: int = _from_yaml("prefetch")  # batches assembled ahead in a background thread (0: off)
    compile: bool = _from_yaml("compile")  # torch.compile the training forward (static shapes: data.pad_multiple=32)
    compile_cache_limit: int = _from_yaml("compile_cache_limit")  # recompilations allowed (one per batch shape)

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
