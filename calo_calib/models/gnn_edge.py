"""Edge-feature variant of the cell transformer: pairwise cell features bias the attention (ParT-style).

A fully connected graph over the cells of a cluster whose edges carry geometric and energy relations;
the edge features enter as one additive bias per head on the attention logits ("interaction matrix"
U of the Particle Transformer, Qu, Li, Qian 2022, arXiv:2202.03772):

    attention = softmax(Q Kᵀ / √d + U + M) V,    U = MLP_pair(f_ij) (B, H, L, L),  M = -inf on padded keys

U is computed once per forward pass and shared by every layer, as in ParT.

Pair features f_ij (6 per ordered pair, from the raw ``pair`` tensor: η, φ [rad], x, y, z [mm], layer,
E [GeV]) and their fixed scales (chosen from the simulated cluster window, ±0.09 in η and up to 13
middle-layer cells ≈ ±0.16 rad in φ, so every feature is O(1)):

    Δη / 0.1
    Δφ / 0.1                             Δφ wrapped to (-π, π]
    (log(ΔR + 1e-3) + 3) / 2             ΔR = √(Δη² + Δφ²); 1e-3 < the strip pitch (0.003), so strip
                                         neighbours stay distinct from the diagonal (i = j)
    (log(d_3D / mm + 1) - 4) / 2         3-D distance of the cell centres; +1 mm keeps i = j finite
    (layer_i - layer_j) / 3
    log(max(E_i, 1e-3) / max(E_j, 1e-3)) / 5     E floored at 1 MeV (cell energies can be ≤ 0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from calo_calib.models.common import key_padding_bias, mlp, zero_padding
from calo_calib.models.transformer import CellTransformer

N_PAIR_INPUTS = 7  # η, φ, x, y, z, layer, E (docs/architecture.md)
N_PAIR_FEATURES = 6

# Fixed scales of the pair features (see the module docstring).
DETA_SCALE = 0.1
DPHI_SCALE = 0.1
DR_EPS = 1e-3
LOG_DR_SHIFT, LOG_DR_SCALE = -3.0, 2.0
DIST_EPS_MM = 1.0
LOG_DIST_SHIFT, LOG_DIST_SCALE = 4.0, 2.0
LAYER_SCALE = 3.0
E_FLOOR_GEV = 1e-3
LOG_E_RATIO_SCALE = 5.0


def wrap_phi(dphi: torch.Tensor) -> torch.Tensor:
    """Wrap an angle difference [rad] to (-π, π]; elementwise, no data-dependent control flow."""
    return dphi - 2 * math.pi * torch.ceil((dphi - math.pi) / (2 * math.pi))


def pair_features(pair: torch.Tensor) -> torch.Tensor:
    """Scaled pairwise features (B, L, L, 6) from raw per-cell quantities ``pair`` (B, L, 7).

    Entry [b, i, j] describes cell i relative to cell j (row i = query, column j = key). Padded cells
    must be zeroed beforehand (their pairs are masked as keys anyway; this keeps them finite).
    """
    eta, phi, x, y, z, layer, e = pair.unbind(-1)  # each (B, L)
    deta = eta[:, :, None] - eta[:, None, :]
    dphi = wrap_phi(phi[:, :, None] - phi[:, None, :])
    dr = torch.sqrt(deta * deta + dphi * dphi)
    pos = torch.stack([x, y, z], dim=-1)  # (B, L, 3) mm
    diff = pos[:, :, None, :] - pos[:, None, :, :]
    dist = torch.sqrt((diff * diff).sum(-1))  # (B, L, L) mm
    dlayer = layer[:, :, None] - layer[:, None, :]
    log_e = torch.log(torch.clamp(e, min=E_FLOOR_GEV))
    dlog_e = log_e[:, :, None] - log_e[:, None, :]
    return torch.stack(
        [
            deta / DETA_SCALE,
            dphi / DPHI_SCALE,
            (torch.log(dr + DR_EPS) - LOG_DR_SHIFT) / LOG_DR_SCALE,
            (torch.log(dist + DIST_EPS_MM) - LOG_DIST_SHIFT) / LOG_DIST_SCALE,
            dlayer / LAYER_SCALE,
            dlog_e / LOG_E_RATIO_SCALE,
        ],
        dim=-1,
    )


class EdgeTransformer(CellTransformer):
    """``CellTransformer`` whose attention logits get a learned per-head bias from pairwise cell features.

    Update rule: as :class:`~calo_calib.models.transformer.CellTransformer`, with the bias of every layer
        U = MLP_pair(pair_features(pair)),   MLP_pair = Linear(6, pair_hidden) -> GELU -> Linear(pair_hidden, H)
        x <- x + MHSA(LN(x)) with logits Q Kᵀ/√d + U + M

    Shapes:
        cells   float32 (B, L, F_cell), raw
        valid   bool    (B, L), True = real cell; each cluster needs >= 1 valid cell
        cluster float32 (B, F_cluster), raw
        pair    float32 (B, L, 7): raw η, φ [rad], x, y, z [mm], layer, E [GeV]; required
        return  float32 (B,), the correction E_true / E_cluster; a ``NetworkOutput`` with
                ``predict_sigma`` or ``return_features`` (as ``CellTransformer``)

    Memory: the pair embedding holds O(B·L²·(pair_hidden + H)) floats (see ``docs/models.md``).
    """

    def __init__(
        self,
        n_cell_features: int,
        n_cluster_features: int,
        norm: Mapping[str, torch.Tensor] | None = None,
        embed_dim: int = 64,
        n_layers: int = 3,
        n_heads: int = 4,
        ff_mult: int = 2,
        dropout: float = 0.0,
        head_hidden: int = 64,
        pair_hidden: int = 32,
        predict_sigma: bool = False,
    ) -> None:
        super().__init__(
            n_cell_features, n_cluster_features, norm, embed_dim, n_layers, n_heads, ff_mult, dropout, head_hidden,
            predict_sigma=predict_sigma,
        )  # fmt: skip
        # Acts on the last dim of (B, L, L, 6): a 1x1 convolution over the pair matrix, as in ParT.
        self.pair_embed = mlp(N_PAIR_FEATURES, [pair_hidden], n_heads)

    def attention_bias(self, valid: torch.Tensor, pair: torch.Tensor | None) -> torch.Tensor:
        """U + M (B, H, L, L): learned pair bias plus -inf on padded keys."""
        if pair is None:
            raise ValueError("EdgeTransformer needs the `pair` tensor (B, L, 7); got None")
        if pair.shape[-1] != N_PAIR_INPUTS:
            raise ValueError(f"EdgeTransformer: pair has {pair.shape[-1]} columns, expected {N_PAIR_INPUTS}")
        f = pair_features(zero_padding(pair, valid))  # (B, L, L, 6)
        u = self.pair_embed(f).permute(0, 3, 1, 2)  # (B, H, L, L)
        return u + key_padding_bias(valid, u.dtype)
