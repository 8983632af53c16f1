"""Ranking (calo_calib.comparison.ranking): on the real sweep and on hand-made tables with a known answer."""

from __future__ import annotations

import math

import pytest

from calo_calib.comparison.ranking import best_per_bin, rank_runs
from calo_calib.comparison.table import build_table
from tests.comparison.helpers import make_metrics, make_run, metrics_of


def test_ranking_is_by_inclusive_sigma_rel_of_each_runs_model(loaded, records):
    ranking = rank_runs(records, "electron")
    assert [r["rank"] for r in ranking] == list(range(1, len(loaded.runs) + 1))
    want = sorted((metrics_of(r.run_dir)["inclusive"][r.model]["sigma_rel"], str(r.run_dir)) for r in loaded.runs)
    assert [r["value"] for r in ranking] == [s for s, _ in want]
    assert {r["run_dir"] for r in ranking} == {d for _, d in want}
    # by the median response: closest to 1 first
    by_median = rank_runs(records, "electron", "median")
    assert [abs(r["value"] - 1) for r in by_median] == sorted(abs(r["value"] - 1) for r in by_median)


def test_best_configuration_per_e_eta_bin_is_the_smallest_sigma_rel(loaded, records):
    best = best_per_bin(records, "electron")
    assert best, "the sweep should leave some (E, |η|) cells above evaluation.min_count"
    by_bin: dict[tuple, list[tuple[float, str]]] = {}
    for run in loaded.runs:
        for row in metrics_of(run.run_dir)["vs_e_abs_eta"]:
            s = row[run.model]["sigma_rel"]
            if s is not None:
                key = (row["truth_e_lo"], row["truth_e_hi"], row["abs_eta_lo"], row["abs_eta_hi"])
                by_bin.setdefault(key, []).append((s, run.label))
    assert len(best) == len(by_bin)
    for b in best:
        options = by_bin[(b["truth_e_lo"], b["truth_e_hi"], b["abs_eta_lo"], b["abs_eta_hi"])]
        assert b["value"] == min(s for s, _ in options) and b["n_configs"] == len(options)
        assert b["best"] in {label for s, label in options if s == b["value"]}


@pytest.fixture
def hand_made(tmp_path) -> list[dict]:
    """Three electron configurations with known σ_rel (NaN last), one photon run, and per-bin winners."""
    runs = [
        make_run(tmp_path, "a", make_metrics("bdt", "mse", 0.020, median=0.99)),
        make_run(
            tmp_path,
            "b",
            make_metrics("transformer", "mse", 0.015, median=1.03, per_bin={(10.0, 0.0): 0.030, (50.0, 0.8): None}),
        ),  # fmt: skip
        make_run(tmp_path, "c", make_metrics("transformer", "huber", None, median=1.001)),
        make_run(tmp_path, "d", make_metrics("bdt", "mse", 0.001, particle="photon_conv")),
    ]
    return build_table(runs)


def test_hand_made_ranking_known_order(hand_made):
    ranking = rank_runs(hand_made, "electron")
    assert [(r["rank"], r["config"]) for r in ranking] == [
        (1, "transformer-mse"),
        (2, "bdt-mse"),
        (3, "transformer-huber"),
    ]
    assert ranking[0]["value"] == 0.015 and ranking[0]["err"] == 0.001
    assert ranking[0]["ratio_to_bdt"] == pytest.approx(0.75) and ranking[1]["bdt_reference"] == "self"
    assert math.isnan(ranking[2]["value"])  # no σ_rel: ranked last
    assert [r["config"] for r in rank_runs(hand_made, "electron", "median")] == [
        "transformer-huber", "bdt-mse", "transformer-mse"
    ]  # fmt: skip
    assert [r["config"] for r in rank_runs(hand_made, "photon_conv")] == ["bdt-mse"]


def test_hand_made_best_per_bin_known_winners_and_margin(hand_made):
    best = {(b["truth_e_lo"], b["abs_eta_lo"]): b for b in best_per_bin(hand_made, "electron")}
    assert set(best) == {(10.0, 0.0), (10.0, 0.8), (50.0, 0.0), (50.0, 0.8)}
    assert best[(10.0, 0.0)]["best"] == "bdt-mse" and best[(10.0, 0.0)]["runner_up"] == "transformer-mse"
    assert best[(10.0, 0.0)]["margin"] == pytest.approx((0.030 - 0.020) / math.hypot(0.001, 0.001))
    assert best[(10.0, 0.8)]["best"] == "transformer-mse" and best[(10.0, 0.8)]["n_configs"] == 2
    # transformer-mse is low-count there: the BDT is alone, no runner-up
    only = best[(50.0, 0.8)]
    assert (only["best"], only["runner_up"], only["n_configs"]) == ("bdt-mse", "", 1) and math.isnan(only["margin"])
