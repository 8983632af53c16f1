"""Pile-up study command: evaluates a trained calibration on test sets simulated at several <mu>."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from calo_calib.config import compose_run_config
from calo_calib.pipeline import train_and_evaluate


def test_pileup_study_on_a_trained_bdt(tmp_path, tiny_data):
    cfg = compose_run_config(
        [
            "model=bdt",
            "particle=electron",
            f"data.train={tiny_data('electron', 'train', n=400)}",
            f"data.val={tiny_data('electron', 'val', n=200)}",
            f"data.test={tiny_data('electron', 'test', n=300)}",
            "model.num_boost_round=30",
            "logger=none",
            "evaluation.n_boot=10",
            "evaluation.plots=false",
            "progress=false",
        ]
    )
    run_dir = tmp_path / "bdt_run"
    train_and_evaluate(cfg, run_dir)

    env = {**os.environ, "MPLBACKEND": "Agg"}
    args = [f"runs=[{run_dir}]", "mus=[0,80]", "n_clusters=800", f"data_root={tmp_path / 'pileup'}",
            "workers=1", "n_boot=20", "progress=false"]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "calo_calib.pileup_study", *args], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = run_dir / "pileup"
    payload = json.loads((out / "pileup.json").read_text())
    records = payload["records"]
    assert {(r["mu"], r["method"]) for r in records} == {(m, k) for m in (0.0, 80.0) for k in ("bdt", "raw cluster E", "oracle")}
    assert all(r["n"] > 500 for r in records)
    # Pile-up noise adds to every cell (card §4.2): the noise-limited oracle floor must get worse with <mu>.
    oracle = {r["mu"]: r["sigma_rel"] for r in records if r["method"] == "oracle"}
    assert oracle[80.0] > oracle[0.0]
    assert (out / "sigma_rel_vs_mu.png").stat().st_size > 5000
    assert "⟨μ⟩" in (out / "pileup.md").read_text()


def test_pileup_study_rejects_a_directory_that_is_not_a_run(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "calo_calib.pileup_study", f"runs=[{tmp_path}]"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0 and "not a calo_calib run directory" in proc.stderr
