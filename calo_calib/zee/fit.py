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
Poisson likelihood with the normalisation profiled): ``iminuit.cost.BinnedNLL``, whose value is
-2 ln(L / L_saturated), so ``errordef = 1`` and its minimum is the Baker-Cousins χ² (the goodness
of fit, ndf = n_bins - 1 - n_parameters).

The minimiser is MINUIT (iminuit): MIGRAD, then HESSE for the covariance (the ±1σ errors are where
-2 ln L rises by 1), and MINOS for asymmetric intervals when ``FitConfig.minos`` is set. A minimum
that MIGRAD does not call valid (EDM above tolerance, call limit, invalid parameters) is retried
with strategy 2; if it stays invalid the fit is returned with ``valid = converged = False``, its
``message`` says why, and a warning is logged: such a result must not be used.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from iminuit import Minuit
from iminuit.cost import BinnedNLL
from scipy import signal
from scipy.stats import chi2 as chi2_dist

from calo_calib.zee.generator import GAMMA_Z, M_Z

log = logging.getLogger(__name__)

RESOLUTION_MODELS = ("gauss", "cb", "none")
BOUNDS = {"sigma": (0.05, 15.0), "alpha": (0.3, 10.0), "width": (0.2, 15.0)}
# MINUIT's first step per parameter: about the expected error (GeV; alpha dimensionless), so the
# first gradient and the seed covariance are on the right scale
STEPS = {"peak": 0.05, "width": 0.05, "sigma": 0.05, "alpha": 0.2}


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
    minos: bool = False  # MINOS intervals of the free parameters as well (PeakFit.minos)

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
    """Result of one peak fit. ``values``/``errors`` (HESSE, symmetric) by parameter name (GeV, α
    dimensionless; NaN where a parameter sits at a bound); ``cov`` (n_par, n_par) in the order of
    ``FitConfig.names`` (NaN rows/columns for parameters not in the errors); ``curve_m`` /
    ``curve_counts``: the fitted model as expected events per bin on a fine grid. ``valid``: MIGRAD
    called the minimum valid; ``converged``: valid and the covariance is accurate (use only these
    fits). ``minos``: (lower, upper) signed MINOS errors (lower < 0) when ``FitConfig.minos``."""

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
    valid: bool = True
    edm: float = math.nan
    nfcn: int = 0
    minos: dict[str, tuple[float, float]] = field(default_factory=dict)

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
            "valid": self.valid, "edm": self.edm, "nfcn": self.nfcn, "minos": {k: list(v) for k, v in self.minos.items()},
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

    def cdf(self, xe: np.ndarray, *theta: float) -> np.ndarray:
        """Cumulative probability at the masses ``xe`` [GeV] in the window (0 at lo, 1 at hi): the
        trapezoid integral of :meth:`density`. The signature is the one ``BinnedNLL`` calls; it takes
        the bin probabilities as the differences at the edges (grid points, so exact there).

        BinnedNLL scores a filled bin of probability 0 as the finite n ln n, not +∞; the density is clipped
        above 0 and the Breit-Wigner tails keep every bin of a ± 10-20 GeV window far above the
        float resolution of the cumulative, so that never happens here."""
        dens = self.density(np.asarray(theta, np.float64))
        h = self.cfg.grid_step
        cum = np.concatenate([[0.0], np.cumsum(0.5 * h * (dens[1:] + dens[:-1]))])
        return np.interp(xe, self.m_out, cum)

    def bin_probs(self, theta: np.ndarray) -> np.ndarray:
        """Probability of each bin (n_bins,), sums to 1."""
        return np.clip(np.diff(self.cdf(self.edges, *theta)), 1e-300, None)


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


def _migrad(
    cost: BinnedNLL, names: list[str], starts: list[dict[str, float]], bounds: list[tuple[float, float]]
) -> Minuit:
    """MIGRAD from each start in turn until one minimum is valid; the lowest one otherwise, polished
    once more with strategy 2 (more careful derivatives)."""
    best = None
    for start in starts:
        m = Minuit(cost, *(start[k] for k in names))
        m.limits = bounds
        m.errors = [STEPS[k] for k in names]
        m.migrad()
        if best is None or m.fval < best.fval:
            best = m
        if m.valid:
            return m
    best.strategy = 2
    best.migrad()
    return best


def _covariance_ok(m: Minuit) -> bool:
    """HESSE gave an accurate, positive-definite covariance (not one MINUIT forced positive)."""
    fmin = m.fmin
    if m.covariance is None or fmin.hesse_failed or fmin.has_made_posdef_covar or not fmin.has_accurate_covar:
        return False
    free = [i for i, k in enumerate(m.parameters) if not m.fixed[k]]
    diag = np.diag(np.asarray(m.covariance))[free]
    return bool(np.all(np.isfinite(diag)) and np.all(diag > 0))


