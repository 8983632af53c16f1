"""In-situ energy-scale factors from the Z peak, per |η| bin, as the LHC experiments derive them.

Model: an electron in |η| bin i has E_data = E_MC (1 + α_i). For an event with electrons in bins
i and j the di-electron mass scales by sqrt((1 + α_i)(1 + α_j)), so with β_i = ln(1 + α_i)

    y_ij = 2 ln(m_peak,data(ij) / m_peak,MC(ij)) = β_i + β_j        (≈ α_i + α_j to first order)

exactly for a pure scale. The peak of every (i ≤ j) category is fitted in data and MC
(:mod:`calo_calib.zee.fit`), and the β are the weighted least-squares solution of this linear
system (covariance (AᵀWA)⁻¹, χ² with ndf = n_categories - n_bins). The data are then corrected,
E → E / (1 + α_i), and fitted again: the residual peak differences close the loop (``iterations``
> 1 re-solves on the residuals and compounds the factors).

Resolution: with a relative width r = σ/m_peak per category and an extra constant term c_i in data,
r_data²(ij) - r_MC²(ij) = (c_i² + c_j²) / 4 (since δm/m = (δE_1/E_1 + δE_2/E_2)/2), solved the
same way for c_i² per bin; c_i = sqrt(c_i²) where positive (0 otherwise, with a one-sided error).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from calo_calib.zee.fit import FitConfig, PeakFit, auto_window, fit_peak
from calo_calib.zee.mass import invariant_mass

log = logging.getLogger(__name__)

Pair = tuple[int, int]


def eta_bin_index(abs_eta: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(n,) bin index of |η| in ``edges`` (n_bins + 1, increasing); -1 outside."""
    edges = np.asarray(edges, np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"|eta| bin edges must increase, got {edges.tolist()}")
    idx = np.searchsorted(edges, np.asarray(abs_eta, np.float64), side="right") - 1
    return np.where((idx >= 0) & (idx < edges.size - 1), idx, -1)


def all_pairs(n_bins: int) -> list[Pair]:
    """The (i ≤ j) categories of ``n_bins`` bins."""
    return [(i, j) for i in range(n_bins) for j in range(i, n_bins)]


@dataclass
class LinearSolution:
    """Weighted least-squares solution of y_c = k (x_i + x_j) over categories c = (i, j)."""

    values: np.ndarray  # (n_bins,), NaN for bins no category constrains
    errors: np.ndarray  # (n_bins,)
    cov: np.ndarray  # (n_bins, n_bins)
    chi2: float
    ndf: int


def solve_pairs(pairs: list[Pair], y: np.ndarray, err: np.ndarray, n_bins: int, k: float = 1.0) -> LinearSolution:
    """Solve y_c = k (x_i + x_j) ± err_c for x (n_bins,) by weighted least squares.

    Categories with a non-finite y or err are ignored. Bins that no remaining category touches get
    NaN; if the remaining system is still degenerate, a ValueError names the bins.
    """
    y, err = np.asarray(y, np.float64), np.asarray(err, np.float64)
    ok = np.isfinite(y) & np.isfinite(err) & (err > 0)
    pairs_ok = [p for p, o in zip(pairs, ok) if o]
    used = sorted({b for p in pairs_ok for b in p})
    values, errors = np.full(n_bins, np.nan), np.full(n_bins, np.nan)
    cov = np.full((n_bins, n_bins), np.nan)
    if not used:
        return LinearSolution(values, errors, cov, math.nan, 0)
    col = {b: c for c, b in enumerate(used)}
    a = np.zeros((len(pairs_ok), len(used)))
    for r, (i, j) in enumerate(pairs_ok):
        a[r, col[i]] += k
        a[r, col[j]] += k
    w = 1.0 / err[ok] ** 2
    ata = a.T @ (a * w[:, None])
    if np.linalg.matrix_rank(ata) < len(used):
        raise ValueError(f"scale system is degenerate for bins {used}: add categories (more events) or merge bins")
    cov_u = np.linalg.inv(ata)
    x = cov_u @ (a.T @ (w * y[ok]))
    resid = y[ok] - a @ x
    values[used] = x
    errors[used] = np.sqrt(np.diag(cov_u))
    cov[np.ix_(used, used)] = cov_u
    return LinearSolution(values, errors, cov, float(np.sum(w * resid**2)), len(pairs_ok) - len(used))


