"""The study command lines: ``python -m calo_calib.studies.<study>`` and its launcher
``experiments/<study>.py`` run (``--help``: the docstring and ``conf/<study>.yaml``), and an unknown
option fails with a message naming it. The studies themselves: ``tests/studies/test_<study>.py``."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from calo_calib.paths import REPO_ROOT

STUDIES = ("detector_variants", "domain_adaptation", "feature_importance", "learning_curve", "uncertainty_study",
           "zee_candle")  # fmt: skip


def _python(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("study", STUDIES)
def test_launcher_runs_the_package_command(study):
    proc = _python(f"experiments/{study}.py", "--help")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "out" in proc.stdout  # every study config has an output directory option
    # the launcher only calls the package's main
    assert f"from calo_calib.studies.{study} import main" in (REPO_ROOT / "experiments" / f"{study}.py").read_text()
    assert (REPO_ROOT / "conf" / f"{study}.yaml").is_file()


@pytest.mark.parametrize("study", [s for s in STUDIES if s != "zee_candle"])
def test_unknown_option_is_named(study, tmp_path, monkeypatch):
    monkeypatch.setenv("CALO_CALIB_RUNS", str(tmp_path / "runs"))
    main = importlib.import_module(f"calo_calib.studies.{study}").main
    required = {"detector_variants": [f"out={tmp_path / 'out'}"], "feature_importance": [f"run={tmp_path}"]}
    with pytest.raises(SystemExit, match="no_such_option"):
        main([*required.get(study, []), "no_such_option=1"])
    assert not any(tmp_path.iterdir())


def test_zee_candle_unknown_option_is_named(tmp_path):
    proc = _python("-m", "calo_calib.studies.zee_candle", f"out={tmp_path / 'out'}", "no_such_option=1")
    assert proc.returncode != 0
    assert "Could not override 'no_such_option'" in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists()
