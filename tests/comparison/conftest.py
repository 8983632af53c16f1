"""The comparison tests share one small real Hydra multirun made with the real entry point.

The sweep (BDT and transformer × mse and huber, electrons, tiny data) is built once per session
(:func:`sweep_builder.make_real_sweep`; test_notebooks.py reuses it) and holds two job directories
broken on purpose: one with truncated metrics.json, one without metrics.json (a failed job).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_builder import make_real_sweep

from calo_calib.comparison.loading import LoadResult, load_runs
from calo_calib.comparison.table import build_table


@pytest.fixture(scope="session")
def sweep(tmp_path_factory, tiny_data) -> Path:
    base = tmp_path_factory.getbasetemp() / "compare_sweep"
    base.mkdir(exist_ok=True)
    return make_real_sweep(base, tiny_data)


@pytest.fixture(scope="session")
def loaded(sweep) -> LoadResult:
    return load_runs([sweep])


@pytest.fixture(scope="session")
def records(loaded) -> list[dict]:
    return build_table(loaded.runs)
