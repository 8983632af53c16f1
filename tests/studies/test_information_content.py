"""End-to-end: the information-content study on tiny samples (calo_calib/studies/information_content.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calo_calib.studies import information_content as IC


def test_parse_args():
    a = IC.parse_args(["particle=photon_conv", "n=100", "sim_overrides=[mu=20,detector.readout.noise=true]", "label=x"])
    assert a["particle"] == "photon_conv" and a["n"] == 100 and a["label"] == "x"
    assert a["sim_overrides"] == ["mu=20", "detector.readout.noise=true"]
    with pytest.raises(SystemExit):
        IC.parse_args(["nope=1"])
    with pytest.raises(SystemExit):
        IC.parse_args(["bins=eta"])


def test_information_content_tiny(tmp_path):
    args = IC.parse_args(
        ["particle=electron", "n=700", "n_test=400", "n_boot=10", "num_boost_round=60", "label=tiny-test",
         "edges=[0,50,1e9]", "sim_overrides=[mu=20]", f"out={tmp_path}"]
    )  # fmt: skip
    rec = IC.run(args)
    rows = {r["bin"]: r for r in rec["rows"]}
    assert list(rows) == ["all", "E < 50", "E > 50"]
    a = rows["all"]
    assert a["sigma_rel_oracle"] < a["sigma_rel_raw"]
    for k in IC.METHODS:
        assert np.isfinite(a[f"sigma_rel_{k}"])
    for frac in IC.FRACTIONS:
        for m in IC.FEATURE_SETS:
            assert np.isfinite(a[f"r2_{frac}_{m}"]) and a[f"r2_{frac}_{m}"] <= 1
    assert a["r2_upstream_bdt"] > 0.2  # the ATLAS inputs know about the upstream loss
    # Removing the cluster's pile-up (the diagnostic truth) lowers the oracle's floor.
    assert a["sigma_rel_oracle_no_pileup"] < a["sigma_rel_oracle"]
    assert a["mean_pileup"] == pytest.approx(0.0, abs=0.02)  # baseline-subtracted pile-up, / E_true
    records = json.loads((tmp_path / IC.JSON_NAME).read_text())
    assert len(records) == 1 and records[0]["label"] == "tiny-test" and records[0]["sim_overrides"] == ["mu=20"]
    md = (tmp_path / IC.MD_NAME).read_text()
    assert "tiny-test" in md and "`mu=20`" in md
    IC.write(rec, tmp_path)  # a second run appends
    assert len(json.loads((tmp_path / IC.JSON_NAME).read_text())) == 2
