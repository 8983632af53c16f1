"""File discovery and schema checks of the loader (calo_calib/data/dataset_files.py)."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calo_calib.data.checks import DataError
from calo_calib.data.dataset_files import check_schemas, expand_paths


def test_files_are_unique_and_sorted_and_schemas_checked(tmp_path):
    for name in ("b.parquet", "a.parquet"):
        pq.write_table(pa.table({"cluster_e": pa.array([1.0], pa.float32())}), tmp_path / name)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert expand_paths([b, a, b]) == [a.resolve(), b.resolve()]
    with pytest.raises(FileNotFoundError, match="empty list of paths"):
        expand_paths([])
    with pytest.raises(DataError, match=r"missing column\(s\) \['truth_e'\] needed for cell features \[\]"):
        check_schemas([a], ["cluster_e", "truth_e"], [], [], ["cluster_e"])
    with pytest.raises(DataError, match="column 'cluster_e' must be a list column"):
        check_schemas([a], [], ["cluster_e"], [], [])
