"""Comparing sweeps (calo_calib.compare) on a small real Hydra multirun made with the real entry point.

The sweep (BDT and transformer × mse and huber, electrons, tiny data) is built once per session
(:func:`make_real_sweep`; test_notebooks.py reuses it) and holds two job directories broken on
purpose: one with truncated metrics.json, one without metrics.json (a failed job).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sweep_builder import BROKEN_JSON, DIRNAME_KEYS, FAILED, LOSSES, MODELS, N_JOBS, _job_dir, make_real_sweep  # noqa: F401

from calo_calib import compare
from calo_calib.pipeline import _log_results
from calo_calib.tracking import Tracker


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_data) -> Path:
    base = tmp_path_factory.getbasetemp() / "compare_sweep"
    base.mkdir(exist_ok=True)
    return make_real_sweep(base, tiny_data)


@pytest.fixture(scope="module")
def loaded(sweep) -> compare.LoadResult:
    return compare.load_runs([sweep])


@pytest.fixture(scope="module")
def records(loaded) -> list[dict]:
    return compare.build_table(loaded.runs)


def _metrics(run_dir: Path | str) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def _numbers(rec: dict) -> tuple:
    """The source-independent content of a long-table record, NaN as None (so that == works)."""
    keys = ("particle", "model", "loss", "table", "method", *(f"{v}_{s}" for v in compare.VARIABLES for s in ("lo", "hi")),
            "n", "sigma_rel", "sigma_rel_err", "median", "ratio_to_bdt", "ratio_to_bdt_err")  # fmt: skip
    return tuple(None if isinstance(rec[k], float) and math.isnan(rec[k]) else rec[k] for k in keys)


def _same(a: float, b) -> bool:
    """Equal as the long table stores metrics.json values (null -> NaN)."""
    b = math.nan if b is None else float(b)
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=0)


# --- loading ---------------------------------------------------------------------------------------


def test_sweep_runs_are_loaded_and_broken_jobs_reported_with_reasons(sweep, loaded):
    assert sorted((r.model, r.loss) for r in loaded.runs) == sorted(itertools.product(MODELS, LOSSES))
    for r in loaded.runs:
        assert r.sweep == f"cmp/{sweep.name}"
        assert r.job == _job_dir(r.model, r.loss)
        assert r.overrides["model"] == r.model and r.overrides["loss"] == r.loss
    reasons = {Path(u.path).name: u.reason for u in loaded.unreadable}
    assert set(reasons) == {BROKEN_JSON, FAILED}
    assert "invalid JSON" in reasons[BROKEN_JSON] and "metrics.json" in reasons[BROKEN_JSON]
    assert "no metrics.json" in reasons[FAILED] and "config.yaml present" in reasons[FAILED]


def test_missing_keys_bad_values_and_bad_sources_are_reported_not_raised(tmp_path, sweep):
    good = _metrics(sweep / _job_dir("transformer", "mse"))
    cases = {
        "no_run": ({k: v for k, v in good.items() if k != "run"}, "missing key 'run'"),
        "no_particle": ({**good, "run": {k: v for k, v in good["run"].items() if k != "particle"}}, "missing key 'particle'"),
        "no_model_method": ({**good, "inclusive": {k: v for k, v in good["inclusive"].items() if k != "transformer"}}, "inclusive: missing key 'transformer'"),
        "row_without_bdt": ({**good, "vs_e": [*good["vs_e"][:2], {k: v for k, v in good["vs_e"][2].items() if k != "bdt"}]}, "vs_e[2]: missing key 'bdt'"),
        "string_sigma": ({**good, "inclusive": {**good["inclusive"], "raw": {**good["inclusive"]["raw"], "sigma_rel": "x"}}}, "inclusive.raw.sigma_rel"),
        "not_an_object": ([1, 2], "expected an object"),
    }  # fmt: skip
    for name, (content, _) in cases.items():
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "metrics.json").write_text(json.dumps(content))
    (tmp_path / "empty").mkdir()
    result = compare.load_runs([tmp_path / "runs", tmp_path / "empty", tmp_path / "missing"])
    assert result.runs == []
    reasons = {Path(u.path).name: u.reason for u in result.unreadable}
    for name, (_, expected) in cases.items():
        assert expected in reasons[name], (name, reasons[name])
        assert str(tmp_path / "runs" / name / "metrics.json") in reasons[name]  # names the file
    assert "no run directories" in reasons["empty"]
    assert reasons["missing"] == "does not exist"


def test_a_run_loaded_twice_is_kept_once(sweep, loaded):
    again = compare.load_runs([sweep, sweep / _job_dir("bdt", "mse")])
    assert len(again.runs) == len(loaded.runs)


def test_newest_sweep_is_the_latest_multirun(tmp_path, sweep):
    assert compare.newest_sweep(tmp_path) is None
    assert compare.newest_sweep(sweep.parents[1]) == sweep
    old, new = tmp_path / "a" / "1", tmp_path / "b" / "2"
    for i, d in enumerate((new, old)):  # created in the "wrong" order: the mtime decides
        d.mkdir(parents=True)
        (d / "multirun.yaml").write_text("{}")
        os.utime(d / "multirun.yaml", (1e9 + 1e6 * (1 - i), 1e9 + 1e6 * (1 - i)))
    assert compare.newest_sweep(tmp_path) == new


# --- the long table --------------------------------------------------------------------------------


def test_long_table_holds_every_value_of_every_metrics_json(loaded, records):
    assert list(records[0]) == list(compare.COLUMNS)
    expected_rows = 0
    for run in loaded.runs:
        metrics = _metrics(run.run_dir)
        methods = list(metrics["inclusive"])
        mine = [r for r in records if r["run_dir"] == str(run.run_dir)]
        expected_rows += len(methods) * (1 + sum(len(metrics[t]) for t in compare.BINNED_TABLES))
        for rec in mine:
            assert (rec["particle"], rec["model"], rec["loss"]) == (run.particle, run.model, run.loss)
            assert rec["is_model"] == (rec["method"] == run.model)
        for m in methods:
            (inc,) = [r for r in mine if r["table"] == "inclusive" and r["method"] == m]
            assert _same(inc["sigma_rel"], metrics["inclusive"][m]["sigma_rel"])
            assert _same(inc["sigma_rel_err"], metrics["inclusive"][m]["sigma_rel_err"])
            for table, variables in compare.BINNED_TABLES.items():
                got = [r for r in mine if r["table"] == table and r["method"] == m]
                assert len(got) == len(metrics[table])
                for rec, row in zip(got, metrics[table]):
                    for v in compare.VARIABLES:
                        for side in ("lo", "hi"):
                            want = row[f"{v}_{side}"] if v in variables else None
                            assert _same(rec[f"{v}_{side}"], want), (table, v)
                    assert rec["n"] == row["n"] and rec["low_count"] == row["low_count"]
                    assert _same(rec["sigma_rel"], row[m]["sigma_rel"]) and _same(
                        rec["sigma_rel_err"], row[m]["sigma_rel_err"]
                    )
                    assert _same(rec["median"], row[m]["median"])
    assert len(records) == expected_rows


def test_ratio_to_bdt_from_the_joined_method_or_the_bdt_run_of_the_same_test_data(loaded, records, sweep):
    ref_dir = sweep / _job_dir("bdt", "mse")
    ref = _metrics(ref_dir)

    def model_rows(run, table):
        return [r for r in records if r["run_dir"] == str(run.run_dir) and r["table"] == table and r["is_model"]]

    for run in loaded.runs:
        metrics = _metrics(run.run_dir)
        if run.model == "transformer":
            # joined: exactly what the run wrote as comparison_to_bdt
            comp = metrics["comparison_to_bdt"]
            assert comp is not None and metrics["run"]["reference_bdt_run"] == str(ref_dir)
            (inc,) = model_rows(run, "inclusive")
            assert inc["bdt_reference"] == "joined"
            assert _same(inc["ratio_to_bdt"], comp["inclusive"]["ratio"]) and _same(
                inc["ratio_to_bdt_err"], comp["inclusive"]["ratio_err"]
            )
            for table in compare.BINNED_TABLES:
                for rec, row in zip(model_rows(run, table), comp[table], strict=True):
                    assert _same(rec["ratio_to_bdt"], row["ratio"]) and _same(rec["ratio_to_bdt_err"], row["ratio_err"])
        elif run.loss == "huber":
            # another BDT run of the same particle and test data is the reference: σ / σ_ref
            assert metrics["run"]["test_fingerprint"] == ref["run"]["test_fingerprint"]
            for table in compare.BINNED_TABLES:
                for rec, mine, theirs in zip(model_rows(run, table), metrics[table], ref[table], strict=True):
                    assert rec["bdt_reference"] == str(ref_dir)
                    s, r = mine["bdt"]["sigma_rel"], theirs["bdt"]["sigma_rel"]
                    if s is None or r is None:
                        assert math.isnan(rec["ratio_to_bdt"])
                    else:
                        assert rec["ratio_to_bdt"] == pytest.approx(s / r)
                        rel = math.hypot(mine["bdt"]["sigma_rel_err"] / s, theirs["bdt"]["sigma_rel_err"] / r)
                        assert rec["ratio_to_bdt_err"] == pytest.approx(s / r * rel)
        else:
            (inc,) = model_rows(run, "inclusive")
            assert (inc["bdt_reference"], inc["ratio_to_bdt"], inc["ratio_to_bdt_err"]) == ("self", 1.0, 0.0)


def test_labels_stay_unique_and_the_newest_equivalent_bdt_is_the_reference(tmp_path, sweep, loaded):
    other = tmp_path / "other"
    for model, loss in (("bdt", "mse"), ("transformer", "huber")):
        shutil.copytree(sweep / _job_dir(model, loss), other / _job_dir(model, loss))
    newer = (sweep / _job_dir("bdt", "mse") / "metrics.json").stat().st_mtime + 60
    os.utime(other / _job_dir("bdt", "mse") / "metrics.json", (newer, newer))  # copytree kept the old mtime
    both = compare.load_runs([sweep, other])
    assert len(both.runs) == len(loaded.runs) + 2
    recs = compare.build_table(both.runs)
    inc = [r for r in recs if r["table"] == "inclusive" and r["is_model"]]
    assert len({r["config"] for r in inc}) == len(inc)
    # both bdt-mse runs qualify (same particle and test data): the newer one is the reference
    newest_bdt = str(other / _job_dir("bdt", "mse"))
    assert {r["bdt_reference"] for r in inc if r["model"] == "bdt"} == {"self", newest_bdt}


def test_to_arrow_and_csv_hold_the_long_table(records, tmp_path):
    table = compare.to_arrow(records)
    assert table.column_names == list(compare.COLUMNS) and table.num_rows == len(records)
    path = compare.write_csv(records, tmp_path / "t.csv")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(records) and list(rows[0]) == list(compare.COLUMNS)
    for rec, row in zip(records, rows):
        assert row["sigma_rel"] == ("" if math.isnan(rec["sigma_rel"]) else str(rec["sigma_rel"]))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temporary file


# --- ranking -------------------------------------------------------------------------------------


def test_ranking_is_by_inclusive_sigma_rel_of_each_runs_model(loaded, records):
    ranking = compare.rank_runs(records, "electron")
    assert [r["rank"] for r in ranking] == list(range(1, len(loaded.runs) + 1))
    want = sorted((_metrics(r.run_dir)["inclusive"][r.model]["sigma_rel"], str(r.run_dir)) for r in loaded.runs)
    assert [r["value"] for r in ranking] == [s for s, _ in want]
    assert {r["run_dir"] for r in ranking} == {d for _, d in want}
    # by the median response: closest to 1 first
    by_median = compare.rank_runs(records, "electron", "median")
    assert [abs(r["value"] - 1) for r in by_median] == sorted(abs(r["value"] - 1) for r in by_median)


def test_best_configuration_per_e_eta_bin_is_the_smallest_sigma_rel(loaded, records):
    best = compare.best_per_bin(records, "electron")
    assert best, "the sweep should leave some (E, |η|) cells above evaluation.min_count"
    by_bin: dict[tuple, list[tuple[float, str]]] = {}
    for run in loaded.runs:
        for row in _metrics(run.run_dir)["vs_e_abs_eta"]:
            s = row[run.model]["sigma_rel"]
            if s is not None:
                key = (row["truth_e_lo"], row["truth_e_hi"], row["abs_eta_lo"], row["abs_eta_hi"])
                by_bin.setdefault(key, []).append((s, run.label))
    assert len(best) == len(by_bin)
    for b in best:
        options = by_bin[(b["truth_e_lo"], b["truth_e_hi"], b["abs_eta_lo"], b["abs_eta_hi"])]
        assert b["value"] == min(s for s, _ in options) and b["n_configs"] == len(options)
        assert b["best"] in {label for s, label in options if s == b["value"]}


def test_report_lists_every_run_in_rank_order_and_the_unreadable_ones(loaded, records):
    text = compare.report_markdown(records, loaded.unreadable)
    positions = [text.index(f"| {r['config']} |") for r in compare.rank_runs(records, "electron")]
    assert positions == sorted(positions)
    for u in loaded.unreadable:
        assert f"- {u.path}: {u.reason}" in text


# --- command line --------------------------------------------------------------------------------


def test_cli_prints_the_ranking_and_writes_plots_and_tables(sweep, loaded, records):
    env = {**os.environ, "MPLBACKEND": "Agg", "WANDB_MODE": "offline"}
    proc = subprocess.run(
        [sys.executable, "-m", "calo_calib.compare", str(sweep)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out_dir = sweep / "comparison"  # the default: <first dir>/comparison
    for u in loaded.unreadable:
        assert f"not read: {u.path}: {u.reason}" in proc.stderr
    ranked = [r["config"] for r in compare.rank_runs(records, "electron")]
    assert [proc.stdout.index(f"| {c} |") for c in ranked] == sorted(proc.stdout.index(f"| {c} |") for c in ranked)
    assert "best configuration per (E_true, |η|) bin" in proc.stdout
    with (out_dir / "comparison.csv").open() as f:
        assert sum(1 for _ in csv.reader(f)) == len(records) + 1
    assert "ranked by inclusive σ_rel" in (out_dir / "comparison.md").read_text()
    pngs = [out_dir / f"electron_sigma_rel_{t}.png" for t in ("vs_e", "vs_abs_eta", "vs_mu")] + [
        out_dir / "electron_best_e_abs_eta.png"
    ]
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, png
    assert not list(out_dir.glob(".*.tmp"))
    # the output directory is not mistaken for a run directory when the sweep is read again
    assert len(compare.load_runs([sweep]).unreadable) == len(loaded.unreadable)


def test_cli_particle_filter_and_offline_wandb_source(sweep, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert compare.main([str(sweep), "--particle", "photon_conv", "--out", str(tmp_path / "a")]) == 1
    assert "no photon_conv run" in capsys.readouterr().err
    rc = compare.main(
        [str(sweep), "--wandb", "team/calo_calib", "--group", "cmp", "--metric", "median", "--out", str(tmp_path / "b")]
    )
    captured = capsys.readouterr()
    assert rc == 0
    assert "wandb:team/calo_calib: W&B is not online (WANDB_MODE=offline)" in captured.err
    assert "ranked by inclusive median E_reco/E_true" in captured.out
    assert (tmp_path / "b" / "electron_median_vs_e.png").stat().st_size > 0


def test_cli_fails_only_when_nothing_is_readable(sweep, tmp_path, capsys):
    broken = shutil.copytree(sweep / BROKEN_JSON, tmp_path / "only_broken" / BROKEN_JSON)
    missing = tmp_path / "missing"
    rc = compare.main([str(broken.parent), str(missing), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"no run could be read from {broken.parent}, {missing}" in err
    assert f"not read: {broken}: invalid JSON" in err and f"not read: {missing}: does not exist" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as exit_info:
        compare.main([])  # no source at all: argparse usage error
    assert exit_info.value.code == 2


# --- W&B (online only: a fake public API here) ---------------------------------------------------------


class _FakeFile:
    def __init__(self, content: str | None) -> None:
        self.content = content

    def download(self, root: str = ".", replace: bool = False):
        Path(root).mkdir(parents=True, exist_ok=True)
        (Path(root) / "metrics.json").write_text(self.content)
        return open(Path(root) / "metrics.json")


class _FakeRun:
    def __init__(self, run_id: str, name: str, content: str | None) -> None:
        self.id, self.name, self.created_at, self._content = run_id, name, "2026-11-23T10:00:00Z", content

    def file(self, name: str) -> _FakeFile:
        if self._content is None:
            raise IndexError("list index out of range")  # what wandb's Run.file does for a missing file
        assert name == "metrics.json"
        return _FakeFile(self._content)


class _FakeApi:
    def __init__(self, runs: list[_FakeRun]) -> None:
        self._runs, self.calls = runs, []

    def runs(self, path: str, filters: dict | None = None):
        self.calls.append((path, filters))
        return iter(self._runs)


def test_load_wandb_parses_downloaded_metrics_like_run_directories(loaded, records, tmp_path):
    fakes = [
        _FakeRun(f"id{i}", f"run-{r.job}", (r.run_dir / "metrics.json").read_text()) for i, r in enumerate(loaded.runs)
    ]
    fakes += [_FakeRun("nofile", "crashed", None), _FakeRun("cut", "cut", '{"run": ')]
    api = _FakeApi(fakes)
    result = compare.load_wandb("team/calo_calib", "cmp", api=api, download_dir=tmp_path)
    assert api.calls == [("team/calo_calib", {"group": "cmp"})]
    assert [(r.model, r.loss, r.sweep) for r in result.runs] == [(r.model, r.loss, "cmp") for r in loaded.runs]
    assert [r.metrics for r in result.runs] == [r.metrics for r in loaded.runs]
    reasons = {u.path: u.reason for u in result.unreadable}
    assert set(reasons) == {"wandb:team/calo_calib/nofile", "wandb:team/calo_calib/cut"}
    assert "cannot download metrics.json" in reasons["wandb:team/calo_calib/nofile"]
    assert "invalid JSON" in reasons["wandb:team/calo_calib/cut"]
    # same parser, same numbers (only the source-dependent columns differ)
    assert [_numbers(r) for r in compare.build_table(result.runs)] == [_numbers(r) for r in records]
    failing = _FakeApi([])
    failing.runs = lambda *a, **k: (_ for _ in ()).throw(ConnectionError("no network"))
    assert "no network" in compare.load_wandb("team/p", api=failing, download_dir=tmp_path).unreadable[0].reason


class _RecordingRun:
    """Stands in for a wandb Run: records save() calls."""

    def __init__(self) -> None:
        self.saved: list[tuple] = []
        self.summary: dict = {}

    def save(self, path, base_path=None, policy="live"):
        self.saved.append((path, base_path, policy))

    def log(self, *args, **kwargs) -> None:
        pass


def test_metrics_json_is_saved_with_the_wandb_run(tmp_path, sweep):
    run = _RecordingRun()
    metrics_path = sweep / _job_dir("bdt", "mse") / "metrics.json"
    Tracker(run).save_file(tmp_path / "absent.json")
    assert run.saved == []
    Tracker(None).save_file(metrics_path)  # disabled tracker: a no-op
    metrics = _metrics(metrics_path.parent)
    _log_results(Tracker(run), metrics, list(metrics["inclusive"]), {})
    assert run.saved == [(str(metrics_path), str(metrics_path.parent), "now")]
