"""The long table (calo_calib.comparison.table): every metrics.json value, the ratio to the BDT, labels, Arrow."""

from __future__ import annotations

import math
import os
import shutil

import pytest
from sweep_builder import _job_dir

from calo_calib.comparison.loading import load_runs
from calo_calib.comparison.schema import BINNED_TABLES, VARIABLES
from calo_calib.comparison.table import COLUMNS, build_table, model_rows, particles, to_arrow
from tests.comparison.helpers import make_metrics, make_run, metrics_of, same


def test_long_table_holds_every_value_of_every_metrics_json(loaded, records):
    assert list(records[0]) == list(COLUMNS)
    expected_rows = 0
    for run in loaded.runs:
        metrics = metrics_of(run.run_dir)
        methods = list(metrics["inclusive"])
        mine = [r for r in records if r["run_dir"] == str(run.run_dir)]
        expected_rows += len(methods) * (1 + sum(len(metrics[t]) for t in BINNED_TABLES))
        for rec in mine:
            assert (rec["particle"], rec["model"], rec["loss"]) == (run.particle, run.model, run.loss)
            assert rec["is_model"] == (rec["method"] == run.model)
        for m in methods:
            (inc,) = [r for r in mine if r["table"] == "inclusive" and r["method"] == m]
            assert same(inc["sigma_rel"], metrics["inclusive"][m]["sigma_rel"])
            assert same(inc["sigma_rel_err"], metrics["inclusive"][m]["sigma_rel_err"])
            for table, variables in BINNED_TABLES.items():
                got = [r for r in mine if r["table"] == table and r["method"] == m]
                assert len(got) == len(metrics[table])
                for rec, row in zip(got, metrics[table]):
                    for v in VARIABLES:
                        for side in ("lo", "hi"):
                            want = row[f"{v}_{side}"] if v in variables else None
                            assert same(rec[f"{v}_{side}"], want), (table, v)
                    assert rec["n"] == row["n"] and rec["low_count"] == row["low_count"]
                    assert same(rec["sigma_rel"], row[m]["sigma_rel"]) and same(
                        rec["sigma_rel_err"], row[m]["sigma_rel_err"]
                    )
                    assert same(rec["median"], row[m]["median"])
    assert len(records) == expected_rows


def test_ratio_to_bdt_from_the_joined_method_or_the_bdt_run_of_the_same_test_data(loaded, records, sweep):
    ref_dir = sweep / _job_dir("bdt", "mse")
    ref = metrics_of(ref_dir)

    def rows_of(run, table):
        return [r for r in records if r["run_dir"] == str(run.run_dir) and r["table"] == table and r["is_model"]]

    for run in loaded.runs:
        metrics = metrics_of(run.run_dir)
        if run.model == "transformer":
            # joined: exactly what the run wrote as comparison_to_bdt
            comp = metrics["comparison_to_bdt"]
            assert comp is not None and metrics["run"]["reference_bdt_run"] == str(ref_dir)
            (inc,) = rows_of(run, "inclusive")
            assert inc["bdt_reference"] == "joined"
            assert same(inc["ratio_to_bdt"], comp["inclusive"]["ratio"]) and same(
                inc["ratio_to_bdt_err"], comp["inclusive"]["ratio_err"]
            )
            for table in BINNED_TABLES:
                for rec, row in zip(rows_of(run, table), comp[table], strict=True):
                    assert same(rec["ratio_to_bdt"], row["ratio"]) and same(rec["ratio_to_bdt_err"], row["ratio_err"])
        elif run.loss == "huber":
            # another BDT run of the same particle and test data is the reference: σ / σ_ref
            assert metrics["run"]["test_fingerprint"] == ref["run"]["test_fingerprint"]
            for table in BINNED_TABLES:
                for rec, mine, theirs in zip(rows_of(run, table), metrics[table], ref[table], strict=True):
                    assert rec["bdt_reference"] == str(ref_dir)
                    s, r = mine["bdt"]["sigma_rel"], theirs["bdt"]["sigma_rel"]
                    if s is None or r is None:
                        assert math.isnan(rec["ratio_to_bdt"])
                    else:
                        assert rec["ratio_to_bdt"] == pytest.approx(s / r)
                        rel = math.hypot(mine["bdt"]["sigma_rel_err"] / s, theirs["bdt"]["sigma_rel_err"] / r)
                        assert rec["ratio_to_bdt_err"] == pytest.approx(s / r * rel)
        else:
            (inc,) = rows_of(run, "inclusive")
            assert (inc["bdt_reference"], inc["ratio_to_bdt"], inc["ratio_to_bdt_err"]) == ("self", 1.0, 0.0)


