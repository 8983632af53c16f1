"""``python -m calo_calib.run loss=gaussian_nll`` end to end on tiny data: the sigma column, the pull and
coverage outputs, ``Calibration.predict``'s sigma and the two-output ONNX export (the run: the
``nll_run`` fixture of ``tests/conftest.py``; the uncertainty study on it: ``tests/studies/test_uncertainty_study.py``)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from calo_calib.calibration import load_calibration
from calo_calib.deploy.run_export import export_run
from calo_calib.deploy.runtime import make_session, run_outputs


def test_run_writes_sigma_pulls_and_coverage(nll_run):
    pred = pq.read_table(nll_run / "predictions.parquet")
    sigma = pred.column("sigma").to_numpy()
    assert np.all(np.isfinite(sigma)) and np.all(sigma > 0)
    report = json.loads((nll_run / "uncertainty.json").read_text())
    inc = report["inclusive"]
    # the report's numbers follow from the predictions table with the documented pull definition
    e_reco, e_true = pred.column("e_transformer").to_numpy(), pred.column("truth_e").to_numpy()
    pull = (e_reco - e_true) / (sigma * e_reco)
    assert inc["n"] == pred.num_rows
    assert inc["coverage_1sigma"] == pytest.approx(np.mean(np.abs(pull) < 1))
    assert inc["coverage_2sigma"] == pytest.approx(np.mean(np.abs(pull) < 2))
    assert inc["std"] == pytest.approx(np.std(pull, ddof=1))
    assert report["expected"]["coverage_1sigma"] == pytest.approx(0.6827, abs=1e-4)
    assert len(report["vs_e_abs_eta"]) == 9 * 8 and {"coverage_1sigma", "abs_eta_lo", "truth_e_lo"} <= set(
        report["vs_e_abs_eta"][0]
    )
    assert sum(r["n"] for r in report["vs_e_abs_eta"]) <= pred.num_rows
    assert "coverage ±1σ" in (nll_run / "uncertainty.md").read_text()
    metrics = json.loads((nll_run / "metrics.json").read_text())
    assert metrics["uncertainty"]["inclusive"]["coverage_1sigma"] == pytest.approx(inc["coverage_1sigma"])
    assert "Per-cluster uncertainty" in (nll_run / "summary.md").read_text()
    for png in ("pulls", "coverage_vs_e", "sigma_pred_vs_e"):
        assert (nll_run / "plots" / f"{png}.png").stat().st_size > 5000


def test_calibration_predict_exposes_sigma_and_onnx_exports_it(nll_run, tmp_path):
    calib = load_calibration(nll_run)
    prediction, dataset = calib.apply([str(calib.cfg.data.test)])
    assert prediction.sigma is not None and prediction.sigma.shape == prediction.correction.shape == (len(dataset),)
    table = pq.read_table(nll_run / "predictions.parquet")
    order = np.argsort(prediction.row_id)
    np.testing.assert_allclose(prediction.sigma[order], table.column("sigma").to_numpy(), rtol=1e-6)

    manifest = export_run(nll_run, tmp_path / "export")
    assert manifest["outputs"] == ["correction", "sigma"] and manifest["parity"]["max_abs_diff"] <= 1e-5
    session = make_session(tmp_path / "export" / manifest["files"]["batched"])
    batch = next(iter(dataset.batches(0)))
    out = run_outputs(
        session, {"cells": batch["cells"].numpy(), "valid": batch["valid"].numpy(), "cluster": batch["cluster"].numpy()}
    )
    ids = batch["row_id"].numpy()
    pos = np.searchsorted(prediction.row_id[order], ids)
    np.testing.assert_allclose(out["sigma"], prediction.sigma[order][pos], atol=1e-5, rtol=0)
    np.testing.assert_allclose(out["correction"], prediction.correction[order][pos], atol=1e-5, rtol=0)

    # calo_calib.predict writes the per-cluster sigma, from the batched and the per-cluster graph alike
    from calo_calib.deploy.batch_predict import predict

    test_dir = str(calib.cfg.data.test)
    for kind in ("batched", "per_cluster"):
        predict(str(tmp_path / "export" / manifest["files"][kind]), test_dir, str(tmp_path / f"{kind}.parquet"), progress=False)
        written = pq.read_table(tmp_path / f"{kind}.parquet")
        rows = np.searchsorted(prediction.row_id[order], written.column("row_id").to_numpy())
        np.testing.assert_allclose(written.column("sigma").to_numpy(), prediction.sigma[order][rows], atol=1e-5, rtol=0)
