"""The figure of merit of a calibration and its bootstrap errors (the project's one implementation).

``sigma_rel = IQR / (1.349 * mean(ratio))`` with ``ratio = E_reco / E_true``: for a Gaussian the
inter-quartile range is 1.349 sigma, so sigma_rel is sigma/mean there while staying robust against
the non-Gaussian low tail of e/gamma responses. The mean (not the median) is in the denominator, as
in the definition the project reports; a non-positive mean gives NaN. Quantiles use
``np.percentile``'s linear interpolation.

Two explicit rules, arguments of every function here:

* ``nonfinite``: what a NaN or infinite ratio does. ``"raise"`` (the default, used by the
  evaluation): it is a bug upstream (a NaN prediction, a zero true energy) and raises ``ValueError``
  naming how many there are, since silently dropping them would bias every number. ``"drop"``
  (used by the simulation validation, :mod:`calo_calib.validation.metrics`): they are left out of
  the statistic, and a bootstrap leaves non-finite replicates out of its spread.
* ``min_entries``: a sample with fewer (finite) entries gives NaN, not an exception, so sparsely
  populated bins of a binned table are reported as NaN instead of crashing the evaluation. The
  default is :data:`MIN_ENTRIES` (10); the validation uses 1 (any non-empty sample) for the
  statistics and 2 for the bootstrap.

Statistics accept a 1-D sample (-> float) or a 2-D array ``(k, n)`` of ``k`` samples
(-> array ``(k,)``, computed along the last axis); :func:`bootstrap` uses the 2-D form so that the
resamples are evaluated in vectorised chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

IQR_TO_SIGMA = 1.349
"""IQR / sigma of a Gaussian (2 * 0.6745 = 1.34898)."""

MIN_ENTRIES = 10
"""Samples with fewer entries give NaN statistics (quartiles of < 10 values mean little)."""

BOOTSTRAP_CHUNK_ELEMENTS = 4_000_000
"""Resampled values held in memory at once by :func:`bootstrap_stats` (4e6 float64 = 32 MB)."""

StatFn = Callable[[np.ndarray], "float | np.ndarray"]

NonFinite = Literal["raise", "drop"]
"""The non-finite policy (module docstring): ``"raise"`` a ValueError, or ``"drop"`` the entries."""


def check_ratio(ratio: np.ndarray | Sequence[float], name: str = "ratio") -> np.ndarray:
    """``ratio`` as a float64 array (1-D or 2-D), raising if any entry is NaN or infinite.

    Raises:
        ValueError: naming ``name`` and the number of non-finite entries.
    """
    x = np.asarray(ratio, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise ValueError(f"{name}: expected a 1-D sample or a 2-D stack of samples, got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(f"{name}: {int(bad.sum())} of {x.size} entries are NaN or infinite")
    return x


def _sample(ratio: np.ndarray | Sequence[float], nonfinite: NonFinite) -> np.ndarray:
    """``ratio`` as a float64 array (1-D or 2-D) under the ``nonfinite`` policy (not yet dropped)."""
    if nonfinite == "raise":
        return check_ratio(ratio)
    if nonfinite != "drop":
        raise ValueError(f"nonfinite must be 'raise' or 'drop', got {nonfinite!r}")
    x = np.asarray(ratio, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise ValueError(f"ratio: expected a 1-D sample or a 2-D stack of samples, got shape {x.shape}")
    return x


def _scalar_or_rows(values: np.ndarray, ndim: int) -> float | np.ndarray:
    return float(values) if ndim == 1 else values


def _statistic(kernel: Callable[[np.ndarray], np.ndarray], ratio, nonfinite: NonFinite, min_entries: int):
    """``kernel`` (computed along the last axis of finite samples) under the two rules of the module."""
    x = _sample(ratio, nonfinite)
    if nonfinite == "drop":
        if x.ndim == 2:  # rows keep different numbers of entries: one at a time
            return np.array([_statistic(kernel, row, "drop", min_entries) for row in x], dtype=np.float64)
        x = x[np.isfinite(x)]
    if x.shape[-1] < max(1, min_entries):
        return _scalar_or_rows(np.full(x.shape[:-1], np.nan), x.ndim)
    return _scalar_or_rows(np.asarray(kernel(x), dtype=np.float64), x.ndim)


def _iqr_kernel(x: np.ndarray) -> np.ndarray:
    q25, q75 = np.percentile(x, [25.0, 75.0], axis=-1)
    return q75 - q25


def _sigma_rel_kernel(x: np.ndarray) -> np.ndarray:
    return _relative(_iqr_kernel(x), x.mean(axis=-1))


def _relative(iqr_values: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """IQR / (1.349 * mean); NaN where the mean is not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean > 0, iqr_values / (IQR_TO_SIGMA * mean), np.nan)


