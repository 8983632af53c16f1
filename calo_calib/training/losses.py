"""Regression losses on the correction target E_true / E_cluster (config group ``loss``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def build_loss(name: str, delta: float = 0.05) -> LossFn:
    """Return ``loss(prediction (B,), target (B,)) -> scalar``.

    Args:
        name: ``mse`` or ``huber``.
        delta: Huber transition point, in units of the target (a correction near 1, so 0.05 means
            residuals beyond 5% are penalised linearly: tails from lost energy do not dominate).
    """
    if name == "mse":
        return lambda pred, target: F.mse_loss(pred.float(), target.float())
    if name == "huber":
        if delta <= 0:
            raise ValueError(f"loss.delta must be > 0, got {delta}")
        return lambda pred, target: F.huber_loss(pred.float(), target.float(), delta=delta)
    raise ValueError(f"loss.name={name!r} is unknown; choose mse or huber")
