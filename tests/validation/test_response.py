"""Raw-response rows (INFO only: no card number) and their cause comments on a hand-made table."""

from __future__ import annotations

import numpy as np

from calo_calib.validation import response as R
from calo_calib.validation.common import INFO


def _scan(resp: float, n: int = 40, e: float = 10.0, eta: float = 0.3):
    return {"truth_eta": np.full(n, eta), "truth_e": np.full(n, e), "cluster_e": np.full(n, resp * e)}


def test_scan_rows_flag_above_one_and_large_loss():
    rows = R.scan_rows("electron", _scan(1.05))
    assert len(rows) == 1 and rows[0].verdict == INFO and rows[0].simulated == "1.050"
    assert rows[0].quantity == "median E_cluster/E_true, electrons 5-20 GeV, 0 < abs(eta) < 0.8, mu=0"
    assert "ABOVE 1" in rows[0].comment
    assert "large raw loss" in R.scan_rows("photon", _scan(0.8))[0].comment
    assert R.scan_rows("photon", _scan(0.95))[0].comment == "N = 40"
    assert R.scan_rows("electron", _scan(0.95, n=19)) == []  # < 20 clusters
    assert R.scan_rows("electron", _scan(0.95, e=50.0)) == []  # 50 GeV is in neither energy range


def test_point_rows_only_50gev_mu0():
    n = 10
    d = {"truth_e": np.full(n, 50.0), "cluster_e": np.full(n, 45.0), "truth_e_lost_upstream": np.full(n, 2.0),
         "truth_e_lost_passive": np.full(n, 0.5), "truth_e_leak_behind": np.full(n, 0.5),
         "truth_e_outside_cluster": np.full(n, 1.0)}  # fmt: skip
    rows = R.point_rows({(0.0, 0.1, 50.0): d, (32.0, 0.1, 50.0): d, (0.0, 0.1, 10.0): d})
    assert len(rows) == 1 and rows[0].verdict == INFO and rows[0].simulated == "0.9000"
    assert rows[0].comment == "mean truth losses / E: upstream+passive 0.050, behind 0.010, outside cluster 0.020"