def _median_kernel(x: np.ndarray) -> np.ndarray:
    return np.median(x, axis=-1)


def iqr(ratio: np.ndarray, *, nonfinite: NonFinite = "raise", min_entries: int = MIN_ENTRIES) -> float | np.ndarray:
    """Inter-quartile range q75 - q25 of ``ratio`` (linear percentiles). Shapes and rules as :func:`sigma_rel`."""
    return _statistic(_iqr_kernel, ratio, nonfinite, min_entries)


def sigma_rel(
    ratio: np.ndarray, *, nonfinite: NonFinite = "raise", min_entries: int = MIN_ENTRIES
) -> float | np.ndarray:
    """Relative resolution IQR / (1.349 * mean) of ``ratio`` = E_reco / E_true.

    Args:
        ratio: (n,) one sample, or (k, n) k samples (statistic along the last axis).
        nonfinite: ``"raise"`` on a NaN/infinite ratio, or ``"drop"`` such entries (module docstring).
        min_entries: fewer (finite) entries than this give NaN.

    Returns:
        A float for a 1-D sample, an array (k,) for 2-D input; NaN where n < ``min_entries`` or the
        mean is not positive.

    Raises:
        ValueError: with ``nonfinite="raise"``, if any ratio is NaN or infinite.
    """
    return _statistic(_sigma_rel_kernel, ratio, nonfinite, min_entries)


def median_response(
    ratio: np.ndarray, *, nonfinite: NonFinite = "raise", min_entries: int = MIN_ENTRIES
) -> float | np.ndarray:
    """Median of ``ratio`` = E_reco / E_true (the response; 1 for a perfect calibration).

    Same shapes, rules and errors as :func:`sigma_rel`.
    """
    return _statistic(_median_kernel, ratio, nonfinite, min_entries)


def _apply_rows(stat_fn: StatFn, samples: np.ndarray) -> np.ndarray:
    """``stat_fn`` on each row of ``samples`` (k, n) -> (k,): vectorised if the function supports
    2-D input, else row by row (a loop over bootstrap replicates, not over entries). A single row,
    or rows that are not 1-D samples, are always passed one at a time."""
    if samples.ndim == 2 and samples.shape[0] > 1:
        try:
            out = np.asarray(stat_fn(samples), dtype=np.float64)
            if out.shape == samples.shape[:1]:
                return out
        except (TypeError, ValueError, IndexError):
            pass
    return np.array([float(stat_fn(row)) for row in samples], dtype=np.float64)


