"""Upstream-substructure checks (calo_calib/validation/upstream_substructure_checks.py) on hand-made propagations."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from calo_calib.validation import upstream_substructure_checks as UC
from calo_calib.validation.common import DEV, INFO, OK


def test_dphi_rows_per_et_bin():
    ph = SimpleNamespace(e=np.ones(12))
    g = SimpleNamespace(et=np.array([15.0, 30.0]), ph=ph, own=np.r_[np.zeros(6, int), np.ones(6, int)],
                        dphi=np.r_[np.full(6, 0.02), np.full(6, 0.01)], lo=np.full(12, 0.005), hi=np.full(12, 0.03))  # fmt: skip
    out, rows = UC.dphi_rows(g, {"et_bins": [10, 20, 40, 100]}, SimpleNamespace(min_photon_e=1.0))
    assert [d["et_lo"] for d in out] == [10.0, 20.0]  # the empty 40-100 GeV bin is skipped
    assert out[0]["mean"] == pytest.approx(0.02) and out[1]["median"] == pytest.approx(0.01) and out[0]["n"] == 6
    assert [r.verdict for r in rows] == [INFO, INFO] and rows[0].simulated.startswith("20.0 mrad")


def test_budget_rows_ok_then_deviation():
    showers = SimpleNamespace(cluster=np.array([0, 0, 1]), n_charged=np.array([1, 2, 1]), e=np.array([8.0, 2.0, 5.0]))
    photons = SimpleNamespace(e=np.array([2.0]), electron=np.array([0]), phi_ref=np.array([0.1]), separate=np.array([True]))
    g = SimpleNamespace(bud=SimpleNamespace(showers=showers, photons=photons), el_phi=np.zeros(2),
                        e_gun=np.array([10.0, 5.0]), inside=1.0)  # fmt: skip
    brem = SimpleNamespace(max_photon_showers=2, merge_dphi=0.005, min_photon_e=1.0)
    res, rows = UC.budget_rows(g, 2, brem)
    assert rows[0].verdict == OK and res == {"hist": [0.5, 0.5, 0.0], "mean": 0.5, "max": 1, "rule_mismatches": 0}
    assert rows[1].verdict == INFO
    g.e_gun = np.array([11.0, 5.0])  # energy not conserved
    _, rows = UC.budget_rows(g, 2, brem)
    assert rows[0].verdict == DEV


def test_sample_note_flags_the_stress_test():
    brem = SimpleNamespace(min_photon_e=1.0)
    assert "STRESS TEST" not in UC.sample_note(100, 0.1, brem, 1.0)
    assert "STRESS TEST: propagation with 2 × X_ID." in UC.sample_note(100, 0.1, brem, 2.0)
