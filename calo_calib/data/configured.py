"""What a run config (``conf/run.yaml``: ``data``, ``particle``, ``seed``, ``trainer.device``) says
about reading clusters: its feature names, its loader workers and the arguments of a
:class:`~calo_calib.data.loader.ClusterDataset` (:meth:`~calo_calib.data.loader.ClusterDataset.from_config`).
"""

from __future__ import annotations

import os
from typing import Any

from omegaconf import DictConfig

from calo_calib.data.features import resolve_cluster_features


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
        import torch

        device = str(cfg.get("trainer", {}).get("device", "auto"))
        on_gpu = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        return min(8, (os.cpu_count() or 1) // 2) if on_gpu else 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"data.workers must be auto or an integer >= 0, got {value!r}")
    return value


def dataset_arguments(
    cfg: DictConfig,
    *,
    shuffle: bool,
    batch_size: int | None,
    max_clusters: int | None,
    rank: int,
    world_size: int,
    training: bool,
    with_truth: bool,
    nonfinite: str | None,
    out_of_range: str | None,
) -> dict[str, Any]:
    """The :class:`~calo_calib.data.loader.ClusterDataset` arguments (less the paths) of a run config;
    see :meth:`~calo_calib.data.loader.ClusterDataset.from_config` for the options."""
    max_target = cfg.data.get("max_train_target") if training and with_truth else None
    cells, clusters = cell_and_cluster_features(cfg)
    if batch_size is None:  # evaluation: any size works, so round up to split evenly over the ranks
        batch_size = -(-int(cfg.data.eval_batch_size) // world_size) * world_size
    return dict(
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
