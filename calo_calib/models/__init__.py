"""Calibration models: the two networks (``transformer``, ``gnn_edge``) and, in ``bdt.py``, the BDT baseline,
built from their config nodes by :func:`build_network` and :func:`build_bdt` (``_target_``, ``conf/model/*.yaml``).

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


def build_bdt(model: Mapping[str, Any], *, particle: str, loss: str, huber_delta: float, seed: int):
    """The BDT of a ``model`` config node (``conf/model/bdt*.yaml``): ``hydra.utils.instantiate`` of its
    ``_target_`` (:class:`~calo_calib.models.bdt.BDTModel`) with its arguments, as ``model.net`` for the
    networks, completed with what the run decides: ``particle``, the loss and Huber slope, and ``seed``
    (added to ``model.params``). ``name``, ``kind`` and ``net`` (the networks' size) are not arguments.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    from omegaconf import DictConfig, OmegaConf

    values = OmegaConf.to_container(model, resolve=True) if isinstance(model, DictConfig) else dict(model)
    node = OmegaConf.create({k: v for k, v in values.items() if k not in ("name", "kind", "net", "params")})
    params = {**dict(values.get("params") or {}), "seed": int(seed)}
    try:
        return instantiate(node, _convert_="all", particle=particle, loss=loss, huber_delta=huber_delta, params=params)
    except InstantiationException as err:  # BDTModel's own ValueError (a bad model.* value), not Hydra's wrapper
        raise (err.__cause__ if isinstance(err.__cause__, ValueError) else err) from None


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
    "build_bdt",
    "build_network",
    "count_parameters",
    "grl_lambda",
    "relative_sigma",
    "reverse_gradient",
]
