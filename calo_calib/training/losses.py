"""Regression losses on the correction target E_true / E_cluster (config group ``loss``).

A loss is called as ``loss(output, target)`` where ``output`` is what the network returned: the
correction (B,) of a plain network, or a :class:`~calo_calib.models.common.NetworkOutput`.
``mse`` and ``huber`` read only the correction; ``gaussian_nll`` also needs the log σ of the
uncertainty head, and ``loss.name=gaussian_nll`` is what builds the network with that head
(``calo_calib.calibration.build_network``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from calo_calib.models.common import NetworkOutput, as_output

LOSSES = ("mse", "huber", "gaussian_nll")
SIGMA_LOSSES = ("gaussian_nll",)
"""Losses that need a network with an uncertainty head (``predict_sigma=True``)."""

LossFn = Callable[[torch.Tensor | NetworkOutput, torch.Tensor], torch.Tensor]


def gaussian_nll(correction: torch.Tensor, log_sigma: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood of ``target`` given mean ``correction`` and width exp(``log_sigma``).

    All (B,), dimensionless (E_true / E_cluster and its standard deviation σ). Per cluster
    0.5·((target − correction)/σ)² + log σ (the constant 0.5·log 2π is left out). Written with
    log σ rather than σ (no division by a σ that could underflow); at the optimum σ² is the
    conditional variance of the target, so the pulls (target − correction)/σ have unit variance.
    """
    z = (target.float() - correction.float()) * torch.exp(-log_sigma.float())
    return (0.5 * z * z + log_sigma.float()).mean()


def build_loss(name: str, delta: float = 0.05) -> LossFn:
    """Return ``loss(output, target (B,)) -> scalar`` (``output``: see the module docstring).

    Args:
        name: ``mse``, ``huber`` or ``gaussian_nll``.
        delta: Huber transition point, in units of the target (a correction near 1, so 0.05 means
            residuals beyond 5% are penalised linearly: tails from lost energy do not dominate).
    """
    if name == "mse":
        return lambda out, target: F.mse_loss(as_output(out).correction.float(), target.float())
    if name == "huber":
        if delta <= 0:
            raise ValueError(f"loss.delta must be > 0, got {delta}")
        return lambda out, target: F.huber_loss(as_output(out).correction.float(), target.float(), delta=delta)
    if name == "gaussian_nll":

        def nll(out: torch.Tensor | NetworkOutput, target: torch.Tensor) -> torch.Tensor:
            o = as_output(out)
            if o.log_sigma is None:
                raise ValueError(
                    "loss=gaussian_nll needs a network with an uncertainty head (built with predict_sigma=True); "
                    "this network returns only a correction"
                )
            return gaussian_nll(o.correction, o.log_sigma, target)

        return nll
    raise ValueError(f"loss.name={name!r} is unknown; choose mse or huber, or gaussian_nll (with the uncertainty head)")
