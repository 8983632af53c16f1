"""Streaming means and standard deviations (the project's one implementation).

:class:`StreamingMoments` accumulates per-column counts, means and sums of squared deviations batch
by batch, merging each batch with Chan et al.'s pairwise formula in float64. Unlike summing x and x^2,
this has no catastrophic cancellation for large offsets (z ~ 3000 mm with a spread of a few mm).

Used by the networks' normalisation statistics (:mod:`calo_calib.data.normalization`, values outside
robust bounds left out, std floor 1e-6) and by the SALT HDF5 writer's norm dict
(:mod:`calo_calib.io.salt_h5`, non-finite values left out, only an exactly zero std replaced). The
std floor is an explicit argument: a std below it, a NaN std and a column without values get std 1
(the scikit-learn StandardScaler convention: dividing by ~0 would give inf, and with std 1 a constant
feature normalises to ``x - mean`` = 0).
"""

from __future__ import annotations

import math

import numpy as np

EXACT_ZERO_FLOOR = math.ulp(0.0)
"""The smallest positive double: as ``std_floor``, only a std of exactly 0 is replaced by 1."""


class StreamingMoments:
    """Per-column count, mean and sum of squared deviations of a stream of batches (float64).

    Args:
        n_features: number of columns F.
        std_floor: :meth:`std` replaces a standard deviation that is not ``>= std_floor`` (smaller,
            or NaN) by 1, as it does for a column without values (module docstring).

    Attributes:
        rows: rows seen, values left out included.
        n, mean, m2: (F,) count of the values that entered, their mean and sum of squared deviations.
    """

    def __init__(self, n_features: int = 1, std_floor: float = EXACT_ZERO_FLOOR) -> None:
        self.std_floor = float(std_floor)
        self.rows = 0
        self.n = np.zeros(n_features)
        self.mean = np.zeros(n_features)
        self.m2 = np.zeros(n_features)

    def update(self, x: np.ndarray, valid: np.ndarray | None = None) -> int:
        """Add a batch; returns the number of values left out.

        Args:
            x: (n,) values of a single column, or (n, F) rows (any (n, ...) is reshaped to (n, F)).
            valid: boolean mask of the values that count, shaped like ``x`` (None: all of them).
                A 1-D batch sums exactly its valid values; a 2-D one sums each column with the
                left-out values set to 0.
        """
        x = np.asarray(x, dtype=np.float64)
        if len(x) == 0:
            return 0
        self.rows += len(x)
        if x.ndim == 1:
            v = x if valid is None else x[np.asarray(valid, dtype=bool)]
            if v.size == 0:
                return len(x)
            nb = np.array([float(v.size)])
            mb = np.array([v.mean()])
            m2b = np.array([((v - mb[0]) ** 2).sum()])
            left_out = len(x) - v.size
        else:
            x = x.reshape(len(x), -1)
            ok = np.ones(x.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool).reshape(x.shape)
            nb = ok.sum(0).astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                mb = np.where(nb > 0, np.where(ok, x, 0.0).sum(0) / np.maximum(nb, 1), 0.0)
                m2b = np.where(ok, (x - mb) ** 2, 0.0).sum(0)
            left_out = int(ok.size - ok.sum())
        self._merge(nb, mb, m2b)
        return left_out

    def _merge(self, nb: np.ndarray, mb: np.ndarray, m2b: np.ndarray) -> None:
        """Chan et al.: combine the accumulated (n, mean, m2) with a batch's (nb, mb, m2b)."""
        n = self.n + nb
        safe = np.maximum(n, 1)
        delta = mb - self.mean
        self.mean = np.where(n > 0, self.mean + delta * nb / safe, 0.0)
        self.m2 = np.where(n > 0, self.m2 + m2b + delta**2 * self.n * nb / safe, 0.0)
        self.n = n

    def std(self) -> np.ndarray:
        """(F,) population standard deviations (ddof = 0), floored (class docstring)."""
        std = np.sqrt(self.m2 / np.maximum(self.n, 1))
        return np.where(~(std >= self.std_floor) | (self.n == 0), 1.0, std)
