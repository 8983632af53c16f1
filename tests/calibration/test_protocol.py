"""Every calibration (network run, BDT run, ONNX export, exported BDT) implements ``Calibration`` and
predicts what the code it replaced predicted: the training loop's ``predict``, the BDT's own
``predict_correction``, and the ONNX graph batch by batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from calo_calib.calibration import (
    BDTRunCalibration,
    Calibration,
    ExportedBDTCalibration,
    ExportedOnnxCalibration,
    NetworkRunCalibration,
    Prediction,
    RunCalibration,
    load_calibration,
    load_exported,
    run_calibration_class,
)
from calo_calib.config import compose_run_config
from calo_calib.deploy.run_export import export_run
from calo_calib.pipeline import train_and_evaluate

TINY_NET = ["trainer.epochs=1", "trainer.max_steps_per_epoch=4", "data.batch_size=32", "model.net.n_layers=1",
            "model.net.embed_dim=16", "model.net.n_heads=2", "model.net.head_hidden=16"]  # fmt: skip


@pytest.fixture(scope="module")
def paths(tmp_path_factory, tiny_data) -> dict[str, Path]:
    """A tiny transformer (with the σ head) and BDT run on electrons, and their exports."""
    root = tmp_path_factory.mktemp("calibrations")
    common = [*tiny_data.run_overrides("electron"), "logger=none", "evaluation.n_boot=5", "evaluation.plots=false",
              "progress=false", "compare_to=null"]  # fmt: skip
    runs = {"network": ["model=transformer", "loss=gaussian_nll", *TINY_NET], "bdt": ["model=bdt", "model.num_boost_round=20"]}
    out: dict[str, Path] = {}
    for name, extra in runs.items():
        train_and_evaluate(compose_run_config([*extra, *common]), root / name)
        manifest = export_run(root / name, root / f"{name}_export")
        out[name] = root / name
        if name == "network":
            out["onnx"] = root / f"{name}_export" / manifest["files"]["batched"]
            out["onnx_per_cluster"] = root / f"{name}_export" / manifest["files"]["per_cluster"]
        else:
            out["exported_bdt"] = root / f"{name}_export" / manifest["files"]["bdt"]
    out["test"] = Path(tiny_data("electron", "test", n=300))
    return out


EXPECTED = {"network": NetworkRunCalibration, "bdt": BDTRunCalibration, "onnx": ExportedOnnxCalibration,
            "onnx_per_cluster": ExportedOnnxCalibration, "exported_bdt": ExportedBDTCalibration}  # fmt: skip


@pytest.mark.parametrize("which", list(EXPECTED))
def test_every_calibration_implements_the_interface(paths, which):
    calib = load_calibration(paths[which])
    assert type(calib) is EXPECTED[which] and isinstance(calib, Calibration)
    assert calib.particle == "electron" and calib.name == ("transformer" if which.startswith(("network", "onnx")) else "bdt")
    assert calib.has_sigma == which.startswith(("network", "onnx"))
    clusters = calib.dataset(paths["test"])
    pred = calib.predict(clusters)
    assert isinstance(pred, Prediction) and pred.row_id.dtype == np.int64 and len(pred) == len(clusters) > 0
    assert pred.correction.shape == pred.row_id.shape and np.all(np.isfinite(pred.correction))
    assert (pred.sigma is not None) == calib.has_sigma
    chunks = list(calib.iter_predictions(clusters))  # the streamed chunks make up the whole prediction
    whole = Prediction.concatenate(chunks)
    assert np.array_equal(whole.row_id, pred.row_id) and np.array_equal(whole.correction, pred.correction)
    assert all(c.cluster_e is not None and c.target is not None for c in chunks)
    applied, dataset = calib.apply(paths["test"])
    assert np.array_equal(applied.correction, pred.correction) and len(dataset) == len(clusters)


def test_network_run_predicts_what_the_training_loop_predicts(paths):
    from calo_calib.training.distributed import DistEnv
    from calo_calib.training.inference import predict

    calib = load_calibration(paths["network"])
    clusters = calib.dataset(paths["test"])
    ref = predict(calib.model, clusters.batches(0), DistEnv(0, 0, 1, calib.device), precision="fp32")
    pred = calib.predict(clusters)
    assert np.array_equal(pred.row_id, ref["row_id"]) and np.array_equal(pred.correction, ref["correction"])
    assert np.array_equal(pred.sigma, ref["sigma"])


def test_bdt_run_and_exported_bdt_predict_what_the_bdt_predicts(paths):
    run, exported = load_calibration(paths["bdt"]), load_calibration(paths["exported_bdt"])
    clusters = run.dataset(paths["test"])
    ref = run.bdt.predict_correction(run.bdt.dataset_inputs(clusters))
    assert np.array_equal(run.predict(clusters).correction, ref)
    assert np.array_equal(exported.predict(exported.dataset(paths["test"])).correction, ref)


@pytest.mark.parametrize("which", ["onnx", "onnx_per_cluster"])
def test_onnx_export_predicts_what_its_graph_and_its_run_predict(paths, which):
    exported, run = load_calibration(paths[which]), load_calibration(paths["network"])
    clusters = exported.dataset(paths["test"], batch_size=64)
    ref = np.concatenate([exported.predict_batch(b) for b in clusters.batches(0)])
    pred = exported.predict(clusters)
    assert np.array_equal(pred.correction, ref)
    direct = run.predict(run.dataset(paths["test"]))
    order, direct_order = np.argsort(pred.row_id), np.argsort(direct.row_id)
    assert np.array_equal(pred.row_id[order], direct.row_id[direct_order])
    np.testing.assert_allclose(pred.correction[order], direct.correction[direct_order], rtol=0, atol=1e-5)


def test_load_calibration_tells_runs_from_exports(paths, tmp_path):
    assert isinstance(load_calibration(paths["network"]), RunCalibration)
    assert not isinstance(load_calibration(paths["onnx"]), RunCalibration)
    with pytest.raises(FileNotFoundError, match="is not a calo_calib run directory"):
        load_calibration(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_exported(tmp_path / "nothing.onnx")


def test_run_calibration_class_is_the_one_reading_of_model_kind():
    assert run_calibration_class(OmegaConf.create({"model": {"kind": "network"}})) is NetworkRunCalibration
    assert run_calibration_class(OmegaConf.create({"model": {"kind": "bdt"}})) is BDTRunCalibration
    with pytest.raises(ValueError, match="model.kind='forest': expected network or bdt"):
        run_calibration_class(OmegaConf.create({"model": {"kind": "forest"}}))
    bdt = OmegaConf.create({"model": {"kind": "bdt", "name": "bdt"}, "loss": {"name": "gaussian_nll"}})
    assert "network head" in BDTRunCalibration.config_error(bdt, "none")
    assert NetworkRunCalibration.config_error(bdt, "grl") is None
