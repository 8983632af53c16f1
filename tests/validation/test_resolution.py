"""Resolution check on hand-made fixed-energy samples: σ_rel at the model is OK, far from it a DEVIATION."""

from __future__ import annotations

import numpy as np
import pytest

from calo_calib.validation import resolution as RS
from calo_calib.validation import targets as T
from calo_calib.validation.common import DEV, OK


def _sample(sigma: float, n: int = 4000, e: float = 50.0, seed: int = 1) -> dict:
    z = np.random.default_rng(seed).normal(size=n)
    l2 = e * (1 + sigma * z)  # all the energy in the middle layer: the linear fit is a pure scale
    zero = np.zeros(n)
    return {"truth_e": np.full(n, e), "cluster_e": l2, "cluster_e_ps": zero, "cluster_e_l1": zero,
            "cluster_e_l2": l2, "cluster_e_l3": zero}  # fmt: skip


def test_results_and_rows_on_samples():
    model = float(T.resolution_model(50.0, 0.1, 0.0))
    data = {"res/electron/mu0/eta0.1/E50": _sample(model), "res/electron/mu0/eta0.9/E50": _sample(3 * model)}
    res = RS.results(data, ["electron"], 20, np.random.default_rng(0))
    assert [r["eta"] for r in res] == [0.1, 0.9] and res[0]["n_eval"] == 2000
    assert abs(res[0]["sigma_lin"] / model - 1) < 0.1 and res[0]["err_lin"] > 0
    assert res[0]["sigma_lin"] == pytest.approx(res[0]["sigma_scale"])  # scale-free
    rows = RS.rows(res)
    assert rows[0].verdict == OK and "within ±20%" in rows[0].comment
    assert rows[0].quantity == "σ_rel electron abs(eta)=0.1 E=50 GeV mu=0"
    assert rows[1].verdict == DEV and "WORSE" in rows[1].comment


def test_rows_tolerance_and_direction():
    base = {"particle": "electron", "mu": 32.0, "eta": 0.1, "e": 50.0, "err_lin": 0.0, "sigma_scale": 0.02,
            "model": 0.01}  # fmt: skip
    rows = RS.rows([base | {"sigma_lin": 0.0119}, base | {"sigma_lin": 0.005}, base | {"sigma_lin": 0.013},
                    base | {"sigma_lin": 0.013, "err_lin": 0.0006}])  # fmt: skip
    assert [r.verdict for r in rows] == [OK, DEV, DEV, OK]  # 1.19; 0.5; 1.3; 1.3 with 2σ = 0.12
    assert "BETTER" in rows[1].comment and "WORSE" in rows[2].comment
    assert "[S13] pile-up" in rows[0].source and rows[0].simulated == "1.19% ± 0.00%"
