"""The feature-importance study's perturbations of the evaluation batches: permutations and layer ablation.

Inputs are never modified (perturbed tensors are copies, the others shared). Method and caveats:
:mod:`calo_calib.studies.importance`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from calo_calib.data.features import PAIR_COLUMNS
from calo_calib.studies.importance_sample import Batch

PAIR_LAYER = PAIR_COLUMNS.index("cell_layer")
"""Column of the raw layer index in the ``pair`` tensor (B, L, 7)."""


def permute_cell_column(batches: Sequence[Batch], key: str, column: int, rng: np.random.Generator) -> list[Batch]:
    """Batches with ``batch[key][..., column]`` permuted across all valid cells of all batches.

    ``key`` is ``"cells"`` (B, L, F_cell) or ``"pair"`` (B, L, 7). Padded positions are untouched;
    the inputs are not modified (the perturbed tensor is a copy, the others are shared).
    """
    values = torch.cat([b[key][..., column][b["valid"]] for b in batches])
    shuffled = values[torch.from_numpy(rng.permutation(values.numel()))]
    out, start = [], 0
    for b in batches:
        valid = b["valid"]
        n = int(valid.sum())
        t = b[key].clone()
        col = t[..., column]  # a view: writing into it writes into t
        col[valid] = shuffled[start : start + n]
        start += n
        out.append({**b, key: t})
    return out


def permute_cluster_column(batches: Sequence[Batch], column: int, rng: np.random.Generator) -> list[Batch]:
    """Batches with ``cluster[:, column]`` permuted across all clusters of all batches."""
    values = torch.cat([b["cluster"][:, column] for b in batches])
    shuffled = values[torch.from_numpy(rng.permutation(values.numel()))]
    out, start = [], 0
    for b in batches:
        n = b["cluster"].shape[0]
        t = b["cluster"].clone()
        t[:, column] = shuffled[start : start + n]
        start += n
        out.append({**b, "cluster": t})
    return out


@dataclass
class Ablation:
    """Result of :func:`ablate_layer`: the batches without the layer's cells (and without the
    clusters left empty), ``keep`` (N,) bool over the original clusters, and the counts."""

    batches: list[Batch]
    keep: np.ndarray
    n_cells_removed: int

    @property
    def n_clusters_excluded(self) -> int:
        return int((~self.keep).sum())


def ablate_layer(batches: Sequence[Batch], layer: int) -> Ablation:
    """Mark every valid cell of calorimeter ``layer`` (``pair[..., 5]``) invalid and zero it, as padding.

    Clusters with no valid cell left are dropped from their batch (a network needs >= 1 valid cell)
    and flagged False in ``keep``; every tensor with a leading batch dimension is filtered alike.
    """
    out, keep_all, removed = [], [], 0
    for b in batches:
        hit = b["valid"] & (b["pair"][..., PAIR_LAYER] == float(layer))
        removed += int(hit.sum())
        valid = b["valid"] & ~hit
        keep = valid.any(dim=1)
        keep_all.append(keep.numpy())
        new = {**b, "valid": valid, "cells": b["cells"] * valid[..., None], "pair": b["pair"] * valid[..., None]}
        n = b["valid"].shape[0]
        new = {k: (v[keep] if torch.is_tensor(v) and v.dim() >= 1 and v.shape[0] == n else v) for k, v in new.items()}
        if int(keep.sum()) > 0:
            out.append(new)
    return Ablation(out, np.concatenate(keep_all), removed)
