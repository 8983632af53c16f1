"""The ROOT writer (calo_calib/io/root_writer.py) on a hand-made table: branch layout and branch values."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot

from calo_calib.io.root_mapping import load_mapping
from calo_calib.io.root_writer import _branch_layout, parquet_to_root


def _table() -> pa.Table:
    return pa.table(
        {
            "cluster_e": pa.array([2.0, 0.5], pa.float32()),
            "n_cells": pa.array([2, 1], pa.int32()),
            "cell_e": pa.array([[1.5, 0.5], [0.5]], pa.list_(pa.float32())),
        }
    )


def test_branch_layout():
    cmap = load_mapping({"columns": {"cluster_e": "E", "n_cells": "nc"}})
    layout = _branch_layout(_table().schema, cmap)
    assert (layout.scalars, layout.cells, layout.counter) == (["cluster_e"], ["cell_e"], "nc")
    assert layout.branch_of == {"cluster_e": "E", "cell_e": "cell_e"}
    with pytest.raises(ValueError, match="columns 'cluster_e' and 'cell_e' both map to branch 'E'"):
        _branch_layout(_table().schema, load_mapping({"columns": {"cluster_e": "E", "cell_e": "E"}}))


def test_scaled_branches_in_mev(tmp_path):
    pq.write_table(_table(), tmp_path / "a.parquet")
    mapping = {"columns": {"cluster_e": {"branch": "E", "scale": 0.001}}}
    tree = uproot.open(parquet_to_root(tmp_path / "a.parquet", tmp_path / "a.root", "t", mapping))["t"]
    assert sorted(tree.keys()) == ["E", "cell_e", "n_cells"]
    assert tree["E"].typename == "double" and tree["E"].array(library="np").tolist() == [2000.0, 500.0]
    assert tree["n_cells"].array(library="np").tolist() == [2, 1]
    assert [list(x) for x in tree["cell_e"].array(library="np")] == [[1.5, 0.5], [0.5]]
