"""Set transformer over the cells of a cluster (SALT / GN2-like), predicting the energy correction."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from calo_calib.models.common import (
    AttentionPooling,
    EncoderLayer,
    InputNorm,
    NetworkOutput,
    key_padding_bias,
    mlp,
    zero_padding,
)

# The last head layer starts at this fraction of its default initialisation, so an untrained network
# outputs ~0 in standardised units, i.e. a correction ~target_mean; not exactly 0, so gradients reach
# every parameter from the first step.
LAST_LAYER_INIT_SCALE = 0.01


class CellTransformer(nn.Module):
    """Transformer encoder on the set of cells, attention pooling, MLP head -> multiplicative correction.

    Update rule (no positional encoding: the model is a function of the *set* of cells):
        c   = MLP_c(norm(cluster))                                   cluster embedding (B, D)
        x_i = MLP_in([norm(cell_i) ‖ norm(cluster)])                 per-cell embedding (B, L, D)
        x   <- EncoderLayer_k(x, U)  for k = 1..n_layers             pre-norm, SDPA; U = 0 for valid keys,
                                                                     -inf for padded keys (+ pair bias in
                                                                     the edge variant)
        p   = AttentionPool(LN(x), valid)                            (B, D)
        h   = [p ‖ c]                                                pooled representation (B, 2D)
        out = target_mean + target_std * MLP_head(h)                 (B,)
        log σ = log(target_std) + MLP_sigma(h)                       (B,), only with ``predict_sigma``

    Per-cluster uncertainty (``predict_sigma=True``, selected by ``loss=gaussian_nll``): a second MLP
    head on the same representation gives log σ, where σ is the predicted standard deviation of the
    target E_true / E_cluster around ``out`` (dimensionless, same units as the correction; Gaussian
    likelihood, see :func:`calo_calib.training.losses.gaussian_nll`). It starts at σ ≈ target_std.
    Without the option the network has exactly the parameters and outputs it always had.

    Shapes:
        cells   float32 (B, L, F_cell), raw (normalised inside with the ``norm`` buffers)
        valid   bool    (B, L), True = real cell; each cluster needs >= 1 valid cell
        cluster float32 (B, F_cluster), raw
        pair    float32 (B, L, 7) or None; ignored by this model (used by ``EdgeTransformer``)
        return  float32 (B,), the correction E_true / E_cluster (dimensionless), for a plain network
                called without ``return_features``; otherwise a :class:`~calo_calib.models.common.NetworkOutput`
                (correction (B,), log_sigma (B,) or None, features (B, 2D) or None)

    Padded positions may hold arbitrary values: they are zeroed on input and masked as attention keys.
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
        predict_sigma: bool = False,
    ) -> None:
        super().__init__()
        if embed_dim % n_heads != 0:
            raise ValueError(f"{type(self).__name__}: embed_dim={embed_dim} is not divisible by n_heads={n_heads}")
        if n_cell_features < 1 or n_cluster_features < 0 or n_layers < 0:
            raise ValueError(
                f"{type(self).__name__}: bad sizes n_cell_features={n_cell_features}, "
                f"n_cluster_features={n_cluster_features}, n_layers={n_layers}"
            )
        self.n_cell_features = n_cell_features
        self.n_cluster_features = n_cluster_features
        self.n_heads = n_heads
        self.norm = InputNorm(n_cell_features, n_cluster_features, norm)
        self.cluster_embed = mlp(n_cluster_features, [embed_dim], embed_dim, dropout=dropout)
        self.cell_embed = mlp(n_cell_features + n_cluster_features, [embed_dim], embed_dim, dropout=dropout)
        self.layers = nn.ModuleList(EncoderLayer(embed_dim, n_heads, ff_mult, dropout) for _ in range(n_layers))
        self.final_norm = nn.LayerNorm(embed_dim)
        self.pool = AttentionPooling(embed_dim, n_heads=n_heads, n_queries=1)
        self.representation_dim = 2 * embed_dim
        self.head = mlp(2 * embed_dim, [head_hidden], 1, dropout=dropout)
        _shrink_last_layer(self.head)
        self.predict_sigma = bool(predict_sigma)
        if self.predict_sigma:
            # Its own MLP (not a second output of `head`), so the mean path keeps the parameter names
            # and initialisation of a plain network.
            self.sigma_head = mlp(2 * embed_dim, [head_hidden], 1, dropout=dropout)
            _shrink_last_layer(self.sigma_head)

    def attention_bias(self, valid: torch.Tensor, pair: torch.Tensor | None) -> torch.Tensor:
        """Additive logits bias shared by all layers: (B, 1, 1, L), -inf on padded keys."""
        return key_padding_bias(valid)

    def representation(
        self, cells: torch.Tensor, valid: torch.Tensor, cluster: torch.Tensor, pair: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The pooled representation h = [p ‖ c] (B, 2D) that the output heads read.

        What a domain discriminator looks at (``calo_calib.training.domain_adaptation``); same inputs
        as :meth:`forward`.
        """
        if cells.shape[-1] != self.n_cell_features or cluster.shape[-1] != self.n_cluster_features:
            raise ValueError(
                f"{type(self).__name__}: got {cells.shape[-1]} cell / {cluster.shape[-1]} cluster features, "
                f"built for {self.n_cell_features} / {self.n_cluster_features}"
            )
        valid = valid.bool()
        xc = self.norm.cluster(cluster)  # (B, F_cluster)
        xs = self.norm.cells(zero_padding(cells, valid))  # (B, L, F_cell); padded rows finite, never read as keys
        x = torch.cat([xs, xc[:, None, :].expand(-1, xs.shape[1], -1)], dim=-1)
        x = self.cell_embed(x)  # (B, L, D)
        bias = self.attention_bias(valid, pair)  # computed once, shared by every layer
        for layer in self.layers:
            x = layer(x, bias)
        pooled = self.pool(self.final_norm(x), valid)  # (B, D)
        return torch.cat([pooled, self.cluster_embed(xc)], dim=-1)  # (B, 2D)

    def forward(
        self,
        cells: torch.Tensor,
        valid: torch.Tensor,
        cluster: torch.Tensor,
        pair: torch.Tensor | None = None,
        return_features: bool = False,
    ) -> torch.Tensor | NetworkOutput:
        """cells (B, L, F_cell), valid (B, L), cluster (B, F_cluster), pair (B, L, 7) | None -> (B,).

        A network with ``predict_sigma``, or a call with ``return_features=True`` (the pooled
        representation (B, 2D) for a domain discriminator), returns a :class:`NetworkOutput` instead;
        :func:`~calo_calib.models.common.as_output` reads both forms.
        """
        h = self.representation(cells, valid, cluster, pair)
        correction = self.norm.target(self.head(h).squeeze(-1).float())  # (B,)
        if not (self.predict_sigma or return_features):
            return correction
        log_sigma = None
        if self.predict_sigma:
            log_sigma = torch.log(self.norm.target_std) + self.sigma_head(h).squeeze(-1).float()  # (B,)
        return NetworkOutput(correction, log_sigma, h if return_features else None)


def _shrink_last_layer(head: nn.Sequential) -> None:
    """Scale the last Linear of ``head`` to LAST_LAYER_INIT_SCALE of its init and zero its bias."""
    last = head[-1]
    assert isinstance(last, nn.Linear)
    with torch.no_grad():
        last.weight.mul_(LAST_LAYER_INIT_SCALE)
        last.bias.zero_()
