"""ROOT ntuples: exact Parquet round trips, unit-scaling column mappings, and clear errors."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

from calo_calib.convert import main as convert_main
from calo_calib.io.parquet import read_clusters
from calo_calib.io.root_io import parquet_to_root, root_to_parquet
from calo_calib.io.schema import CELL_COLUMNS, COLUMNS

N = 200
ENERGIES = [c.name for c in COLUMNS if c.unit == "GeV"]  # scalar and cell columns in GeV


@pytest.fixture(scope="module")
def converted(tiny_data, tmp_path_factory):
    """particle -> (source dataset dir, ROOT file, converted-back dataset dir)."""
    base = tmp_path_factory.mktemp("root_io")
    out = {}
    for particle in ("electron", "photon_conv"):
        src = tiny_data(particle, "train", n=N)
        root = parquet_to_root(src, base / f"{particle}.root")
        back = root_to_parquet(root, None, None, base / f"{particle}_back")
        out[particle] = (src, root, back)
    return out


@pytest.mark.parametrize("particle", ["electron", "photon_conv"])
def test_round_trip_preserves_every_value_of_every_column(converted, identical, particle):
    src, root, back = converted[particle]
    identical(read_clusters(src), read_clusters(back))
    summary = json.loads((back / "dataset.json").read_text())
    assert summary["n_clusters"] == N and summary["particle"] == particle and summary["tree"] == "clusters"
    tree = uproot.open(root)["clusters"]
    assert tree.num_entries == N
    assert isinstance(tree["cell_e"].interpretation, uproot.AsJagged)
    assert tree["n_cells"].typename == "int32_t"  # the cells' counter branch is n_cells itself


def test_data_read_back_gives_the_same_training_batches(converted, same_batches):
    src, _, back = converted["electron"]
    same_batches(src, back, "electron")


def _mev_mapping() -> dict:
    """An experiment-style mapping: other branch names, energies in MeV, no particle branch."""
    cols: dict = {c.name: f"el_{c.name}" for c in COLUMNS}
    cols |= {c: {"branch": f"el_{c}", "scale": 0.001} for c in ENERGIES}
    cols["n_cells"] = "el_ncells"
    cols["particle"] = {"value": "electron"}
    return {"tree": "egamma", "columns": cols}


def test_mev_ntuple_with_scale_mapping_equals_the_gev_data(converted, identical, tmp_path):
    """An ntuple written independently (plain uproot, float64 MeV) read with scale 0.001 is the GeV data."""
    src, _, _ = converted["electron"]
    table = read_clusters(src)
    counts = table["n_cells"].to_numpy()
    flat = {}
    for c in COLUMNS:
        if c.name in ("particle", "n_cells"):
            continue
        col = table[c.name].combine_chunks()
        values = (col.flatten() if c.name in CELL_COLUMNS else col).to_numpy(zero_copy_only=False)
        if c.name in ENERGIES:
            values = values.astype(np.float64) * 1000.0  # GeV -> MeV, as an experiment ntuple would store them
        flat[f"el_{c.name}"] = ak.unflatten(values, counts) if c.name in CELL_COLUMNS else values
    cells = {k: v for k, v in flat.items() if isinstance(v, ak.Array)}
    scalars = {k: v for k, v in flat.items() if k not in cells}
    ntuple = tmp_path / "mev.root"
    with uproot.recreate(ntuple) as f:
        data = scalars | {"cells": ak.zip(cells)}
        t = f.mktree("egamma", {k: v.dtype if k in scalars else v.type for k, v in data.items()},
                     counter_name=lambda _: "el_ncells", field_name=lambda _o, inner: inner)  # fmt: skip
        t.extend(data)
    assert uproot.open(ntuple)["egamma"]["el_cluster_e"].typename == "double"

    mapping_file = tmp_path / "mev.yaml"
    mapping_file.write_text(yaml.safe_dump(_mev_mapping()))
    back = root_to_parquet(ntuple, None, mapping_file, tmp_path / "gev")
    identical(table, read_clusters(back))

    # writing with the same mapping is the inverse: branches renamed, energies in MeV (float64)
    out = parquet_to_root(src, tmp_path / "mine.root", mapping=mapping_file)
    tree = uproot.open(out)["egamma"]
    assert "el_cell_e" in tree and "particle" not in tree and "el_particle" not in tree
    e_mev = tree["el_cluster_e"].array(library="np")
    assert np.allclose(e_mev, table["cluster_e"].to_numpy().astype(np.float64) * 1000.0, rtol=1e-12)
    identical(table, read_clusters(root_to_parquet(out, None, mapping_file, tmp_path / "gev2")))


def test_missing_branches_are_listed_with_file_and_tree(converted, tmp_path):
    _, root, _ = converted["electron"]
    mapping = {"columns": {"cluster_e": "cl_E", "cell_e": {"branch": "cell_E", "scale": 0.001}}}
    with pytest.raises(ValueError, match="lacks branch") as err:
        root_to_parquet(root, "clusters", mapping, tmp_path / "out")
    msg = str(err.value)
    assert str(root) in msg and "tree 'clusters'" in msg
    assert "cluster_e <- cl_E" in msg and "cell_e <- cell_E" in msg
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"no tree 'egamma' \(trees in the file: \['clusters'\]\)"):
        root_to_parquet(root, "egamma", None, tmp_path / "out")


def test_cell_branches_must_agree_with_n_cells(converted, tmp_path):
    src, _, _ = converted["electron"]
    table = read_clusters(src, columns=["n_cells", "cell_e"])
    counts = table["n_cells"].to_numpy()
    bad = tmp_path / "bad.root"
    with uproot.recreate(bad) as f:
        n_cells = counts.copy()
        n_cells[5] += 1  # a flat n_cells branch that lies about entry 5
        f.mktree("clusters", {"n_cells": np.int32, "cell_e": ak.Array([[1.0]]).type})
        f["clusters"].extend(
            {
                "n_cells": n_cells.astype(np.int32),
                "cell_e": ak.unflatten(table["cell_e"].combine_chunks().flatten().to_numpy(), counts),
            }
        )
    with pytest.raises(ValueError, match=r"entry 5: 'n_cells' \(n_cells\) = \d+ but the cell branches have \d+ values"):
        root_to_parquet(bad, None, None, tmp_path / "out", required=["n_cells", "cell_e"])


def test_cli_root_and_h5_to_root(converted, identical, tmp_path):
    src, _, _ = converted["photon_conv"]
    assert convert_main([str(src), str(tmp_path / "a.root"), "--tree", "t", "--no-progress"]) == 0
    assert convert_main([str(tmp_path / "a.root"), str(tmp_path / "back"), "--tree", "t", "--no-progress"]) == 0
    identical(read_clusters(src), read_clusters(tmp_path / "back"))
    # SALT HDF5 -> ROOT goes through a temporary Parquet dataset, removed afterwards
    assert convert_main([str(src), str(tmp_path / "a.h5"), "--no-progress"]) == 0
    assert convert_main([str(tmp_path / "a.h5"), str(tmp_path / "b.root"), "--no-progress"]) == 0
    assert convert_main([str(tmp_path / "b.root"), str(tmp_path / "back2"), "--no-progress"]) == 0
    identical(read_clusters(src), read_clusters(tmp_path / "back2"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "a.norm.yaml", "a.root", "b.root", "back", "back2"]
