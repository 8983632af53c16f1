"""The row-group scan of the loader (calo_calib/data/selection.py) on a hand-made file: cuts and counts."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calo_calib.data.checks import DataError
from calo_calib.data.selection import RowSelection

SCALARS = ["cluster_e", "truth_e", "n_cells", "is_crack", "cluster_eta"]


def _file(tmp_path, cell_e):
    t = pa.table(
        {
            "cluster_e": pa.array([10.0, -1.0, 10.0, 10.0, 1.0], pa.float32()),
            "truth_e": pa.array([10.0, 1.0, 10.0, 50.0, 1.0], pa.float32()),
            "n_cells": pa.array([1, 1, 1, 1, 0], pa.int32()),
            "is_crack": pa.array([False, False, True, False, False]),
            "cluster_eta": pa.array([0.0] * 5, pa.float32()),
            "cell_e": pa.array(cell_e, pa.list_(pa.float32())),
            "cell_layer": pa.array([[2], [2], [2], [2], []], pa.list_(pa.int8())),
        }
    )
    pq.write_table(t, tmp_path / "a.parquet", row_group_size=3)
    return tmp_path / "a.parquet"


def _selection(**kw):
    opts = dict(
        exclude_crack=True,
        min_cluster_et=0.0,
        max_target=2.0,
        nonfinite="error",
        out_of_range="allow",
        option_prefix="",
    )
    return RowSelection(SCALARS, ["cell_e", "cell_layer"], **(opts | kw))


def test_each_cut_counted_once(tmp_path):
    sel = _selection()
    groups = sel.scan([_file(tmp_path, [[1.0], [1.0], [1.0], [1.0], []])], None)
    assert [(g.group_index, g.start, g.rows.tolist()) for g in groups] == [(0, 0, [0])]
    c = sel.counts
    assert (c["n_rows"], c["n_crack_excluded"], c["n_nonpositive_e"], c["n_target_above_max"], c["n_no_cells"]) == (
        5,
        1,
        1,
        1,
        1,
    )


def test_nonfinite_cell_error_or_drop(tmp_path):
    path = _file(tmp_path, [[np.nan], [1.0], [1.0], [1.0], []])
    with pytest.raises(DataError, match=r"row 0: non-finite .* \['cell_e'\]"):
        _selection().scan([path], None)
    sel = _selection(nonfinite="drop")
    assert sel.scan([path], None) == [] and sel.counts["n_nonfinite_dropped"] == 1
