"""SALT HDF5 layout names and types (calo_calib/io/salt_layout.py): known answers."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from calo_calib.io.salt_layout import DEFAULT_REQUIRED, default_norm_path, is_list, is_string, numpy_dtype


def test_norm_path_dtypes_and_required_fields():
    assert default_norm_path("/d/sample.h5") == Path("/d/sample.norm.yaml")
    assert numpy_dtype(pa.int8(), "x") == np.int8 and numpy_dtype(pa.bool_(), "x") == np.bool_
    assert numpy_dtype(pa.float32(), "x") == np.float32
    with pytest.raises(TypeError, match="x: Arrow type string has no HDF5 equivalent"):
        numpy_dtype(pa.string(), "x")
    assert is_list(pa.large_list(pa.float32())) and not is_list(pa.float32())
    assert is_string(pa.large_string()) and not is_string(pa.binary())
    assert "n_cells" not in DEFAULT_REQUIRED and "cell_e" in DEFAULT_REQUIRED
