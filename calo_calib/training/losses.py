"""Regression losses on the correction target E_true / E_cluster (config group ``loss``).

A loss is called as ``loss(output, target, batch)`` where ``output`` is what the network returned:
the correction (B,) of a plain network, or a :class:`~calo_calib.models.common.NetworkOutput`, and
``batch`` the loader's batch (only the resolution-scaled losses read it; it may be omitted otherwise).
``mse`` and ``huber`` read only the correction; ``gaussian_nll`` also needs the log σ of the
uncertainty head, and ``loss.name=gaussian_nll`` is what builds the network with that head
(``calo_calib.calibration.build_run_network``).

Resolution-scaled losses (``pull_mse``, ``pull_huber``): each residual is divided by the expected
relative resolution of its cluster, σ_exp(E_cluster, |η|) of the ATLAS MC model
(:func:`calo_calib.physics.resolution.resolution_model`, carried in the batch as
``expected_resolution``). A plain MSE on E_true/E_cluster weights a 10-GeV cluster (σ ≈ 4-7 %)
~50 times more than a 300-GeV one (σ ≈ 1 %), so nothing pushes the network to be precise at high
energy, where the BDT (trained per E_T bin) is; in pull units every cluster counts by its expected
precision, which is the maximum-likelihood loss for Gaussian residuals of known width. The model is
fixed (not fitted to the data), so it cannot leak the truth; it only sets relative weights.
``pull_huber`` is quadratic up to ``delta`` pulls and linear beyond (the IQR figure of merit ignores
the tails, and so should the loss). Both are multiplied by :data:`PULL_LOSS_SCALE` so their values and
gradients stay on the scale of the plain MSE (learning rate and gradient clipping keep their meaning).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from calo_calib.models.common import NetworkOutput, as_output

LOSSES = ("mse", "huber", "gaussian_nll", "pull_mse", "pull_huber")
SIGMA_LOSSES = ("gaussian_nll",)
"""Losses that need a network with an uncertainty head (``predict_sigma=True``)."""

PULL_LOSSES = ("pull_mse", "pull_huber")
"""Losses that divide each residual by the cluster's expected resolution (``batch["expected_resolution"]``)."""

PULL_LOSS_SCALE = 0.02**2
"""σ_ref² of the pull losses: loss = σ_ref² · mean(ρ(pull)); σ_ref = 2 % is a typical calibrated
resolution, so a pull loss of a good calibration is ~ the MSE it would have (a constant factor only)."""

LossFn = Callable[..., torch.Tensor]


def pulls(correction: torch.Tensor, target: torch.Tensor, batch: dict[str, torch.Tensor] | None) -> torch.Tensor:
    """(target − correction) / σ_exp (B,): residuals in units of the expected resolution of each cluster.

    σ_exp is ``batch["expected_resolution"]`` (B,), the relative resolution σ/E, which to first order
    is the standard deviation of E_true / E_cluster (a correction near 1).
    """
    if batch is None or "expected_resolution" not in batch:
        raise ValueError("resolution-scaled losses need the batch's 'expected_resolution' (the loader adds it)")
    return (target.float() - correction.float()) / batch["expected_resolution"].float().clamp_min(1e-4)


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
    """Return ``loss(output, target (B,), batch=None) -> scalar`` (see the module docstring).

    Args:
        name: ``mse``, ``huber`` or ``gaussian_nll``.
        delta: Huber transition point, in units of the target (a correction near 1, so 0.05 means
            residuals beyond 5% are penalised linearly: tails from lost energy do not dominate);
            for ``pull_huber`` in pulls (units of the expected resolution).
    """
    if name == "mse":
        return lambda out, target, batch=None: F.mse_loss(as_output(out).correction.float(), target.float())
    if name in ("huber", "pull_huber"):
        if delta <= 0:
            raise ValueError(f"loss.delta must be > 0, got {delta}")
    if name == "huber":
        return lambda out, target, batch=None: F.huber_loss(as_output(out).correction.float(), target.float(), delta=delta)
    if name == "pull_mse":
        return lambda out, target, batch=None: PULL_LOSS_SCALE * pulls(as_output(out).correction, target, batch).square().mean()
    if name == "pull_huber":

        def pull_huber(out: torch.Tensor | NetworkOutput, target: torch.Tensor, batch=None) -> torch.Tensor:  # noqa: ANN001
            z = pulls(as_output(out).correction, target, batch)
            return PULL_LOSS_SCALE * F.huber_loss(z, torch.zeros_like(z), delta=delta)

        return pull_huber
    if name == "gaussian_nll":

        def nll(out: torch.Tensor | NetworkOutput, target: torch.Tensor, batch=None) -> torch.Tensor:  # noqa: ANN001
            o = as_output(out)
            if o.log_sigma is None:
                raise ValueError(
                    "loss=gaussian_nll needs a network with an uncertainty head (built with predict_sigma=True); "
                    "this network returns only a correction"
                )
            return gaussian_nll(o.correction, o.log_sigma, target)

        return nll
    raise ValueError(f"loss.name={name!r} is unknown; choose one of {', '.join(LOSSES)}")
