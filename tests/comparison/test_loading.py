"""Reading runs back (calo_calib.comparison.loading): a real sweep, broken run directories, W&B through a fake API."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from sweep_builder import BROKEN_JSON, FAILED, LOSSES, MODELS, _job_dir

from calo_calib.comparison.loading import find_run_dirs, load_runs, load_wandb, newest_sweep, read_overrides
from calo_calib.comparison.table import build_table
from calo_calib.pipeline.evaluate import _log_results
from calo_calib.run_status import write_status
from calo_calib.tracking import Tracker
from tests.comparison.helpers import make_metrics, metrics_of, numbers

# --- run directories -------------------------------------------------------------------------------


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
    good = metrics_of(sweep / _job_dir("transformer", "mse"))
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
        write_status(tmp_path / "runs" / name, "completed")  # finished runs with a bad metrics.json
    (tmp_path / "empty").mkdir()
    result = load_runs([tmp_path / "runs", tmp_path / "empty", tmp_path / "missing"])
    assert result.runs == []
    reasons = {Path(u.path).name: u.reason for u in result.unreadable}
    for name, (_, expected) in cases.items():
        assert expected in reasons[name], (name, reasons[name])
        assert str(tmp_path / "runs" / name / "metrics.json") in reasons[name]  # names the file
    assert "no run directories" in reasons["empty"]
    assert reasons["missing"] == "does not exist"


def test_a_run_loaded_twice_is_kept_once(sweep, loaded):
    again = load_runs([sweep, sweep / _job_dir("bdt", "mse")])
    assert len(again.runs) == len(loaded.runs)


def test_newest_sweep_is_the_latest_multirun(tmp_path, sweep):
    assert newest_sweep(tmp_path) is None
    assert newest_sweep(sweep.parents[1]) == sweep
    old, new = tmp_path / "a" / "1", tmp_path / "b" / "2"
    for i, d in enumerate((new, old)):  # created in the "wrong" order: the mtime decides
        d.mkdir(parents=True)
        (d / "multirun.yaml").write_text("{}")
        os.utime(d / "multirun.yaml", (1e9 + 1e6 * (1 - i), 1e9 + 1e6 * (1 - i)))
    assert newest_sweep(tmp_path) == new


def test_run_directories_outside_sweeps_and_overrides_from_the_job_name(tmp_path):
    """A plain ``runs/`` tree (what notebooks/compare_runs reads): each run directory once, nothing
    below a run directory, no hidden or wandb folders; overrides parsed from a job name without .hydra."""
    runs = tmp_path / "runs"
    for rel in ("electron/bdt-mse/t0", "photon_conv/bdt-mse/t1", "3_loss=huber,model=bdt,particle=electron"):
        (runs / rel).mkdir(parents=True)
        (runs / rel / "metrics.json").write_text(json.dumps(make_metrics("bdt")))
        write_status(runs / rel, "completed")
    (runs / "electron/bdt-mse/t0/bdt").mkdir()  # inside a run directory: not a run
    (runs / "electron/bdt-mse/t0/bdt/config.yaml").write_text("{}")
    (runs / "wandb" / "x").mkdir(parents=True)
    (runs / "wandb" / "x" / "metrics.json").write_text("{}")
    assert find_run_dirs(runs) == sorted(
        runs / rel
        for rel in ("3_loss=huber,model=bdt,particle=electron", "electron/bdt-mse/t0", "photon_conv/bdt-mse/t1")
    )
    loaded = load_runs([runs])
    assert loaded.unreadable == [] and len(loaded.runs) == 3
    assert {r.sweep for r in loaded.runs} == {"runs"} and all(r.created > 0 for r in loaded.runs)
    assert read_overrides(runs / "3_loss=huber,model=bdt,particle=electron") == {
        "loss": "huber", "model": "bdt", "particle": "electron"
    }  # fmt: skip
    assert read_overrides(runs / "electron/bdt-mse/t0") == {}


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
    result = load_wandb("team/calo_calib", "cmp", api=api, download_dir=tmp_path)
    assert api.calls == [("team/calo_calib", {"group": "cmp"})]
    assert [(r.model, r.loss, r.sweep) for r in result.runs] == [(r.model, r.loss, "cmp") for r in loaded.runs]
    assert [r.metrics for r in result.runs] == [r.metrics for r in loaded.runs]
    reasons = {u.path: u.reason for u in result.unreadable}
    assert set(reasons) == {"wandb:team/calo_calib/nofile", "wandb:team/calo_calib/cut"}
    assert "cannot download metrics.json" in reasons["wandb:team/calo_calib/nofile"]
    assert "invalid JSON" in reasons["wandb:team/calo_calib/cut"]
    # same parser, same numbers (only the source-dependent columns differ)
    assert [numbers(r) for r in build_table(result.runs)] == [numbers(r) for r in records]
    failing = _FakeApi([])
    failing.runs = lambda *a, **k: (_ for _ in ()).throw(ConnectionError("no network"))
    assert "no network" in load_wandb("team/p", api=failing, download_dir=tmp_path).unreadable[0].reason


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
    metrics = metrics_of(metrics_path.parent)
    _log_results(Tracker(run), metrics, list(metrics["inclusive"]), {})
    assert run.saved == [(str(metrics_path), str(metrics_path.parent), "now")]


def test_a_directory_without_status_json_is_not_a_finished_run(tmp_path):
    """Every run writes status.json first and marks it completed last: without it, a directory is skipped
    with the reason (no silent reading of directories from before the marker existed)."""
    run = tmp_path / "runs" / "old"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps(make_metrics("bdt")))
    loaded = load_runs([tmp_path / "runs"])
    assert loaded.runs == []
    assert "no status.json" in loaded.unreadable[0].reason
