"""Checks and pre-pass of the SALT writer's Parquet input (calo_calib/io/salt_input.py) on a hand-made table."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calo_calib.io.salt_input import cell_counts, check_no_nulls, scan_input, split_columns


def _table() -> pa.Table:
    return pa.table(
        {
            "particle": pa.array(["e", "photon"]),
            "n_cells": pa.array([2, 3], pa.int32()),
            "cell_e": pa.array([[1.0, 2.0], [3.0, 4.0, 5.0]], pa.list_(pa.float32())),
        }
    )


def test_columns_counts_and_scan(tmp_path):
    t = _table()
    assert split_columns(t.schema, Path("f")) == (["particle", "n_cells"], ["cell_e"])
    assert np.array_equal(cell_counts(t, ["particle", "n_cells"], ["cell_e"], Path("f"), 0), [2, 3])
    pq.write_table(t, tmp_path / "a.parquet")
    # (rows, largest cell count, longest UTF-8 string per string column)
    assert scan_input([tmp_path / "a.parquet"], ["particle", "n_cells"], ["cell_e"], 10, None, False) == (
        2,
        3,
        {"particle": 6},
    )
    with pytest.raises(ValueError, match=r"row 1 \(cluster 1 of the input\): 3 cells > max_cells = 2"):
        scan_input([tmp_path / "a.parquet"], ["particle", "n_cells"], ["cell_e"], 10, 2, False)


def test_nulls_and_disagreeing_counts_name_the_row():
    t = _table()
    with pytest.raises(ValueError, match="f: row 11: null value in column 'x'"):
        check_no_nulls(t.append_column("x", pa.array([1.0, None])), Path("f"), 10)
    bad = t.set_column(1, "n_cells", pa.array([2, 4], pa.int32()))
    with pytest.raises(ValueError, match="f: row 1: n_cells = 4 but the cell lists have 3 entries"):
        cell_counts(bad, ["particle", "n_cells"], ["cell_e"], Path("f"), 0)
