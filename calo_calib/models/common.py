"""Building blocks shared by the networks: input normalisation, MLPs, masked attention, pooling.

Conventions (``docs/architecture.md``): ``valid`` is a bool (B, L) tensor, True = a real cell; every
cluster has at least one valid cell. Padded positions may hold anything (even inf/NaN): the networks
zero them with :func:`zero_padding` before any arithmetic, and attention never reads them as keys.
Padded *query* rows are computed (they attend to the valid keys, so they stay finite) but never used.

Forward passes here contain no Python control flow on tensor values and no ``.item()``, so they trace
and export (ONNX) unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

NORM_KEYS = ("cell_mean", "cell_std", "cluster_mean", "cluster_std", "target_mean", "target_std")


class NetworkOutput(NamedTuple):
    """What a network returns beyond the plain correction (uncertainty head, representation).

    ``correction`` (B,): E_true / E_cluster predicted (the mean; the main output).
    ``log_sigma`` (B,) or None: log of σ, the predicted standard deviation of E_true / E_cluster
    (dimensionless, same units as the correction); only networks built with ``predict_sigma``.
    ``features`` (B, D_rep) or None: the pooled representation the heads read (``return_features=True``).
    """

    correction: torch.Tensor
    log_sigma: torch.Tensor | None = None
    features: torch.Tensor | None = None


def as_output(out: torch.Tensor | NetworkOutput) -> NetworkOutput:
    """A network's return value as a :class:`NetworkOutput` (a plain (B,) tensor is the correction)."""
    if isinstance(out, NetworkOutput):
        return out
    if isinstance(out, tuple):  # torch.compile / DDP may hand back a plain tuple of the same fields
        return NetworkOutput(*out)
    return NetworkOutput(out)


def relative_sigma(correction: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Predicted relative resolution σ / correction (B,) from the outputs of an uncertainty head.

    σ = exp(log_sigma) is the standard deviation of E_true / E_cluster; divided by the correction it
    is σ(E) / E_reco, the relative resolution of E_reco (first order: σ(E_reco / E_true) for a
    response near 1). |correction| is floored at 1e-6 so a pathological output cannot divide by 0.
    """
    return torch.exp(log_sigma) / correction.abs().clamp_min(1e-6)


class InputNorm(nn.Module):
    """Feature standardisation and target de-standardisation, stored as persistent buffers.

    Built from ``norm`` = {cell_mean, cell_std (F_cell,), cluster_mean, cluster_std (F_cluster,),
    target_mean, target_std (scalars)} as produced by ``NormStats.as_tensors()``; ``None`` gives the
    identity (mean 0, std 1) with the same buffer shapes, so a model built with ``norm=None`` can load a
    trained state_dict (the checkpoint carries the statistics, no external scaler is needed).
    """

    def __init__(
        self, n_cell_features: int, n_cluster_features: int, norm: Mapping[str, torch.Tensor] | None = None
    ) -> None:
        super().__init__()
        expected = {
            "cell_mean": (n_cell_features,),
            "cell_std": (n_cell_features,),
            "cluster_mean": (n_cluster_features,),
            "cluster_std": (n_cluster_features,),
            "target_mean": (),
            "target_std": (),
        }
        identity = {k: torch.zeros(s) if k.endswith("mean") else torch.ones(s) for k, s in expected.items()}
        if norm is not None:
            missing = [k for k in NORM_KEYS if k not in norm]
            if missing:
                raise ValueError(f"InputNorm: norm is missing keys {missing}; expected {list(NORM_KEYS)}")
        for key, shape in expected.items():
            value = identity[key] if norm is None else torch.as_tensor(norm[key], dtype=torch.float32).detach().clone()
            if tuple(value.shape) != shape and not (shape == () and value.numel() == 1):
                raise ValueError(f"InputNorm: norm[{key!r}] has shape {tuple(value.shape)}, expected {shape}")
            value = value.reshape(shape).float()
            if key.endswith("std") and not bool(torch.all(value > 0)):
                raise ValueError(f"InputNorm: norm[{key!r}] must be > 0 everywhere, got {value.tolist()}")
            if not bool(torch.all(torch.isfinite(value))):
                raise ValueError(f"InputNorm: norm[{key!r}] is not finite: {value.tolist()}")
            self.register_buffer(key, value, persistent=True)

    def cells(self, cells: torch.Tensor) -> torch.Tensor:
        """(B, L, F_cell) raw -> standardised."""
        return (cells - self.cell_mean) / self.cell_std

    def cluster(self, cluster: torch.Tensor) -> torch.Tensor:
        """(B, F_cluster) raw -> standardised."""
        return (cluster - self.cluster_mean) / self.cluster_std

    def target(self, raw: torch.Tensor) -> torch.Tensor:
        """Network output in standardised units (B,) -> correction (B,) = target_mean + target_std * raw."""
        return self.target_mean + self.target_std * raw


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    dropout: float = 0.0,
    final_activation: bool = False,
) -> nn.Sequential:
    """Linear -> GELU (-> Dropout) blocks through ``hidden`` widths, then a Linear to ``out_dim``.

    Acts on the last dimension, so it works per cell (B, L, in) and per pair (B, L, L, in) alike.
    ``final_activation`` appends a GELU after the output layer.
    """
    layers: list[nn.Module] = []
    dims = [in_dim, *hidden]
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        layers += [nn.Linear(a, b), nn.GELU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(dims[-1], out_dim))
    if final_activation:
        layers.append(nn.GELU())
    return nn.Sequential(*layers)


def zero_padding(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Replace padded positions of x (B, L, ...) by 0, so garbage (even inf/NaN) there cannot leak.

    ``torch.where`` rather than a multiplication: 0 * inf = NaN.
    """
    mask = valid.reshape(valid.shape + (1,) * (x.dim() - valid.dim()))
    return torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))