def test_labels_stay_unique_and_the_newest_equivalent_bdt_is_the_reference(tmp_path, sweep, loaded):
    other = tmp_path / "other"
    for model, loss in (("bdt", "mse"), ("transformer", "huber")):
        shutil.copytree(sweep / _job_dir(model, loss), other / _job_dir(model, loss))
    newer = (sweep / _job_dir("bdt", "mse") / "metrics.json").stat().st_mtime + 60
    os.utime(other / _job_dir("bdt", "mse") / "metrics.json", (newer, newer))  # copytree kept the old mtime
    both = load_runs([sweep, other])
    assert len(both.runs) == len(loaded.runs) + 2
    recs = build_table(both.runs)
    inc = [r for r in recs if r["table"] == "inclusive" and r["is_model"]]
    assert len({r["config"] for r in inc}) == len(inc)
    # both bdt-mse runs qualify (same particle and test data): the newer one is the reference
    newest_bdt = str(other / _job_dir("bdt", "mse"))
    assert {r["bdt_reference"] for r in inc if r["model"] == "bdt"} == {"self", newest_bdt}


def test_to_arrow_holds_the_long_table(records):
    table = to_arrow(records)
    assert table.column_names == list(COLUMNS) and table.num_rows == len(records)


def test_hand_made_runs_ratio_labels_and_reference_choice(tmp_path):
    """Known numbers: a network run (σ 0.03) against the mse BDT (σ 0.02) of its test data, not the
    huber BDT nor a BDT on other test data; varying overrides end up in the label."""
    bdt_mse = make_run(tmp_path, "bdt_mse", make_metrics("bdt", "mse", 0.02))
    bdt_huber = make_run(tmp_path, "bdt_huber", make_metrics("bdt", "huber", 0.01), created=1e9)
    other_data = make_run(tmp_path, "bdt_other", make_metrics("bdt", "mse", 0.001, fingerprint="other"))
    net = make_run(
        tmp_path, "net", make_metrics("transformer", "mse", 0.03), overrides={"model": "transformer", "lr": "2"}
    )
    records = build_table([bdt_mse, bdt_huber, other_data, net])
    assert particles(records) == ["electron"]
    inc = {r["run_dir"]: r for r in model_rows(records, "electron", "inclusive")}
    assert inc[str(net.run_dir)]["ratio_to_bdt"] == pytest.approx(1.5)
    assert inc[str(net.run_dir)]["bdt_reference"] == str(bdt_mse.run_dir)
    assert inc[str(bdt_huber.run_dir)]["ratio_to_bdt"] == pytest.approx(0.5)
    assert (inc[str(bdt_mse.run_dir)]["bdt_reference"], inc[str(other_data.run_dir)]["bdt_reference"]) == (
        "self",
        "self",
    )
    assert inc[str(net.run_dir)]["config"] == "transformer-mse lr=2"
    assert inc[str(net.run_dir)]["overrides"] == "lr=2,model=transformer"
    # two bdt-mse runs of one sweep without distinguishing overrides: their job names tell them apart
    assert (inc[str(bdt_mse.run_dir)]["config"], inc[str(other_data.run_dir)]["config"]) == (
        "bdt-mse (s/bdt_mse)", "bdt-mse (s/bdt_other)"
    )  # fmt: skip
    bins = model_rows(records, "electron", "vs_e_abs_eta")
    assert len(bins) == 4 * 4 and all(math.isnan(r["mu_lo"]) for r in bins)
