"""Calibration models: the two networks (``transformer``, ``gnn_edge``) and, in ``bdt.py``, the BDT baseline.

Every network maps a batch (``docs/architecture.md``) to the multiplicative correction (B,):
``forward(cells (B, L, F_cell), valid (B, L), cluster (B, F_cluster), pair (B, L, 7) | None) -> (B,)``.
Built with ``predict_sigma=True`` (``loss=gaussian_nll``) or called with ``return_features=True``, a
network returns a :class:`NetworkOutput` (correction, log σ, pooled representation); ``adversary.py``
holds the domain discriminator and gradient reversal of the domain-adaptation option.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from calo_calib.models.adversary import DomainDiscriminator, grl_lambda, reverse_gradient
from calo_calib.models.common import NetworkOutput, as_output, relative_sigma
from calo_calib.models.gnn_edge import EdgeTransformer
from calo_calib.models.transformer import CellTransformer

NETWORKS: dict[str, type[nn.Module]] = {"transformer": CellTransformer, "gnn_edge": EdgeTransformer}


def build_network(
    net: str | Mapping[str, Any],
    n_cell_features: int,
    n_cluster_features: int,
    norm: Mapping[str, torch.Tensor] | None,
    **hparams: Any,
) -> nn.Module:
    """A network with the given sizes, normalisation and hyper-parameters: the one network builder.

    Args:
        net: a name of :data:`NETWORKS` (``transformer`` | ``gnn_edge``), built with ``hparams``;
            or a ``model.net`` config node (``_target_`` class, ``_partial_: true`` and its
            hyper-parameters, ``conf/model/*.yaml``), instantiated by Hydra and completed with the
            data-dependent arguments and ``hparams`` (e.g. ``predict_sigma=True``).
        n_cell_features, n_cluster_features: F_cell and F_cluster of the batches.
        norm: the input normalisation (:meth:`~calo_calib.data.normalization.NormStats.as_tensors`),
            or None (identity, e.g. before a checkpoint's buffers are loaded).

    The run-level wrapper :func:`calo_calib.calibration.build_run_network` adds what the run config
    decides beyond ``model.net`` (the σ head of ``loss=gaussian_nll``).
    """
    if not isinstance(net, str):
        from hydra.utils import instantiate

        factory = instantiate(net)
        return factory(n_cell_features=n_cell_features, n_cluster_features=n_cluster_features, norm=norm, **hparams)
    if net not in NETWORKS:
        raise ValueError(f"unknown network {net!r}; valid names: {sorted(NETWORKS)}")
    return NETWORKS[net](n_cell_features, n_cluster_features, norm, **hparams)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (buffers such as the normalisation are not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "NETWORKS",
    "CellTransformer",
    "DomainDiscriminator",
    "EdgeTransformer",
    "NetworkOutput",
    "as_output",
    "build_network",
    "count_parameters",
    "grl_lambda",
    "relative_sigma",
    "reverse_gradient",
]
