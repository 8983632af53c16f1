"""σ_rel per region and the paired bootstrap of the importance study (calo_calib/studies/importance_stats.py)."""

from __future__ import annotations

import numpy as np

from calo_calib.evaluation.metrics import sigma_rel
from calo_calib.studies.importance_stats import group_sigmas, make_regions, paired_bootstrap, region_groups


def test_regions_known_assignment():
    r = make_regions(np.array([5.0, 50.0, 50.0, 500.0, 2000.0]), np.array([0.1, 0.1, 1.0, 0.1, 0.1]),
                     e_edges=[1, 10, 100, 1000], eta_edges=[0, 0.8, 1.5])  # fmt: skip
    assert r.shape == (2, 3) and r.n == 6
    assert r.flat.tolist() == [0, 1, 4, 2, -1]  # abs_eta slowest; out of range: -1
    rows = r.rows()
    assert [row["n"] for row in rows] == [1, 1, 1, 0, 1, 0]
    assert rows[4] == {"abs_eta_lo": 0.8, "abs_eta_hi": 1.5, "truth_e_lo": 10.0, "truth_e_hi": 100.0, "n": 1}


def test_groups_sigmas_and_bootstrap():
    r = make_regions(np.full(40, 50.0), np.r_[np.full(30, 0.1), np.full(10, 1.0)], e_edges=[10, 100], eta_edges=[0, 0.8, 1.5])
    groups = region_groups(r, np.ones(40, bool), min_count=20)
    assert groups[0].size == 40 and groups[1].size == 30 and groups[2] is None  # inclusive, then per region
    ratio = np.random.default_rng(0).normal(1.0, 0.05, 40)
    s = group_sigmas(ratio, groups)
    assert s[0] == sigma_rel(ratio) and s[1] == sigma_rel(ratio[:30]) and np.isnan(s[2])
    rng = np.random.default_rng(1)
    err = paired_bootstrap(ratio, ratio, groups, 20, rng)  # identical samples: every replica gives exactly 0
    assert err[0] == 0.0 and err[1] == 0.0 and np.isnan(err[2])
    assert np.isnan(paired_bootstrap(ratio, 2 * ratio, groups, 1, rng)).all()  # < 2 replicas: NaN
