"""Per-cell features (calo_calib/data/cell_features.py) of two hand-made clusters."""

import numpy as np

from calo_calib.data.cell_features import PAIR_COLUMNS, compute_cell_features, compute_pair


def test_e_frac_layer_deta_and_pair():
    cells = {c: np.arange(4, dtype=np.float32) for c in PAIR_COLUMNS}
    cells |= {"cell_e": np.array([1.0, 3.0, 2.0, -1.0], np.float32), "cell_layer": np.array([2, 2, 1, 1], np.int8)}
    seg = np.array([0, 0, 1, 1])
    clusters = {"cluster_eta": np.array([0.5, 1.0])}
    out = compute_cell_features(["e_frac_layer", "deta", "log_e"], cells, seg, 2, clusters)
    assert out.dtype == np.float32 and out.shape == (4, 3)
    assert out[:, 0].tolist() == [0.25, 0.75, 2.0, -1.0]  # E / E_layer per (cluster, layer)
    assert out[:, 1].tolist() == [-0.5, 0.5, 1.0, 2.0]  # cell_eta (0, 1, 2, 3) - cluster_eta
    assert out[3, 2] == np.float32(np.log(1e-3))  # negative energy: log of the floor
    assert compute_pair(cells)[:, -1].tolist() == [1.0, 3.0, 2.0, -1.0]  # last pair column: E
