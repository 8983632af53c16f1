"""Helpers shared by the format-conversion tests: exact table comparison and loader batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch

from calo_calib.data.features import DEFAULT_CELL_FEATURES, default_cluster_features
from calo_calib.data.loader import ClusterDataset


def _values(arr: pa.Array) -> np.ndarray:
    """Values as numpy, floats as their bit patterns: equality is then exact (NaN, -0.0 included)."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return np.array(arr.to_pylist(), dtype=object)
    v = arr.to_numpy(zero_copy_only=False)
    if v.dtype.kind == "f":
        v = v.view(f"u{v.dtype.itemsize}")
    return v


def assert_tables_identical(a: pa.Table, b: pa.Table) -> None:
    """Same columns in the same order, same types, and every value bit-identical."""
    assert a.column_names == b.column_names
    assert a.num_rows == b.num_rows
    for name in a.column_names:
        ta, tb = a.schema.field(name).type, b.schema.field(name).type
        assert ta == tb, f"{name}: type {ta} != {tb}"
        ca, cb = a[name].combine_chunks(), b[name].combine_chunks()
        assert ca.null_count == cb.null_count == 0, name
        if pa.types.is_list(ta):
            assert np.array_equal(pc.list_value_length(ca).to_numpy(), pc.list_value_length(cb).to_numpy()), name
            ca, cb = ca.flatten(), cb.flatten()
        va, vb = _values(ca), _values(cb)
        assert va.dtype == vb.dtype, name
        assert np.array_equal(va, vb), f"column {name!r} differs"


def loader_batches(path, particle: str) -> list[dict[str, torch.Tensor]]:
    ds = ClusterDataset(path, DEFAULT_CELL_FEATURES, default_cluster_features(particle), batch_size=64)
    return list(ds.batches(0))


def assert_same_batches(a: list[dict[str, torch.Tensor]], b: list[dict[str, torch.Tensor]]) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            assert x[k].dtype == y[k].dtype and torch.equal(x[k], y[k]), k


@pytest.fixture
def identical():
    """``identical(table_a, table_b)``: assert exact equality of every column (see assert_tables_identical)."""
    return assert_tables_identical


@pytest.fixture
def same_batches():
    """``same_batches(path_a, path_b, particle)``: ClusterDataset yields identical batches on both."""

    def check(path_a, path_b, particle: str) -> None:
        assert_same_batches(loader_batches(path_a, particle), loader_batches(path_b, particle))

    return check
