"""The comparison-with-the-BDT figures of the calibration benchmark, on hand-made metrics."""

from __future__ import annotations

import math

import pytest

from calo_calib.evaluation.scorecard import bin_fractions, gap_closed, linearity, scorecard


def _metrics():
    comparison_rows = [
        {"truth_e_lo": 5, "truth_e_hi": 20, "abs_eta_lo": 0, "abs_eta_hi": 0.8, "n": 100, "ratio": 0.90, "ratio_err": 0.02},  # better
        {"truth_e_lo": 20, "truth_e_hi": 60, "abs_eta_lo": 0, "abs_eta_hi": 0.8, "n": 100, "ratio": 0.99, "ratio_err": 0.02},  # equal
        {"truth_e_lo": 60, "truth_e_hi": 150, "abs_eta_lo": 0, "abs_eta_hi": 0.8, "n": 100, "ratio": 1.05, "ratio_err": 0.02},  # worse
        {"truth_e_lo": 150, "truth_e_hi": 500, "abs_eta_lo": 0, "abs_eta_hi": 0.8, "n": 3, "ratio": None, "ratio_err": None},  # empty
    ]
    vs_e = [
        {"truth_e_lo": 5, "truth_e_hi": 20, "n": 100, "transformer": {"median": 1.02, "median_err": 0.001}},
        {"truth_e_lo": 20, "truth_e_hi": 60, "n": 100, "transformer": {"median": 1.002, "median_err": 0.001}},
        {"truth_e_lo": 60, "truth_e_hi": 150, "n": 100, "transformer": {"median": 0.996, "median_err": 0.001}},
    ]
    return {
        "inclusive": {
            "transformer": {"sigma_rel": 0.020, "sigma_rel_err": 0.0002},
            "oracle": {"sigma_rel": 0.016, "sigma_rel_err": 0.0002},
        },
        "vs_e": vs_e,
        "comparison_to_bdt": {
            "inclusive": {"ratio": 0.909, "ratio_err": 0.012, "sigma_rel": 0.020, "sigma_rel_ref": 0.022},
            "vs_e_abs_eta": comparison_rows,
        },
    }


def test_bin_fractions_count_only_populated_bins_beyond_the_error():
    f = bin_fractions(_metrics()["comparison_to_bdt"])
    assert f["n_bins"] == 3 and f["better_count"] == 1 and f["worse_count"] == 1 and f["below_one_count"] == 2
    assert f["better"] == pytest.approx(1 / 3)


def test_gap_closed():
    assert gap_closed(0.020, 0.022, 0.016) == pytest.approx(1 / 3)
    assert gap_closed(0.022, 0.022, 0.016) == 0.0
    assert gap_closed(0.024, 0.022, 0.016) < 0
    assert math.isnan(gap_closed(0.02, 0.016, 0.016))


def test_linearity_ignores_low_energy_and_finds_the_worst_bin():
    lin = linearity(_metrics(), "transformer")
    assert lin["max_abs_deviation_above"] == pytest.approx(0.004)
    assert lin["worst_bin"] == [60, 150]
    assert lin["within_tolerance"] is False


def test_scorecard_with_and_without_a_bdt():
    card = scorecard(_metrics(), "transformer")
    assert card["ratio_to_bdt"] == pytest.approx(0.909)
    assert card["gap_closed"] == pytest.approx(1 / 3)
    m = _metrics()
    m["comparison_to_bdt"] = None
    assert scorecard(m, "transformer")["ratio_to_bdt"] is None
