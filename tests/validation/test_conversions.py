"""Conversion check on a hand-made photon table: a matching target is OK, a wrong one a DEVIATION."""

from __future__ import annotations

import numpy as np
import pytest

from calo_calib.validation import conversions as C
from calo_calib.validation.common import DEV, INFO, OK


def _table(n: int = 400, frac: float = 0.4):
    a = np.linspace(0.05, 0.15, n)  # all in the first window 0 < |eta| < 0.2
    conv = (np.arange(n) < frac * n).astype(float)
    return a, conv, conv.copy()


def test_rows_match_and_deviate():
    a, conv, reco = _table()
    rows = C.rows(a, conv, reco, np.full(a.size, 0.4), np.full(a.size, 0.4))
    assert [r.verdict for r in rows] == [OK, INFO, OK]  # window truth, window reco, all |eta|
    assert rows[0].quantity == "P_conv truth, 0 < abs(eta) < 0.2" and rows[0].simulated == "0.400 ± 0.024"
    assert "pull +0.0" in rows[0].comment
    rows = C.rows(a, conv, reco, np.full(a.size, 0.2), np.full(a.size, 0.2))
    assert [r.verdict for r in rows] == [DEV, INFO, DEV]
    assert "pull +8.2" in rows[0].comment
    # 0.015 absolute floor where 3σ is smaller (20000 photons: 3σ = 0.010)
    a, conv, reco = _table(n=20000)
    assert C.rows(a, conv, reco, np.full(a.size, 0.39), np.full(a.size, 0.4))[0].verdict == OK
    assert C.rows(a, conv, reco, np.full(a.size, 0.38), np.full(a.size, 0.4))[0].verdict == DEV


def test_sparse_windows_are_skipped_and_profile_bins():
    a, conv, reco = _table(n=19)
    rows = C.rows(a, conv, reco, np.full(a.size, 0.4), np.full(a.size, 0.4))
    assert len(rows) == 1 and rows[0].quantity.startswith("P_conv truth, all")
    a, conv, reco = _table()
    prof = C.profile(a, conv, reco, np.full(a.size, 0.4), np.full(a.size, 0.3))
    assert len(prof["eta"]) == 25 and prof["n"][0] + prof["n"][1] == a.size
    assert np.nansum(np.array(prof["truth"]) * np.array(prof["n"])) == conv.sum()
    assert prof["reco_expected"][0] == pytest.approx(0.3)
