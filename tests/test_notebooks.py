"""The notebooks execute top to bottom on real run directories."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from calo_calib.pipeline import train_and_evaluate
from calo_calib.run import compose_run_config

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_compare_runs_notebook_executes(tmp_path, tiny_data, monkeypatch):
    runs = tmp_path / "runs"
    for particle in ("electron", "photon_conv"):
        cfg = compose_run_config(
            [
                "model=bdt",
                f"particle={particle}",
                f"data.train={tiny_data(particle, 'train', n=400)}",
                f"data.val={tiny_data(particle, 'val', n=200)}",
                f"data.test={tiny_data(particle, 'test', n=300)}",
                "model.num_boost_round=20",
                "logger=none",
                "evaluation.n_boot=10",
                "evaluation.plots=false",
                "progress=false",
            ]
        )
        train_and_evaluate(cfg, runs / particle / "bdt-mse" / "t0")
    monkeypatch.setenv("CALO_CALIB_RUNS", str(runs))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / "compare_runs.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "2 finished runs" in text
