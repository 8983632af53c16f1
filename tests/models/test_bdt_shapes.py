"""The BDT with the shower shapes (``model.features: atlas+shapes``, ``model=bdt_shapes``): inputs,
an end-to-end run through the entry point, save/load, export and ``calo_calib.predict`` parity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from calo_calib.calibration import load_calibration, make_dataset
from calo_calib.config import compose_run_config
from calo_calib.data.high_level import (
    FEATURE_SETS,
    bdt_input_names,
    dataset_bdt_inputs,
    dataset_shower_shapes,
    high_level_columns,
    high_level_features,
    shape_cell_columns,
)
from calo_calib.data.shower_shapes import SHOWER_SHAPE_NAMES, shower_shapes_from_table
from calo_calib.deploy.batch_predict import predict
from calo_calib.deploy.run_export import export_run
from calo_calib.io.parquet import read_clusters
from calo_calib.models.bdt import BDTModel

ATLAS_ELECTRON = [
    "cluster_eta",
    "e_acc",
    "shower_depth",
    "f0",
    "r12",
    "eta_mod_calo",
    "cell_index_calo",
    "phi_mod_calo",
]


def test_feature_sets_and_names():
    assert FEATURE_SETS == ("atlas", "atlas+shapes")
    assert bdt_input_names("electron") == bdt_input_names("electron", features="atlas") == ATLAS_ELECTRON
    assert bdt_input_names("electron", features="atlas+shapes") == ATLAS_ELECTRON + list(SHOWER_SHAPE_NAMES)
    assert bdt_input_names("photon_conv", binned=False, features="atlas+shapes")[-2:] == ["abs_eta", "e_t_raw"]
    assert high_level_columns("electron") == high_level_columns("electron", "atlas")
    assert "cluster_e" in high_level_columns("electron", "atlas+shapes")
    assert shape_cell_columns("atlas") == [] and "cell_e" in shape_cell_columns("atlas+shapes")
    with pytest.raises(ValueError, match="atlas\\+shapes"):
        bdt_input_names("electron", features="shapes")
    with pytest.raises(ValueError, match="feature set"):
        BDTModel("electron", features="atlas+cells")


def test_config_option_and_the_bdt_shapes_config():
    bdt = compose_run_config(["model=bdt"])
    shapes = compose_run_config(["model=bdt_shapes", "particle=photon_conv"])
    assert bdt.model.features == "atlas" and bdt.model.name == "bdt"
    assert shapes.model.features == "atlas+shapes" and shapes.model.name == "bdt_shapes" and shapes.model.kind == "bdt"
    rest = {k: v for k, v in OmegaConf.to_container(shapes.model).items() if k not in ("name", "features")}
    assert rest == {k: v for k, v in OmegaConf.to_container(bdt.model).items() if k not in ("name", "features")}


def test_high_level_features_with_shapes_from_list_columns(tiny_data):
    path = tiny_data("photon_conv")
    table = read_clusters(
        path,
        columns=sorted(
            set(high_level_columns("photon_conv", "atlas+shapes")) | set(shape_cell_columns("atlas+shapes"))
        ),
    )
    atlas = high_level_features(table, "photon_conv")
    both = high_level_features(table, "photon_conv", "atlas+shapes")
    assert list(both) == list(atlas) + list(SHOWER_SHAPE_NAMES)
    for k in atlas:
        np.testing.assert_array_equal(both[k], atlas[k])
    shapes = shower_shapes_from_table(table)
    for k in SHOWER_SHAPE_NAMES:
        np.testing.assert_array_equal(both[k], shapes[k])
    with pytest.raises(ValueError, match="cell"):  # no list columns, no precomputed shapes
        high_level_features(
            table.select(high_level_columns("photon_conv", "atlas+shapes")), "photon_conv", "atlas+shapes"
        )


def test_dataset_inputs_follow_the_selection_and_row_order(tiny_data):
    """The loader's selection (crack excluded) and row ids: the shapes of exactly those clusters."""
    cfg = compose_run_config(["model=bdt_shapes", *tiny_data.run_overrides("electron")])
    ds = make_dataset(cfg, [cfg.data.test])
    assert ds.counts["n_crack_excluded"] > 0  # the selection removes rows
    feats = dataset_bdt_inputs(ds, "electron", "atlas+shapes", extra=("cluster_e", "row_id"))
    full = read_clusters(cfg.data.test)
    ref = shower_shapes_from_table(full.take(feats["row_id"]))
    for k in SHOWER_SHAPE_NAMES:
        np.testing.assert_array_equal(feats[k], ref[k], err_msg=k)
    # any order of row ids gives the values in that order
    rev = feats["row_id"][::-1].copy()
    back = dataset_shower_shapes(ds, rev)
    np.testing.assert_array_equal(back["w_eta2"], ref["w_eta2"][::-1])
    # the atlas set is what the BDT always read: no shapes, same values
    atlas = dataset_bdt_inputs(ds, "electron", "atlas", extra=("cluster_e",))
    assert not set(SHOWER_SHAPE_NAMES) & set(atlas)
    for k in atlas:
        np.testing.assert_array_equal(atlas[k], feats[k])


