"""Files of a comparison (calo_calib.comparison.outputs): the CSV of the long table, the whole output folder."""

from __future__ import annotations

import csv
import math

import matplotlib.pyplot as plt

from calo_calib.comparison.loading import Unreadable
from calo_calib.comparison.outputs import write_csv, write_outputs
from calo_calib.comparison.table import COLUMNS, build_table
from tests.comparison.helpers import make_metrics, make_run


def test_csv_holds_the_long_table(records, tmp_path):
    path = write_csv(records, tmp_path / "t.csv")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(records) and list(rows[0]) == list(COLUMNS)
    for rec, row in zip(records, rows):
        assert row["sigma_rel"] == ("" if math.isnan(rec["sigma_rel"]) else str(rec["sigma_rel"]))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temporary file


def test_write_outputs_writes_csv_report_and_four_plots_per_particle(tmp_path):
    runs = [make_run(tmp_path, "g", make_metrics("bdt", "mse", 0.03, particle="photon_conv"))]
    out = tmp_path / "out"
    written = write_outputs(build_table(runs), out, [Unreadable("x", "why")], metric="median")
    plt.close("all")
    assert sorted(p.name for p in written) == sorted(
        ["comparison.csv", "comparison.md", "photon_conv_best_e_abs_eta.png"]
        + [f"photon_conv_median_{t}.png" for t in ("vs_e", "vs_abs_eta", "vs_mu")]
    )
    assert all(p.parent == out and p.stat().st_size > 0 for p in written)
    assert "- x: why" in (out / "comparison.md").read_text()
