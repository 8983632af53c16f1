"""The SALT norm dict (calo_calib/io/salt_norm.py): streaming mean/std, YAML round trip, errors."""

import numpy as np
import pytest

from calo_calib.io.salt_norm import RunningStats, read_norm_dict, write_yaml_atomic


def test_running_stats_skip_nonfinite_and_floor_a_constant():
    s = RunningStats()
    s.update(np.array([1.0, 2.0]))
    s.update(np.array([3.0, np.nan, np.inf]))
    assert s.result() == pytest.approx({"mean": 2.0, "std": np.sqrt(2.0 / 3.0)})
    c = RunningStats()
    c.update(np.zeros(4))
    assert c.result() == {"mean": 0.0, "std": 1.0}


def test_norm_dict_round_trip_and_errors(tmp_path):
    data = {"clusters": {"cluster_e": {"mean": 1.5, "std": 2.0}}, "cells": {}}
    write_yaml_atomic(data, tmp_path / "n.yaml")
    assert read_norm_dict(tmp_path / "n.yaml") == data
    assert [p.name for p in tmp_path.iterdir()] == ["n.yaml"]  # no temporary left
    (tmp_path / "bad.yaml").write_text("clusters: {cluster_e: {mean: 1}}\n")
    with pytest.raises(ValueError, match="clusters.cluster_e must have 'mean' and 'std'"):
        read_norm_dict(tmp_path / "bad.yaml")
