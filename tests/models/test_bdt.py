"""BDT baseline: high-level inputs against hand computations, binning, training on real simulated clusters."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from calo_calib.data.high_level import (
    bdt_input_names,
    eta_cell_position,
    high_level_columns,
    high_level_features,
    phi_mod_calo,
)
from calo_calib.io.parquet import read_clusters
from calo_calib.models.bdt import BDTModel

CONV = ["conv_r", "conv_pt_ratio", "conv_et_over_pt"]
FAST = dict(num_boost_round=100, early_stopping_rounds=10, nthread=2, params={"seed": 3})


def _load(path, particle: str, with_crack: bool = True) -> dict[str, np.ndarray]:
    t = read_clusters(path, columns=high_level_columns(particle) + ["cluster_e", "truth_e", "is_crack"])
    f = high_level_features(t, particle)
    for name in ("cluster_e", "truth_e", "is_crack"):
        f[name] = t.column(name).to_numpy()
    if not with_crack:  # what the run does by default (data.exclude_crack)
        keep = ~f["is_crack"]
        f = {k: v[keep] for k, v in f.items()}
    return f


def _iqr_over_median(r: np.ndarray) -> float:
    q25, q50, q75 = np.percentile(r, [25, 50, 75])
    return (q75 - q25) / q50


# --- high-level features --------------------------------------------------------------------------


def test_hand_made_rows():
    cols = {
        "cluster_eta": np.array([0.3, -2.0]),
        "cluster_phi": np.array([-math.pi + 0.001, 0.5]),
        "cluster_e_ps": np.array([2.0, 0.0]),
        "cluster_e_l1": np.array([10.0, 4.0]),
        "cluster_e_l2": np.array([30.0, 0.0]),  # an empty middle layer: r12 guarded to 0
        "cluster_e_l3": np.array([2.0, 1.0]),
    }
    f = high_level_features(cols, "electron")
    assert list(f) == [
        "cluster_eta",
        "abs_eta",
        "e_acc",
        "e_t_raw",
        "shower_depth",
        "f0",
        "r12",
        "eta_mod_calo",
        "cell_index_calo",
        "phi_mod_calo",
    ]
    np.testing.assert_allclose(f["e_acc"], [42.0, 5.0])
    np.testing.assert_allclose(f["e_t_raw"], [42.0 / math.cosh(0.3), 5.0 / math.cosh(2.0)])
    np.testing.assert_allclose(f["f0"], [2.0 / 42.0, 0.0])
    np.testing.assert_allclose(f["r12"], [1.0 / 3.0, 0.0])
    # Depths at |eta| = 0.3: 15% of the way from the [S4] row 0.2625 to the row 0.5125.
    x = [1.66 + 0.15 * 0.15, 3.83 + 0.15 * 0.08, 14.38 + 0.15 * 1.12, 23.66 + 0.15 * 2.30]
    depth0 = (2 * x[0] + 10 * x[1] + 30 * x[2] + 2 * x[3]) / 44.0  # presampler included, as ATLAS
    # |eta| = 2.0: 0.9375 of the way from 1.8375 to 2.0125 (L1 5.72 -> 5.33, L3 27.88 -> 29.06).
    w = (2.0 - 1.8375) / (2.0125 - 1.8375)
    depth1 = (4 * (5.72 + w * (5.33 - 5.72)) + 1 * (27.88 + w * (29.06 - 27.88))) / 5.0
    np.testing.assert_allclose(f["shower_depth"], [depth0, depth1], rtol=1e-12)
    np.testing.assert_allclose(f["eta_mod_calo"], [0.0, 0.0], atol=1e-12)  # 0.3 and 2.0 are cell edges
    np.testing.assert_array_equal(f["cell_index_calo"], [12, 80])
    # Barrel: period pi/512 and pi = 512 periods -> 0.001; end-cap: period pi/384.
    np.testing.assert_allclose(f["phi_mod_calo"], [0.001, 0.5 - 61 * math.pi / 384], atol=1e-12)


@pytest.mark.parametrize(
    "eta, cell, mod",
    [
        (0.0, 0, 0.0),
        (0.0125, 0, 0.0125),
        (0.025, 1, 0.0),
        (-0.0375, 1, 0.0125),
        (0.05, 2, 0.0),
        (0.31, 12, 0.01),
        (1.0, 40, 0.0),
        (1.375, 55, 0.0),
        (-2.4999, 99, 0.0249),
    ],
)
def test_eta_cell_position(eta, cell, mod):
    m, c = eta_cell_position(np.array([eta]))
    assert c[0] == cell
    assert m[0] == pytest.approx(mod, abs=1e-12)
    assert 0.0 <= m[0] < 0.025


def test_phi_mod_period_switch():
    phi = np.array([0.003, 0.003, -0.003])
    out = phi_mod_calo(phi, np.array([1.42, 1.43, 0.1]))
    np.testing.assert_allclose(out, [0.003, 0.003, math.pi / 512 - 0.003], atol=1e-12)
    assert math.pi / 512 < 0.0065 < math.pi / 384
    assert phi_mod_calo(np.array([0.0065]), np.array([1.42]))[0] == pytest.approx(0.0065 - math.pi / 512)
    assert phi_mod_calo(np.array([0.0065]), np.array([1.43]))[0] == pytest.approx(0.0065)


@pytest.mark.parametrize("particle", ["electron", "photon_conv"])
def test_features_of_real_clusters(tiny_data, particle):
    table = read_clusters(tiny_data(particle), columns=high_level_columns(particle))
    f = high_level_features(table, particle)
    col = {n: table.column(n).to_numpy().astype(np.float64) for n in table.column_names}
    e_acc = col["cluster_e_l1"] + col["cluster_e_l2"] + col["cluster_e_l3"]
    np.testing.assert_allclose(f["e_acc"], e_acc)
    np.testing.assert_allclose(f["e_t_raw"], e_acc / np.cosh(col["cluster_eta"]))
    np.testing.assert_allclose(f["f0"], col["cluster_e_ps"] / e_acc)  # no empty accordion in real clusters
    a = np.abs(col["cluster_eta"])
    np.testing.assert_allclose(f["cell_index_calo"] * 0.025 + f["eta_mod_calo"], a, atol=1e-10)
    assert ((f["eta_mod_calo"] >= 0) & (f["eta_mod_calo"] < 0.025)).all()
    assert ((f["phi_mod_calo"] >= 0) & (f["phi_mod_calo"] < math.pi / 384)).all()
    assert all(np.isfinite(v).all() for v in f.values())
    assert (CONV[0] in f) == (particle == "photon_conv")
    # Presampler only for |eta| < 1.8: f0 vanishes beyond.
    assert (f["f0"][a > 1.85] == 0).all() and (f["f0"][a < 1.3] > 0).mean() > 0.9


def test_missing_column_is_named(tiny_data):
    table = read_clusters(tiny_data("electron"), columns=high_level_columns("electron"))
    with pytest.raises(ValueError, match="cluster_e_l2"):
        high_level_features(table.drop(["cluster_e_l2"]), "electron")
    cols = {n: table.column(n).to_numpy() for n in table.column_names if n != "cluster_phi"}
    with pytest.raises(ValueError, match="cluster_phi"):
        high_level_features(cols, "electron")
    with pytest.raises(ValueError, match="conv_r"):
        high_level_features(table, "photon_conv")
    with pytest.raises(ValueError, match="muon"):
        high_level_features(table, "muon")


def test_input_names():
    assert bdt_input_names("electron") == [
        "cluster_eta",
        "e_acc",
        "shower_depth",
        "f0",
        "r12",
        "eta_mod_calo",
        "cell_index_calo",
        "phi_mod_calo",
    ]
    assert bdt_input_names("photon_conv")[-3:] == CONV
    assert bdt_input_names("photon_unconv", binned=False)[-2:] == ["abs_eta", "e_t_raw"]
    assert "mu" not in bdt_input_names("photon_conv", binned=False)


# --- binning --------------------------------------------------------------------------------------


def test_binning_grid_and_edges(tiny_data):
    m = BDTModel("electron")
    assert len(m.bins) == 13 * 9 + 6  # 13 regular |eta| rows x 9 E_T bins + the crack row (6 E_T bins)
    idx = m.bin_index(np.array([0.65, 0.6499, 1.40, 1.52, 2.5, 0.1]), np.array([10.0, 10.0, 30.0, 25.0, 6e4, -3.0]))
    got = [(m.bins[i]["eta_lo"], m.bins[i]["et_lo"]) for i in idx]
    assert got == [(0.65, 10.0), (0.05, 10.0), (1.37, 25.0), (1.52, 20.0), (2.47, 1000.0), (0.05, 0.0)]
    # Every real cluster lies in exactly one bin (computed from the edges, independently of bin_index).
    f = _load(tiny_data("electron"), "electron")
    lo_e, hi_e, lo_t, hi_t = (np.array([b[k] for b in m.bins]) for k in ("eta_lo", "eta_hi", "et_lo", "et_hi"))
    a, et = f["abs_eta"][:, None], f["e_t_raw"][:, None]
    member = (lo_e <= a) & (a < hi_e) & (lo_t <= et) & (et < hi_t)
    assert (member.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(member.argmax(axis=1), m.bin_index(f["abs_eta"], f["e_t_raw"]))


def test_row_inputs_follow_atlas():
    m = BDTModel("electron")
    row = {m.eta_edges[r]: m.row_inputs(r) for r in range(m.n_rows)}
    assert "f0" in row[1.74] and "f0" not in row[1.82] and "f0" not in row[2.47]
    assert "cell_index_calo" not in row[0.0] and "cell_index_calo" not in row[2.47]
    assert "cell_index_calo" in row[0.05] and "f0" in row[0.05]


# --- training -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def electron_data(tiny_data):
    train = _load(tiny_data("electron", "train", n=3000), "electron", with_crack=False)
    val = _load(tiny_data("electron", "val", n=400), "electron", with_crack=False)
    test = _load(tiny_data("electron", "test", n=1000), "electron")  # crack included on purpose
    return train, val, test


@pytest.fixture(scope="module")
def binned(electron_data):
    train, val, _ = electron_data
    model = BDTModel("electron", min_bin_clusters=100, **FAST)
    summary = model.fit(train, val, progress=False)
    return model, summary


def test_binned_improves_resolution(binned, electron_data):
    model, summary = binned
    test = electron_data[2]
    corr = model.predict_correction(test)
    assert corr.shape == test["cluster_e"].shape and np.isfinite(corr).all()
    # Outside the crack (whose bins fall back to the global booster; checked below): the BDT trained on
    # 3000 clusters must clearly beat the raw response (full-size benchmark: 0.76 of raw).
    ok = ~test["is_crack"]
    raw = _iqr_over_median((test["cluster_e"] / test["truth_e"])[ok])
    bdt = _iqr_over_median((corr * test["cluster_e"] / test["truth_e"])[ok])
    assert bdt < 0.9 * raw, (bdt, raw)
    # The calibrated scale is close to 1 (the raw EM-scale energy is a few % low).
    assert abs(np.median(corr * test["cluster_e"] / test["truth_e"]) - 1) < 0.01
    json.dumps(summary)  # the pipeline stores it in JSON


def test_small_bins_are_merged_not_constant(binned, electron_data):
    model, summary = binned
    test = electron_data[2]
    assert summary["n_bins_own"] + summary["n_bins_row"] + summary["n_bins_global"] == len(model.bins)
    assert summary["n_bins_row"] + summary["n_bins_global"] > 0
    assert set(model.routes) == set(model.boosters)
    routes = np.asarray(model.routes)[model.bin_index(test["abs_eta"], test["e_t_raw"])]
    merged = ~np.char.startswith(routes, "bin_")
    corr = model.predict_correction(test)
    assert merged.sum() > 50
    assert not (corr == 1.0).any()
    assert np.unique(np.round(corr[merged], 6)).size > merged.sum() // 2  # per-cluster values, no default
    # The crack was excluded from training; its bins fall back to the global booster and still work.
    crack = test["is_crack"]
    assert crack.sum() > 5
    crack_bins = [i for i, b in enumerate(model.bins) if b["eta_lo"] == 1.37]
    assert all(model.routes[i] == "global" for i in crack_bins)
    assert np.isfinite(corr[crack]).all() and (np.abs(corr[crack] - 1) < 1).all()


def test_save_load_identical(binned, electron_data, tmp_path):
    model, _ = binned
    test = electron_data[2]
    model.save(tmp_path / "bdt")
    files = sorted(p.name for p in (tmp_path / "bdt").iterdir())
    assert "bdt.json" in files and not any(".tmp" in f for f in files)
    loaded = BDTModel.load(tmp_path / "bdt")
    np.testing.assert_array_equal(loaded.predict_correction(test), model.predict_correction(test))
    manifest = json.loads((tmp_path / "bdt" / "bdt.json").read_text())
    assert manifest["input_names"] == bdt_input_names("electron")
    with pytest.raises(FileNotFoundError, match="bdt.json"):
        BDTModel.load(tmp_path / "nothing")


def test_predict_needs_cluster_e(binned, electron_data):
    model, _ = binned
    test = dict(electron_data[2])
    del test["cluster_e"]
    with pytest.raises(ValueError, match="cluster_e"):
        model.predict_correction(test)


def test_unbinned_huber(electron_data):
    train, val, test = electron_data
    model = BDTModel("electron", binned=False, loss="huber", huber_delta=0.05, **FAST)
    summary = model.fit(train, val, progress=False)
    assert summary["n_boosters"] == 1 and set(model.routes) == {"global"}
    booster = model.boosters["global"]
    assert booster.feature_names == bdt_input_names("electron", binned=False)
    assert json.loads(booster.save_config())["learner"]["objective"]["name"] == "reg:pseudohubererror"
    corr = model.predict_correction(test)
    raw = _iqr_over_median(test["cluster_e"] / test["truth_e"])
    assert _iqr_over_median(corr * test["cluster_e"] / test["truth_e"]) < 0.9 * raw


def test_photon_conv_uses_conversion_inputs(tiny_data):
    train = _load(tiny_data("photon_conv", "train"), "photon_conv", with_crack=False)
    val = _load(tiny_data("photon_conv", "val"), "photon_conv", with_crack=False)
    model = BDTModel("photon_conv", min_bin_clusters=100, **FAST)
    model.fit(train, val, progress=False)
    for name, booster in model.boosters.items():
        assert set(CONV) <= set(booster.feature_names), name
        assert booster.feature_names == model.booster_inputs[name]
    assert np.isfinite(model.predict_correction(val)).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="loss"):
        BDTModel("electron", loss="l1")
    with pytest.raises(ValueError, match="objective"):
        BDTModel("electron", params={"objective": "reg:absoluteerror"})
    with pytest.raises(ValueError, match="eta_edges"):
        BDTModel("electron", eta_edges=[0.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="photon_x"):
        BDTModel("photon_x")


@pytest.mark.parametrize("particle, features", [("photon_conv", "atlas"), ("electron", "atlas+shapes")])
def test_dataset_inputs_are_the_models_own(tiny_data, particle, features):
    """BDTModel.dataset_inputs: the one BDT-input preparation of training, run, export and benchmark."""
    from calo_calib.calibration import make_dataset
    from calo_calib.config import compose_run_config
    from calo_calib.data.high_level import dataset_bdt_inputs

    cfg = compose_run_config(tiny_data.run_overrides(particle))
    ds = make_dataset(cfg, [cfg.data.test])
    bdt = BDTModel(particle, features=features)
    feats = bdt.dataset_inputs(ds)
    ref = dataset_bdt_inputs(ds, particle, features, extra=("cluster_e", "row_id"))
    assert feats.keys() == ref.keys() and "truth_e" not in feats
    assert set(bdt_input_names(particle, binned=False, features=features)) <= set(feats)
    for k in ref:
        np.testing.assert_array_equal(feats[k], ref[k], err_msg=k)
    labelled = bdt.dataset_inputs(ds, truth=True)
    assert labelled.keys() == feats.keys() | {"truth_e"} and len(labelled["truth_e"]) == len(ds)


@pytest.mark.parametrize(("model", "loss"), [("bdt", "mse"), ("bdt_shapes", "huber")])
def test_the_run_builds_the_bdt_through_its_target(model, loss):
    """``model._target_`` (conf/model/bdt.yaml) instantiated by models.build_bdt: the same model as
    the explicit constructor call the run made before (issue 17 item 3)."""
    from calo_calib.config import compose_run_config
    from calo_calib.models import build_bdt

    cfg = compose_run_config([f"model={model}", f"loss={loss}", "particle=photon_conv"])
    assert cfg.model._target_ == "calo_calib.models.bdt.BDTModel"
    built = build_bdt(cfg.model, particle="photon_conv", loss=loss, huber_delta=float(cfg.loss.delta or 0.05), seed=7)
    m = cfg.model
    explicit = BDTModel(
        "photon_conv", binned=m.binned, params={**m.params, "seed": 7}, num_boost_round=m.num_boost_round,
        early_stopping_rounds=m.early_stopping_rounds, min_bin_clusters=m.min_bin_clusters, loss=loss,
        huber_delta=float(cfg.loss.delta or 0.05), nthread=m.nthread, max_train_target=m.max_train_target,
        features=m.features,
    )  # fmt: skip
    assert built._config() == explicit._config()
    with pytest.raises(ValueError, match="num_boost_round=0"):
        build_bdt({**m, "num_boost_round": 0}, particle="photon_conv", loss=loss, huber_delta=0.05, seed=7)