# --- a bdt_shapes run through the entry point ----------------------------------------------------


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory, tiny_data) -> Path:
    """``python -m calo_calib.run model=bdt_shapes`` on the tiny electron splits (runs under CALO_CALIB_RUNS)."""
    root = tmp_path_factory.mktemp("bdt_shapes_run")
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "MPLBACKEND": "Agg",
        "CALO_CALIB_PROGRESS": "0",
        "CALO_CALIB_RUNS": str(root / "runs"),
    }
    args = ["model=bdt_shapes", *tiny_data.run_overrides("electron"), "logger=none", "evaluation.n_boot=5",
            "evaluation.plots=false", "progress=false", "model.num_boost_round=30", "model.nthread=1"]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "calo_calib.run", *args], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    (run_dir,) = (root / "runs" / "electron").glob("bdt_shapes-mse/*")
    return run_dir


def test_bdt_shapes_run_trains_end_to_end(shapes_run):
    run_dir = shapes_run
    assert run_dir.parent.name == "bdt_shapes-mse"
    for name in ("config.yaml", "metrics.json", "predictions.parquet", "summary.md", "bdt/bdt.json"):
        assert (run_dir / name).is_file(), name
    cfg = OmegaConf.load(run_dir / "config.yaml")
    assert cfg.model.features == "atlas+shapes" and cfg.model.name == "bdt_shapes"
    manifest = json.loads((run_dir / "bdt" / "bdt.json").read_text())
    assert manifest["config"]["features"] == "atlas+shapes"
    assert manifest["input_names"] == bdt_input_names("electron", features="atlas+shapes")
    for entry in manifest["boosters"].values():
        assert set(SHOWER_SHAPE_NAMES) <= set(entry["inputs"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["run"]["model"] == "bdt_shapes" and metrics["run"]["training"]["features"] == "atlas+shapes"
    inc = metrics["inclusive"]
    assert 0 < inc["bdt_shapes"]["sigma_rel"] < inc["raw"]["sigma_rel"]
    assert "e_bdt_shapes" in pq.read_table(run_dir / "predictions.parquet").column_names


def test_predict_parity_after_save_and_load(shapes_run, tmp_path):
    run_dir = shapes_run
    calib = load_calibration(run_dir)
    assert calib.bdt.features == "atlas+shapes"
    pred, dataset = calib.apply([calib.cfg.data.test])
    saved = pq.read_table(run_dir / "predictions.parquet")
    order = np.argsort(saved.column("row_id").to_numpy())
    ref_order = np.argsort(pred.row_id)
    np.testing.assert_array_equal(saved.column("row_id").to_numpy()[order], pred.row_id[ref_order])
    np.testing.assert_array_equal(saved.column("correction").to_numpy()[order], pred.correction[ref_order])
    # save again and load: bit-identical predictions
    calib.bdt.save(tmp_path / "bdt")
    again = BDTModel.load(tmp_path / "bdt", nthread=1)
    feats = dataset_bdt_inputs(dataset, "electron", "atlas+shapes")
    np.testing.assert_array_equal(again.predict_correction(feats), pred.correction)
    # the shapes are needed: without them the model names the first missing one
    atlas = dataset_bdt_inputs(dataset, "electron", "atlas")
    with pytest.raises(ValueError, match="r_eta"):
        again.predict_correction(atlas)


def test_export_and_batch_predict_of_a_bdt_shapes_run(shapes_run, tmp_path):
    manifest = export_run(shapes_run, tmp_path / "export")
    assert manifest["features"] == "atlas+shapes"
    assert {"cell_e", "cell_eta", "cell_phi", "cell_layer", "cluster_e"} <= set(manifest["input_columns"])
    info = json.loads((tmp_path / "export" / manifest["files"]["bdt"] / "calibration.json").read_text())
    assert info["features"] == "atlas+shapes"
    calib = load_calibration(shapes_run)
    data = str(calib.cfg.data.test)
    stats = predict(
        str(tmp_path / "export" / manifest["files"]["bdt"]), data, str(tmp_path / "pred.parquet"), progress=False
    )
    out = pq.read_table(tmp_path / "pred.parquet")
    ref, _ = calib.apply([data])
    assert stats["n_clusters"] == out.num_rows == len(ref.row_id)
    order, ref_order = np.argsort(out.column("row_id").to_numpy()), np.argsort(ref.row_id)
    np.testing.assert_allclose(out.column("correction").to_numpy()[order], ref.correction[ref_order], rtol=0, atol=1e-6)


def test_old_manifests_load_as_atlas(tiny_data, tmp_path):
    """A BDT saved before the option existed (no ``features`` in its manifest) is the atlas BDT."""
    path = tiny_data("electron")
    t = read_clusters(path, columns=high_level_columns("electron") + ["cluster_e", "truth_e"])
    f = high_level_features(t, "electron")
    f["cluster_e"], f["truth_e"] = t.column("cluster_e").to_numpy(), t.column("truth_e").to_numpy()
    model = BDTModel("electron", binned=False, num_boost_round=10, early_stopping_rounds=5, nthread=1)
    model.fit(f, f, progress=False)
    model.save(tmp_path / "bdt")
    manifest = json.loads((tmp_path / "bdt" / "bdt.json").read_text())
    assert manifest["config"]["features"] == "atlas"
    del manifest["config"]["features"]
    (tmp_path / "bdt" / "bdt.json").write_text(json.dumps(manifest))
    loaded = BDTModel.load(tmp_path / "bdt")
    assert loaded.features == "atlas" and loaded.input_names == ATLAS_ELECTRON
    np.testing.assert_array_equal(loaded.predict_correction(f), model.predict_correction(f))
