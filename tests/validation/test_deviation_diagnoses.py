"""The diagnosis sections of the validation: resolution put-back, pile-up granularity, ΔE noise toy."""

from __future__ import annotations

import numpy as np
import pytest

from calo_calib.validation import delta_e_noise as D
from calo_calib.validation import pileup_granularity as G
from calo_calib.validation import resolution_causes as R


def _sample(n: int = 4000, e: float = 100.0, seed: int = 0, outside_sigma: float = 0.03) -> dict:
    """A fixed-energy sample whose spread is a known fluctuating loss outside the cluster plus 0.5 % sampling."""
    rng = np.random.default_rng(seed)
    y = np.full(n, e)
    outside = np.abs(rng.normal(0.03, outside_sigma, n)) * e
    upstream = np.full(n, 0.01 * e)  # constant: contributes no spread
    seen = (y - outside - upstream) * (1 + 0.005 * rng.standard_normal(n))
    return {
        "truth_e": y, "cluster_e_ps": 0.05 * seen, "cluster_e_l1": 0.25 * seen, "cluster_e_l2": 0.65 * seen,
        "cluster_e_l3": 0.05 * seen, "cluster_e": seen, "truth_e_outside_cluster": outside,
        "truth_e_lost_upstream": upstream, "truth_e_lost_passive": np.zeros(n), "truth_e_leak_behind": np.zeros(n),
        "truth_brem_fraction": np.zeros(n), "cluster_noise": np.full(n, 0.1),
    }  # fmt: skip


def test_putting_back_the_fluctuating_loss_leaves_the_sampling_floor():
    d = _sample()
    r = R.decompose(d, 20, np.random.default_rng(1))
    assert r["nominal"][0] > 0.02  # the outside loss dominates
    assert r["outside"][0] == pytest.approx(0.005, rel=0.15)  # only the 0.5 % sampling is left
    assert r["upstream"][0] == pytest.approx(r["nominal"][0], rel=0.02)  # a constant loss changes nothing
    assert r["all"][0] == pytest.approx(0.005, rel=0.15)
    assert r["loss_mean"]["upstream"] == pytest.approx(0.01)


def test_diagnosis_names_the_loss_that_closes_a_worse_point_and_the_share_of_a_better_one():
    d = _sample()
    r = R.decompose(d, 20, np.random.default_rng(1))
    worse = {**r, "model": 0.006}
    assert R.diagnosis(worse).startswith("explained by the loss outside the cluster")
    no_cause = {**r, "model": 0.0001}
    assert R.diagnosis(no_cause).startswith("no single loss closes it")
    better = {**r, "model": 2 * r["nominal"][0]}
    text = R.diagnosis(better)
    assert text.startswith("floor") and "the model leaves" in text


def test_put_back_drops_clusters_that_kept_almost_nothing():
    d = _sample(n=1000)
    d["truth_e_outside_cluster"][::5] = 0.95 * d["truth_e"][::5]  # targets near 0 for a fifth
    r = R.put_back(d, d["truth_e_outside_cluster"])
    assert r.size == 400 and np.all(np.isfinite(r)) and np.median(r) == pytest.approx(1.0, abs=0.02)


def test_reduced_sigma_is_flat_when_sigma_follows_cosh_and_the_cell_area():
    areas = [1.0, 1.0, 2.0, 2.0, 3.0]
    pts = [(0.7 * np.cosh(eta) * np.sqrt(a), a) for eta, a in zip(G.ETAS, areas)]
    assert np.allclose(G.reduced(pts), 1.0)
    flat = [(0.7, a) for a in areas]  # a σ that does not grow with η falls in reduced units
    assert np.all(np.diff(G.reduced(flat)) < 0)


def test_strip_noise_alone_raises_delta_e():
    ov = ["particle=electron", "gun.spectrum=flat_et", "gun.e_min=20", "gun.e_max=50", "gun.abs_eta_max=0.8",
          "mu=0", "pileup.mu_rel_sigma=0"]  # fmt: skip
    high = D.toy_shift(ov, 300, 80.0, 5)
    none = D.toy_shift(ov, 300, 0.0, 5)
    assert none["shift"] == 0.0  # σ_pu(0) = 0: the toy adds nothing
    assert high["shift"] > 3 * high["err"] and high["sigma_strip"] > 0


def test_a_point_deviates_exactly_when_the_resolution_check_flags_it():
    # 1.3 × the model: outside ±20 % with a small check error, inside once 2σ of the check's error covers it.
    r = {"nominal": (0.013, 0.0), "model": 0.01, "check_err": 0.0001}
    assert R._deviates(r)
    assert not R._deviates({**r, "check_err": 0.001})