def key_padding_bias(valid: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive attention bias (B, 1, 1, L): 0 for valid keys, -inf for padded ones.

    -inf is safe because every cluster has at least one valid cell, so no softmax row is all -inf.
    """
    zero = torch.zeros((), dtype=dtype, device=valid.device)
    neg_inf = torch.full((), float("-inf"), dtype=dtype, device=valid.device)
    return torch.where(valid, zero, neg_inf)[:, None, None, :]


class MultiHeadSelfAttention(nn.Module):
    """Self-attention softmax(QKᵀ/√d + bias)V over the cells, via ``F.scaled_dot_product_attention``.

    ``bias`` (B, H or 1, L or 1, L) is additive on the logits and already includes the key padding
    (-inf); it is cast to the query dtype so the layer also runs under bf16 autocast.
    """

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % n_heads != 0:
            raise ValueError(f"embed_dim={dim} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.head_dim = dim // n_heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x (B, L, D), bias (B, H|1, L|1, L) -> (B, L, D)."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # 3 x (B, H, L, d)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.to(q.dtype), dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer.

    Update rule, for cell embeddings x (B, L, D) and attention bias U (incl. padding -inf):
        x <- x + Dropout(MHSA(LN(x), U))
        x <- x + Dropout(FF(LN(x))),   FF = Linear(D, ff_mult·D) -> GELU -> Dropout -> Linear(ff_mult·D, D)
    """

    def __init__(self, dim: int, n_heads: int, ff_mult: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, n_heads, dropout)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = mlp(dim, [ff_mult * dim], dim, dropout=dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x (B, L, D), bias (B, H|1, L|1, L) -> (B, L, D)."""
        x = x + self.drop(self.attn(self.norm_attn(x), bias))
        return x + self.drop(self.ff(self.norm_ff(x)))


class AttentionPooling(nn.Module):
    """Learned queries attending over the valid cells: (B, L, D) -> (B, D).

    ``n_queries`` learned vectors each attend (multi-head, ``n_heads``) to the cell embeddings with
    the padded cells masked; their outputs are concatenated and projected back to D. A softmax-weighted
    average is invariant to the order of the cells and to padding.
    """

    def __init__(self, dim: int, n_heads: int = 1, n_queries: int = 1) -> None:
        super().__init__()
        if dim % n_heads != 0:
            raise ValueError(f"AttentionPooling: dim={dim} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.n_queries = n_queries
        self.head_dim = dim // n_heads
        self.query = nn.Parameter(torch.randn(n_queries, dim) / math.sqrt(dim))
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(n_queries * dim, dim)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x (B, L, D), valid bool (B, L) -> (B, D)."""
        b, n, d = x.shape
        k, v = self.kv(x).reshape(b, n, 2, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # 2 x (B, H, L, d)
        q = self.query.reshape(self.n_queries, self.n_heads, self.head_dim).transpose(0, 1)  # (H, Q, d)
        q = q.unsqueeze(0).expand(b, -1, -1, -1).to(k.dtype)  # (B, H, Q, d)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_padding_bias(valid, k.dtype))  # (B, H, Q, d)
        return self.out(y.transpose(1, 2).reshape(b, self.n_queries * d))
