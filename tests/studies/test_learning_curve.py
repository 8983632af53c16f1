"""The training-set-size learning curve study end to end on tiny data (real training runs)."""

from __future__ import annotations

import json

import pytest

from calo_calib.studies.learning_curve import main

QUICK = ["data.batch_size=64", "evaluation.n_boot=10", "progress=false", "logger=none", "evaluation.plots=false",
         "model.net.embed_dim=16", "model.net.n_layers=1", "model.net.n_heads=2", "model.net.head_hidden=16"]  # fmt: skip


def test_same_steps_for_every_size_and_a_report(tmp_path, tiny_data, monkeypatch):
    monkeypatch.setenv("CALO_CALIB_PROGRESS", "0")
    monkeypatch.setenv("CALO_CALIB_RUNS", str(tmp_path / "runs"))
    out = tmp_path / "lc"
    report = main(["model=transformer", "loss=pull_mse", *tiny_data.run_overrides("electron"), *QUICK,
                   "sizes=[64,256]", "steps=4", f"out={out}"])  # fmt: skip
    rec = report["records"]
    assert [r["n_train"] for r in rec] == [64, 256]
    assert [r["steps"] for r in rec] == [4, 4]  # 4 epochs of 1 batch, 1 epoch of 4 batches
    assert all(0 < r["sigma_rel"] < 1 for r in rec)
    saved = json.loads((out / "learning_curve.json").read_text())
    assert saved["records"][1]["n_train"] == 256
    assert (out / "learning_curve.png").stat().st_size > 10_000
    assert (out / "n64" / "metrics.json").exists() and (out / "n256" / "metrics.json").exists()


def test_unknown_option_is_named_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("CALO_CALIB_RUNS", str(tmp_path / "runs"))
    with pytest.raises(SystemExit, match=r"Could not override 'size'(.|\n)*conf/learning_curve.yaml"):
        main(["model=transformer", "size=[64]"])
    assert not (tmp_path / "runs").exists()
