"""Markdown tables (calo_calib.comparison.markdown): the report on the real sweep, hand-made tables."""

from __future__ import annotations

import pytest

from calo_calib.comparison.loading import Unreadable
from calo_calib.comparison.markdown import (
    best_per_bin_markdown,
    format_value,
    inclusive_table,
    ranking_markdown,
    report_markdown,
)
from calo_calib.comparison.ranking import rank_runs
from calo_calib.comparison.table import build_table
from tests.comparison.helpers import make_metrics, make_run


def test_report_lists_every_run_in_rank_order_and_the_unreadable_ones(loaded, records):
    text = report_markdown(records, loaded.unreadable)
    positions = [text.index(f"| {r['config']} |") for r in rank_runs(records, "electron")]
    assert positions == sorted(positions)
    for u in loaded.unreadable:
        assert f"- {u.path}: {u.reason}" in text


@pytest.fixture
def runs(tmp_path):
    return [
        make_run(tmp_path, "bdt", make_metrics("bdt", "mse", 0.02)),
        make_run(tmp_path, "net", make_metrics("transformer", "mse", 0.015, fingerprint="other")),
    ]


def test_ranking_and_best_per_bin_markdown_of_a_hand_made_table(runs):
    records = build_table(runs)
    text = ranking_markdown(records, "electron")
    assert text.startswith("## electron: 2 runs ranked by inclusive σ_rel [%]\n")
    assert "2 different test datasets" in text  # no common test data: a note, and no ratio for the network
    assert text.index("| 1 | transformer-mse | s | 1.50 ± 0.10 | – |  |") < text.index(
        "| 2 | bdt-mse | s | 2.00 ± 0.10 | 1.000 ± 0.000 | self |"
    )
    assert "| median E_reco/E_true |" in ranking_markdown(records, "electron", "median")
    grid = best_per_bin_markdown(records, "electron")
    assert "| 0–0.8 | 10–50 | transformer-mse | 1.50 ± 0.10 | – | bdt-mse | 3.5 | 2 |" in grid
    assert "No (E_true, |η|) bin" in best_per_bin_markdown(records, "photon_conv")
    report = report_markdown(records, [Unreadable("x/run", "invalid JSON")], particle="electron")
    assert report.endswith("## Not read (1)\n\n- x/run: invalid JSON\n")


def test_inclusive_table_and_value_format(runs):
    text = inclusive_table(runs)
    assert text.splitlines()[2] == f"| electron | bdt-mse | 4.00 | 2.00 ± 0.10 | 1.00 | – | {runs[0].run_dir} |"
    assert len(text.splitlines()) == 2 + len(runs)
    assert format_value(float("nan"), 0.1) == "–" and format_value(0.5, float("nan"), 100, 1) == "50.0"
