"""Normalisation statistics: valid cells only, equal to numpy statistics of the Parquet columns."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.compute as pc
import pytest
import torch

from calo_calib.data.features import default_cluster_features
from calo_calib.data.loader import ClusterDataset
from calo_calib.data.normalization import NormStats, compute_norm_stats
from calo_calib.io.parquet import read_clusters

CELL = ["x", "y", "z", "layer", "e", "noise"]
CLUSTER = default_cluster_features("electron")


@pytest.fixture(scope="module")
def setup(tiny_data):
    path = tiny_data("electron")
    # small batches and buffers: many batches with plenty of padding that must not enter the statistics
    ds = ClusterDataset(path, CELL, CLUSTER, batch_size=16, shuffle=True, buffer_clusters=48)
    table = read_clusters(path)
    table = table.filter(pc.invert(table["is_crack"]))
    return ds, table, compute_norm_stats(ds, max_clusters=10**9)


def test_cell_stats_equal_numpy_on_parquet_columns(setup):
    ds, table, stats = setup
    cols = ["cell_x", "cell_y", "cell_z", "cell_layer", "cell_e", "cell_noise"]
    raw = np.stack([pc.list_flatten(table[c]).to_numpy().astype(np.float64) for c in cols], axis=1)
    np.testing.assert_allclose(stats.cell_mean, raw.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats.cell_std, raw.std(0), rtol=1e-5)
    assert stats.n_cells == len(raw) and stats.n_clusters == table.num_rows == len(ds)


def test_cluster_and_target_stats(setup):
    _, table, stats = setup
    e = table["cluster_e"].to_numpy().astype(np.float64)
    ps = table["cluster_e_ps"].to_numpy().astype(np.float64)
    np.testing.assert_allclose(stats.cluster_mean[:2], [e.mean(), ps.mean()], rtol=1e-5)
    np.testing.assert_allclose(stats.cluster_std[:2], [e.std(), ps.std()], rtol=1e-5)
    target = table["truth_e"].to_numpy().astype(np.float64) / e
    assert stats.target_mean == pytest.approx(target.mean(), rel=1e-5)
    assert stats.target_std == pytest.approx(target.std(), rel=1e-5)
    # e_tg3 (always 0 in the simulation) and f_tg3 are constant: std floored to 1
    assert stats.cluster_mean[CLUSTER.index("e_tg3")] == 0.0
    assert stats.cluster_std[CLUSTER.index("e_tg3")] == 1.0 and stats.cluster_std[CLUSTER.index("f_tg3")] == 1.0


def test_round_trip_and_tensors(setup):
    _, _, stats = setup
    back = NormStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert back.cell_features == CELL and back.cluster_features == CLUSTER
    np.testing.assert_array_equal(back.cell_std, stats.cell_std)
    np.testing.assert_array_equal(back.cluster_mean, stats.cluster_mean)
    assert back.target_mean == stats.target_mean
    t = stats.as_tensors()
    assert set(t) == {"cell_mean", "cell_std", "cluster_mean", "cluster_std", "target_mean", "target_std"}
    assert all(v.dtype == torch.float32 for v in t.values())
    assert (
        t["cell_mean"].shape == (len(CELL),)
        and t["cluster_std"].shape == (len(CLUSTER),)
        and t["target_std"].dim() == 0
    )
    with pytest.raises(ValueError, match="cell_mean"):
        NormStats(CELL, CLUSTER, np.zeros(2), np.ones(len(CELL)), np.zeros(11), np.ones(11), 1.0, 0.1)


def test_max_clusters_rounds_up_to_whole_buffers(setup):
    ds, _, _ = setup
    stats = compute_norm_stats(ds, max_clusters=50)  # buffer of 48 -> two whole buffers
    assert stats.n_clusters == 96
