"""The notebooks execute top to bottom on real run directories, and each is paired with a
percent-format script (jupytext) holding the same cells."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file
from nbclient import NotebookClient
from sweep_builder import BROKEN_JSON, make_real_sweep

from calo_calib.comparison.loading import load_runs
from calo_calib.config import compose_run_config
from calo_calib.pipeline import train_and_evaluate

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PAIRED = sorted(NOTEBOOKS.glob("*.ipynb"))


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


def _outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def test_compare_sweeps_notebook_executes_on_a_real_sweep(tmp_path_factory, tiny_data, monkeypatch):
    base = tmp_path_factory.getbasetemp() / "compare_sweep"  # built once per session, shared with tests/comparison
    base.mkdir(exist_ok=True)
    sweep = make_real_sweep(base, tiny_data)
    loaded = load_runs([sweep])
    monkeypatch.setenv("CALO_CALIB_SWEEPS", str(sweep))
    # the inline backend, so that every plt.show() leaves a PNG in the outputs
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOKS / "compare_sweeps.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = _outputs(nb)
    text = "".join(o.get("text", "") for o in outputs)
    assert f"{len(loaded.runs)} runs read from 1 sweep(s): {sweep}" in text
    assert f"not read: {sweep / BROKEN_JSON}: invalid JSON" in text
    markdown = "".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
    for run in loaded.runs:
        assert f"| {run.label} |" in markdown
    particles = {r.particle for r in loaded.runs}
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4 * len(particles)  # σ_rel vs E, |η|, ⟨μ⟩ and the best-per-bin grid


@pytest.mark.parametrize("ipynb", PAIRED, ids=[p.stem for p in PAIRED])
def test_notebook_is_paired_with_a_percent_script_holding_the_same_cells(ipynb):
    config = load_jupytext_configuration_file(find_jupytext_configuration_file(str(NOTEBOOKS)))
    assert "ipynb,py:percent" in config.formats, "notebooks/jupytext.toml must declare the pairing"
    script = ipynb.with_suffix(".py")
    assert script.is_file(), f"{script} missing: run `jupytext --sync {ipynb}`"
    nb, paired = nbformat.read(ipynb, as_version=4), jupytext.read(script)
    cells = [(c.cell_type, c.source) for c in nb.cells]
    assert cells == [(c.cell_type, c.source) for c in paired.cells], (
        f"{ipynb.name} and {script.name} differ: run `jupytext --sync`"
    )
    assert _outputs(nb) == [] and all(c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"), (
        f"{ipynb.name} stores outputs: strip them (the paired script is the source)"
    )
    proc = subprocess.run([Path(sys.executable).with_name("jupytext"), "--test", "--to", "py:percent", ipynb],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
