"""Normalisation statistics of the raw model inputs and the target, computed by streaming.

The networks carry these as buffers (``as_tensors()``), so an exported model needs no external
scaler. Cell statistics use real cells only: padding zeros would pull the means towards 0 and shrink
the spreads by an amount that depends on the batch composition.

The statistics are robust to gross outliers: a value outside ``[q_lo - K w, q_hi + K w]``, where
``q_lo``, ``q_hi`` are the 0.1 % and 99.9 % quantiles of the feature in the first buffer of
clusters and ``w = q_hi - q_lo`` (``K`` = :data:`TRIM_WIDTHS`), is left out of the mean and the
spread (and counted in a warning). On physical data nothing is that far out and the statistics are
the plain mean and standard deviation; one absurd but finite value (``cell_x = 3e38``, which the
loader's range check lets through with ``out_of_range=allow``, or a derived feature gone wild) no
longer sets them. (Clipping at a few widths would change the normalisation of the real, heavy
tails of ratio features such as ``e_frac_layer``: measured, their std would drop from ~11 to ~1.3.)
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from calo_calib.data.loader import ClusterDataset
from calo_calib.moments import StreamingMoments

log = logging.getLogger(__name__)

STD_FLOOR = 1e-6
"""A standard deviation below this (or NaN) is replaced by 1 (the ``std_floor`` of
:class:`calo_calib.moments.StreamingMoments`). A constant input (e.g. e_tg3, always 0 in the
simulation) has std 0; dividing by it would give inf/NaN, and by a tiny std would blow up rounding
noise. With std 1 the normalised feature is just ``x - mean`` = 0: harmless and constant."""

TRIM_QUANTILES = (0.001, 0.999)
"""Quantiles of the first buffer that define the range of plausible values (module docstring)."""
TRIM_WIDTHS = 1e6
"""How many quantile widths ``w = q_hi - q_lo`` beyond the quantiles a value may lie and still count.
The simulated data's natural tails reach ~4e3 widths (``e_frac_layer``: a ratio to a small layer
energy; ``r_phi``, ``f_side`` ~1e3), so with 1e6 nothing physical is left out and the statistics
are the plain ones; an absurd value (3e38, 1e30) is far beyond."""


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


def _add(moments: StreamingMoments, x: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None = None) -> int:
    """Add rows of ``x`` (n, F) to ``moments``, leaving out values outside ``bounds`` (lo, hi) per
    column; returns the number of values left out."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return 0
    x = x.reshape(len(x), -1)
    return moments.update(x, None if bounds is None else (x >= bounds[0]) & (x <= bounds[1]))


def trim_bounds(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``x`` (n, F): the range ``[q_lo - K w, q_hi + K w]`` beyond which a value is left
    out of the statistics (module docstring); unbounded for a column with ``w = 0`` (a constant)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if len(x) == 0:
        return np.full(x.shape[1], -np.inf), np.full(x.shape[1], np.inf)
    q_lo, q_hi = np.quantile(x, TRIM_QUANTILES, axis=0)
    width = q_hi - q_lo
    lo = np.where(width > 0, q_lo - TRIM_WIDTHS * width, -np.inf)
    hi = np.where(width > 0, q_hi + TRIM_WIDTHS * width, np.inf)
    return lo, hi


def compute_norm_stats(dataset: ClusterDataset, max_clusters: int = 200_000) -> NormStats:
    """Robust means and stds of the raw cell features (valid cells only), cluster features and target.

    Values far beyond a robust range taken from the first buffer are left out (module docstring;
    a warning counts them).

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
    cells = StreamingMoments(len(dataset.cell_features), std_floor=STD_FLOOR)
    clusters = StreamingMoments(len(dataset.cluster_features), std_floor=STD_FLOOR)
    target = StreamingMoments(1, std_floor=STD_FLOOR)
    seen = 0
    held: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # the first buffer, to set the clipping range
    bounds: list[tuple[np.ndarray, np.ndarray]] | None = None
    clipped = [0, 0, 0]

    def add(parts: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        assert bounds is not None
        for i, (moments, x) in enumerate(zip((cells, clusters, target), parts)):
            clipped[i] += _add(moments, x, bounds[i])

    def release() -> None:
        nonlocal bounds
        bounds = [trim_bounds(np.concatenate([h[i] for h in held])) for i in range(3)]
        for parts in held:
            add(parts)
        held.clear()

    for batch in dataset.batches(0, all_ranks=True):
        if seen >= limit:
            break
        valid = batch["valid"].numpy()
        parts = (batch["cells"].numpy()[valid], batch["cluster"].numpy(), batch["target"].numpy().reshape(-1, 1))
        seen += len(valid)
        if bounds is None:
            held.append(parts)
            if seen >= dataset.buffer_size:
                release()
        else:
            add(parts)
    if bounds is None:
        release()
    if any(clipped):
        log.warning("normalisation: %d cell, %d cluster and %d target value(s) far outside the bulk (beyond %g widths "
                    "of the 0.1-99.9%% quantile range) were left out of the statistics", *clipped, TRIM_WIDTHS)  # fmt: skip
    return NormStats(
        cell_features=list(dataset.cell_features),
        cluster_features=list(dataset.cluster_features),
        cell_mean=cells.mean,
        cell_std=cells.std(),
        cluster_mean=clusters.mean,
        cluster_std=clusters.std(),
        target_mean=float(target.mean[0]),
        target_std=float(target.std()[0]),
        n_clusters=target.rows,
        n_cells=cells.rows,
    )