@dataclass
class EventSet:
    """Events with two electrons, per-event arrays (n,): energies [GeV] and cluster directions."""

    e1: np.ndarray
    eta1: np.ndarray
    phi1: np.ndarray
    e2: np.ndarray
    eta2: np.ndarray
    phi2: np.ndarray

    def __post_init__(self) -> None:
        n = np.asarray(self.e1).shape
        for name in ("eta1", "phi1", "e2", "eta2", "phi2"):
            if np.asarray(getattr(self, name)).shape != n:
                raise ValueError(f"EventSet: {name} has shape {np.asarray(getattr(self, name)).shape}, e1 has {n}")

    @property
    def n(self) -> int:
        return int(np.asarray(self.e1).shape[0])

    def subset(self, mask: np.ndarray) -> EventSet:
        return EventSet(*(np.asarray(getattr(self, f))[mask] for f in ("e1", "eta1", "phi1", "e2", "eta2", "phi2")))

    def scaled(self, alpha: np.ndarray, edges: np.ndarray) -> EventSet:
        """Energies divided by (1 + α_bin) of each electron's |η| bin (bins with a NaN α, or outside, unchanged)."""
        alpha = np.nan_to_num(np.asarray(alpha, np.float64), nan=0.0)

        def corr(e, eta):
            b = eta_bin_index(np.abs(eta), edges)
            return e / np.where(b >= 0, 1.0 + alpha[np.maximum(b, 0)], 1.0)

        return EventSet(corr(self.e1, self.eta1), self.eta1, self.phi1, corr(self.e2, self.eta2), self.eta2, self.phi2)

    def masses(self) -> np.ndarray:
        return invariant_mass(self.e1, self.eta1, self.phi1, self.e2, self.eta2, self.phi2)

    def pair_index(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) |η|-bin indices of each event, lo ≤ hi; -1 if an electron is outside the bins."""
        b1 = eta_bin_index(np.abs(self.eta1), edges)
        b2 = eta_bin_index(np.abs(self.eta2), edges)
        lo, hi = np.minimum(b1, b2), np.maximum(b1, b2)
        bad = (b1 < 0) | (b2 < 0)
        return np.where(bad, -1, lo), np.where(bad, -1, hi)


def fit_pairs(
    events: EventSet,
    edges: np.ndarray,
    cfg: FitConfig,
    windows: dict[Pair, tuple[float, float]] | None,
    min_events: int,
) -> dict[Pair, PeakFit | None]:
    """Fit the peak of every (i ≤ j) category; None where too few events or the fit fails (logged).

    ``windows`` fixes each category's fit window (the MC one, so data and MC are fitted alike);
    None chooses them from these events.
    """
    m = events.masses()
    lo, hi = events.pair_index(edges)
    out: dict[Pair, PeakFit | None] = {}
    for pair in all_pairs(len(edges) - 1):
        sel = (lo == pair[0]) & (hi == pair[1])
        out[pair] = None
        if sel.sum() < min_events:
            continue
        try:
            window = windows[pair] if windows is not None else auto_window(m[sel], cfg)
            if window is None:
                continue
            fit = fit_peak(m[sel], cfg, window=window, min_events=min_events)
        except ValueError as err:
            log.info("category %s: no fit (%s)", pair, err)
            continue
        if not fit.valid or not np.isfinite(fit.peak_err):  # an invalid MIGRAD minimum is not a measurement
            log.info("category %s: invalid fit or no peak uncertainty (%s), not used", pair, fit.message)
            continue
        out[pair] = fit
    return out


def _peak_arrays(
    pairs: list[Pair], fits: dict[Pair, PeakFit | None]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    def get(p, attr):
        f = fits.get(p)
        return getattr(f, attr) if f is not None else math.nan

    return tuple(np.array([get(p, a) for p in pairs]) for a in ("peak", "peak_err", "sigma", "sigma_err"))  # type: ignore[return-value]


def scale_factors(
    pairs: list[Pair], data: dict[Pair, PeakFit | None], mc: dict[Pair, PeakFit | None], n_bins: int
) -> LinearSolution:
    """α_i (values) from the data and MC category peaks: solves 2 ln(m_d/m_MC) = β_i + β_j, α = e^β - 1."""
    pd, ed, _, _ = _peak_arrays(pairs, data)
    pm, em, _, _ = _peak_arrays(pairs, mc)
    y = 2.0 * np.log(pd / pm)
    err = 2.0 * np.sqrt((ed / pd) ** 2 + (em / pm) ** 2)
    sol = solve_pairs(pairs, y, err, n_bins, k=1.0)
    alpha = np.expm1(sol.values)
    jac = np.exp(sol.values)
    return LinearSolution(alpha, jac * sol.errors, sol.cov * np.outer(jac, jac), sol.chi2, sol.ndf)


@dataclass
class ConstantTerms:
    """Extra constant term per bin: c² (values, errors) and c = sqrt(max(c², 0)) with its error."""

    c2: np.ndarray
    c2_err: np.ndarray
    c: np.ndarray
    c_err: np.ndarray
    chi2: float
    ndf: int


def constant_terms(
    pairs: list[Pair], data: dict[Pair, PeakFit | None], mc: dict[Pair, PeakFit | None], n_bins: int
) -> ConstantTerms:
    """c_i² from r_data² - r_MC² = (c_i² + c_j²)/4 with r = σ / m_peak of each category."""
    pd, ed, sd, sed = _peak_arrays(pairs, data)
    pm, em, sm, sem = _peak_arrays(pairs, mc)
    rd, rm = sd / pd, sm / pm
    # the peak errors are negligible against the width errors in r
    y = rd**2 - rm**2
    err = np.sqrt((2 * rd * sed / pd) ** 2 + (2 * rm * sem / pm) ** 2)
    sol = solve_pairs(pairs, y, err, n_bins, k=0.25)
    c = np.sqrt(np.clip(sol.values, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        c_err = np.where(c > 0, sol.errors / (2 * c), np.sqrt(sol.errors))
    return ConstantTerms(sol.values, sol.errors, c, c_err, sol.chi2, sol.ndf)


@dataclass
class ScaleResult:
    """Everything :func:`derive_scales` measured. Arrays are per |η| bin (n_bins,)."""

    edges: np.ndarray
    alpha: np.ndarray
    alpha_err: np.ndarray
    chi2: float
    ndf: int
    mc_fits: dict[Pair, PeakFit | None]
    data_fits: dict[Pair, PeakFit | None]  # before correction
    corrected_fits: dict[Pair, PeakFit | None]  # after the final correction
    constant: ConstantTerms | None
    history: list[list[float]] = field(default_factory=list)  # α after each iteration

    def residuals(self) -> list[dict]:
        """Per category: data/MC peak ratio - 1 and relative-width difference, before and after correction."""
        rows = []
        for pair, mc in self.mc_fits.items():
            row = {"bins": list(pair), "n_mc": mc.n if mc else 0}
            for tag, fits in (("before", self.data_fits), ("after", self.corrected_fits)):
                d = fits.get(pair)
                if mc is None or d is None:
                    row.update(
                        {
                            f"dpeak_{tag}": None,
                            f"dpeak_{tag}_err": None,
                            f"drel_sigma_{tag}": None,
                            f"drel_sigma_{tag}_err": None,
                        }
                    )
                    continue
                row[f"n_data_{tag}"] = d.n
                row[f"dpeak_{tag}"] = d.peak / mc.peak - 1.0
                row[f"dpeak_{tag}_err"] = d.peak / mc.peak * math.hypot(d.peak_err / d.peak, mc.peak_err / mc.peak)
                row[f"drel_sigma_{tag}"] = d.sigma / d.peak - mc.sigma / mc.peak
                row[f"drel_sigma_{tag}_err"] = math.hypot(d.sigma_err / d.peak, mc.sigma_err / mc.peak)
            rows.append(row)
        return rows


def derive_scales(
    mc: EventSet, data: EventSet, edges: np.ndarray, cfg: FitConfig, *, iterations: int = 2, min_events: int = 100
) -> ScaleResult:
    """Fit every category in MC and data, solve for α, correct the data, refit (see the module doc).

    ``iterations`` ≥ 1 solves; each later one re-solves on the corrected data and compounds
    (1 + α) factors. The quoted α errors are those of the first solve (the later ones correct
    residuals of order of the non-linearity, and reuse the same events).
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    edges = np.asarray(edges, np.float64)
    n_bins = edges.size - 1
    pairs = all_pairs(n_bins)
    mc_fits = fit_pairs(mc, edges, cfg, None, min_events)
    windows = {p: (f.window if f is not None else None) for p, f in mc_fits.items()}
    data_fits = fit_pairs(data, edges, cfg, windows, min_events)
    alpha = np.zeros(n_bins)
    history, first, fits = [], None, data_fits
    for it in range(iterations):
        sol = scale_factors(pairs, fits, mc_fits, n_bins)
        if first is None:
            first = sol
        alpha = (1.0 + alpha) * (1.0 + np.nan_to_num(sol.values, nan=0.0)) - 1.0
        history.append(alpha.tolist())
        log.info("iteration %d: alpha = %s", it + 1, np.round(alpha, 5).tolist())
        fits = fit_pairs(data.scaled(alpha, edges), edges, cfg, windows, min_events)
    unconstrained = ~np.isfinite(first.values)
    alpha = np.where(unconstrained, np.nan, alpha)
    constant = None
    if cfg.model != "none":
        try:
            constant = constant_terms(pairs, fits, mc_fits, n_bins)
        except ValueError as err:
            log.info("no constant terms: %s", err)
    return ScaleResult(edges, alpha, first.errors, first.chi2, first.ndf, mc_fits, data_fits, fits, constant, history)
