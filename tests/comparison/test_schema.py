"""What the comparison reads from metrics.json (calo_calib.comparison.schema): the check, the parser, the run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from calo_calib.comparison.schema import (
    MetricsError,
    RunResult,
    read_metrics_file,
    run_from_metrics,
    sigma_vs,
    validate_metrics,
)
from tests.comparison.helpers import E_BINS, make_metrics


def test_a_valid_metrics_json_is_parsed_into_a_run(tmp_path):
    metrics = make_metrics("transformer", "huber", 0.015, fingerprint="abc")
    validate_metrics(metrics, "m.json")
    run = run_from_metrics(metrics, tmp_path / "7_x", sweep="s", overrides={"lr": "1"}, created=5.0)
    assert isinstance(run, RunResult)
    assert (run.particle, run.model, run.loss, run.label) == ("electron", "transformer", "huber", "transformer-huber")
    assert (run.sweep, run.job, run.overrides, run.created, run.test_fingerprint) == (
        "s",
        "7_x",
        {"lr": "1"},
        5.0,
        "abc",
    )
    assert run.sigma_rel() == (0.015, 0.001) and run.sigma_rel("raw") == (0.03, 0.001)
    s = sigma_vs(run, "vs_e")
    np.testing.assert_array_equal(s["lo"], [lo for lo, _ in E_BINS])
    np.testing.assert_array_equal(s["sigma_rel"], [0.015, 0.015])
    assert sigma_vs(run, "vs_e", "oracle")["sigma_rel"].tolist() == [0.0075, 0.0075]


def test_nulls_are_nan_and_every_bad_key_is_named():
    metrics = make_metrics("bdt", "mse", None)
    validate_metrics(metrics, "m.json")  # null: a NaN (low-count bin), allowed
    run = RunResult(None, "electron", "bdt", "mse", metrics)
    assert math.isnan(run.sigma_rel()[0])
    bad = make_metrics("bdt")
    bad["vs_mu"][0]["mu_lo"] = True
    with pytest.raises(MetricsError, match=r"m.json: vs_mu\[0\].mu_lo: expected a number or null, got True"):
        validate_metrics(bad, "m.json")
    with pytest.raises(MetricsError, match="run.model must be a string"):
        validate_metrics({**bad, "run": {**bad["run"], "model": 3}}, "m.json")
    with pytest.raises(MetricsError, match="vs_e must be a list of bins"):
        validate_metrics({**make_metrics("bdt"), "vs_e": {}}, "m.json")


def test_read_metrics_file_errors_name_the_file(tmp_path):
    with pytest.raises(MetricsError, match=r"^no metrics.json$"):
        read_metrics_file(tmp_path / "metrics.json")
    (tmp_path / "config.yaml").write_text("{}")
    with pytest.raises(MetricsError, match="config.yaml present"):
        read_metrics_file(tmp_path / "metrics.json")
    (tmp_path / "metrics.json").write_text('{"run": ')
    with pytest.raises(MetricsError, match=f"invalid JSON in {tmp_path / 'metrics.json'}"):
        read_metrics_file(tmp_path / "metrics.json")
    (tmp_path / "metrics.json").write_text(json.dumps({"a": 1}))
    assert read_metrics_file(tmp_path / "metrics.json") == {"a": 1}
