"""End to end: the Z candle on small samples with a tiny BDT and a tiny network with an uncertainty head."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from calo_calib.config import compose_run_config
from calo_calib.deploy.run_export import export_run
from calo_calib.pipeline import train_and_evaluate
from calo_calib.zee.candle import compose_candle_config, run_candle
from calo_calib.zee.energies import EnergyMethod
from calo_calib.zee.sample import load_sample

QUICK_NET = ["trainer.epochs=1", "trainer.max_steps_per_epoch=4", "data.batch_size=32", "model.net.n_layers=1",
             "model.net.embed_dim=16", "model.net.n_heads=2", "model.net.head_hidden=16"]  # fmt: skip


@pytest.fixture(scope="module")
def calibrations(tmp_path_factory, tiny_data) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("zee_runs")
    common = [
        *tiny_data.run_overrides("electron"),
        "logger=none",
        "evaluation.n_boot=5",
        "evaluation.plots=false",
        "progress=false",
        "compare_to=null",
    ]
    runs = {
        "bdt": ["model=bdt", "model.num_boost_round=20"],
        "transformer": ["model=transformer", "loss=gaussian_nll", *QUICK_NET],
    }
    out = {}
    for name, extra in runs.items():
        out[name] = root / name
        train_and_evaluate(compose_run_config([*extra, *common]), out[name])
    return out


def test_candle_writes_tables_and_plots_for_every_method(tmp_path, calibrations, caplog):
    out = tmp_path / "candle"
    cfg = compose_candle_config([
        f"calibration={calibrations['bdt']}", f"extra_calibrations=[{calibrations['transformer']}]",
        "n_events=300", "data_detector=material_up", f"out={out}", "progress=false", "shard_events=200",
        "fit.min_events=40", "fit.model=gauss", "scales.abs_eta_edges=[0.0,1.37,2.47]", "scales.iterations=1", "plot_categories=[all]",
    ])  # fmt: skip
    with caplog.at_level(logging.INFO, logger="calo_calib.zee.candle"):
        record = run_candle(cfg)
    on_disk = json.loads((out / "zee_candle.json").read_text())
    assert on_disk["methods"].keys() == record["methods"].keys() == {"raw", "bdt", "transformer"}
    assert on_disk["samples"]["data"]["detector"] == "material_up" and on_disk["samples"]["mc"]["detector"] == "nominal"
    n_reco = on_disk["samples"]["mc"]["n_events_reconstructed"]
    for method, r in on_disk["methods"].items():
        assert r["n_events_mc"] + r["n_events_dropped_mc"] == n_reco
        assert r["coarse"]["all"]["mc"]["values"]["peak"] > 80.0  # the inclusive peak is always fitted
        assert r["coarse"]["all"]["data"] is not None and r["coarse"]["all"]["corrected"] is not None
        s = r["scales"]
        assert len(s["alpha"]) == 2 and s["alpha"][0] is not None and s["alpha_err"][0] > 0
        assert (out / "plots" / f"mee_{method}_all.png").stat().st_size > 10000
    # the raw energy keeps the crack electrons; the calibrations (exclude_crack) drop their events
    assert on_disk["methods"]["raw"]["n_events_dropped_mc"] == 0 < on_disk["methods"]["bdt"]["n_events_dropped_mc"]
    # only the network with the uncertainty head gets the study; the others are skipped with a log line
    assert (
        on_disk["methods"]["bdt"]["uncertainty_study"] is None
        and on_disk["methods"]["raw"]["uncertainty_study"] is None
    )
    study = on_disk["methods"]["transformer"]["uncertainty_study"]
    assert study["threshold"] > 0 and 0 < study["mc"]["low_sigma"]["n"] < study["mc"]["all"]["n"]
    assert "bdt: the calibration predicts no per-cluster uncertainty; uncertainty study skipped" in caplog.text
    assert (out / "plots" / "alpha.png").stat().st_size > 10000
    md = (out / "zee_candle.md").read_text()
    assert (
        "## transformer" in md
        and "Energy-scale factors" in md
        and "Skipped: this calibration predicts no per-cluster uncertainty." in md
    )
    # an exported calibration gives the same energies as its run directory
    manifest = export_run(calibrations["bdt"], tmp_path / "export")
    sample = load_sample(out / "samples" / "mc_nominal")
    exported = EnergyMethod(tmp_path / "export" / manifest["files"]["bdt"]).energies(sample)
    direct = EnergyMethod(calibrations["bdt"]).energies(sample)
    np.testing.assert_allclose(exported.energy, direct.energy, rtol=1e-6)
    assert np.isnan(direct.energy).sum() >= on_disk["methods"]["bdt"]["n_events_dropped_mc"] > 0  # the crack clusters


def test_candle_rejects_a_missing_calibration(tmp_path):
    cfg = compose_candle_config([f"calibration={tmp_path / 'nothing'}", "n_events=10", f"out={tmp_path / 'o'}"])
    with pytest.raises(FileNotFoundError, match="nothing"):
        run_candle(cfg)
