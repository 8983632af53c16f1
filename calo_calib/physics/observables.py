"""Reusable cluster observables computed from layer energies (ATLAS egamma definitions).

* :func:`layer_depths`: mean depth X_i (in X0, counted from the interaction point) of each sampling
  (PS, L1, L2, L3) at a given |eta|, linearly interpolated in the ``samplings_depths`` table of
  ``CaloSwCalibHitsCalibration_v9.py`` [S4] (detector card §1.4(b));
* :func:`shower_depth`: the MVA shower-depth variable X = sum_i X_i E_i / sum_i E_i
  (``egammaMVAFunctions::compute_calibHitsShowerDepth`` [S9], which includes the presampler),
  with X_i from :func:`layer_depths`.
"""

from __future__ import annotations

import numpy as np

# Card §1.4(b), [S4]: |eta|, then mean depth in X0 of PS, L1 (strips), L2 (middle), L3 (back).
# The card reproduces a subset of the table's rows (the source has rows every 0.025 in the end-cap);
# between rows we interpolate linearly. The end-cap rows have no presampler (depth 0: any PS energy
# there would pull the depth to 0, as in the source). The 0.7875 -> 0.8125 L3 step is the thick/thin
# lead transition.
S4_LAYER_DEPTHS: np.ndarray = np.array(
    [
        [0.0125, 1.60, 3.80, 14.00, 22.87],
        [0.2625, 1.66, 3.83, 14.38, 23.66],
        [0.5125, 1.81, 3.91, 15.50, 25.96],
        [0.7875, 2.12, 4.06, 15.50, 28.24],
        [0.8125, 2.16, 4.08, 15.50, 25.43],
        [1.0125, 2.49, 4.25, 15.50, 27.44],
        [1.2125, 2.93, 4.46, 15.50, 30.04],
        [1.4125, 3.48, 4.74, 15.50, 33.35],
        [1.5625, 0.00, 8.86, 19.52, 30.04],
        [1.6375, 0.00, 7.04, 17.73, 28.40],
        [1.8375, 0.00, 5.72, 16.45, 27.88],
        [2.0125, 0.00, 5.33, 16.82, 29.06],
        [2.2125, 0.00, 5.47, 17.19, 30.58],
        [2.4875, 0.00, 4.72, 16.41, 33.03],
    ]
)
"""[S4] ``samplings_depths``: columns |eta|, X_PS, X_L1, X_L2, X_L3 (X0 from the IP)."""


def layer_depths(abs_eta) -> np.ndarray:
    """Mean depth (X0) of the four samplings at each |eta| [S4], shape ``abs_eta.shape + (4,)``.

    Linear interpolation in |eta| between the table rows, constant beyond the first/last row.
    Between 1.4125 (last barrel row) and 1.5625 (first end-cap row) the interpolation crosses the
    barrel/end-cap transition; values there (crack) are only indicative.
    """
    a = np.abs(np.asarray(abs_eta, dtype=np.float64))
    grid = S4_LAYER_DEPTHS[:, 0]
    return np.stack([np.interp(a, grid, S4_LAYER_DEPTHS[:, k]) for k in range(1, 5)], axis=-1)


def shower_depth(e_layers, abs_eta) -> np.ndarray:
    """Shower depth X = sum_i X_i E_i / sum_i E_i in X0 (ATLAS ``calibHitsShowerDepth`` [S9]).

    Args:
        e_layers: layer energies, shape ``(..., 4)`` ordered (PS, L1, L2, L3); any energy unit.
        abs_eta: |eta| of the cluster, broadcastable to ``e_layers.shape[:-1]``.

    Returns:
        The depth in X0 for each cluster; 0 where the energy sum is 0 (as in the ATLAS code) and NaN
        never. Negative layer energies (noise) are used as they are, like ATLAS does.
    """
    e = np.asarray(e_layers, dtype=np.float64)
    if e.shape[-1] != 4:
        raise ValueError(f"e_layers must have a last axis of 4 (PS, L1, L2, L3), got shape {e.shape}")
    x = layer_depths(np.broadcast_to(np.asarray(abs_eta, dtype=np.float64), e.shape[:-1]))
    den = e.sum(axis=-1)
    num = (x * e).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den != 0, num / np.where(den != 0, den, 1.0), 0.0)
    return out