def _quantile_bootstrap(x: np.ndarray, stat_fns: Sequence[StatFn], idx_chunks) -> np.ndarray:
    """Bootstrap distributions of :func:`sigma_rel` / :func:`median_response`, (m, s, n_boot), fast.

    Exactly what evaluating the functions on ``x[:, idx]`` gives (up to rounding), without sorting
    any resample: each method's sample is sorted once; a resample is its count vector over the
    original entries (shared by all methods), and the k-th smallest resampled value is the sorted
    value where the cumulative count first exceeds k. Quantiles use np.percentile's linear rule.
    """
    m, n = x.shape
    order = np.argsort(x, axis=1, kind="stable")
    xs = np.take_along_axis(x, order, axis=1)
    q = np.array([0.25, 0.5, 0.75])
    h = (n - 1) * q  # np.percentile's "linear" virtual index
    lo = np.floor(h).astype(np.int64)
    frac = h - lo
    ranks = np.stack([lo, np.minimum(lo + 1, n - 1)], axis=1).ravel()  # (6,) ranks needed
    out = []
    for idx in idx_chunks:
        k = idx.shape[0]
        offsets = np.arange(k, dtype=np.int64)[:, None] * n
        counts = np.bincount((idx + offsets).ravel(), minlength=k * n).reshape(k, n)
        means = (counts.astype(np.float64) @ x.T) / n  # (k, m): resample means of every method at once
        counts = counts.astype(np.int32)  # halves the memory traffic of the per-method passes below
        res = np.empty((m, len(stat_fns), k))
        for j in range(m):
            c = counts[:, order[j]]  # counts in method j's sorted order
            cum = np.cumsum(c, axis=1, dtype=np.int32)
            # the k-th smallest resampled value sits where the cumulative count first exceeds k
            pos = np.stack([np.searchsorted(row, ranks, side="right") for row in cum])
            vals = xs[j][pos].reshape(k, 3, 2)
            quant = vals[:, :, 0] + frac * (vals[:, :, 1] - vals[:, :, 0])
            mean = means[:, j]
            for t, fn in enumerate(stat_fns):
                res[j, t] = _relative(quant[:, 2] - quant[:, 0], mean) if fn is sigma_rel else quant[:, 1]
        out.append(res)
    return np.concatenate(out, axis=-1)


def _spread(boots: np.ndarray, nonfinite: NonFinite) -> np.ndarray:
    """Std (ddof = 1) of bootstrap distributions (..., n_boot); ``"drop"`` leaves non-finite replicates
    out (NaN with fewer than 2 left)."""
    if nonfinite == "raise":
        return boots.std(axis=-1, ddof=1)
    out = np.full(boots.shape[:-1], np.nan)
    for i in np.ndindex(*boots.shape[:-1]):
        b = boots[i][np.isfinite(boots[i])]
        if b.size > 1:
            out[i] = b.std(ddof=1)
    return out


