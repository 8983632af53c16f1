"""The ROOT reader (calo_calib/io/root_reader.py) on a hand-made two-entry ntuple: known columns."""

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest
import uproot

from calo_calib.io.root_reader import root_to_parquet


def _ntuple(path):
    with uproot.recreate(path) as f:
        f.mktree("egamma", {"E": np.float64, "cell_E": ak.Array([[1.0]]).type})
        f["egamma"].extend({"E": np.array([2000.0, 500.0]), "cell_E": ak.Array([[1500.0, 500.0], [500.0]])})
    return path


def test_mev_ntuple_without_n_cells(tmp_path):
    mapping = {"tree": "egamma", "columns": {"cluster_e": {"branch": "E", "scale": 0.001},
                                             "cell_e": {"branch": "cell_E", "scale": 0.001}}}  # fmt: skip
    out = root_to_parquet(
        _ntuple(tmp_path / "a.root"), None, mapping, tmp_path / "out", required=["cluster_e", "n_cells", "cell_e"]
    )
    t = pq.read_table(sorted(out.glob("*.parquet"))[0])
    assert t.column_names == ["cluster_e", "n_cells", "cell_e"]  # the format's order
    assert t["cluster_e"].to_pylist() == [2.0, 0.5] and str(t["cluster_e"].type) == "float"
    assert t["n_cells"].to_pylist() == [2, 1]  # derived from the cell branch
    assert t["cell_e"].to_pylist() == [[1.5, 0.5], [0.5]]


def test_flat_branch_for_a_cell_column_is_refused(tmp_path):
    root = _ntuple(tmp_path / "a.root")
    with pytest.raises(ValueError, match="branch 'E' for cell column 'cell_e' must be jagged"):
        root_to_parquet(root, "egamma", {"columns": {"cell_e": "E"}}, tmp_path / "out", required=["cell_e"])
