"""What a run's configuration says about its inputs: features, dataset, workers, network.

Training, evaluation, export and every study read clusters through :func:`make_dataset`, so a model
is always applied with the features, selection and normalisation it was trained with. A run
directory holds ``config.yaml`` (the resolved run config, :func:`load_run_config`) and either
``checkpoints/best.pt`` (networks) or ``bdt/`` (the XGBoost baseline).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from calo_calib.data.configured import cell_and_cluster_features, loader_workers  # noqa: F401  (re-exported)
from calo_calib.data.loader import ClusterDataset

PathLike = str | os.PathLike[str]


make_dataset = ClusterDataset.from_config
"""A :class:`ClusterDataset` with the run's features and selection: :meth:`ClusterDataset.from_config`."""


def predicts_sigma(cfg: DictConfig) -> bool:
    """Whether the run's network has the uncertainty head: the loss decides (``loss=gaussian_nll``)."""
    from calo_calib.training.losses import SIGMA_LOSSES

    return str(cfg.loss.name) in SIGMA_LOSSES


def build_run_network(cfg: DictConfig, n_cell_features: int, n_cluster_features: int, norm: dict[str, Any] | None) -> torch.nn.Module:
    """The run's network: :func:`calo_calib.models.build_network` of ``cfg.model.net``.

    A loss that needs a per-cluster σ (``gaussian_nll``) adds ``predict_sigma=True``; otherwise the
    network is built exactly as the model config says (so existing checkpoints load unchanged).
    """
    from calo_calib.models import build_network

    extra = {"predict_sigma": True} if predicts_sigma(cfg) else {}
    return build_network(cfg.model.net, n_cell_features, n_cluster_features, norm, **extra)


def load_run_config(run_dir: PathLike) -> DictConfig:
    """The resolved configuration a run was made with (``<run_dir>/config.yaml``)."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a calo_calib run directory: {path} is missing")
    return OmegaConf.load(path)
