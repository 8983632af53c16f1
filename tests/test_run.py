"""The run entry point: every config combination composes; each model trains and evaluates end to end.

Smoke runs use ``python -m calo_calib.run`` in a subprocess (the real entry point, W&B offline) on a
small simulated dataset, one short epoch.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from calo_calib.calibration import build_run_network, cell_and_cluster_features
from calo_calib.config import compose_run_config
from calo_calib.pipeline import RunError, check_config
from calo_calib.tracking import find_offline_runs, read_offline_run

MODELS = ("transformer", "gnn_edge", "bdt")
LOSSES = ("mse", "huber", "pull_mse", "pull_huber")
PARTICLES = ("electron", "photon_unconv", "photon_conv")


@pytest.mark.parametrize("model,loss,particle", list(itertools.product(MODELS, LOSSES, PARTICLES)))
def test_every_model_loss_particle_combination_composes(model, loss, particle):
    """Every combination composes and builds; the default cluster features are the recipe's."""
    cfg = compose_run_config([f"model={model}", f"loss={loss}", f"particle={particle}"])
    if model == "bdt" and loss.startswith("pull_"):  # the BDT is binned in E_T: pull losses are for networks
        with pytest.raises(RunError, match="networks|BDT"):
            check_config(cfg)
        return
    check_config(cfg)
    assert (cfg.model.name, cfg.loss.name, cfg.particle.name) == (model, loss, particle)
    cells, clusters = cell_and_cluster_features(cfg)
    assert len(cells) == 7
    # athena (11, 15 for photon_conv) + 5 BDT inputs + 26 shower shapes
    assert len(clusters) == (15 if particle == "photon_conv" else 11) + 5 + 26
    if cfg.model.kind == "network":
        net = build_run_network(cfg, len(cells), len(clusters), None)
        out = net(torch.randn(2, 5, len(cells)), torch.ones(2, 5, dtype=torch.bool), torch.randn(2, len(clusters)), torch.randn(2, 5, 7))
        assert out.shape == (2,)


def test_simulation_only_particle_is_rejected():
    cfg = compose_run_config(["particle=photon"])
    with pytest.raises(RunError, match="particle=photon.*photon_unconv"):
        check_config(cfg)


def _run(args: list[str], cwd: Path, env_extra: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "MPLBACKEND": "Agg", "CALO_CALIB_PROGRESS": "0", **(env_extra or {})}
    proc = subprocess.run([sys.executable, "-m", "calo_calib.run", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


QUICK = ["trainer.epochs=1", "trainer.max_steps_per_epoch=4", "data.batch_size=64", "evaluation.n_boot=20", "progress=false",
         "model.num_boost_round=30"]  # fmt: skip


def _quick(model: str) -> list[str]:
    return [a for a in QUICK if not (a.startswith("model.num_boost_round") and model != "bdt")]


# For the tests of run bookkeeping (here the BDT reference; resume and continuing in place:
# tests/pipeline/test_resume.py), not of the network or the plots: a 1-layer transformer and no plots,
# which are most of a tiny run's time (the smoke runs keep the default networks and check the plots).
TINY_NET = ["model.net.embed_dim=16", "model.net.n_layers=1", "model.net.n_heads=2", "model.net.head_hidden=16"]
NO_PLOTS = ["evaluation.plots=false"]


def _check_run_dir(run_dir: Path, model: str) -> dict:
    for name in ("config.yaml", "metrics.json", "predictions.parquet", "summary.md"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    inc = metrics["inclusive"]
    assert {"raw", model, "oracle"} <= set(inc)
    for method in ("raw", model, "oracle"):
        assert 0 < inc[method]["sigma_rel"] < 1
    # the oracle is the floor: it must resolve better than the raw cluster energy
    assert inc["oracle"]["sigma_rel"] < inc["raw"]["sigma_rel"]
    pred = pq.read_table(run_dir / "predictions.parquet")
    assert pred.num_rows == metrics["n_clusters"] > 0
    assert {"row_id", "truth_e", "cluster_e", "e_raw", "e_oracle", f"e_{model}", "correction"} <= set(pred.column_names)
    pngs = list((run_dir / "plots").glob("*.png"))
    assert len(pngs) >= 4 and all(p.stat().st_size > 5000 for p in pngs)
    return metrics


@pytest.mark.parametrize("model,particle", [("transformer", "photon_conv"), ("gnn_edge", "electron"), ("bdt", "photon_conv")])
def test_one_epoch_smoke_run_through_the_entry_point(tmp_path, tiny_data, model, particle):
    run_dir = tmp_path / "run"
    _run([f"model={model}", *tiny_data.run_overrides(particle), *_quick(model), f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    _check_run_dir(run_dir, model)
    if model == "bdt":
        assert (run_dir / "bdt" / "bdt.json").is_file()
    else:
        assert (run_dir / "checkpoints" / "best.pt").is_file() and (run_dir / "checkpoints" / "last.pt").is_file()
        assert (run_dir / "norm.json").is_file()
    # W&B offline run inside the run directory, readable back
    (wandb_run,) = find_offline_runs(run_dir)
    back = read_offline_run(wandb_run)
    summary = back["summary"]["summary"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert summary[f"inclusive/{model}/sigma_rel"] == pytest.approx(metrics["inclusive"][model]["sigma_rel"])
    assert back["summary"]["config"]["model"]["name"] == model
    if model != "bdt":
        assert any("val_loss" in h["history"]["item"] for h in back["history"])


def test_network_is_compared_with_the_bdt_of_the_same_particle_and_test_data(tmp_path, tiny_data):
    runs = {"CALO_CALIB_RUNS": str(tmp_path / "runs")}
    common = [*tiny_data.run_overrides("electron"), "logger=none"]
    _run(["model=bdt", *common, *_quick("bdt"), *NO_PLOTS], cwd=tmp_path, env_extra=runs)  # the reference: its plots are not read
    _run(["model=transformer", *common, *_quick("transformer"), *TINY_NET], cwd=tmp_path, env_extra=runs)
    (run_dir,) = (tmp_path / "runs" / "electron").glob("transformer-pull_huber/*")  # loss=auto for a network
    metrics = _check_run_dir(run_dir, "transformer")
    assert metrics["run"]["reference_bdt_run"] is not None
    assert "bdt" in metrics["inclusive"] and metrics["comparison_to_bdt"] is not None
    assert "e_bdt" in pq.read_table(run_dir / "predictions.parquet").column_names
    assert "BDT" in (run_dir / "summary.md").read_text()


def test_bad_inputs_fail_with_a_clear_message(tmp_path, tiny_data):
    proc = _run(["particle=photon", "logger=none"], cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "particle=photon" in proc.stderr
    proc = _run(["data.train=/nonexistent/train", "logger=none", f"data.val={tmp_path}", f"data.test={tmp_path}"], cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "/nonexistent/train" in proc.stderr
    proc = _run([f"resume={tmp_path / 'nothing'}"], cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "not a run directory" in proc.stderr


def test_default_loss_is_chosen_per_model_kind():
    """loss=auto (the default) resolves at compose time: pull_huber for networks, mse for the BDT."""
    for model, expected in (("transformer", ("pull_huber", 2.0)), ("gnn_edge", ("pull_huber", 2.0)), ("bdt", ("mse", None))):
        cfg = compose_run_config([f"model={model}"])
        assert (cfg.loss.name, cfg.loss.delta) == expected
        check_config(cfg)
    assert compose_run_config(["loss=huber"]).loss.name == "huber"
