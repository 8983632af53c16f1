"""The iminuit (MIGRAD + HESSE/MINOS) peak fit against the scipy fit it replaced, on fixed samples.

``_reference_fit`` below is a compact copy of the scipy implementation of ``calo_calib/zee/fit.py``
before the move to iminuit (commit 0aab3e4): the same line shape, the multinomial -ln L minimised
with L-BFGS-B (Powell polish), errors from the inverse central-difference Hessian. It is the frozen
REFERENCE: do not "fix" it to follow the package. Both fits minimise the same likelihood, so the
values must agree to a small fraction of their errors, and the HESSE errors to a few per cent.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from iminuit import Minuit
from scipy import optimize, signal

from calo_calib.zee.fit import BOUNDS, FitConfig, fit_peak
from calo_calib.zee.generator import M_Z, ZeeConfig, sample_mass

# ---------------------------------------------------------------- reference: the scipy fit (0aab3e4)


def _ref_density(p, cfg, m_in, d, m_out):
    peak = p["peak"]
    width = p["width"] if cfg.free_width else cfg.gamma_z * peak / cfg.m_z
    bw = m_in / ((m_in * m_in - peak * peak) ** 2 + (peak * width) ** 2)
    scale, h = peak / cfg.m_z, cfg.grid_step
    lo_t, hi_t = cfg.truth_range[0] * scale, cfg.truth_range[1] * scale
    bw = bw * np.clip((m_in - lo_t) / h + 0.5, 0.0, 1.0) * np.clip((hi_t - m_in) / h + 0.5, 0.0, 1.0)
    if cfg.model == "none":
        dens = bw
    else:
        z = d / p["sigma"]
        k = np.exp(-0.5 * z * z)
        if cfg.model == "cb":
            a, n = p["alpha"], cfg.cb_n
            tail = z < -a
            k[tail] = (n / a) ** n * math.exp(-0.5 * a * a) * (n / a - a - z[tail]) ** (-n)
        dens = signal.fftconvolve(bw, k / (k.sum() * h), mode="valid") * h
    dens = np.clip(dens, 1e-300, None)
    return dens / np.trapezoid(dens, m_out)


def _ref_hessian(f, x, steps):
    k, f0 = x.size, f(x)
    hess = np.empty((k, k))
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = steps[i]
        hess[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / steps[i] ** 2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = steps[j]
            hess[i, j] = hess[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                4 * steps[i] * steps[j]
            )
    return hess


def _ref_errors(nll, x, use, bounds):
    """sqrt(diag) of the inverse Hessian in the parameters ``use``; None if not positive definite."""
    xf = x.copy()
    room = np.array([0.5 * min(x[i] - bounds[i][0], bounds[i][1] - x[i]) for i in use])

    def sub(t):
        xf[use] = t
        return nll(xf)

    steps = np.minimum(np.full(len(use), 1e-2), room)
    for _ in range(2):
        diag = np.diag(np.linalg.inv(_ref_hessian(sub, x[use].copy(), steps)))
        if not np.all(np.isfinite(diag)) or np.any(diag <= 0):
            return None
        steps = np.minimum(0.3 * np.sqrt(diag), room)
    return dict(zip(use, np.sqrt(diag)))


def _reference_fit(m: np.ndarray, cfg: FitConfig, window: tuple[float, float]) -> tuple[dict, dict, float]:
    """(values, errors, Baker-Cousins χ²) of the scipy fit of ``m`` [GeV] in ``window``."""
    lo, hi = window
    h, names = cfg.grid_step, cfg.names
    m_out = lo + h * np.arange(int(round((hi - lo) / h)) + 1)
    nk = int(round(cfg.margin / h)) if cfg.model != "none" else 0
    d, m_in = h * np.arange(-nk, nk + 1), lo - nk * h + h * np.arange(m_out.size + 2 * nk)
    edge_index = np.arange(0, m_out.size, int(round(cfg.bin_width / h)))
    counts = np.histogram(m, bins=m_out[edge_index])[0].astype(np.float64)

    def probs(theta):
        dens = _ref_density(dict(zip(names, theta)), cfg, m_in, d, m_out)
        cum = np.concatenate([[0.0], np.cumsum(0.5 * h * (dens[1:] + dens[:-1]))])
        return np.clip(np.diff(cum[edge_index]), 1e-300, None)

    def nll(theta):
        value = -float(np.dot(counts, np.log(probs(theta))))
        return value if math.isfinite(value) else 1e300

    centres = 0.5 * (m_out[edge_index][1:] + m_out[edge_index][:-1])
    peak0 = float(np.clip(np.average(centres, weights=np.convolve(counts, np.ones(5), "same") ** 4), lo + 1, hi - 1))
    bounds = [(lo + 0.5, hi - 0.5)] + [BOUNDS[k] for k in names[1:]]
    best = None
    for s0 in (1.5, 3.0, 0.7):
        x0 = np.array([{"peak": peak0, "width": cfg.gamma_z, "sigma": s0, "alpha": 1.5}[k] for k in names])
        res = optimize.minimize(nll, x0, method="L-BFGS-B", bounds=bounds, options={"eps": 1e-7, "maxiter": 500})
        best = res if best is None or res.fun < best.fun else best
        if res.success:
            break
    if not best.success:
        res = optimize.minimize(nll, best.x, method="Powell", bounds=bounds)
        best = res if res.fun <= best.fun else best
    x = best.x
    free = [i for i, (v, (a, b)) in enumerate(zip(x, bounds)) if min(v - a, b - v) >= 1e-3 * (b - a)]
    err = _ref_errors(nll, x, free, bounds)
    if err is None and "alpha" in names:  # the flat-alpha fallback: errors with alpha fixed
        err = _ref_errors(nll, x, [i for i in free if names[i] != "alpha"], bounds)
    errors = {k: float(err.get(i, math.nan)) if err else math.nan for i, k in enumerate(names)}
    expected = counts.sum() * probs(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(counts > 0, counts * np.log(counts / expected), 0.0)
    return dict(zip(names, map(float, x))), errors, float(2.0 * np.sum(expected - counts + term))


# ---------------------------------------------------------------- fixed samples


def _truth(n: int, seed: int) -> tuple[np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    cfg = ZeeConfig()
    return sample_mass(n, rng, cfg.m_z, cfg.gamma_z, cfg.m_min, cfg.m_max), rng


def _cb_smear(n: int, rng: np.random.Generator, sigma: float, alpha: float, cb_n: float) -> np.ndarray:
    """Crystal-Ball (low tail) resolution deltas [GeV] by inverse-CDF sampling on a fine grid."""
    grid = np.linspace(-30.0, 30.0, 60001)
    t = grid / sigma
    tail = (cb_n / alpha) ** cb_n * np.exp(-0.5 * alpha**2) * (cb_n / alpha - alpha - t) ** (-cb_n)
    cdf = np.cumsum(np.where(t > -alpha, np.exp(-0.5 * t * t), tail))
    return np.interp(rng.random(n) * cdf[-1], cdf, grid)


def _sample(name: str) -> tuple[np.ndarray, FitConfig, tuple[float, float] | None]:
    if name == "gauss":  # +1 % scale, σ = 1.5 GeV
        m, rng = _truth(25000, 1)
        return 1.01 * m + rng.normal(0.0, 1.5, m.size), FitConfig(model="gauss"), None
    if name == "cb":  # -1.5 % scale, CB σ = 1.8 GeV, α = 1.2
        m, rng = _truth(40000, 4)
        return 0.985 * m + _cb_smear(m.size, rng, 1.8, 1.2, 5.0), FitConfig(model="cb"), None
    if name == "cb_gaussian_core":  # CB fit of a Gaussian: α is a flat direction
        m, rng = _truth(10000, 7)
        return m + rng.normal(0.0, 2.0, m.size), FitConfig(model="cb"), None
    m, _ = _truth(100000, 11)  # generator level, Γ free
    return m, FitConfig(model="none", free_width=True), (80.0, 102.0)


# parameters whose errors are well defined in each sample (α of a Gaussian-core sample is not)
WELL_DEFINED = {"gauss": ("peak", "sigma"), "cb": ("peak", "sigma", "alpha"),
                "cb_gaussian_core": ("peak", "sigma"), "none": ("peak", "width")}  # fmt: skip


@pytest.mark.parametrize("name", list(WELL_DEFINED))
def test_iminuit_fit_reproduces_the_scipy_fit(name):
    m, cfg, window = _sample(name)
    fit = fit_peak(m, cfg, window=window)
    assert fit.valid and fit.converged and "MIGRAD valid" in fit.message, fit.message
    ref_values, ref_errors, ref_chi2 = _reference_fit(m, cfg, fit.window)
    for k in WELL_DEFINED[name]:
        # the same likelihood: any difference is the two minimisers' tolerance (observed ≤ 0.05 σ)
        assert abs(fit.values[k] - ref_values[k]) < 0.1 * ref_errors[k], (k, fit.values[k], ref_values[k])
        # HESSE vs the inverse finite-difference Hessian (observed ≤ 2 %)
        assert fit.errors[k] == pytest.approx(ref_errors[k], rel=0.03), k
    # MIGRAD finds the same minimum (or a marginally deeper one)
    assert fit.chi2 == pytest.approx(ref_chi2, abs=0.02)
    assert fit.chi2 < ref_chi2 + 1e-3


@pytest.mark.parametrize("shift", [1.005, 0.99])
def test_an_injected_scale_shift_is_recovered_within_errors(shift):
    m_true, rng = _truth(20000, 21)
    d = rng.normal(0.0, 1.5, m_true.size)
    cfg = FitConfig(model="gauss", minos=True)
    nominal, shifted = fit_peak(m_true + d, cfg), fit_peak(shift * m_true + shift * d, cfg)
    assert nominal.converged and shifted.converged
    ratio = shifted.peak / nominal.peak
    # the same events: the two fits are fully correlated, the ratio is much better known than either
    # peak, so each is compared with its own truth and the shift must be far outside the errors
    assert abs(nominal.peak - M_Z) < 3 * nominal.peak_err
    assert abs(shifted.peak - shift * M_Z) < 3 * shifted.peak_err
    assert abs(shifted.sigma - shift * 1.5) < 3 * shifted.sigma_err
    assert abs(ratio - 1.0) * M_Z > 10 * shifted.peak_err and ratio == pytest.approx(shift, abs=3e-4)
    # a parabolic -ln L near a well-measured peak: MINOS ≈ HESSE and brackets the truth
    lo, hi = shifted.minos["peak"]
    assert (
        lo < 0 < hi
        and lo == pytest.approx(-shifted.peak_err, rel=0.05)
        and hi == pytest.approx(shifted.peak_err, rel=0.05)
    )
    assert shifted.peak + 3 * lo < shift * M_Z < shifted.peak + 3 * hi


def test_flat_alpha_gets_an_asymmetric_minos_interval():
    m, cfg, _ = _sample("cb_gaussian_core")
    fit = fit_peak(m, FitConfig(model="cb", minos=True))
    assert fit.converged and set(fit.minos) == {"peak", "sigma", "alpha"}
    lo, hi = fit.minos["alpha"]
    assert hi > 1.5 * -lo  # α → ∞ is a Gaussian: the interval opens towards large α
    assert fit.to_dict()["minos"]["peak"] == list(fit.minos["peak"])


def test_an_invalid_minimum_is_flagged_not_silently_used(monkeypatch, caplog):
    m, cfg, window = _sample("none")
    migrad = Minuit.migrad
    # starve MIGRAD of calls: it must stop at its call limit and say so
    monkeypatch.setattr(Minuit, "migrad", lambda self, ncall=None, iterate=5: migrad(self, ncall=8, iterate=1))
    with caplog.at_level(logging.WARNING, logger="calo_calib.zee.fit"):
        fit = fit_peak(m, cfg, window=window)
    assert not fit.valid and not fit.converged
    assert "INVALID" in fit.message and "call limit" in fit.message
    assert any("INVALID" in r.getMessage() for r in caplog.records)
    assert fit.to_dict()["valid"] is False
    # the values where MIGRAD stopped are still reported, for diagnosis
    assert all(math.isfinite(v) for v in fit.values.values()) and math.isfinite(fit.chi2)
