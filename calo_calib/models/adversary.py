"""Domain-adversarial pieces (Ganin et al. 2016, JMLR 17(59), arXiv:1505.07818): gradient reversal,
the domain discriminator and the reversal-strength schedule.

The discriminator reads a network's pooled representation h (B, D_rep) (``model.representation``)
and outputs one logit per cluster: > 0 means "data-like" (the unlabelled domain), < 0 "labelled MC".
Between the representation and the discriminator sits a gradient-reversal layer: identity in the
forward pass, gradient multiplied by -λ in the backward pass. Minimising one total loss
``L_regression + weight · BCE(discriminator)`` then trains the discriminator to tell the domains
apart while the network below the reversal is pushed to make them indistinguishable.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from calo_calib.models.common import mlp


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(lam)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (lam,) = ctx.saved_tensors
        return -lam.to(grad.dtype) * grad, None


def reverse_gradient(x: torch.Tensor, lam: torch.Tensor | float) -> torch.Tensor:
    """Identity on ``x`` (any shape) in the forward pass; the backward pass multiplies the gradient by -``lam``.

    ``lam`` may be a 0-d tensor (so ``torch.compile`` does not specialise on its value) or a float.
    """
    lam_t = torch.as_tensor(lam, dtype=torch.float32, device=x.device)
    return _ReverseGradient.apply(x, lam_t)


def grl_lambda(progress: float, lambda_max: float = 1.0, gamma: float = 10.0) -> float:
    """Reversal strength λ(p) = λ_max · (2 / (1 + exp(-γ p)) - 1) at training progress p ∈ [0, 1].

    Ganin et al. 2016 (γ = 10): λ rises from 0 smoothly, so the discriminator first learns on a
    representation that is still shaped by the regression alone, and the reversal is not dominated
    by the noise of an untrained discriminator.
    """
    p = min(max(float(progress), 0.0), 1.0)
    return float(lambda_max) * (2.0 / (1.0 + math.exp(-float(gamma) * p)) - 1.0)


class DomainDiscriminator(nn.Module):
    """MLP on the representation: h (B, D_rep) -> domain logit (B,) (> 0: unlabelled / data-like).

    Args:
        in_dim: D_rep, the width of the network's representation (``model.representation_dim``).
        hidden: width of each hidden layer.
        n_layers: number of hidden layers (>= 1).
        dropout: dropout after each hidden layer.
    """

    def __init__(self, in_dim: int, hidden: int = 64, n_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        if in_dim < 1 or hidden < 1 or n_layers < 1:
            raise ValueError(f"DomainDiscriminator: bad sizes in_dim={in_dim}, hidden={hidden}, n_layers={n_layers}")
        # LayerNorm first: the discriminator sees a representation whose scale the network is free to change.
        self.net = nn.Sequential(nn.LayerNorm(in_dim), mlp(in_dim, [hidden] * n_layers, 1, dropout=dropout))

    def forward(self, features: torch.Tensor, lam: torch.Tensor | float = 1.0) -> torch.Tensor:
        """features (B, D_rep), reversal strength ``lam`` -> logits (B,) in float32."""
        return self.net(reverse_gradient(features, lam)).squeeze(-1).float()
