"""``python -m calo_calib.compare`` (calo_calib.comparison.cli) on the real sweep: printed report, files, exit status."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys

import pytest
from sweep_builder import BROKEN_JSON

from calo_calib.comparison.cli import main
from calo_calib.comparison.loading import load_runs
from calo_calib.comparison.ranking import rank_runs


def test_cli_prints_the_ranking_and_writes_plots_and_tables(sweep, loaded, records):
    env = {**os.environ, "MPLBACKEND": "Agg", "WANDB_MODE": "offline"}
    proc = subprocess.run(
        [sys.executable, "-m", "calo_calib.compare", str(sweep)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out_dir = sweep / "comparison"  # the default: <first dir>/comparison
    for u in loaded.unreadable:
        assert f"not read: {u.path}: {u.reason}" in proc.stderr
    ranked = [r["config"] for r in rank_runs(records, "electron")]
    assert [proc.stdout.index(f"| {c} |") for c in ranked] == sorted(proc.stdout.index(f"| {c} |") for c in ranked)
    assert "best configuration per (E_true, |η|) bin" in proc.stdout
    with (out_dir / "comparison.csv").open() as f:
        assert sum(1 for _ in csv.reader(f)) == len(records) + 1
    assert "ranked by inclusive σ_rel" in (out_dir / "comparison.md").read_text()
    pngs = [out_dir / f"electron_sigma_rel_{t}.png" for t in ("vs_e", "vs_abs_eta", "vs_mu")] + [
        out_dir / "electron_best_e_abs_eta.png"
    ]
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, png
    assert not list(out_dir.glob(".*.tmp"))
    # the output directory is not mistaken for a run directory when the sweep is read again
    assert len(load_runs([sweep]).unreadable) == len(loaded.unreadable)


def test_cli_particle_filter_and_offline_wandb_source(sweep, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert main([str(sweep), "--particle", "photon_conv", "--out", str(tmp_path / "a")]) == 1
    assert "no photon_conv run" in capsys.readouterr().err
    rc = main(
        [str(sweep), "--wandb", "team/calo_calib", "--group", "cmp", "--metric", "median", "--out", str(tmp_path / "b")]
    )
    captured = capsys.readouterr()
    assert rc == 0
    assert "wandb:team/calo_calib: W&B is not online (WANDB_MODE=offline)" in captured.err
    assert "ranked by inclusive median E_reco/E_true" in captured.out
    assert (tmp_path / "b" / "electron_median_vs_e.png").stat().st_size > 0


def test_cli_fails_only_when_nothing_is_readable(sweep, tmp_path, capsys):
    broken = shutil.copytree(sweep / BROKEN_JSON, tmp_path / "only_broken" / BROKEN_JSON)
    missing = tmp_path / "missing"
    rc = main([str(broken.parent), str(missing), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"no run could be read from {broken.parent}, {missing}" in err
    assert f"not read: {broken}: invalid JSON" in err and f"not read: {missing}: does not exist" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as exit_info:
        main([])  # no source at all: argparse usage error
    assert exit_info.value.code == 2


def test_the_compare_module_is_only_the_command(capsys):
    import calo_calib.compare as shim

    assert shim.main is main and shim.__all__ == ["main"]
    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m calo_calib.compare")
