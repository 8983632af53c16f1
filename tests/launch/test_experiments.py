"""The experiment configs compose into the intended sweeps, and one runs end to end (toy size)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from calo_calib.config import compose

EXPECTED = {
    "arch_sweep": {"model": "bdt,transformer,gnn_edge", "loss": "mse,huber", "particle": "electron,photon_unconv,photon_conv"},
    "resolution_map": {"model": "bdt,transformer", "particle": "electron,photon_unconv,photon_conv"},
    "pileup_study": {"model": "bdt,transformer,gnn_edge", "particle": "electron"},
}


def _compose(overrides: list[str]):
    return compose("run", overrides, return_hydra_config=True)


@pytest.mark.parametrize("experiment", sorted(EXPECTED))
def test_experiment_composes_to_its_sweep_at_toy_and_full_scale(experiment):
    toy = _compose([f"+experiment={experiment}"])
    assert dict(toy.hydra.sweeper.params) == EXPECTED[experiment]
    assert toy.hydra.launcher._target_.endswith("TorchrunLauncher")
    assert toy.sweep_name == experiment and toy.data.max_train_clusters == 5000
    assert "compare" in toy.hydra.callbacks
    full = _compose([f"+experiment={experiment}", "scale=full", "model=transformer"])
    assert full.model.net.embed_dim == 256 and full.model.net.n_layers == 4 and full.model.net.n_heads == 8
    assert full.data.make_splits.train == 1_000_000 and str(full.data.root).endswith("full")
    slurm = _compose([f"+experiment={experiment}", "hydra/launcher=slurm", "hydra.launcher.gpus_per_node=4"])
    assert slurm.hydra.launcher._target_.endswith("CaloSlurmLauncher") and slurm.hydra.launcher.tasks_per_node == 4


def test_pileup_experiment_runs_end_to_end_and_scans_mu(tmp_path, tiny_data):
    """One command: train (the BDT only, tiny data), then the callbacks compare and scan <mu>."""
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable, "-m", "calo_calib.run", "-m", "+experiment=pileup_study",
        "hydra.sweeper.params.model=bdt", "++model.num_boost_round=20",
        *tiny_data.run_overrides("electron"),
        "logger=none", "evaluation.n_boot=10", "evaluation.plots=false", "progress=false",
        "hydra.launcher.gpus_per_job=0", f"hydra.sweep.dir={sweep}",
        "hydra.callbacks.pileup.n_clusters=200", "hydra.callbacks.pileup.mus=[0,60]",
        "+hydra.callbacks.pileup.workers=1", "+hydra.callbacks.pileup.n_boot=10",
    ]  # fmt: skip
    env = {**os.environ, "CALO_CALIB_DATA": str(tmp_path / "data"), "CALO_CALIB_RUNS": str(tmp_path / "runs"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    records = json.loads((sweep / "pileup" / "electron" / "pileup.json").read_text())["records"]
    assert sorted({r["mu"] for r in records}) == [0.0, 60.0]
    assert {r["method"] for r in records} >= {"bdt", "raw cluster E", "oracle"}
    assert (sweep / "pileup" / "electron" / "sigma_rel_vs_mu.png").stat().st_size > 5000
    assert (sweep / "comparison" / "comparison.md").is_file()
    # More pile-up noise: the raw cluster energy resolves worse at <mu> = 60 than at 0.
    raw = {r["mu"]: r["sigma_rel"] for r in records if r["method"] == "raw cluster E"}
    assert raw[60.0] > raw[0.0]
