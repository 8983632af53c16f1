"""Fit of the m_ee peak: Breit-Wigner ⊗ resolution, binned multinomial (Poisson) likelihood.

Model of a reconstructed mass::

    m_reco = (m_peak / m_Z) · m_true + d,   m_true ~ BW(m_Z, Γ_Z) on the generated window,
                                              d ~ R(d; σ[, α])

i.e. the Breit-Wigner has its pole at ``peak`` and width Γ_Z · peak / m_Z (a pure energy-scale
shift scales the whole line shape), truncated where the generator truncates it (``truth_range``,
scaled the same way; a linear ramp over one grid step keeps the likelihood continuous). The
resolution R is

* ``gauss``: N(0, σ²);
* ``cb``: a Crystal Ball with Gaussian core N(0, σ²) and a power-law tail on the LOW side
  (d < -α σ) with fixed exponent n (``cb_n``): electrons lose energy (bremsstrahlung, leakage,
  out-of-cluster energy) far more often than they gain it, so the reconstructed peak has a low tail
  that a Gaussian would absorb into a biased, wider core;
* ``none``: no smearing (fits of generator-level masses; ``free_width=True`` frees Γ).

The density is the numerical convolution on a 0.1 GeV grid (FFT), normalised in the fit window;
bin probabilities are its integrals over the bins; the likelihood is multinomial in the bins (the
Poisson likelihood with the normalisation profiled). Uncertainties come from the inverse of the
numerical Hessian of -ln L at the minimum; the goodness of fit is the Baker-Cousins χ² (the Poisson
likelihood ratio to the saturated model) with ndf = n_bins - 1 - n_parameters.

scipy is used for the minimisation (iminuit is not a dependency of the project).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, signal
from scipy.stats import chi2 as chi2_dist

from calo_calib.zee.generator import GAMMA_Z, M_Z

RESOLUTION_MODELS = ("gauss", "cb", "none")
BOUNDS = {"sigma": (0.05, 15.0), "alpha": (0.3, 10.0), "width": (0.2, 15.0)}


@dataclass(frozen=True)
class FitConfig:
    """How to fit a peak (masses in GeV)."""

    model: str = "cb"  # resolution model: gauss | cb | none
    bin_width: float = 0.5  # histogram bin width; a multiple of grid_step
    half_window: float = 10.0  # automatic window: centre ± half_window
    cb_n: float = 5.0  # Crystal-Ball tail exponent (fixed) [E]
    free_width: bool = False  # fit Γ as well (generator-level checks)
    m_z: float = M_Z
    gamma_z: float = GAMMA_Z
    truth_range: tuple[float, float] | None = (66.0, 116.0)  # generated m_true window (ZeeConfig m_min, m_max)
    grid_step: float = 0.1
    margin: float = 30.0  # the resolution kernel spans ± margin

    def __post_init__(self) -> None:
        if self.model not in RESOLUTION_MODELS:
            raise ValueError(f"fit.model={self.model!r} is unknown; choose one of {', '.join(RESOLUTION_MODELS)}")
        ratio = self.bin_width / self.grid_step
        if self.bin_width <= 0 or abs(ratio - round(ratio)) > 1e-6:
            raise ValueError(
                f"fit.bin_width={self.bin_width} must be a positive multiple of grid_step={self.grid_step}"
            )
        if self.half_window <= 0 or self.cb_n <= 1:
            raise ValueError(f"fit: need half_window > 0 and cb_n > 1, got {self.half_window}, {self.cb_n}")
        if self.truth_range is not None and not self.truth_range[0] < self.m_z < self.truth_range[1]:
            raise ValueError(f"fit.truth_range={self.truth_range} must contain m_z={self.m_z}")

    @property
    def names(self) -> list[str]:
        """Parameter names, in the order of the fit vector."""
        out = ["peak"]
        if self.free_width:
            out.append("width")
        if self.model != "none":
            out.append("sigma")
        if self.model == "cb":
            out.append("alpha")
        return out


@dataclass
class PeakFit:
    """Result of one peak fit. ``values``/``errors`` by parameter name (GeV, α dimensionless);
    ``curve_m`` / ``curve_counts``: the fitted model as expected events per bin on a fine grid."""

    model: str
    window: tuple[float, float]
    n: int
    values: dict[str, float]
    errors: dict[str, float]
    chi2: float
    ndf: int
    converged: bool
    message: str
    edges: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    expected: np.ndarray = field(repr=False)
    curve_m: np.ndarray = field(repr=False)
    curve_counts: np.ndarray = field(repr=False)
    at_bound: list[str] = field(default_factory=list)
    cov: np.ndarray | None = field(default=None, repr=False)

    @property
    def peak(self) -> float:
        return self.values["peak"]

    @property
    def peak_err(self) -> float:
        return self.errors["peak"]

    @property
    def sigma(self) -> float:
        return self.values.get("sigma", math.nan)

    @property
    def sigma_err(self) -> float:
        return self.errors.get("sigma", math.nan)

    @property
    def p_value(self) -> float:
        return float(chi2_dist.sf(self.chi2, self.ndf)) if self.ndf > 0 else math.nan

    def to_dict(self) -> dict:
        """JSON-ready summary (no arrays)."""
        return {
            "model": self.model, "window": list(self.window), "n": self.n,
            "values": self.values, "errors": self.errors, "chi2": self.chi2, "ndf": self.ndf,
            "p_value": self.p_value, "converged": self.converged, "message": self.message, "at_bound": self.at_bound,
        }  # fmt: skip


class LineShape:
    """The model density on a fixed grid for one fit window [lo, hi] (GeV)."""

    def __init__(self, cfg: FitConfig, lo: float, hi: float) -> None:
        self.cfg = cfg
        h = cfg.grid_step
        n_out = int(round((hi - lo) / h)) + 1
        self.m_out = lo + h * np.arange(n_out)
        nk = int(round(cfg.margin / h)) if cfg.model != "none" else 0
        self.d = h * np.arange(-nk, nk + 1)
        self.m_in = lo - nk * h + h * np.arange(n_out + 2 * nk)
        step = int(round(cfg.bin_width / h))
        self.edge_index = np.arange(0, n_out, step)
        if self.edge_index[-1] != n_out - 1:
            raise ValueError(f"fit window [{lo}, {hi}] is not a whole number of {cfg.bin_width} GeV bins")
        self.edges = self.m_out[self.edge_index]

    def unpack(self, theta: np.ndarray) -> dict[str, float]:
        return dict(zip(self.cfg.names, (float(t) for t in theta)))

    def _kernel(self, p: dict[str, float]) -> np.ndarray:
        z = self.d / p["sigma"]
        if self.cfg.model == "gauss":
            k = np.exp(-0.5 * z * z)
        else:  # Crystal Ball, tail at z < -alpha
            a, n = p["alpha"], self.cfg.cb_n
            tail = z < -a
            k = np.exp(-0.5 * z * z)
            big_a = (n / a) ** n * math.exp(-0.5 * a * a)
            big_b = n / a - a
            k[tail] = big_a * (big_b - z[tail]) ** (-n)
        return k / (k.sum() * self.cfg.grid_step)

    def density(self, theta: np.ndarray) -> np.ndarray:
        """Normalised density [1/GeV] on ``m_out`` (integral over the window = 1)."""
        p = self.unpack(theta)
        cfg = self.cfg
        peak = p["peak"]
        width = p["width"] if cfg.free_width else cfg.gamma_z * peak / cfg.m_z
        m = self.m_in
        bw = m / ((m * m - peak * peak) ** 2 + (peak * width) ** 2)
        if cfg.truth_range is not None:
            scale, h = peak / cfg.m_z, cfg.grid_step
            lo_t, hi_t = cfg.truth_range[0] * scale, cfg.truth_range[1] * scale
            bw = bw * np.clip((m - lo_t) / h + 0.5, 0.0, 1.0) * np.clip((hi_t - m) / h + 0.5, 0.0, 1.0)
        if cfg.model == "none":
            dens = bw
        else:
            dens = signal.fftconvolve(bw, self._kernel(p), mode="valid") * cfg.grid_step
        dens = np.clip(dens, 1e-300, None)
        return dens / np.trapezoid(dens, self.m_out)

    def bin_probs(self, theta: np.ndarray) -> np.ndarray:
        """Probability of each bin (sums to 1)."""
        dens = self.density(theta)
        h = self.cfg.grid_step
        cum = np.concatenate([[0.0], np.cumsum(0.5 * h * (dens[1:] + dens[:-1]))])
        return np.clip(np.diff(cum[self.edge_index]), 1e-300, None)


def auto_window(m: np.ndarray, cfg: FitConfig) -> tuple[float, float]:
    """centre ± half_window, the centre being the mode of the masses (1 GeV histogram, smoothed),
    rounded to the bin width."""
    m = np.asarray(m, np.float64)
    m = m[np.isfinite(m) & (m > 40.0) & (m < 140.0)]
    if m.size < 10:
        raise ValueError(f"auto_window: only {m.size} masses in 40-140 GeV")
    counts, edges = np.histogram(m, bins=np.arange(40.0, 140.5, 1.0))
    smooth = np.convolve(counts, np.ones(5) / 5.0, mode="same")
    centre = 0.5 * (edges[:-1] + edges[1:])[int(np.argmax(smooth))]
    centre = round(centre / cfg.bin_width) * cfg.bin_width
    return centre - cfg.half_window, centre + cfg.half_window


def _hessian(f, x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Central-difference Hessian of scalar ``f`` at ``x``."""
    k = x.size
    hess = np.empty((k, k))
    f0 = f(x)
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


