"""An epoch's buffer plan (calo_calib/data/epoch_plan.py): row groups split across buffers."""

import numpy as np

from calo_calib.data.epoch_plan import group_order, plan_buffers
from calo_calib.data.selection import RowGroup


def test_buffers_hold_exactly_buffer_size_clusters():
    groups = [RowGroup(0, 0, 0, np.arange(3)), RowGroup(0, 1, 3, np.arange(4)), RowGroup(1, 0, 0, np.arange(2))]
    plan = plan_buffers(groups, 4, None)
    assert [[(p.group.file_index, p.group.group_index, p.lo, p.hi) for p in buf] for buf in plan] == [
        [(0, 0, 0, 3), (0, 1, 0, 1)],
        [(0, 1, 1, 4), (1, 0, 0, 1)],
        [(1, 0, 1, 2)],
    ]
    shuffled = group_order(groups, np.random.default_rng(0))
    assert sorted((g.file_index, g.group_index) for g in shuffled) == [(0, 0), (0, 1), (1, 0)]
    # the groups of one file stay together
    files = [g.file_index for g in shuffled]
    assert files in ([0, 0, 1], [1, 0, 0])
