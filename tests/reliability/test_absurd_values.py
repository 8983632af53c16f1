"""One finite but absurd value (``cell_x = 3e38``) neither blows up the normalisation nor passes silently.

Before: the value entered the mean and standard deviation of the input normalisation (std ~1e36:
every other cluster's cell_x normalised to 0), without a word.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calo_calib.data.checks import DataError
from calo_calib.data.features import DEFAULT_CELL_FEATURES, default_cluster_features
from calo_calib.data.loader import ClusterDataset
from calo_calib.data.normalization import compute_norm_stats
from tests.reliability.conftest import snapshot

ROW = 7  # the cluster given the absurd cell_x


@pytest.fixture
def absurd_data(user_split):
    data = user_split("photon_conv", "train", n=400)
    shard = data / "shard_00000.parquet"
    t = pq.read_table(shard)
    col = t.column("cell_x").combine_chunks()
    values = col.flatten().to_numpy().copy()
    values[col.offsets[ROW].as_py()] = 3e38
    arr = pa.ListArray.from_arrays(col.offsets, pa.array(values, pa.float32()))
    pq.write_table(t.set_column(t.column_names.index("cell_x"), "cell_x", arr), shard)
    return data


def _load(path, **kw):
    return ClusterDataset(path, DEFAULT_CELL_FEATURES, default_cluster_features("photon_conv"), exclude_crack=False, **kw)


def test_an_out_of_range_value_is_an_error_naming_file_row_column(absurd_data):
    before = snapshot(absurd_data)
    with pytest.raises(DataError) as err:
        _load(absurd_data)
    msg = str(err.value)
    assert "shard_00000.parquet" in msg and f"row {ROW}:" in msg and "cell_x" in msg and "|cell_x| <= 5000" in msg
    assert "out_of_range='drop'" in msg
    assert snapshot(absurd_data) == before


def test_drop_counts_the_cluster_and_allow_keeps_it(absurd_data):
    clean = _load(absurd_data, out_of_range="allow")
    dropped = _load(absurd_data, out_of_range="drop")
    assert dropped.counts["n_out_of_range_dropped"] == 1 and len(dropped) == len(clean) - 1


def test_the_normalisation_is_robust_to_one_absurd_value(absurd_data, tiny_data):
    absurd = compute_norm_stats(_load(absurd_data, out_of_range="allow"))
    clean = compute_norm_stats(_load(tiny_data("photon_conv", "train", n=400)))
    x = DEFAULT_CELL_FEATURES.index("x")
    assert np.all(np.isfinite(absurd.cell_std)) and absurd.cell_std[x] < 5000
    # One cell among thousands: the statistics are the clean ones to within a fraction of a std.
    assert abs(absurd.cell_mean[x] - clean.cell_mean[x]) < 0.05 * clean.cell_std[x]
    assert abs(absurd.cell_std[x] / clean.cell_std[x] - 1) < 0.05
    np.testing.assert_allclose(absurd.cluster_mean, clean.cluster_mean, rtol=1e-6)


def test_run_hint_names_the_run_override(absurd_data, tiny_data):
    """calo_calib.run spells the switch data.out_of_range (and data.nonfinite): the hint says so."""
    from calo_calib.calibration import make_dataset
    from calo_calib.config import compose_run_config
    from tests.reliability.conftest import fast_overrides

    cfg = compose_run_config(fast_overrides("gnn_edge", tiny_data=tiny_data, train=absurd_data))
    with pytest.raises(DataError, match=r"use data.out_of_range='drop'"):
        make_dataset(cfg, [absurd_data], training=True)
