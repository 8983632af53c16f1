"""``calo_calib.studies.domain_adaptation`` (``experiments/domain_adaptation.py``) end to end on tiny
data: the BDT baseline, the network without and with the adversary, every one evaluated on MC and on a generated data-like variant, and the gain
over the BDT on both (the study's question: how much of the MC gain survives)."""

from __future__ import annotations

import json
import math

import pytest

from calo_calib.studies import domain_adaptation as da

QUICK = ["trainer.epochs=1", "trainer.max_steps_per_epoch=3", "data.batch_size=64", "evaluation.n_boot=10",
         "progress=false", "logger=none", "evaluation.plots=false", "model.net.embed_dim=16", "model.net.n_layers=1",
         "model.net.n_heads=2", "model.net.head_hidden=16", "bdt.num_boost_round=20"]  # fmt: skip


def test_gain_over_bdt_and_its_error():
    gain, err = da.gain_over_bdt(0.02, 0.0002, 0.025, 0.00025)
    assert gain == pytest.approx(0.2)
    assert err == pytest.approx(0.8 * math.hypot(0.01, 0.01))
    assert all(math.isnan(x) for x in da.gain_over_bdt(0.02, 0.0002, 0.0, 0.0))


def test_study_runs_from_one_command(tmp_path, tiny_data, monkeypatch):
    monkeypatch.setenv("CALO_CALIB_PROGRESS", "0")
    out = tmp_path / "study"
    da.main(["model=transformer", *tiny_data.run_overrides("electron"), *QUICK, "variants=[material_up]",
             "n_train=300", "n_test=300", f"data_root={tmp_path / 'variants'}", f"out={out}"])  # fmt: skip
    payload = json.loads((out / "domain_adaptation.json").read_text())
    assert set(payload["runs"]) == {"bdt", "none", "grl_material_up"}
    (row,) = payload["rows"]
    assert row["variant"] == "material_up"
    for key in ("sigma_rel_mc", "sigma_rel_data", "response_shift"):
        assert all(math.isfinite(row[key][mode]) for mode in ("none", "grl")), key
    # the gain is computed from the table's own numbers
    g = row["gain_over_bdt"]
    assert g["data_none"] == pytest.approx(1 - row["sigma_rel_data"]["none"] / row["bdt"]["sigma_rel_data"])
    assert g["mc_none"] == pytest.approx(1 - row["sigma_rel_mc"]["none"] / row["bdt"]["sigma_rel_mc"])
    # the network's MC run found the BDT of the same study as its reference
    mc = json.loads((out / "none" / "metrics.json").read_text())
    assert mc["run"]["reference_bdt_run"] == str(out / "bdt")
    md = (out / "domain_adaptation.md").read_text()
    assert "How much of the MC gain survives" in md and "| material_up |" in md
    assert (out / "domain_adaptation.png").stat().st_size > 10_000


def test_bad_bdt_switch_is_named_before_any_work(tmp_path):
    with pytest.raises(SystemExit, match="bdt=maybe: expected true or false"):
        da.main(["particle=electron", "bdt=maybe", f"data_root={tmp_path / 'variants'}", f"out={tmp_path / 'out'}"])
    assert not (tmp_path / "variants").exists() and not (tmp_path / "out").exists()


def test_unknown_option_is_named_before_any_work(tmp_path):
    with pytest.raises(SystemExit, match=r"Could not override 'n_tain'(.|\n)*conf/domain_adaptation.yaml"):
        da.main(["particle=electron", "n_tain=300", f"data_root={tmp_path / 'variants'}", f"out={tmp_path / 'out'}"])
    assert not (tmp_path / "variants").exists() and not (tmp_path / "out").exists()
