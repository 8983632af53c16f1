"""Normalisation statistics of the raw model inputs and the target, computed by streaming.

The networks carry these as buffers (``as_tensors()``), so an exported model needs no external
scaler. Cell statistics use real cells only: padding zeros would pull the means towards 0 and shrink
the spreads by an amount that depends on the batch composition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from calo_calib.data.loader import ClusterDataset

STD_FLOOR = 1e-6
"""A standard deviation below this is replaced by 1. A constant input (e.g. e_tg3, always 0 in the
simulation) has std 0; dividing by it would give inf/NaN, and by a tiny std would blow up rounding
noise. With std 1 the normalised feature is just ``x - mean`` = 0: harmless and constant."""


@dataclass
class NormStats:
    """Means and standard deviations of the raw features (GeV, mm, rad units of each feature).

    ``cell_mean``/``cell_std`` have shape (F_cell,), ``cluster_mean``/``cluster_std`` (F_cluster,),
    in the order of ``cell_features``/``cluster_features``; ``target_*`` are floats (truth_e / cluster_e).
    """

    cell_features: list[str]
    cluster_features: list[str]
    cell_mean: np.ndarray
    cell_std: np.ndarray
    cluster_mean: np.ndarray
    cluster_std: np.ndarray
    target_mean: float
    target_std: float
    n_clusters: int = 0
    n_cells: int = 0

    def __post_init__(self) -> None:
        self.cell_mean = np.asarray(self.cell_mean, dtype=np.float64).reshape(-1)
        self.cell_std = np.asarray(self.cell_std, dtype=np.float64).reshape(-1)
        self.cluster_mean = np.asarray(self.cluster_mean, dtype=np.float64).reshape(-1)
        self.cluster_std = np.asarray(self.cluster_std, dtype=np.float64).reshape(-1)
        for name, arr, names in (
            ("cell_mean", self.cell_mean, self.cell_features),
            ("cell_std", self.cell_std, self.cell_features),
            ("cluster_mean", self.cluster_mean, self.cluster_features),
            ("cluster_std", self.cluster_std, self.cluster_features),
        ):
            if len(arr) != len(names):
                raise ValueError(f"NormStats: {name} has {len(arr)} entries for {len(names)} features {list(names)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (lists of floats)."""
        return {
            "cell_features": list(self.cell_features),
            "cluster_features": list(self.cluster_features),
            "cell_mean": self.cell_mean.tolist(),
            "cell_std": self.cell_std.tolist(),
            "cluster_mean": self.cluster_mean.tolist(),
            "cluster_std": self.cluster_std.tolist(),
            "target_mean": float(self.target_mean),
            "target_std": float(self.target_std),
            "n_clusters": int(self.n_clusters),
            "n_cells": int(self.n_cells),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NormStats:
        """Inverse of :meth:`to_dict`."""
        return cls(
            cell_features=list(d["cell_features"]),
            cluster_features=list(d["cluster_features"]),
            cell_mean=np.asarray(d["cell_mean"]),
            cell_std=np.asarray(d["cell_std"]),
            cluster_mean=np.asarray(d["cluster_mean"]),
            cluster_std=np.asarray(d["cluster_std"]),
            target_mean=float(d["target_mean"]),
            target_std=float(d["target_std"]),
            n_clusters=int(d.get("n_clusters", 0)),
            n_cells=int(d.get("n_cells", 0)),
        )

    def as_tensors(self) -> dict[str, torch.Tensor]:
        """float32 tensors: cell_mean, cell_std (F_cell,), cluster_mean, cluster_std (F_cluster,),
        target_mean, target_std (0-dim) — what the networks take."""
        t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float32))  # noqa: E731
        return {
            "cell_mean": t(self.cell_mean),
            "cell_std": t(self.cell_std),
            "cluster_mean": t(self.cluster_mean),
            "cluster_std": t(self.cluster_std),
            "target_mean": t(self.target_mean),
            "target_std": t(self.target_std),
        }


class _Moments:
    """Streaming mean/variance per column (Chan et al. merge of batch moments, float64)."""

    def __init__(self, n_features: int) -> None:
        self.n = 0
        self.mean = np.zeros(n_features)
        self.m2 = np.zeros(n_features)

    def update(self, x: np.ndarray) -> None:
        """Add rows of ``x`` (n, F)."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        nb = len(x)
        if nb == 0:
            return
        mb = x.mean(0)
        m2b = ((x - mb) ** 2).sum(0)
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * nb / n
        self.m2 = self.m2 + m2b + delta**2 * self.n * nb / n
        self.n = n

    def std(self) -> np.ndarray:
        std = np.sqrt(self.m2 / self.n) if self.n else np.ones_like(self.mean)
        return np.where(std < STD_FLOOR, 1.0, std)


def compute_norm_stats(dataset: ClusterDataset, max_clusters: int = 200_000) -> NormStats:
    """Means and stds of the raw cell features (valid cells only), cluster features and target.

    Streams ``dataset.batches(epoch=0, all_ranks=True)`` (every rank gets identical statistics) over
    the first ``max_clusters`` clusters, rounded up to whole buffers: within a buffer the batches are
    ordered by length, so stopping mid-buffer would bias the sample towards small clusters.

    Raises:
        ValueError: if the dataset has no selected cluster.
    """
    if len(dataset) == 0:
        raise ValueError("compute_norm_stats: the dataset has no selected cluster")
    n_buffers = max(1, math.ceil(max_clusters / dataset.buffer_size))
    limit = n_buffers * dataset.buffer_size
    cells = _Moments(len(dataset.cell_features))
    clusters = _Moments(len(dataset.cluster_features))
    target = _Moments(1)
    seen = 0
    for batch in dataset.batches(0, all_ranks=True):
        if seen >= limit:
            break
        valid = batch["valid"].numpy()
        cells.update(batch["cells"].numpy()[valid])
        clusters.update(batch["cluster"].numpy())
        target.update(batch["target"].numpy())
        seen += len(valid)
    return NormStats(
        cell_features=list(dataset.cell_features),
        cluster_features=list(dataset.cluster_features),
        cell_mean=cells.mean,
        cell_std=cells.std(),
        cluster_mean=clusters.mean,
        cluster_std=clusters.std(),
        target_mean=float(target.mean[0]),
        target_std=float(target.std()[0]),
        n_clusters=target.n,
        n_cells=cells.n,
    )