def bootstrap_stats(
    ratios: np.ndarray,
    stat_fns: Sequence[StatFn],
    n_boot: int = 200,
    seed: int | Sequence[int] | np.random.Generator = 0,
    *,
    nonfinite: NonFinite = "raise",
    min_entries: int = MIN_ENTRIES,
    chunk: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Values and bootstrap errors of several statistics of several paired samples.

    All samples (rows of ``ratios``, e.g. one per calibration method on the same clusters) and all
    statistics share the same resampled indices, so differences between methods are not blurred by
    independent resampling noise. The resample-index matrix is drawn in chunks of at most
    :data:`BOOTSTRAP_CHUNK_ELEMENTS` values to bound memory. :func:`sigma_rel` and
    :func:`median_response` (with their defaults) take a fast path (counts instead of sorting each
    resample, :func:`_quantile_bootstrap`); any other statistic is evaluated on the resampled values.

    Args:
        ratios: (m, n) m samples of n entries each (E_reco / E_true); a 1-D (n,) array counts as m = 1.
            With ``nonfinite="drop"`` a sample may also be (m, n, ...): its n rows are resampled.
        stat_fns: s statistics, e.g. ``[sigma_rel, median_response]``.
        n_boot: number of bootstrap resamples (0 gives NaN errors).
        seed: seed (or seed sequence) of the resampling generator, or the generator itself (whose
            state then advances).
        nonfinite: ``"raise"`` on any NaN/infinite ratio; ``"drop"``: the samples are resampled as
            they are (the statistics are expected to leave non-finite entries out, as
            ``sigma_rel(..., nonfinite="drop")`` does), their dtype is kept, and non-finite
            replicate values are left out of the errors.
        min_entries: with fewer entries n everything is NaN (and no random number is drawn).
        chunk: resamples drawn per call of the generator (the random stream depends on it); default
            as many as :data:`BOOTSTRAP_CHUNK_ELEMENTS` allow. The validation draws one at a time.

    Returns:
        ``(values, errors)``, both (m, s): the statistics of the full samples and the standard
        deviation (ddof = 1) of their bootstrap distributions. NaN everywhere when n < ``min_entries``.

    Raises:
        ValueError: if any ratio is NaN or infinite (``nonfinite="raise"``), or ``n_boot`` is negative.
    """
    if nonfinite == "raise":
        x = check_ratio(np.atleast_2d(np.asarray(ratios, dtype=np.float64)))
    elif nonfinite == "drop":
        x = np.asarray(ratios)
        x = x[None] if x.ndim == 1 else x
    else:
        raise ValueError(f"nonfinite must be 'raise' or 'drop', got {nonfinite!r}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    m, n = x.shape[:2]
    s = len(stat_fns)
    values = np.full((m, s), np.nan)
    errors = np.full((m, s), np.nan)
    if n < min_entries:
        return values, errors
    for j, fn in enumerate(stat_fns):
        values[:, j] = _apply_rows(fn, x)
    if n_boot < 2:
        return values, errors
    rng = np.random.default_rng(seed)
    if chunk is None:
        chunk = max(1, BOOTSTRAP_CHUNK_ELEMENTS // (m * n))
    idx_chunks = (rng.integers(0, n, size=(min(chunk, n_boot - start), n)) for start in range(0, n_boot, chunk))
    if nonfinite == "raise" and all(fn is sigma_rel or fn is median_response for fn in stat_fns):
        boots = _quantile_bootstrap(x, stat_fns, idx_chunks)
    else:
        parts = []
        for idx in idx_chunks:
            resampled = x[:, idx].reshape(m * idx.shape[0], *x.shape[1:])  # (m, k, n) -> rows of (method, replicate)
            parts.append(np.stack([_apply_rows(fn, resampled).reshape(m, -1) for fn in stat_fns], axis=1))
        boots = np.concatenate(parts, axis=-1)
    errors[:] = _spread(boots, nonfinite)
    return values, errors


def bootstrap(
    stat_fn: StatFn,
    ratio: np.ndarray,
    n_boot: int = 200,
    seed: int | Sequence[int] | np.random.Generator = 0,
    *,
    nonfinite: NonFinite = "raise",
    min_entries: int = MIN_ENTRIES,
    chunk: int | None = None,
) -> tuple[float, float]:
    """A statistic of ``ratio`` (n,) and its bootstrap error (std of ``n_boot`` resamples).

    ``nonfinite``, ``min_entries``, ``chunk`` and ``seed`` as in :func:`bootstrap_stats` (with
    ``"drop"``, ``ratio`` may be (n, ...): its rows are resampled).

    Returns:
        ``(value, error)``; ``(nan, nan)`` when n < ``min_entries``, error NaN when ``n_boot < 2``.

    Raises:
        ValueError: if any ratio is NaN or infinite (``nonfinite="raise"``).
    """
    x = np.asarray(ratio) if nonfinite == "drop" else np.asarray(ratio, dtype=np.float64)
    if x.ndim != 1 and not (nonfinite == "drop" and x.ndim > 1):
        raise ValueError(f"ratio: expected a 1-D sample, got shape {x.shape}")
    values, errors = bootstrap_stats(
        x[None], [stat_fn], n_boot=n_boot, seed=seed, nonfinite=nonfinite, min_entries=min_entries, chunk=chunk
    )
    return float(values[0, 0]), float(errors[0, 0])
