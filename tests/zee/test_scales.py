"""In-situ scale factors: the linear system, and alpha / constant-term recovery on toy Z events."""

from __future__ import annotations

import numpy as np
import pytest

from calo_calib.zee.fit import FitConfig
from calo_calib.zee.generator import ZeeConfig, generate
from calo_calib.zee.scales import EventSet, all_pairs, derive_scales, eta_bin_index, solve_pairs

EDGES = np.array([0.0, 0.8, 1.37, 2.0, 2.47])


def test_solve_pairs_inverts_an_exact_system_and_propagates_errors():
    x_true = np.array([0.01, -0.02, 0.005, 0.03])
    pairs = all_pairs(4)
    y = np.array([x_true[i] + x_true[j] for i, j in pairs])
    sol = solve_pairs(pairs, y, np.full(len(pairs), 1e-3), 4)
    np.testing.assert_allclose(sol.values, x_true, atol=1e-12)
    assert sol.ndf == len(pairs) - 4 and sol.chi2 < 1e-12
    # only the diagonal categories: x_i = y_ii / 2, error err / 2
    diag = [(i, i) for i in range(4)]
    sol = solve_pairs(diag, 2 * x_true, np.full(4, 2e-3), 4)
    np.testing.assert_allclose(sol.values, x_true, atol=1e-12)
    np.testing.assert_allclose(sol.errors, 1e-3, rtol=1e-9)
    # a bin no category reaches is NaN, not a made-up number; a degenerate system is refused
    sol = solve_pairs([(0, 0), (0, 1), (1, 1)], [0.02, 0.0, -0.02], [1e-3] * 3, 3)
    assert np.isnan(sol.values[2]) and np.allclose(sol.values[:2], [0.01, -0.01])
    with pytest.raises(ValueError, match="degenerate"):
        solve_pairs([(0, 1)], [0.01], [1e-3], 2)


def test_eta_bins():
    idx = eta_bin_index(np.array([0.0, 0.79, 0.8, 2.469, 2.47, 3.0]), EDGES)
    assert idx.tolist() == [0, 0, 1, 3, -1, -1]
    with pytest.raises(ValueError, match="increase"):
        eta_bin_index(np.array([0.1]), np.array([0.0, 1.0, 0.5]))


def _toy(n: int, rng: np.random.Generator, alpha: np.ndarray, resolution: float, constant: float) -> EventSet:
    """Truth Z -> ee events; E = E_true (1 + alpha_bin) (1 + N(0, resolution ⊕ constant)), truth directions."""
    ev, _ = generate(n, rng, ZeeConfig())
    eta, phi = ev.eta, ev.phi
    b = eta_bin_index(np.abs(eta), EDGES)
    e = ev.e * (1 + alpha[b]) * (1 + rng.normal(0.0, np.hypot(resolution, constant), ev.e.shape))
    return EventSet(e[:, 0], eta[:, 0], phi[:, 0], e[:, 1], eta[:, 1], phi[:, 1])


def test_derive_scales_recovers_injected_alphas_and_constant_term():
    rng = np.random.default_rng(11)
    alpha_true = np.array([0.006, -0.012, 0.02, -0.004])
    mc = _toy(20000, rng, np.zeros(4), 0.02, 0.0)
    data = _toy(20000, rng, alpha_true, 0.02, 0.015)
    res = derive_scales(mc, data, EDGES, FitConfig(model="gauss"), iterations=2, min_events=150)
    assert np.all(np.isfinite(res.alpha)) and np.all(res.alpha_err > 0)
    pulls = (res.alpha - alpha_true) / res.alpha_err
    assert np.all(np.abs(pulls) < 3), pulls
    assert np.all(res.alpha_err < 0.0015)  # the smallest injected |alpha| (0.4 %) is > 2.5 errors from 0
    assert res.ndf == len(all_pairs(4)) - 4 and res.chi2 / res.ndf < 3
    # after the correction the data peaks sit on the MC ones
    after = [r for r in res.residuals() if r["dpeak_after"] is not None]
    before_pulls = np.array([r["dpeak_before"] / r["dpeak_before_err"] for r in after])
    after_pulls = np.array([r["dpeak_after"] / r["dpeak_after_err"] for r in after])
    assert np.sum(before_pulls**2) > 10 * len(after) and np.sum(after_pulls**2) < 3 * len(after)
    # the extra 1.5 % smearing of the data appears as the constant term of every bin
    c = res.constant
    assert np.all(np.abs(c.c2 - 0.015**2) < 3 * c.c2_err), (c.c2, c.c2_err)
    assert np.all(c.c2 > 0)


def test_identical_samples_give_zero_alphas_within_errors():
    rng = np.random.default_rng(12)
    mc = _toy(8000, rng, np.zeros(4), 0.02, 0.0)
    data = _toy(8000, rng, np.zeros(4), 0.02, 0.0)
    res = derive_scales(mc, data, EDGES, FitConfig(model="gauss"), iterations=1, min_events=150)
    assert np.all(np.abs(res.alpha / res.alpha_err) < 3)
    assert len(res.history) == 1
