"""Upstream-loss correlations on a hand-made table: a strong, not one-to-one f0 is OK, none a DEVIATION."""

from __future__ import annotations

import numpy as np

from calo_calib.validation import correlations as CO
from calo_calib.validation.common import DEV, OK


def _sample(rho: float, eta: float = 0.1, n: int = 3000, seed: int = 4) -> dict:
    rng = np.random.default_rng(seed)
    z, w = rng.normal(size=(2, n))
    e = 50.0
    lost = 0.05 + 0.01 * z
    f0 = 0.05 + 0.01 * (rho * z + np.sqrt(1 - rho**2) * w)  # r(lost, f0) = rho
    acc = np.full(n, 40.0)  # only the presampler varies, so the depth follows f0 (down)
    return {"truth_e": np.full(n, e), "truth_e_lost_upstream": lost * e, "truth_e_lost_passive": np.zeros(n),
            "cluster_e_ps": f0 * acc, "cluster_e_l1": 0.3 * acc, "cluster_e_l2": 0.65 * acc,
            "cluster_e_l3": 0.05 * acc, "cluster_eta": np.full(n, eta)}  # fmt: skip


def test_check_verdicts():
    res, row = CO.check("electron", 0.1, 50.0, _sample(0.8))
    assert abs(res["r_f0"] - 0.8) < 0.05 and res["r_depth"] < -0.7 and row.verdict == OK
    assert row.simulated.startswith("f0: +0.8") and "E_lost = " in row.comment
    assert abs(res["slope"] - 1.25 * 0.8) < 0.05  # dE_lost/dE_PS = rho σ(E_lost)/σ(E_PS) = 0.8 × 0.5/0.4
    res, row = CO.check("electron", 0.1, 50.0, _sample(0.0))
    assert row.verdict == DEV and "corr with f0 weak" in row.comment and "corr with depth weak" in row.comment
    res, row = CO.check("electron", 0.1, 50.0, _sample(0.99))
    assert row.verdict == DEV and "corr with f0 nearly one-to-one" in row.comment


def test_no_presampler_beyond_1p8_and_cases():
    res, row = CO.check("electron", 2.1, 50.0, _sample(0.8, eta=2.1))
    assert np.isnan(res["slope"]) and row.simulated.startswith("f0: n/a (no PS)") and "no PS" in row.comment
    d = _sample(0.8)
    data = {"res/electron/mu0/eta0.1/E50": d, "res/electron/mu32/eta0.1/E50": d, "res/electron/mu0/eta0.1/E100": d,
            "corr/photon/eta0.9": d}  # fmt: skip
    assert [c[:3] for c in CO.cases(data)] == [("electron", 0.1, 50.0), ("photon", 0.9, 50.0)]
