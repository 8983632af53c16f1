"""Feature values against hand computation from the Parquet columns of real simulated clusters."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from calo_calib.data import features as F
from calo_calib.data.loader import ClusterDataset
from calo_calib.io.parquet import read_clusters


def _rows_by_id(path) -> dict[int, dict]:
    """Every row of the dataset (files in sorted order) as a python dict, keyed by its global row index."""
    table = read_clusters(path)
    return dict(enumerate(table.to_pylist()))


def _batches_by_row(ds: ClusterDataset) -> dict[int, dict[str, np.ndarray]]:
    out = {}
    for b in ds.batches(0):
        for i, rid in enumerate(b["row_id"].tolist()):
            n = int(b["valid"][i].sum())
            out[rid] = {
                "cells": b["cells"][i, :n].numpy(),
                "cluster": b["cluster"][i].numpy(),
                "pair": b["pair"][i, :n].numpy(),
            }
    return out


@pytest.fixture(scope="module")
def electron(tiny_data):
    path = tiny_data("electron")
    ds = ClusterDataset(path, F.DEFAULT_CELL_FEATURES, F.default_cluster_features("electron"), batch_size=64)
    return path, _rows_by_id(path), _batches_by_row(ds)


def test_default_cell_features_by_hand(electron):
    _, rows, got = electron
    for rid in sorted(got)[:: max(1, len(got) // 12)]:
        r = rows[rid]
        e = np.array(r["cell_e"], dtype=np.float64)
        layer = np.array(r["cell_layer"])
        expected = np.zeros((len(e), 7))
        for i in range(len(e)):
            e_layer = e[layer == layer[i]].sum()
            expected[i, 0] = e[i] / e_layer if abs(e_layer) >= 1e-6 else 0.0
            expected[i, 1] = r["cell_eta"][i] - r["cluster_eta"]
            d = r["cell_phi"][i] - r["cluster_phi"]
            expected[i, 2] = math.remainder(d, 2 * math.pi)  # nearest multiple: in [-pi, pi]
        expected[:, 3] = r["cell_x"]
        expected[:, 4] = r["cell_y"]
        expected[:, 5] = r["cell_z"]
        expected[:, 6] = layer
        np.testing.assert_allclose(got[rid]["cells"], expected, rtol=1e-5, atol=1e-5)
        # pair: raw (eta, phi, x, y, z, layer, e)
        pair = np.stack([r["cell_eta"], r["cell_phi"], r["cell_x"], r["cell_y"], r["cell_z"], layer, e], axis=1)
        np.testing.assert_allclose(got[rid]["pair"], pair, rtol=1e-6)


def test_e_frac_layer_sums_to_one_per_layer(electron):
    _, rows, got = electron
    for rid, b in got.items():
        layer = np.array(rows[rid]["cell_layer"])
        e = np.array(rows[rid]["cell_e"], dtype=np.float64)
        for lay in np.unique(layer):
            if abs(e[layer == lay].sum()) > 1e-3:
                assert b["cells"][layer == lay, 0].sum() == pytest.approx(1.0, abs=1e-4)


def test_cluster_features_by_hand(electron):
    _, rows, got = electron
    names = F.default_cluster_features("electron")
    for rid in sorted(got)[:10]:
        r = rows[rid]
        acc = r["cluster_e_l1"] + r["cluster_e_l2"] + r["cluster_e_l3"]
        expected = [
            r["cluster_e"], r["cluster_e_ps"], r["cluster_e_l1"], r["cluster_e_l2"], r["cluster_e_l3"],
            r["cluster_e_tg3"], r["cluster_eta"], r["cluster_phi"],
            r["cluster_e_l1"] / r["cluster_e_l2"], r["cluster_e_ps"] / acc, r["cluster_e_tg3"] / acc,
        ]  # fmt: skip
        assert len(names) == 11
        np.testing.assert_allclose(got[rid]["cluster"], expected, rtol=1e-5)


def test_dphi_wraps_near_pi():
    cells = {"cell_phi": np.array([3.1, -3.1, 0.2, -3.0], np.float32)}
    clusters = {"cluster_phi": np.array([-3.1, 3.1], np.float32)}
    seg = np.array([0, 1, 0, 1])
    got = F.compute_cell_features(["dphi"], cells, seg, 2, clusters)[:, 0]
    expected = [6.2 - 2 * np.pi, -6.2 + 2 * np.pi, 3.3 - 2 * np.pi, -6.1 + 2 * np.pi]
    np.testing.assert_allclose(got, expected, atol=2e-6)
    w = F.wrap_phi(np.array([np.pi, -np.pi, 3 * np.pi, 0.0, -2 * np.pi + 0.1]))
    np.testing.assert_allclose(w, [np.pi, np.pi, np.pi, 0.0, 0.1], atol=1e-12)


def test_e_frac_layer_zero_layer_energy_and_other_extras():
    # cluster 0: layer 1 cells cancel (E_layer = 0) -> 0; layer 2 a single cell -> 1. cluster 1: two cells in layer 2.
    cells = {
        "cell_e": np.array([0.5, -0.5, 2.0, 1.0, 3.0], np.float32),
        "cell_layer": np.array([1, 1, 2, 2, 2], np.int8),
        "cell_noise": np.array([0.1, 0.1, 0.0, 0.5, 1.5], np.float32),
    }
    seg = np.array([0, 0, 0, 1, 1])
    got = F.compute_cell_features(["e_frac_layer", "log_e", "e_over_noise", "layer"], cells, seg, 2, {})
    np.testing.assert_allclose(got[:, 0], [0.0, 0.0, 1.0, 0.25, 0.75], atol=1e-7)
    np.testing.assert_allclose(got[:, 1], np.log([0.5, 1e-3, 2.0, 1.0, 3.0]), rtol=1e-6)
    np.testing.assert_allclose(got[:, 2], [5.0, -5.0, 0.0, 2.0, 2.0], rtol=1e-6)
    np.testing.assert_array_equal(got[:, 3], [1, 1, 2, 2, 2])


def test_cluster_ratio_guards():
    cl = {k: np.array(v, np.float32) for k, v in {
        "cluster_e_ps": [1.0, 1.0], "cluster_e_l1": [2.0, 0.0], "cluster_e_l2": [4.0, 0.0],
        "cluster_e_l3": [2.0, 0.0], "cluster_e_tg3": [0.0, 0.0],
    }.items()}  # fmt: skip
    got = F.compute_cluster_features(["r12", "f0_acc", "f_tg3"], cl)
    np.testing.assert_allclose(got, [[0.5, 0.125, 0.0], [0.0, 0.0, 0.0]])


def test_default_cluster_features_per_particle():
    e, u, c = (F.default_cluster_features(p) for p in ("electron", "photon_unconv", "photon_conv"))
    assert e == u and len(e) == 11 and e[:2] == ["cluster_e", "e_ps"] and e[-3:] == ["r12", "f0_acc", "f_tg3"]
    assert c == e + ["conv_r", "conv_et_over_pt", "conv_pt_ratio", "conversion_type"]
    with pytest.raises(ValueError, match=r"'muon'.*electron.*photon_conv"):
        F.default_cluster_features("muon")


def test_unknown_features_are_named_with_valid_list():
    with pytest.raises(ValueError, match=r"\['bogus'\].*valid cell features.*e_frac_layer"):
        F.required_columns(["deta", "bogus"], [])
    with pytest.raises(ValueError, match=r"truth_e.*never model inputs.*valid cluster features"):
        F.required_columns([], ["truth_e"])


def test_required_columns(tiny_data):
    cols = F.required_columns(F.DEFAULT_CELL_FEATURES, F.default_cluster_features("photon_conv"))
    for c in ("cluster_e", "truth_e", "n_cells", "is_crack", "cluster_eta", "cluster_phi", "conv_r", "conversion_type",
              "cluster_e_tg3", "cell_e", "cell_layer", "cell_eta", "cell_phi", "cell_x", "cell_y", "cell_z"):  # fmt: skip
        assert c in cols
    assert "cell_noise" not in cols and "mu" not in cols
    assert len(cols) == len(set(cols))
    assert "cell_noise" in F.required_columns(["e_over_noise"], ["mu"])
    assert F.PAIR_COLUMNS == ("cell_eta", "cell_phi", "cell_x", "cell_y", "cell_z", "cell_layer", "cell_e")
    # Every column a feature can read exists in the data format.
    schema = pq.read_schema(sorted(tiny_data("electron").glob("*.parquet"))[0])
    every = F.required_columns(list(F.CELL_FEATURES), list(F.CLUSTER_FEATURES))
    assert set(every) <= set(schema.names)


def test_bdt_inputs_as_cluster_features_match_the_bdt_definitions():
    from calo_calib.data import high_level as HL
    from calo_calib.data.features import BDT_EXTRA_CLUSTER, compute_cluster_features, resolve_cluster_features

    rng = np.random.default_rng(3)
    n = 50
    cl = {
        "cluster_e": rng.uniform(5, 500, n),
        "cluster_eta": rng.uniform(-2.4, 2.4, n),
        "cluster_phi": rng.uniform(-np.pi, np.pi, n),
        "cluster_e_ps": rng.uniform(0, 2, n),
        "cluster_e_l1": rng.uniform(1, 100, n),
        "cluster_e_l2": rng.uniform(1, 300, n),
        "cluster_e_l3": rng.uniform(0, 10, n),
    }
    hl = HL.high_level_features(cl, "electron")
    got = compute_cluster_features(BDT_EXTRA_CLUSTER, cl)
    for j, name in enumerate(["abs_eta", "eta_mod_calo", "phi_mod_calo", "shower_depth"]):
        np.testing.assert_allclose(got[:, j], hl[name].astype(np.float32), rtol=1e-6, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(got[:, 4], np.log(hl["e_t_raw"]).astype(np.float32), rtol=1e-6)
    assert resolve_cluster_features("athena+bdt", "photon_conv")[-5:] == BDT_EXTRA_CLUSTER
    assert resolve_cluster_features("auto", "electron") == resolve_cluster_features("athena", "electron")
    assert resolve_cluster_features(["cluster_e"], "electron") == ["cluster_e"]
    with pytest.raises(ValueError, match="preset"):
        resolve_cluster_features("athena+everything", "electron")


def test_shower_shapes_as_cluster_features_in_the_loader(tiny_data):
    """athena+bdt+shapes: the loader's cluster tensor holds the shower shapes of each cluster's cells."""
    from calo_calib.data import shower_shapes as S
    from calo_calib.data.features import SHAPE_CLUSTER_FEATURES, resolve_cluster_features

    assert tuple(SHAPE_CLUSTER_FEATURES) == tuple(S.SHOWER_SHAPE_NAMES)
    names = resolve_cluster_features("athena+bdt+shapes", "electron")
    path = tiny_data("electron", "test", n=300)
    ds = ClusterDataset(path, F.DEFAULT_CELL_FEATURES, names, batch_size=64)
    batch = next(iter(ds.batches(0)))
    got = batch["cluster"].numpy()
    assert got.shape[1] == len(names) and np.isfinite(got).all()
    # The same clusters' shapes straight from the Parquet table (row_id = row in the path-sorted files).
    table = read_clusters(path)
    idx = batch["row_id"].numpy()
    assert np.allclose(table.column("cluster_e").to_numpy()[idx], batch["cluster_e"].numpy())
    shapes = S.shower_shapes_from_table(table.take(idx))
    for name in ("r_eta", "w_eta2", "f1", "e_max_frac"):
        np.testing.assert_allclose(got[:, names.index(name)], shapes[name].astype(np.float32), rtol=1e-5, atol=1e-6, err_msg=name)
