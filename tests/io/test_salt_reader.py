"""The SALT reader (calo_calib/io/salt_reader.py) on a hand-made file written elsewhere: known columns."""

import h5py
import numpy as np
import pyarrow.parquet as pq

from calo_calib.io.salt_reader import _column_order, salt_h5_to_parquet


def test_column_order_recorded_then_format_then_rest():
    assert _column_order('["cell_e", "zzz"]', ["zzz", "aaa", "cluster_e", "cell_e"]) == [
        "cell_e",
        "zzz",
        "cluster_e",
        "aaa",
    ]
    assert _column_order("not json", ["aaa", "cluster_e"]) == ["cluster_e", "aaa"]


def test_foreign_file_without_n_cells(tmp_path):
    clusters = np.array([(1.5,), (2.5,)], dtype=[("cluster_e", np.float64)])
    cells = np.zeros((2, 3), dtype=[("cell_e", np.float32), ("valid", np.bool_)])
    cells["cell_e"] = [[1, 2, 0], [3, 0, 0]]
    cells["valid"] = [[True, True, False], [True, False, False]]
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["clusters"], f["cells"] = clusters, cells
    out = salt_h5_to_parquet(tmp_path / "f.h5", tmp_path / "out", required=["cluster_e", "cell_e"])
    t = pq.read_table(sorted(out.glob("*.parquet"))[0])
    assert t.column_names == ["cluster_e", "n_cells", "cell_e"]
    assert t["cluster_e"].type == "float" and t["cluster_e"].to_pylist() == [1.5, 2.5]
    assert t["n_cells"].to_pylist() == [2, 1] and t["cell_e"].to_pylist() == [[1.0, 2.0], [3.0]]
