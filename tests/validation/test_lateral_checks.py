"""Lateral-widths checks (calo_calib/validation/lateral_checks.py) on hand-made shape arrays."""

from __future__ import annotations

import numpy as np
import pytest

from calo_calib.validation import lateral_checks as LC
from calo_calib.validation.common import DEV, INFO, OK
from calo_calib.validation.shower_shapes import target


def _around(name: str, particle: str, n: int = 3000, shift: float = 0.0) -> np.ndarray:
    lo, hi = target(name).band(particle)
    w = target(name).width
    return 0.5 * (lo + hi) + shift + 0.5 * (w[0] + w[1]) * np.random.default_rng(0).normal(size=n)


def test_variable_rows_verdicts():
    x = _around("w_eta2", "electron")
    res, rows = LC.variable_rows("electron", "w_eta2", "w_eta2", "w_η2 corrected", x, 1.0, 10, np.random.default_rng(1))
    assert [r.verdict for r in rows] == [OK, OK] and res["verdict"] == OK
    assert rows[0].quantity == "w_η2 corrected peak, electron"
    _, rows = LC.variable_rows("electron", "w_eta2", "w_eta2", "w_η2 corrected", x + 0.003, 1.0, 10, np.random.default_rng(1))
    assert rows[0].verdict == DEV
    _, rows = LC.variable_rows("electron", "w_eta2", "w_eta2_raw", "w_η2 raw", x + 0.003, 1.0, 10, np.random.default_rng(1))
    assert [r.verdict for r in rows] == [INFO, INFO]  # the raw width is not judged


def test_u_profile_medians():
    u = np.array([0.01, 0.02, 0.03, 0.51, 0.99])
    sh = {"rel_pos": u, "w_eta2_raw": np.array([1.0, 2.0, 6.0, 4.0, 5.0]) * 1e-3, "w_eta2": np.full(5, 1e-3)}
    uc, med, medc = LC.u_profile(sh)
    assert uc[0] == pytest.approx(0.025) and med[0] == pytest.approx(2.0) and med[10] == pytest.approx(4.0)
    assert med[19] == pytest.approx(5.0) and np.isnan(med[5]) and medc[0] == pytest.approx(1.0)


def test_spot_rows_equivalent_and_not():
    cell = {"offset": (0, 0), "frac": 0.2, "e_cell": 10.0, "e_shower": 50.0, "a": 0.1, "sampling": 0.1,
            "spot_poisson": 0.1, "spot_multinomial": 0.08, "ratio_poisson": 1.0, "ratio_multinomial": 0.8}  # fmt: skip
    res, row, note = LC.spot_rows("electron", [cell])
    assert row.verdict == OK and res["equivalent"] and res["cells"][0]["offset"] == [0, 0]
    assert row.simulated == "0.80–1.00" and "| (0, 0) |" in note
    _, row, _ = LC.spot_rows("electron", [{**cell, "ratio_poisson": 2.0}])
    assert row.verdict == DEV
