"""The m_ee peak fit recovers injected scale shifts and resolutions on toy data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calo_calib.zee.fit import FitConfig, auto_window, fit_peak
from calo_calib.zee.generator import M_Z, ZeeConfig, sample_mass


def _truth_masses(n: int, seed: int) -> tuple[np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    cfg = ZeeConfig()
    return sample_mass(n, rng, cfg.m_z, cfg.gamma_z, cfg.m_min, cfg.m_max), rng


@pytest.mark.parametrize("scale,sigma,seed", [(1.01, 1.5, 1), (0.97, 2.5, 2), (1.0, 1.0, 3)])
def test_gaussian_fit_recovers_a_known_scale_shift_and_resolution(scale, sigma, seed):
    m_true, rng = _truth_masses(25000, seed)
    m = scale * m_true + rng.normal(0.0, sigma, m_true.size)
    fit = fit_peak(m, FitConfig(model="gauss"))
    assert fit.converged
    assert fit.window[0] < scale * M_Z < fit.window[1]
    assert abs(fit.peak - scale * M_Z) < 3 * fit.peak_err
    assert abs(fit.sigma - sigma) < 3 * fit.sigma_err
    # precise enough to see a 0.2 % scale shift and a 10 % width change at > 3 sigma
    assert 3 * fit.peak_err < 0.002 * M_Z and 3 * fit.sigma_err < 0.1 * sigma
    assert 0.3 < fit.chi2 / fit.ndf < 2.0


def _crystal_ball(d: np.ndarray, sigma: float, alpha: float, n: float) -> np.ndarray:
    """Unnormalised Crystal Ball (textbook form, low tail), written independently of the fit code."""
    t = d / sigma
    a = abs(alpha)
    core = np.exp(-0.5 * t * t)
    tail = (n / a) ** n * np.exp(-0.5 * a * a) * (n / a - a - t) ** (-n)
    return np.where(t > -a, core, tail)


def test_crystal_ball_fit_recovers_the_peak_of_a_low_tail_resolution():
    m_true, rng = _truth_masses(40000, 4)
    scale, sigma, alpha, n = 0.985, 1.8, 1.2, 5.0
    grid = np.linspace(-30.0, 30.0, 60001)
    cdf = np.cumsum(_crystal_ball(grid, sigma, alpha, n))
    d = np.interp(rng.random(m_true.size) * cdf[-1], cdf, grid)
    m = scale * m_true + d
    cb = fit_peak(m, FitConfig(model="cb", cb_n=n))
    assert abs(cb.peak - scale * M_Z) < 3 * cb.peak_err
    assert abs(cb.sigma - sigma) < 3 * cb.sigma_err
    assert abs(cb.values["alpha"] - alpha) < 3 * cb.errors["alpha"]
    assert cb.chi2 / cb.ndf < 2.0
    # a Gaussian core cannot describe the tail: worse fit, and a biased peak
    gauss = fit_peak(m, FitConfig(model="gauss"), window=cb.window)
    assert gauss.chi2 > cb.chi2 + 25
    assert abs(gauss.peak - scale * M_Z) > 3 * gauss.peak_err


def test_windows_bins_and_errors():
    m_true, rng = _truth_masses(2000, 5)
    m = 0.95 * m_true + rng.normal(0, 2.0, m_true.size)
    lo, hi = auto_window(m, FitConfig(half_window=8.0))
    assert hi - lo == 16.0 and lo < 0.95 * M_Z < hi and math.isclose(lo / 0.5, round(lo / 0.5))
    fit = fit_peak(m, FitConfig(model="gauss", half_window=8.0))
    assert fit.counts.sum() == fit.n == np.sum((m >= lo) & (m < hi)) and len(fit.edges) == 33
    assert np.isclose(fit.expected.sum(), fit.n)
    with pytest.raises(ValueError, match="events in the window"):
        fit_peak(m[:30], FitConfig(model="gauss"), window=(80.0, 100.0), min_events=50)
    with pytest.raises(ValueError, match="fit.model"):
        FitConfig(model="voigt")
    with pytest.raises(ValueError, match="bin_width"):
        FitConfig(bin_width=0.25)
