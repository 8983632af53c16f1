"""Simulated tables follow calo_calib.io.schema and are internally consistent (card §1, §5.3)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from calo_calib.io.schema import CELL_COLUMNS, arrow_schema

NAN_ALLOWED = ("truth_conv_r", "truth_conv_fraction")


@pytest.fixture(scope="module", params=["electron", "photon"])
def sample(request, electrons, photons):
    return request.param, (electrons if request.param == "electron" else photons)


def test_schema_matches(sample):
    _, d = sample
    table: pa.Table = d["_table"]
    ref = arrow_schema()
    assert table.schema.names == ref.names
    assert [f.type for f in table.schema] == [f.type for f in ref]
    assert table.schema.equals(ref, check_metadata=False)


def test_list_lengths_equal_n_cells(sample):
    _, d = sample
    table: pa.Table = d["_table"]
    n_cells = d["n_cells"]
    assert np.all(n_cells > 0)
    for name in CELL_COLUMNS:
        lengths = table.column(name).combine_chunks().value_lengths().to_numpy()
        np.testing.assert_array_equal(lengths, n_cells, err_msg=name)


def test_cell_layers(sample):
    _, d = sample
    layer, off = d["cell_layer"], d["offsets"]
    assert set(np.unique(layer)) <= {0, 1, 2, 3}
    present = np.stack([np.add.reduceat((layer == k).astype(int), off[:-1]) > 0 for k in range(4)], axis=1)
    # Every cluster has middle-layer cells (it is built around the hottest middle cell).
    assert present[:, 2].all()
    barrel = np.abs(d["cluster_eta"]) < 1.3
    assert barrel.sum() > 100
    # Card §1.1: PS + 3 accordion layers cover |eta| < 1.4 in the barrel.
    assert np.mean(present[barrel].all(axis=1)) > 0.9
    # No presampler in the end-cap beyond |eta| = 1.8 (card §1.1: PSE 1.5-1.8).
    far = np.abs(d["cluster_eta"]) > 1.9
    assert not present[far, 0].any()


def test_cells_close_to_cluster(sample):
    _, d = sample
    off = d["offsets"]
    cl_eta = np.repeat(d["cluster_eta"], np.diff(off))
    cl_phi = np.repeat(d["cluster_phi"], np.diff(off))
    assert np.all(np.abs(d["cell_eta"] - cl_eta) < 0.15)
    dphi = (d["cell_phi"] - cl_phi + np.pi) % (2 * np.pi) - np.pi
    assert np.all(np.abs(dphi) < 0.35)


def test_cluster_energy_sums(sample, cellsum):
    _, d = sample
    off, e, layer = d["offsets"], d["cell_e"], d["cell_layer"]
    scale = np.maximum(cellsum(np.abs(e), off), 1e-3)
    assert np.all(np.abs(cellsum(e, off) - d["cluster_e"]) <= 1e-5 * scale)
    for k, name in enumerate(("cluster_e_ps", "cluster_e_l1", "cluster_e_l2", "cluster_e_l3")):
        assert np.all(np.abs(cellsum(e, off, layer == k) - d[name]) <= 1e-5 * scale), name
    assert np.all(d["cluster_e_tg3"] == 0)


def test_is_crack(sample):
    _, d = sample
    a = np.abs(d["cluster_eta"])
    np.testing.assert_array_equal(d["is_crack"], (a >= 1.37) & (a <= 1.52))


def test_no_nan_except_unconverted_truth(sample):
    name, d = sample
    table: pa.Table = d["_table"]
    for col in table.column_names:
        arr = d[col]
        if arr.dtype.kind != "f":
            continue
        nan = np.isnan(arr)
        if col in NAN_ALLOWED:
            np.testing.assert_array_equal(nan, ~d["truth_converted"], err_msg=col)
        else:
            assert not nan.any(), f"{name}: NaN in {col}"
        assert not np.isinf(arr).any(), f"{name}: inf in {col}"
    if name == "electron":
        assert not d["truth_converted"].any()
        assert np.all(d["conversion_type"] == 0)


def test_eta_sign_symmetric(sample):
    _, d = sample
    n = d["cluster_eta"].size
    frac = np.mean(d["cluster_eta"] < 0)
    assert frac == pytest.approx(0.5, abs=4 * 0.5 / np.sqrt(n))
    # The sign of the cluster follows the particle's (away from eta = 0, where a vertex shift of
    # ~2 sigma_z = 80 mm moves the impact by ~0.05 in eta at R ~ 1.7 m).
    away = np.abs(d["truth_eta"]) > 0.1
    assert np.all(np.sign(d["cluster_eta"][away]) == np.sign(d["truth_eta"][away]))


def test_cell_positions_follow_card_geometry(sample):
    """Card §1.3: barrel cells at the egparametrized radius R(|eta|), z = R sinh(eta); end-cap cells
    at |z| = 3600/3760/3880/4150 mm; phi = atan2(y, x)."""
    _, d = sample
    x, y, z = (d[k].astype(np.float64) for k in ("cell_x", "cell_y", "cell_z"))
    eta, phi, layer = d["cell_eta"].astype(np.float64), d["cell_phi"].astype(np.float64), d["cell_layer"]
    r = np.hypot(x, y)
    dphi = (np.arctan2(y, x) - phi + np.pi) % (2 * np.pi) - np.pi
    assert np.all(np.abs(dphi) < 1e-4)
    endcap_z = np.array([3600.0, 3760.0, 3880.0, 4150.0])[layer]
    on_ec = np.isclose(np.abs(z), endcap_z, rtol=0, atol=0.5)
    a = np.abs(eta)
    radius = {
        0: np.full_like(a, 1422.3),
        1: np.where(a < 0.8, 1567.8 - 18.975 * a - 17.668 * a**2, 1503.2 + 71.716 * a - 41.008 * a**2),
        2: np.where(a < 0.8, 1697.1 - 15.311 * a - 64.153 * a**2, 1739.1 - 75.648 * a - 18.501 * a**2),
        3: np.where(a < 0.8, 1833.88 - 106.25 * a, 2038.40 - 286.0 * a),
    }
    r_barrel = np.choose(layer, [radius[k] for k in range(4)])
    barrel = ~on_ec
    np.testing.assert_allclose(r[barrel], r_barrel[barrel], rtol=1e-4, atol=0.05)
    np.testing.assert_allclose(z[barrel], r_barrel[barrel] * np.sinh(eta[barrel]), rtol=1e-4, atol=0.2)
    # End-cap cells: projective, R = |z| / sinh|eta|
    np.testing.assert_allclose(r[on_ec], np.abs(z[on_ec]) / np.sinh(a[on_ec]), rtol=1e-4, atol=0.2)
    assert np.all(np.sign(z[on_ec]) == np.sign(eta[on_ec]))
    # Clusters well inside the barrel / end-cap use that geometry.
    cl = np.repeat(np.abs(d["cluster_eta"]), np.diff(d["offsets"]))
    assert not on_ec[cl < 1.2].any()
    assert on_ec[cl > 1.7].all()
