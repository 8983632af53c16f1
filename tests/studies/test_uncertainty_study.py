"""``calo_calib.studies.uncertainty_study`` (``experiments/uncertainty_study.py``) on a tiny
``loss=gaussian_nll`` run (the ``nll_run`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

import json

import pytest

from calo_calib.studies.uncertainty_study import main


def test_study_on_the_run(nll_run, tmp_path):
    report = main([f"run_dir={nll_run}", f"out={tmp_path / 'study'}"])
    # the same calibration on the same test split: the run's own numbers
    own = json.loads((nll_run / "uncertainty.json").read_text())["inclusive"]
    assert report["inclusive"]["n"] == own["n"]
    assert report["inclusive"]["coverage_1sigma"] == pytest.approx(own["coverage_1sigma"], abs=1e-6)
    assert (tmp_path / "study" / "uncertainty.md").is_file()
    with pytest.raises(SystemExit, match="run's own config"):
        main([f"run_dir={nll_run}", "trainer.epochs=3"])


def test_unknown_option_is_named_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("CALO_CALIB_RUNS", str(tmp_path / "runs"))
    with pytest.raises(SystemExit, match=r"Could not override 'run_dri'(.|\n)*conf/uncertainty_study.yaml"):
        main(["run_dri=/nowhere"])
    assert not (tmp_path / "runs").exists()