def _hesse(m: Minuit, at_bound: list[str]) -> tuple[np.ndarray | None, list[str]]:
    """HESSE covariance (n_par, n_par) at the minimum, NaN for parameters not in it; None if no
    accurate covariance exists. Returns it and the parameters fixed for the errors besides those at
    a bound.

    Parameters at a bound are fixed (the limit transformation makes their errors meaningless). A
    Crystal-Ball alpha far in the Gaussian regime is a flat direction: if the full covariance is not
    positive definite, the errors of the others are taken with alpha fixed (and the message says so).
    """
    names = list(m.parameters)
    for k in at_bound:
        m.fixed[k] = True
    free = [k for k in names if k not in at_bound]
    if not free:
        return None, []
    m.hesse()
    extra: list[str] = []
    if not _covariance_ok(m) and "alpha" in free and len(free) > 1:
        m.fixed["alpha"] = True
        m.hesse()
        extra = ["alpha"]
    if not _covariance_ok(m):
        return None, extra
    use = [i for i, k in enumerate(names) if not m.fixed[k]]
    cov = np.full((len(names), len(names)), np.nan)
    cov[np.ix_(use, use)] = np.asarray(m.covariance)[np.ix_(use, use)]
    return cov, extra


def _minos(m: Minuit) -> dict[str, tuple[float, float]]:
    """Signed MINOS errors (lower < 0 < upper) of the free parameters; NaN where MINOS fails."""
    out = {}
    for k in (k for k in m.parameters if not m.fixed[k]):
        try:
            m.minos(k)
            me = m.merrors[k]
            out[k] = (float(me.lower), float(me.upper)) if me.is_valid else (math.nan, math.nan)
        except RuntimeError:  # MINOS refuses to run from an invalid minimum
            out[k] = (math.nan, math.nan)
    return out


def _migrad_status(m: Minuit) -> str:
    """MIGRAD's verdict, read before HESSE rewrites ``fmin``: validity (and why not), EDM, calls."""
    fmin = m.fmin
    msg = f"MIGRAD {'valid' if fmin.is_valid else 'INVALID'} (edm {fmin.edm:.2g}, {fmin.nfcn} calls)"
    reasons = [txt for bad, txt in ((fmin.has_reached_call_limit, "call limit reached"),
                                    (fmin.is_above_max_edm, "EDM above tolerance"),
                                    (not fmin.has_valid_parameters, "invalid parameters")) if bad]  # fmt: skip
    return msg + (": " + ", ".join(reasons) if not fmin.is_valid and reasons else "")


def fit_peak(
    m: np.ndarray, cfg: FitConfig | None = None, window: tuple[float, float] | None = None, min_events: int = 20
) -> PeakFit:
    """Fit the masses ``m`` (n,) [GeV] in ``window`` (default :func:`auto_window`) with MINUIT
    (MIGRAD, HESSE, and MINOS if ``cfg.minos``).

    An invalid minimum is not an exception (a category fit may legitimately fail): it is returned
    with ``valid = converged = False``, a ``message`` saying why, and a logged warning.

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
    # multinomial likelihood in the bins; the cost is -2 ln(L/L_sat), hence errordef = 1 (set by BinnedNLL)
    cost = BinnedNLL(counts, shape.edges, shape.cdf, name=names)

    centres = 0.5 * (shape.edges[1:] + shape.edges[:-1])
    peak0 = float(np.clip(np.average(centres, weights=np.convolve(counts, np.ones(5), "same") ** 4), lo + 1, hi - 1))
    bounds = [(lo + 0.5, hi - 0.5)] + [BOUNDS[k] for k in names[1:]]
    # further resolution starts only if MIGRAD finds no valid minimum from the previous one
    sigma_starts = (1.5, 3.0, 0.7) if "sigma" in names else (1.5,)
    starts = [{"peak": peak0, "width": cfg.gamma_z, "sigma": s0, "alpha": 1.5} for s0 in sigma_starts]
    mn = _migrad(cost, names, starts, bounds)
    valid, message = bool(mn.valid), _migrad_status(mn)  # before HESSE/fixing, which rewrite fmin
    edm, nfcn = float(mn.fmin.edm), int(mn.fmin.nfcn)
    x = np.array(mn.values)

    at_bound = [k for k, v, (b_lo, b_hi) in zip(names, x, bounds) if min(v - b_lo, b_hi - v) < 1e-3 * (b_hi - b_lo)]
    cov, fixed_for_errors = _hesse(mn, at_bound)
    errors = {
        k: (float(math.sqrt(cov[i, i])) if cov is not None and np.isfinite(cov[i, i]) else math.nan)
        for i, k in enumerate(names)
    }
    minos = _minos(mn) if cfg.minos and valid and cov is not None else {}

    probs = shape.bin_probs(x)
    expected = n * probs
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(counts > 0, counts * np.log(counts / expected), 0.0)
    chi2 = float(2.0 * np.sum(expected - counts + term))  # = the BinnedNLL value at the minimum
    ndf = len(counts) - 1 - len(names)
    message += ("; HESSE: no accurate covariance" if cov is None else "") + (
        f"; errors with {fixed_for_errors} fixed" if fixed_for_errors else ""
    )
    if not valid:
        log.warning("fit_peak [%g, %g] GeV, %d events: %s; values %s", lo, hi, n, message, dict(zip(names, x.tolist())))
    dens = shape.density(x)
    return PeakFit(
        model=cfg.model, window=(float(lo), float(hi)), n=n,
        values={k: float(v) for k, v in zip(names, x)}, errors=errors, chi2=chi2, ndf=ndf,
        converged=valid and cov is not None, message=message, edges=shape.edges, counts=counts, expected=expected,
        curve_m=shape.m_out, curve_counts=dens * n * cfg.bin_width, at_bound=at_bound, cov=cov,
        valid=valid, edm=edm, nfcn=nfcn, minos=minos,
    )  # fmt: skip
