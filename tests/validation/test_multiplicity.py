"""Cells-per-cluster check: a median inside the expected range is OK, outside a DEVIATION."""

from __future__ import annotations

import numpy as np

from calo_calib.validation import multiplicity as M
from calo_calib.validation import targets as T
from calo_calib.validation.common import DEV, INFO, OK


def test_default_row_verdicts():
    lo, hi = T.CELLS_PER_CLUSTER_RANGE
    inside = np.arange(lo, hi + 1)
    r = M.default_row("electron", inside)
    assert r.verdict == OK and r.comment == "" and r.simulated.startswith(f"median {np.median(inside):.0f}")
    r = M.default_row("photon_conv", np.full(50, 3 * hi))
    assert r.verdict == DEV and r.comment == "median outside the expected range"
    assert r.simulated == f"median {3 * hi}, 5-95%: {3 * hi}-{3 * hi}"
    assert M.default_row("electron", np.full(9, lo - 1)).verdict == DEV
    assert M.scan_row(np.full(9, 10 * hi)).verdict == INFO


def test_quantiles():
    assert M.quantiles(np.arange(101)).tolist() == [5.0, 50.0, 95.0]
