"""Middle-layer shower shapes R_η, R_φ and w_η2 around the hottest middle cell (``egammaMiddleShape``).

Definitions and simplifications: :mod:`calo_calib.data.shower_shapes` (module docstring). The
hottest middle cell found here also centres the strip windows (:mod:`calo_calib.data.shower_shapes_strips`).
"""

from __future__ import annotations

import numpy as np

from calo_calib.data.cell_segments import bincount, cell_deta, ratio, seg_argmax, sqrt_pos, wrap
from calo_calib.simulation.geometry import LAYER_L2, N_PHI

BARREL_END = 1.45  # |eta| from which the simulation uses the end-cap geometry (accordion.barrel_end)


def middle_shapes(e, eta, phi, layer, seg, B, cl) -> dict[str, np.ndarray]:
    """R_eta, R_phi, w_eta2 around the hottest middle cell; also its (eta, phi) and the geometry side.

    Cells (N,) sorted by ``seg``; ``cl`` the (B,) cluster columns. Returns (B,) ``r_eta``, ``r_phi``,
    ``w_eta2`` and the private ``_eta_h2``, ``_phi_h2`` (the hottest middle cell, the cluster's
    (η, φ) without one) and ``_endcap`` (bool) for the strip shapes.
    """
    m2 = layer == LAYER_L2
    hot = seg_argmax(e, m2, seg, B)
    has = hot >= 0
    eta_h = np.where(has, eta[np.maximum(hot, 0)], cl["cluster_eta"])
    phi_h = np.where(has, phi[np.maximum(hot, 0)], cl["cluster_phi"])
    endcap = np.abs(eta_h) >= BARREL_END
    deta2 = cell_deta(LAYER_L2, np.abs(eta_h), endcap)
    dphi2 = 2 * np.pi / N_PHI[LAYER_L2]
    idx = np.flatnonzero(m2)
    s, e2 = seg[idx], e[idx]
    d_eta = eta[idx] - eta_h[s]
    di = np.abs(np.rint(d_eta / deta2[s]))
    dj = np.abs(np.rint(wrap(phi[idx] - phi_h[s]) / dphi2))

    def window(ni: int, nj: int, w: np.ndarray) -> np.ndarray:
        return bincount(s, np.where((di <= ni // 2) & (dj <= nj // 2), w, 0.0), B)

    e277 = window(7, 7, e2)
    e237 = window(3, 7, e2)
    e233 = window(3, 3, e2)
    # Two passes (mean, then the spread about it): no cancellation when all cells share one eta.
    s0 = window(3, 5, e2)
    pos = s0 > 0
    den = np.where(pos, s0, 1.0)
    mean = window(3, 5, e2 * d_eta) / den
    dev = d_eta - mean[s]
    w_eta2 = np.where(pos, sqrt_pos(window(3, 5, e2 * dev * dev) / den), 0.0)
    return {
        "r_eta": ratio(e237, e277),
        "r_phi": ratio(e233, e237),
        "w_eta2": w_eta2,
        "_eta_h2": eta_h,
        "_phi_h2": phi_h,
        "_endcap": endcap,
    }
