"""Bucketing and padded tensors (calo_calib/data/batch_assembly.py) on a hand-made buffer."""

import numpy as np
import pyarrow as pa

from calo_calib.data.batch_assembly import Buffer, bucketed_batches
from calo_calib.data.epoch_plan import Piece


def test_bucketing_sorts_by_length():
    n_cells = np.array([5, 1, 3, 2])
    assert [b.tolist() for b in bucketed_batches(n_cells, 2, None)] == [[1, 3], [2, 0]]
    shuffled = bucketed_batches(n_cells, 2, np.random.default_rng(1))
    assert sorted(sorted(b.tolist()) for b in shuffled) == [[0, 2], [1, 3]]


def test_padded_batch_of_selected_rows():
    cells = {
        c: pa.array([[0.0, 0.0], [1.0], [2.0, 2.0, 2.0]], pa.list_(pa.float32()))
        for c in ("cell_eta", "cell_phi", "cell_x", "cell_y", "cell_z", "cell_e")
    }
    table = pa.table(
        {
            "cluster_e": pa.array([1.0, 2.0, 4.0], pa.float32()),
            "truth_e": pa.array([1.0, 3.0, 2.0], pa.float32()),
            "n_cells": pa.array([2, 1, 3], pa.int32()),
            "cluster_eta": pa.array([0.0, 0.0, 0.0], pa.float32()),
            **cells,
            "cell_layer": pa.array([[2, 2], [1], [2, 2, 3]], pa.list_(pa.int8())),
        }
    )
    buf = Buffer(
        [Piece(table, np.array([1, 2]), np.array([11, 12]))],
        ["cluster_e", "truth_e", "n_cells", "cluster_eta"],
        [*cells, "cell_layer"],
    )
    b = buf.batch(np.array([1, 0]), ["x"], ["cluster_e"], pad_multiple=4)
    assert b["cells"].shape == (2, 4, 1) and b["cells"][:, :, 0].tolist() == [[2, 2, 2, 0], [1, 0, 0, 0]]
    assert b["valid"].tolist() == [[True, True, True, False], [True, False, False, False]]
    assert b["target"].tolist() == [0.5, 1.5] and b["row_id"].tolist() == [12, 11]
