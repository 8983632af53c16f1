"""The ROOT column mapping (calo_calib/io/root_mapping.py): parsing, validation, unit factors."""

from __future__ import annotations

import numpy as np
import pytest

from calo_calib.io.root_mapping import BranchSpec, load_mapping, scaled, unscaled
from calo_calib.io.schema import COLUMNS
from calo_calib.paths import conf_dir


def test_mapping_validation_and_default_file():
    default = load_mapping(conf_dir() / "data" / "root_columns" / "default.yaml")  # = load_mapping(None): same names
    assert default.tree == "clusters"
    assert {c: s.branch for c, s in default.columns.items()} == {c.name: c.name for c in COLUMNS}
    assert all(s.scale == 1.0 for s in default.columns.values())
    with pytest.raises(ValueError, match="scale 0.001 on a int8 column"):
        load_mapping({"columns": {"cell_layer": {"branch": "l", "scale": 0.001}}})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['unit'\]"):
        load_mapping({"columns": {"cell_e": {"branch": "e", "unit": "MeV"}}})
    with pytest.raises(ValueError, match="cannot be a constant"):
        load_mapping({"columns": {"cell_e": {"value": 0.0}}})


def test_shorthand_constant_and_unit_factors():
    m = load_mapping({"tree": "t", "columns": {"cluster_eta": "eta", "particle": {"value": "electron"},
                                               "cell_e": {"branch": "E", "scale": 0.001}}})  # fmt: skip
    assert m.tree == "t" and m.source == "<dict>"
    assert m.spec("cluster_eta") == BranchSpec("cluster_eta", "eta")
    assert m.spec("particle") == BranchSpec("particle", None, 1.0, "electron")
    assert m.spec("mu") == BranchSpec("mu", "mu")  # unlisted: same-name branch, factor 1
    spec = m.spec("cell_e")
    mev = np.array([1500.0, 250.0])
    assert scaled(mev, spec).tolist() == [1.5, 0.25] and unscaled(np.array([1.5, 0.25]), spec).tolist() == [
        1500.0,
        250.0,
    ]
    same = np.array([1.0], np.float32)
    assert scaled(same, m.spec("mu")) is same
