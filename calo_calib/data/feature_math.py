"""Numerical guards and name checks shared by the cell and cluster feature registries.

Ratios of energies use :func:`safe_ratio` (0 below :data:`EPS_E`), logs of energies the floor
:data:`LOG_E_FLOOR`, angle differences :func:`wrap_phi`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# Below this |denominator| (GeV) an energy ratio is set to 0 instead of dividing. Energies are sums of
# noisy cells and can be ~0 or negative; a ratio to ~0 would be an arbitrarily large, meaningless
# input. 1 keV is far below any physical layer energy (single-cell noise is ~10-100 MeV), so the guard
# only fires for empty layers (exactly 0) or pathological cancellations.
EPS_E = 1e-6

# Floor (GeV) under the cell energy before the log in "log_e": cell energies include noise and can be
# negative, so log(E) is undefined for them; every cell below 1 MeV (noise-dominated, far below the
# ~50 MeV noise of a cell) maps to log(1e-3) = -6.9.
LOG_E_FLOOR = 1e-3


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """Wrap angle differences [rad] to (-pi, pi] (computed in float64)."""
    d = np.asarray(dphi, dtype=np.float64)
    return d - 2.0 * np.pi * np.ceil((d - np.pi) / (2.0 * np.pi))


def safe_ratio(num: np.ndarray, den: np.ndarray, eps: float = EPS_E) -> np.ndarray:
    """``num / den`` with 0 where ``|den| < eps`` (see :data:`EPS_E` for why 0)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    ok = np.abs(den) >= eps
    return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


def check_feature_names(names: Sequence[str], registry: Mapping[str, object], kind: str) -> None:
    """Raise ValueError naming any unknown/duplicate ``kind`` feature (and listing the valid names)."""
    if isinstance(names, str):
        raise ValueError(f"{kind} features must be a list of names, got the string {names!r}")
    unknown = [n for n in names if n not in registry]
    if unknown:
        hint = " (truth_* columns are never model inputs)" if any(str(n).startswith("truth_") for n in unknown) else ""
        raise ValueError(f"unknown {kind} feature(s) {unknown}{hint}; valid {kind} features: {sorted(registry)}")
    dup = sorted({n for n in names if list(names).count(n) > 1})
    if dup:
        raise ValueError(f"duplicate {kind} feature(s) {dup}")
