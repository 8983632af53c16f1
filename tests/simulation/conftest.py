"""Shared, cached simulation samples for the fast-simulation tests.

Samples are small and generated once per test session (per xdist worker) through the public API
``compose_config`` + ``simulate_table``. Columns come back as numpy arrays; list (cell) columns as
flat float64/int arrays plus an ``offsets`` array (n + 1,).
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pytest

from calo_calib.simulation import compose_config, simulate_table


@functools.cache
def _simulate(overrides: tuple[str, ...], n: int, seed: int) -> dict[str, np.ndarray]:
    cfg = compose_config(list(overrides))
    table = simulate_table(cfg, n, seed)
    return table_columns(table)


def table_columns(table: pa.Table) -> dict[str, np.ndarray]:
    """numpy view of a cluster table: scalar columns as arrays, list columns flattened."""
    out: dict[str, np.ndarray] = {"_table": table}
    offsets = None
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        if pa.types.is_list(col.type):
            if offsets is None:
                offsets = col.offsets.to_numpy().astype(np.int64)
            out[name] = col.values.to_numpy(zero_copy_only=False)
        else:
            out[name] = col.to_numpy(zero_copy_only=False)
    out["offsets"] = offsets
    return out


def simulate(overrides=(), n: int = 500, seed: int = 1) -> dict[str, np.ndarray]:
    """Cached sample: same overrides, n and seed give the same (shared) dict. Do not mutate it."""
    return _simulate(tuple(overrides), int(n), int(seed))


def per_cluster_sum(values: np.ndarray, offsets: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Sum of a flat cell array per cluster (float64), optionally only where ``mask``."""
    v = np.asarray(values, dtype=np.float64)
    if mask is not None:
        v = np.where(mask, v, 0.0)
    csum = np.concatenate([[0.0], np.cumsum(v)])
    return csum[offsets[1:]] - csum[offsets[:-1]]


NO_FLUCT = ("detector.readout.noise=false", "detector.sampling.enabled=false", "detector.readout.phi_modulation=false")


@pytest.fixture(scope="session")
def sim():
    """The cached :func:`simulate` (use it for samples shared between test modules)."""
    return simulate


@pytest.fixture(scope="session")
def cellsum():
    """The :func:`per_cluster_sum` helper."""
    return per_cluster_sum


@pytest.fixture(scope="session")
def no_fluct():
    """Overrides switching off noise, sampling fluctuations and the phi modulation."""
    return NO_FLUCT


@pytest.fixture(scope="session")
def electrons():
    """Default electrons (log-uniform 5-500 GeV, |eta| < 2.47, mu = 51)."""
    return simulate(["particle=electron"], n=1200, seed=11)


@pytest.fixture(scope="session")
def photons():
    """All photons (converted or not), default settings."""
    return simulate(["particle=photon"], n=3000, seed=12)


@pytest.fixture(scope="session")
def photons_unconv():
    return simulate(["particle=photon_unconv"], n=600, seed=13)


@pytest.fixture(scope="session")
def photons_conv():
    return simulate(["particle=photon_conv"], n=600, seed=14)


@pytest.fixture(scope="session")
def default_cfg():
    return compose_config([])
