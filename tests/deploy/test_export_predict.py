"""ONNX export (parity, metadata), the exported BDT, and batch inference with calo_calib.predict."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from calo_calib.calibration import ModelFileError, cell_and_cluster_features, load_calibration, load_exported
from calo_calib.config import compose_run_config
from calo_calib.deploy.batch_predict import predict
from calo_calib.deploy.onnx_export import read_metadata
from calo_calib.deploy.parity import ParityError, check_parity
from calo_calib.deploy.run_export import ExportError, export_run
from calo_calib.deploy.runtime import make_session
from calo_calib.pipeline import train_and_evaluate


def _train(root: Path, tiny_data, model: str, particle: str) -> Path:
    overrides = [
        f"model={model}", *tiny_data.run_overrides(particle),
        "logger=none", "evaluation.n_boot=5", "evaluation.plots=false", "progress=false", "compare_to=null",
    ]  # fmt: skip
    overrides += ["model.num_boost_round=20"] if model == "bdt" else ["trainer.epochs=2", "trainer.max_steps_per_epoch=6", "data.batch_size=32", "model.net.n_layers=1"]
    run_dir = root / f"{model}_{particle}"
    train_and_evaluate(compose_run_config(overrides), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_data) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("deploy_runs")
    return {
        "transformer": _train(root, tiny_data, "transformer", "photon_conv"),
        "gnn_edge": _train(root, tiny_data, "gnn_edge", "electron"),
        "bdt": _train(root, tiny_data, "bdt", "photon_conv"),
    }


@pytest.fixture(scope="module")
def exports(runs, tmp_path_factory) -> dict[str, tuple[dict, Path]]:
    """Each run exported once: {model: (manifest, output directory)}."""
    out = {}
    for model, run_dir in runs.items():
        directory = tmp_path_factory.mktemp(f"export_{model}")
        out[model] = (export_run(run_dir, directory), directory)
    return out


@pytest.mark.parametrize("model", ["transformer", "gnn_edge"])
def test_network_export_passes_parity_and_carries_its_metadata(runs, exports, model):
    run_dir = runs[model]
    manifest, out_dir = exports[model]
    cfg = load_calibration(run_dir).cfg
    parity = manifest["parity"]
    assert parity["max_abs_diff"] <= 1e-5 and 1 in parity["cell_counts"] and max(parity["cell_counts"]) > 50
    assert parity["batch_sizes"][:3] == [1, 2, 7]
    for convention, name in (("per_cluster", manifest["files"]["per_cluster"]), ("batched", manifest["files"]["batched"])):
        meta = read_metadata(out_dir / name)
        assert meta["convention"] == convention and meta["model"] == model and meta["particle"] == str(cfg.particle.name)
        assert json.loads(meta["cell_features"]) == list(cfg.data.cell_features)
        assert json.loads(meta["cluster_features"]) == cell_and_cluster_features(cfg)[1]
        assert meta["training_commit"] == json.loads((run_dir / "metrics.json").read_text())["run"]["commit"]
    names = [i.name for i in make_session(out_dir / manifest["files"]["per_cluster"]).get_inputs()]
    assert names == (["cluster", "cells", "cell_pair"] if model == "gnn_edge" else ["cluster", "cells"])
    assert json.loads((out_dir / "export.json").read_text())["files"] == manifest["files"]


def test_parity_check_catches_a_graph_that_differs_from_the_model(runs, exports):
    manifest, out_dir = exports["transformer"]
    calib = load_calibration(runs["transformer"])
    with torch.no_grad():
        calib.model.head[-1].bias.add_(0.01)  # what a stale or wrongly exported graph looks like
    from calo_calib.calibration import make_dataset

    batches = list(make_dataset(calib.cfg, [calib.cfg.data.test], batch_size=64).batches(0))
    sessions = [make_session(out_dir / manifest["files"][k]) for k in ("per_cluster", "batched")]
    with pytest.raises(ParityError, match="differ by up to"):
        check_parity(calib.model, *sessions, batches, tolerance=1e-5)


def test_export_errors_name_the_problem(runs, tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export_run(tmp_path / "nope")
    with pytest.raises(ExportError, match="parity check"):
        export_run(runs["transformer"], tmp_path / "out", data=str(tmp_path / "no_data"))
    assert not (tmp_path / "out" / "transformer_photon_conv.onnx").exists()


@pytest.mark.parametrize("model", ["transformer", "gnn_edge", "bdt"])
def test_predict_equals_the_pytorch_or_xgboost_evaluation(runs, exports, tmp_path, model):
    run_dir = runs[model]
    manifest, out_dir = exports[model]
    calib = load_calibration(run_dir)
    data = str(calib.cfg.data.test)
    model_path = out_dir / (manifest["files"]["batched"] if model != "bdt" else manifest["files"]["bdt"])
    stats = predict(str(model_path), data, str(tmp_path / "pred.parquet"), batch_size=64, progress=False)
    out = pq.read_table(tmp_path / "pred.parquet")
    ref, dataset = calib.apply([data])
    assert stats["n_clusters"] == out.num_rows == len(ref.row_id) == len(dataset)
    order = np.argsort(out.column("row_id").to_numpy())
    ref_order = np.argsort(ref.row_id)
    assert np.array_equal(out.column("row_id").to_numpy()[order], ref.row_id[ref_order])
    got = out.column("correction").to_numpy()[order]
    np.testing.assert_allclose(got, ref.correction[ref_order], rtol=0, atol=1e-5 if model != "bdt" else 1e-6)
    e = out.column("cluster_e").to_numpy()
    np.testing.assert_allclose(out.column("e_calib").to_numpy(), out.column("correction").to_numpy() * e, rtol=1e-6)
    assert "truth_e" in out.column_names


def _copy_data(src: Path, dst: Path, fn) -> Path:
    dst.mkdir(parents=True)
    for f in sorted(src.glob("*.parquet")):
        pq.write_table(fn(pq.read_table(f)), dst / f.name)
    if (src / "dataset.json").exists():  # a directory of generated shards is complete only with it
        shutil.copy(src / "dataset.json", dst / "dataset.json")
    return dst


def test_predict_on_data_without_truth(runs, exports, tmp_path):
    manifest, out_dir = exports["transformer"]
    src = Path(str(load_calibration(runs["transformer"]).cfg.data.test))
    data = _copy_data(src, tmp_path / "real", lambda t: t.drop_columns(["truth_e"]))
    predict(str(out_dir / manifest["files"]["batched"]), str(data), str(tmp_path / "p.parquet"), progress=False)
    out = pq.read_table(tmp_path / "p.parquet")
    assert "truth_e" not in out.column_names and out.num_rows > 0 and np.all(np.isfinite(out.column("e_calib").to_numpy()))


def test_predict_rejects_bad_inputs_with_clear_errors(runs, exports, tmp_path):
    manifest, out_dir = exports["transformer"]
    model = str(out_dir / manifest["files"]["batched"])
    src = Path(str(load_calibration(runs["transformer"]).cfg.data.test))

    def with_nan(t: pa.Table) -> pa.Table:
        e = t.column("cluster_e_l2").to_numpy().copy()
        e[:] = np.nan  # every row: whichever clusters the selection keeps, one is named
        return t.set_column(t.column_names.index("cluster_e_l2"), "cluster_e_l2", pa.array(e))

    nan_data = _copy_data(src, tmp_path / "nan", with_nan)
    proc = subprocess.run([sys.executable, "-m", "calo_calib.predict", f"model={model}", f"input={nan_data}", f"output={tmp_path / 'x.parquet'}", "progress=false"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode != 0 and "cluster_e_l2" in proc.stderr and "row " in proc.stderr and "nan" in proc.stderr
    assert not (tmp_path / "x.parquet").exists()

    no_conv = _copy_data(src, tmp_path / "noconv", lambda t: t.drop_columns(["conv_r"]))
    with pytest.raises(ValueError, match="conv_r"):
        predict(model, str(no_conv), str(tmp_path / "y.parquet"), progress=False)

    # A graph whose feature count disagrees with its metadata (e.g. edited or mixed-up files).
    import onnx

    m = onnx.load(model)
    for p in m.metadata_props:
        if p.key == "cluster_features":
            p.value = json.dumps(json.loads(p.value)[:-1])
    onnx.save(m, str(tmp_path / "bad.onnx"))
    n_cluster = len(json.loads(next(p.value for p in m.metadata_props if p.key == "cluster_features"))) + 1
    with pytest.raises(ModelFileError, match=f"input 'cluster' takes {n_cluster} features but the metadata lists {n_cluster - 1}"):
        load_exported(tmp_path / "bad.onnx")
    with pytest.raises(ModelFileError, match="expected an .onnx file"):
        load_exported(src / "dataset.json")
