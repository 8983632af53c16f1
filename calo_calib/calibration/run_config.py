"""What a run's configuration says about its inputs: features, dataset, workers, network.

Training, evaluation, export and every study read clusters through :func:`make_dataset`, so a model
is always applied with the features, selection and normalisation it was trained with. A run
directory holds ``config.yaml`` (the resolved run config, :func:`load_run_config`) and either
``checkpoints/best.pt`` (networks) or ``bdt/`` (the XGBoost baseline).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from calo_calib.data.features import resolve_cluster_features
from calo_calib.data.loader import ClusterDataset

PathLike = str | os.PathLike[str]


def cell_and_cluster_features(cfg: DictConfig) -> tuple[list[str], list[str]]:
    """The run's cell and cluster feature names (``data.cluster_features: auto`` resolved per particle)."""
    cells = [str(f) for f in cfg.data.cell_features]
    spec = cfg.data.cluster_features
    spec = spec if spec is None or isinstance(spec, str) else list(spec)
    return cells, resolve_cluster_features(spec, str(cfg.particle.name))


def loader_workers(cfg: DictConfig) -> int:
    """Worker processes assembling batches (``data.workers``): ``auto`` = 0 when training on the CPU
    (its cores are busy with the model), else up to 8, leaving half of the cores to the main process."""
    value = cfg.data.get("workers", 0)
    if value == "auto":
        device = str(cfg.get("trainer", {}).get("device", "auto"))
        on_gpu = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        return min(8, (os.cpu_count() or 1) // 2) if on_gpu else 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"data.workers must be auto or an integer >= 0, got {value!r}")
    return value


def make_dataset(
    cfg: DictConfig,
    paths: PathLike | Sequence[PathLike],
    *,
    shuffle: bool = False,
    batch_size: int | None = None,
    max_clusters: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    training: bool = False,
    with_truth: bool = True,
    nonfinite: str | None = None,
    out_of_range: str | None = None,
) -> ClusterDataset:
    """A :class:`ClusterDataset` with the run's features and selection.

    ``training=True`` (training and validation splits) adds the truth-level target cut
    ``data.max_train_target``; test and inference data never get it. ``with_truth=False`` reads no
    truth at all (unlabelled data-like clusters of the domain adaptation; the target is NaN), and
    then never applies the truth cut. ``nonfinite`` and ``out_of_range`` (None: as the run was
    configured, ``data.nonfinite`` / ``data.out_of_range``) override the handling of bad values.
    """
    max_target = cfg.data.get("max_train_target") if training and with_truth else None
    cells, clusters = cell_and_cluster_features(cfg)
    if batch_size is None:  # evaluation: any size works, so round up to split evenly over the ranks
        batch_size = -(-int(cfg.data.eval_batch_size) // world_size) * world_size
    return ClusterDataset(
        paths,
        cell_features=cells,
        cluster_features=clusters,
        batch_size=int(batch_size),
        shuffle=shuffle,
        seed=int(cfg.seed),
        exclude_crack=bool(cfg.data.exclude_crack),
        nonfinite=nonfinite or str(cfg.data.nonfinite),
        buffer_clusters=int(cfg.data.buffer_clusters),
        max_clusters=max_clusters,
        rank=rank,
        world_size=world_size,
        min_cluster_et=float(cfg.data.get("min_cluster_et") or 0.0),
        max_target=float(max_target) if max_target else None,
        pad_multiple=int(cfg.data.get("pad_multiple") or 1),
        with_truth=with_truth,
        workers=loader_workers(cfg),
        out_of_range=out_of_range or str(cfg.data.get("out_of_range") or "error"),
        option_prefix="data.",
    )


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