def _covariance(nll, x: np.ndarray, use: list[int], n_par: int, bounds: list[tuple[float, float]]) -> np.ndarray | None:
    """Inverse Hessian of ``nll`` in the parameters ``use`` (others fixed at ``x``); None if not positive definite.

    Difference steps stay inside ``bounds`` (a CB alpha or a width must never turn negative).
    """
    xf = x.copy()
    room = np.array([0.5 * min(x[i] - bounds[i][0], bounds[i][1] - x[i]) for i in use])

    def nll_sub(t: np.ndarray) -> float:
        xf[use] = t
        return nll(xf)

    steps = np.minimum(np.full(len(use), 1e-2), room)
    for _ in range(2):  # second pass: steps at a fraction of the first error estimate
        try:
            cov_u = np.linalg.inv(_hessian(nll_sub, x[use].copy(), steps))
        except np.linalg.LinAlgError:
            return None
        diag = np.diag(cov_u)
        if not np.all(np.isfinite(diag)) or np.any(diag <= 0):
            return None
        steps = np.minimum(0.3 * np.sqrt(diag), room)
    cov = np.full((n_par, n_par), np.nan)
    cov[np.ix_(use, use)] = cov_u
    return cov


def fit_peak(
    m: np.ndarray, cfg: FitConfig | None = None, window: tuple[float, float] | None = None, min_events: int = 20
) -> PeakFit:
    """Fit the masses ``m`` (n,) [GeV] in ``window`` (default :func:`auto_window`).

    Raises:
        ValueError: fewer than ``min_events`` masses in the window, or a bad configuration.
    """
    cfg = cfg or FitConfig()
    m = np.asarray(m, np.float64)
    m = m[np.isfinite(m)]
    lo, hi = window if window is not None else auto_window(m, cfg)
    shape = LineShape(cfg, float(lo), float(hi))
    counts = np.histogram(m, bins=shape.edges)[0].astype(np.float64)
    n = int(counts.sum())
    if n < min_events:
        raise ValueError(f"fit_peak: {n} events in the window [{lo:g}, {hi:g}] GeV, need at least {min_events}")
    names = cfg.names

    def nll(theta: np.ndarray) -> float:
        value = -float(np.dot(counts, np.log(shape.bin_probs(theta))))
        return value if math.isfinite(value) else 1e300

    centres = 0.5 * (shape.edges[1:] + shape.edges[:-1])
    peak0 = float(np.clip(np.average(centres, weights=np.convolve(counts, np.ones(5), "same") ** 4), lo + 1, hi - 1))
    bounds = [(lo + 0.5, hi - 0.5)] + [BOUNDS[k] for k in names[1:]]
    best = None
    for s0 in (1.5, 3.0, 0.7):  # further starts only if the previous one did not converge
        start = {"peak": peak0, "width": cfg.gamma_z, "sigma": s0, "alpha": 1.5}
        x0 = np.array([start[k] for k in names])
        res = optimize.minimize(nll, x0, method="L-BFGS-B", bounds=bounds, options={"eps": 1e-7, "maxiter": 500})
        if best is None or res.fun < best.fun:
            best = res
        if res.success:
            break
    x = best.x
    # L-BFGS-B stopped abnormally from every start: a derivative-free polish
    if not best.success:
        res = optimize.minimize(nll, x, method="Powell", bounds=bounds)
        if res.fun <= best.fun:
            best, x = res, res.x

    at_bound = [k for k, v, (b_lo, b_hi) in zip(names, x, bounds) if min(v - b_lo, b_hi - v) < 1e-3 * (b_hi - b_lo)]
    free = [i for i, k in enumerate(names) if k not in at_bound]
    cov, fixed_for_errors = None, []
    # A Crystal-Ball alpha far in the Gaussian regime is a flat direction: if the full Hessian is
    # not positive definite, the errors of the others are taken with alpha fixed (and reported so).
    for drop in ([], ["alpha"]):
        use = [i for i in free if names[i] not in drop]
        if not use or (drop and not any(names[i] in drop for i in free)):
            continue
        cov = _covariance(nll, x, use, len(names), bounds)
        if cov is not None:
            fixed_for_errors = [names[i] for i in free if i not in use]
            break
    errors = {
        k: (float(math.sqrt(cov[i, i])) if cov is not None and np.isfinite(cov[i, i]) else math.nan)
        for i, k in enumerate(names)
    }

    probs = shape.bin_probs(x)
    expected = n * probs
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(counts > 0, counts * np.log(counts / expected), 0.0)
    chi2 = float(2.0 * np.sum(expected - counts + term))
    ndf = len(counts) - 1 - len(names)
    converged = bool(best.success) and cov is not None
    message = str(best.message) + (f"; errors with {fixed_for_errors} fixed" if fixed_for_errors else "")
    dens = shape.density(x)
    return PeakFit(
        model=cfg.model, window=(float(lo), float(hi)), n=n,
        values={k: float(v) for k, v in zip(names, x)}, errors=errors, chi2=chi2, ndf=ndf,
        converged=converged, message=message, edges=shape.edges, counts=counts, expected=expected,
        curve_m=shape.m_out, curve_counts=dens * n * cfg.bin_width, at_bound=at_bound, cov=cov,
    )  # fmt: skip
