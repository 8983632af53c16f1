"""Flattened-cell helpers of the shower shapes (calo_calib/data/cell_segments.py): known answers."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from calo_calib.data import cell_segments as CS


def test_wrap_ratio_sqrt_pos():
    np.testing.assert_allclose(CS.wrap(np.array([0.1, 2 * math.pi + 0.1, -2 * math.pi - 0.2, 3.0])), [0.1, 0.1, -0.2, 3.0])
    assert CS.ratio(np.array([1.0, 1.0, 2.0]), np.array([4.0, 1e-7, -2.0])).tolist() == [0.25, 0.0, -1.0]
    assert CS.sqrt_pos(np.array([4.0, -1e-18, 0.0])).tolist() == [2.0, 0.0, 0.0]


def test_segments_argmax_and_bincount():
    seg = np.array([0, 0, 0, 2, 2, 3])
    assert CS.segments(seg).tolist() == [0, 3, 5]
    v = np.array([1.0, 5.0, 5.0, -1.0, -3.0, 7.0])
    # first on ties (cluster 0), cluster 1 has no cell, cluster 3's only cell is masked out
    mask = np.array([True, True, True, True, True, False])
    assert CS.seg_argmax(v, mask, seg, 4).tolist() == [1, -1, 3, -1]
    assert CS.seg_argmax(v, np.zeros(6, bool), seg, 4).tolist() == [-1] * 4
    assert CS.bincount(seg, v, 4).tolist() == [11.0, 0.0, -4.0, 7.0]
    out = CS.bincount(seg, None, 3)  # indices >= n are dropped
    assert out.dtype == np.float64 and out.tolist() == [3.0, 0.0, 2.0]


def test_cell_deta_barrel_and_endcap():
    a = np.array([0.3, 0.3, 1.6, 2.2])
    endcap = np.array([False, True, True, True])
    # |eta| = 0.3 with the end-cap geometry is clipped into its coverage (1.375-1.425: 0.05)
    assert CS.cell_deta(2, a, endcap).tolist() == pytest.approx([0.025, 0.05, 0.025, 0.025])
    assert CS.cell_deta(1, a, endcap).tolist() == pytest.approx([0.003125, 0.05, 0.003125, 0.00625])


def test_flatten_cells():
    t = pa.table({"cell_e": [[1.0, 2.0], [], [3.0]], "cell_layer": [[1, 2], [], [3]]})
    cells, seg = CS.flatten_cells(t, ["cell_e", "cell_layer"])
    assert seg.tolist() == [0, 0, 2] and cells["cell_e"].tolist() == [1.0, 2.0, 3.0]
    assert cells["cell_layer"].tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="other lengths"):
        CS.flatten_cells(pa.table({"a": [[1.0], [2.0]], "b": [[1.0, 2.0], [3.0]]}), ["a", "b"])
