"""The SALT writer (calo_calib/io/salt_writer.py) on a hand-made two-cluster table: known datasets."""

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from calo_calib.io.salt_writer import _keep_mask, parquet_to_salt_h5


def test_keep_mask_keeps_the_most_energetic_cells_in_order():
    e = np.array([1.0, 5.0, 3.0, 2.0, 7.0])
    assert _keep_mask(e, np.array([3, 2]), 2).tolist() == [False, True, True, True, True]
    assert _keep_mask(None, np.array([3, 2]), 2).tolist() == [True, True, False, True, True]


def test_padded_cells_and_truncation(tmp_path):
    t = pa.table(
        {
            "n_cells": pa.array([1, 3], pa.int32()),
            "cell_e": pa.array([[4.0], [1.0, 3.0, 2.0]], pa.list_(pa.float32())),
        }
    )
    pq.write_table(t, tmp_path / "a.parquet")
    dst = parquet_to_salt_h5(tmp_path / "a.parquet", tmp_path / "a.h5", max_cells=2, truncate=True)
    with h5py.File(dst) as f:
        cells, clusters = f["cells"][:], f["clusters"][:]
        assert cells["cell_e"].tolist() == [[4.0, 0.0], [3.0, 2.0]]
        assert cells["valid"].tolist() == [[True, False], [True, True]]
        assert clusters["n_cells"].tolist() == [1, 2]
        assert f.attrs["truncated_clusters"] == 1 and f.attrs["dropped_cells"] == 1
    assert (tmp_path / "a.norm.yaml").exists()
