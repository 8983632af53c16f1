"""Di-electron invariant mass from two energies and two directions (massless electrons).

    m² = 2 E1 E2 (1 - cos θ12) = 2 E_T1 E_T2 (cosh Δη - cos Δφ),   E_T = E / cosh η

(the second form is the same quantity, numerically stable for small opening angles). The
directions used by the Z candle are the CLUSTER ones, ``cluster_eta`` / ``cluster_phi`` of
:mod:`calo_calib.io.schema` (energy-weighted middle-layer barycentre, calorimeter frame, i.e. seen
from the nominal interaction point). ATLAS takes the electron direction from its track, which
knows the vertex; the cluster direction ignores the vertex z (σ_z ≈ 40 mm), which adds a small
angular smearing to m_ee (documented in docs/zee.md).
"""

from __future__ import annotations

import numpy as np


def invariant_mass(
    e1: np.ndarray, eta1: np.ndarray, phi1: np.ndarray, e2: np.ndarray, eta2: np.ndarray, phi2: np.ndarray
) -> np.ndarray:
    """(n,) invariant mass [GeV] of two massless particles with energies [GeV] and directions (η, φ [rad]), each (n,)."""
    e1, e2 = np.asarray(e1, np.float64), np.asarray(e2, np.float64)
    eta1, eta2 = np.asarray(eta1, np.float64), np.asarray(eta2, np.float64)
    dphi = np.asarray(phi1, np.float64) - np.asarray(phi2, np.float64)
    et1, et2 = e1 / np.cosh(eta1), e2 / np.cosh(eta2)
    m2 = 2.0 * et1 * et2 * (np.cosh(eta1 - eta2) - np.cos(dphi))
    return np.sqrt(np.clip(m2, 0.0, None))
