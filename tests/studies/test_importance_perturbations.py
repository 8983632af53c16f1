"""Permutations and layer ablation of the importance study (calo_calib/studies/importance_perturbations.py)
on hand-made batches (the same on the loader's batches: ``test_importance.py``)."""

from __future__ import annotations

import numpy as np
import torch

from calo_calib.studies.importance_perturbations import (
    PAIR_LAYER,
    ablate_layer,
    permute_cell_column,
    permute_cluster_column,
)


def _batches():
    """Two batches: 3 clusters x 2 slots and 1 cluster x 2 slots; layer of each cell in pair[..., PAIR_LAYER]."""
    out = []
    for valid, layers in (([[1, 1], [1, 0], [1, 1]], [[2, 1], [2, 0], [3, 3]]), ([[1, 1]], [[1, 2]])):
        v = torch.tensor(valid, dtype=torch.bool)
        n, L = v.shape
        pair = torch.zeros(n, L, 7)
        pair[..., PAIR_LAYER] = torch.tensor(layers, dtype=torch.float32)
        cells = torch.arange(n * L * 2, dtype=torch.float32).reshape(n, L, 2) + 1
        cells = cells * v[..., None]
        out.append({"cells": cells, "valid": v, "pair": pair, "cluster": torch.arange(n * 3.0).reshape(n, 3),
                    "row_id": torch.arange(n)})  # fmt: skip
    return out


def test_ablate_layer_counts_and_drops_empty_clusters():
    b = _batches()
    abl = ablate_layer(b, 3)  # the third cluster of batch 0 has only back cells
    assert abl.n_cells_removed == 2 and abl.n_clusters_excluded == 1
    assert abl.keep.tolist() == [True, True, False, True]
    assert abl.batches[0]["cells"].shape[0] == 2 and abl.batches[0]["row_id"].tolist() == [0, 1]
    abl = ablate_layer(b, 1)
    assert abl.n_cells_removed == 2 and abl.keep.all()
    assert float(abl.batches[0]["cells"][0, 1].abs().sum()) == 0.0  # zeroed like padding
    assert int(b[0]["valid"].sum()) == 5  # inputs untouched


def test_permutations_keep_the_values_and_the_padding():
    b = _batches()
    rng = np.random.default_rng(0)
    out = permute_cell_column(b, "cells", 0, rng)
    before = torch.cat([x["cells"][..., 0][x["valid"]] for x in b])
    after = torch.cat([x["cells"][..., 0][x["valid"]] for x in out])
    assert torch.equal(torch.sort(before).values, torch.sort(after).values)
    for x0, x1 in zip(b, out):
        assert torch.equal(x1["cells"][~x1["valid"]], x0["cells"][~x0["valid"]])
        assert torch.equal(x1["cells"][..., 1], x0["cells"][..., 1])
    out = permute_cluster_column(b, 2, np.random.default_rng(1))
    col = torch.cat([x["cluster"][:, 2] for x in out])
    assert sorted(col.tolist()) == [2.0, 2.0, 5.0, 8.0]  # the same values, permuted across both batches
    assert torch.equal(torch.cat([x["cluster"][:, :2] for x in out]), torch.cat([x["cluster"][:, :2] for x in b]))
