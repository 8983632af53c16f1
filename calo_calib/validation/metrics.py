"""Resolution and calibration metrics used by the validation (and reusable elsewhere).

The project's resolution figure of merit is sigma_rel = IQR / (1.349 <E_reco/E_true>): for a Gaussian
the inter-quartile range is 1.349 sigma, so sigma_rel equals sigma/mean there, while being robust
against non-Gaussian tails. The <> is the arithmetic mean of the ratio, as written in the definition.

:func:`iqr`, :func:`sigma_rel`, :func:`median_response` and :func:`bootstrap_error` are the
implementations of :mod:`calo_calib.evaluation.metrics` with the validation's rules: non-finite
entries are dropped (``nonfinite="drop"``), any non-empty sample gives a number (``min_entries=1``;
2 for a bootstrap), inputs of any shape are flattened, and a bootstrap draws one resample at a time
from the generator it is given (the random stream of the validation's published numbers).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from calo_calib.evaluation import metrics as _m
from calo_calib.evaluation.metrics import IQR_TO_SIGMA

__all__ = [
    "IQR_TO_SIGMA",
    "apply_linear_calibration",
    "bootstrap_error",
    "fit_line",
    "fit_linear_calibration",
    "iqr",
    "median_response",
    "pearson",
    "sigma_rel",
]


def _flat(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).ravel()


def iqr(x) -> float:
    """Inter-quartile range q75 - q25 of the finite values of ``x`` (NaN if empty)."""
    return float(_m.iqr(_flat(x), nonfinite="drop", min_entries=1))


def sigma_rel(ratio) -> float:
    """Relative resolution IQR / (1.349 * mean) of a response sample ``ratio`` = E_reco/E_true.

    Non-finite entries are ignored; NaN for an empty sample or a non-positive mean.
    """
    return float(_m.sigma_rel(_flat(ratio), nonfinite="drop", min_entries=1))


def median_response(ratio) -> float:
    """Median of the response ``ratio`` = E_reco/E_true (robust scale estimator; NaN if empty)."""
    return float(_m.median_response(_flat(ratio), nonfinite="drop", min_entries=1))


def bootstrap_error(
    fn: Callable[[np.ndarray], float],
    x,
    n: int = 200,
    rng: np.random.Generator | int | None = None,
) -> float:
    """Standard deviation of ``fn`` over ``n`` bootstrap resamples of ``x`` (along axis 0).

    :func:`calo_calib.evaluation.metrics.bootstrap` with ``nonfinite="drop"`` (non-finite replicates
    are left out), ``min_entries=2`` and one resample per draw.

    Args:
        fn: statistic of a sample (e.g. :func:`sigma_rel`).
        x: the sample; for multi-dimensional input whole rows are resampled.
        n: number of bootstrap replicas.
        rng: a numpy Generator or a seed (default: a fixed seed 0, so results are reproducible).

    Returns:
        The bootstrap standard error (NaN for fewer than 2 entries).
    """
    seed = 0 if rng is None else rng
    return _m.bootstrap(fn, x, n_boot=n, seed=seed, nonfinite="drop", min_entries=2, chunk=1)[1]


def fit_linear_calibration(X, y, intercept: bool = True) -> tuple[np.ndarray, float]:
    """Least-squares linear calibration y ~ sum_i w_i X_i (+ c).

    Typical use: ``X`` = layer energies (PS, L1, L2, L3) of the clusters of one (E, |eta|) bin and
    ``y`` = E_true. Rank-deficient inputs (e.g. an always-zero presampler in the end-cap) are
    handled by the minimum-norm solution (``numpy.linalg.lstsq``).

    Note: in a sample at a *fixed* true energy an intercept makes the fit trivial (w = 0, c = E);
    use ``intercept=False`` there. Without intercept the solution is proportional to
    Cov(X)^-1 <X>-like optimal weights, i.e. the best linear layer weighting (the resolution
    sigma_rel is invariant under its overall scale).

    Returns:
        (weights of shape (n_features,), intercept c; 0.0 when ``intercept=False``).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if X.ndim == 1:
        X = X[:, None]
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
    ok = np.all(np.isfinite(X), axis=1) & np.isfinite(y)
    X, y = X[ok], y[ok]
    A = np.hstack([X, np.ones((X.shape[0], 1))]) if intercept else X
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    if intercept:
        return coef[:-1], float(coef[-1])
    return coef, 0.0


def fit_line(x, y) -> dict[str, float]:
    """Least-squares straight line y = a + b x with the diagnostics the report quotes.

    Returns ``a``, ``b``, their standard errors ``a_err``, ``b_err`` (from the residuals, n − 2
    degrees of freedom), the residual RMS ``rms`` (units of y) and ``r2``, the fraction of the
    variance of y that the line explains. For y = a + b u² pass x = u².
    """
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    A = np.column_stack([np.ones(x.size), x])
    (a, b), *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - (a + b * x)
    cov = np.linalg.inv(A.T @ A) * float(resid @ resid) / max(x.size - 2, 1)
    return {"a": float(a), "b": float(b), "a_err": float(np.sqrt(cov[0, 0])), "b_err": float(np.sqrt(cov[1, 1])),
            "rms": float(np.sqrt(np.mean(resid**2))), "r2": float(1.0 - np.var(resid) / np.var(y))}  # fmt: skip


def apply_linear_calibration(X, weights, c: float = 0.0) -> np.ndarray:
    """E_calib = X @ weights + c (see :func:`fit_linear_calibration`)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    return X @ np.asarray(weights, dtype=np.float64) + c


def pearson(x, y) -> float:
    """Pearson correlation of the jointly finite entries of ``x`` and ``y`` (NaN if degenerate)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])
