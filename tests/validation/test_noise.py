"""Noise check on hand-made cells: cell_noise at the config formula is OK, 20 % above a DEVIATION."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calo_calib.validation import noise as N
from calo_calib.validation import targets as T
from calo_calib.validation.common import DEV, INFO, OK

DET = {"readout": {"sigma_elec_barrel": [0.1, 0.01, 0.02, 0.03], "sigma_elec_endcap": [0.0, 0.02, 0.04, 0.06],
                   "sigma_pu_eta0": [0.05, 0.005, 0.01, 0.002], "mu_ref_noise": 40.0},
       "accordion": {"barrel_end": 1.475}}  # fmt: skip


def test_expected_noise_formula():
    ex = N.expected_noise(DET)
    assert float(ex(2, 0.0, 0.0)) == 0.02
    assert float(ex(2, 0.5, 40.0)) == pytest.approx(math.hypot(0.02, 0.01 * math.cosh(0.5)))
    assert float(ex(1, 2.0, 10.0)) == pytest.approx(math.hypot(0.02, 0.005 * math.cosh(2.0) * 0.5))  # end-cap, √(10/40)


def test_expected_noise_from_measured_conditions():
    """The particle model's conditions replace the table's pile-up part; scalar and array |eta| alike."""
    from calo_calib.simulation.noise_conditions import NoiseConditions

    table = np.array([[0.05, 0.15]] * 4)
    cond = NoiseConditions(40.0, np.array([0.0, 1.0]), np.array([1.5, 2.5]), table, np.full((4, 2), 0.2))
    ex = N.expected_noise(DET, cond)
    assert float(ex(2, 0.5, 40.0)) == pytest.approx(math.hypot(0.02, 0.10))
    assert float(ex(2, 0.5, 10.0)) == pytest.approx(math.hypot(0.02, 0.05))  # √(10/40)
    np.testing.assert_allclose(ex(1, np.array([2.0, 2.1]), 40.0), math.hypot(0.02, 0.2))  # end-cap point
    pts = {(40.0, 0.5, 50.0): _point(1.0)}
    rows = N.cell_rows(N.cell_ratios(pts, {(40.0, 0.5, 50.0): 40.0}, ex)[0], measured=True)
    assert [r.verdict for r in rows] == [DEV] * 4  # the table's cell_noise is not the measured conditions
    assert "conditions" in rows[0].target


def _point(scale: float, eta: float = 0.5, mu: float = 40.0, n: int = 20) -> dict:
    ex = N.expected_noise(DET)
    layer = np.repeat(np.arange(4), n)
    ceta = np.full(layer.size, eta)
    sig = np.concatenate([ex(k, ceta[:n], mu) for k in range(4)]) * scale
    return {"_cells": {"cell_layer": layer, "cell_eta": ceta, "cell_noise": sig}}


def test_cell_rows_verdicts():
    pts = {(40.0, 0.5, 50.0): _point(1.0), (0.0, 0.5, 50.0): _point(1.2, mu=0.0)}
    mu_cfgs = {(40.0, 0.5, 50.0): 40.0, (0.0, 0.5, 50.0): 0.0}
    ratios, meas = N.cell_ratios(pts, mu_cfgs, N.expected_noise(DET))
    assert sorted(ratios) == [(mu, k) for mu in (0.0, 40.0) for k in range(4)] and len(meas) == 8
    rows = N.cell_rows(ratios)
    assert [r.verdict for r in rows] == [DEV] * 4 + [OK] * 4  # mu = 0 (20 % high) first
    assert rows[0].simulated == "median 1.200 (5-95%: 1.20-1.20)" and rows[4].quantity.endswith("PS, mu=40")
    few = {(40.0, 0.5, 50.0): _point(1.0, n=4)}  # < 5 cells per layer: skipped
    assert N.cell_ratios(few, {(40.0, 0.5, 50.0): 40.0}, N.expected_noise(DET)) == ({}, [])


def test_cluster_rows_are_info():
    pts = {(0.0, 0.1, 50.0): {"cluster_noise": np.full(5, 0.3)}, (32.0, 0.1, 50.0): {"cluster_noise": np.full(5, 0.5)},
           (32.0, 0.9, 50.0): {"cluster_noise": np.full(5, 0.5)}}  # fmt: skip
    rows = N.cluster_rows(pts)
    assert [r.verdict for r in rows] == [INFO, INFO]  # no mu = 0 partner at |eta| = 0.9
    assert rows[0].simulated == "300 MeV" and rows[1].simulated == "400 MeV"
    t = float(T.pileup_noise_run2(50.0 / math.cosh(0.1), 32.0))
    assert rows[1].target == f"{1e3 * t:.0f} MeV"
