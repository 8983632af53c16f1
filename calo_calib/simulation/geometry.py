"""Cell geometry of the ATLAS-like EM calorimeter: granularity, layer positions, cell windows.

Granularity per layer and |eta| region is card §1.2 [S1] (IdDictLArCalorimeter.xml); layer radii
and z are the egamma ``CaloDepthTool::egparametrized`` positions of card §1.3 [S2].

Everything here works in the "positive-eta frame": the generator simulates |eta| >= 0 (with the
vertex z drawn in the same frame) and mirrors half of the clusters at the end; the detector is
symmetric, so this is exact and halves the number of code paths.

Simplifications (documented in docs/simulation.md): a cluster uses the barrel geometry when the
impact |eta| < ``barrel_end`` (1.45) and the end-cap geometry otherwise; within a layer, the window
of a cluster uses the granularity of the region at its centre, and cells of a neighbouring
granularity region are not simulated; the strip layer uses 64 phi cells everywhere (the card's
256-phi strip region 1.4 < |eta| < 1.475 is not modelled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_LAYERS = 4
LAYER_PS, LAYER_L1, LAYER_L2, LAYER_L3 = 0, 1, 2, 3
L2_DETA = 0.025
L2_DPHI = 2 * np.pi / 256

# (eta_lo, eta_hi, deta) per layer; phi granularity per layer below.
BARREL_REGIONS: dict[int, list[tuple[float, float, float]]] = {
    LAYER_PS: [(0.0, 1.525, 0.025)],
    LAYER_L1: [(0.003125, 1.4, 0.003125), (1.4, 1.475, 0.025)],
    LAYER_L2: [(0.0, 1.4, 0.025), (1.4, 1.475, 0.075)],
    LAYER_L3: [(0.0, 1.35, 0.05)],
}
ENDCAP_REGIONS: dict[int, list[tuple[float, float, float]]] = {
    LAYER_PS: [(1.5, 1.8, 0.025)],
    LAYER_L1: [
        (1.375, 1.425, 0.05),
        (1.425, 1.5, 0.025),
        (1.5, 1.8, 0.003125),
        (1.8, 2.0, 0.025 / 6),
        (2.0, 2.4, 0.00625),
        (2.4, 2.5, 0.025),
    ],
    LAYER_L2: [(1.375, 1.425, 0.05), (1.425, 2.5, 0.025)],
    LAYER_L3: [(1.5, 2.5, 0.05)],
}
N_PHI = (64, 64, 256, 256)  # cells in 2 pi per layer
ENDCAP_Z = (3600.0, 3760.0, 3880.0, 4150.0)  # |z| of PS, EME1, EME2, EME3 in mm [S2]

# Simulated window around the cluster centre: cells whose centre is within WINDOW_HALF_ETA in eta,
# and a fixed number of phi cells. Large enough for the egamma supercluster window plus the
# neighbours topo-clustering may reach.
WINDOW_HALF_ETA = 0.09
WINDOW_N_ETA = (9, 59, 9, 5)  # max cells in eta per layer (strip granularity sets the L1 size)
WINDOW_N_PHI = (3, 3, 13, 13)


def barrel_radius(layer: int, abs_eta: np.ndarray) -> np.ndarray:
    """Shower-position radius (mm) of a barrel layer at |eta| (CaloDepthTool egparametrized [S2])."""
    a = np.asarray(abs_eta, dtype=np.float64)
    if layer == LAYER_PS:
        return np.full_like(a, 1422.3)
    if layer == LAYER_L1:
        return np.where(a < 0.8, 1567.8 - 18.975 * a - 17.668 * a**2, 1503.2 + 71.716 * a - 41.008 * a**2)
    if layer == LAYER_L2:
        return np.where(a < 0.8, 1697.1 - 15.311 * a - 64.153 * a**2, 1739.1 - 75.648 * a - 18.501 * a**2)
    if layer == LAYER_L3:
        return np.where(a < 0.8, 1833.88 - 106.25 * a, 2038.40 - 286.0 * a)
    raise ValueError(f"unknown layer {layer}")


@dataclass
class LayerWindow:
    """The simulated cells of one layer for a batch of clusters (positive-eta frame).

    Shapes: ``c`` clusters, ``ne`` = WINDOW_N_ETA[layer], ``nph`` = WINDOW_N_PHI[layer].
    """

    layer: int
    eta_lo: np.ndarray  # (c, ne) lower eta edge of each cell column
    deta: np.ndarray  # (c,) eta size of the cells
    phi_lo: np.ndarray  # (c, nph) lower phi edge (absolute, not wrapped: contiguous across the window)
    dphi: float
    valid: np.ndarray  # (c, ne, nph) the cell exists in the detector and lies within the window
    endcap: np.ndarray  # (c,) bool

    @property
    def eta_centre(self) -> np.ndarray:
        return self.eta_lo + 0.5 * self.deta[:, None]

    @property
    def phi_centre(self) -> np.ndarray:
        return self.phi_lo + 0.5 * self.dphi

    def cell_xyz(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cell-centre x, y, z in mm, each (c, ne, nph)."""
        eta = self.eta_centre[:, :, None]
        phi = self.phi_centre[:, None, :]
        r_barrel = barrel_radius(self.layer, np.abs(eta))
        z_ec = ENDCAP_Z[self.layer] * np.sign(np.where(eta == 0, 1.0, eta))
        r_ec = np.abs(ENDCAP_Z[self.layer] / np.sinh(np.where(np.abs(eta) < 1e-3, 1e-3, eta)))
        ec = self.endcap[:, None, None]
        r = np.where(ec, r_ec, r_barrel)
        z = np.where(ec, z_ec, r_barrel * np.sinh(eta))
        x, y = r * np.cos(phi), r * np.sin(phi)
        return x, y, np.broadcast_to(z, x.shape)


def _region_lookup(regions: list[tuple[float, float, float]], abs_eta: np.ndarray):
    """Region (lo, hi, deta) containing each |eta|, clipped into the layer's coverage."""
    los = np.array([r[0] for r in regions])
    his = np.array([r[1] for r in regions])
    detas = np.array([r[2] for r in regions])
    a = np.clip(abs_eta, los[0], his[-1] - 1e-9)
    idx = np.clip(np.searchsorted(his, a, side="right"), 0, len(regions) - 1)
    return los[idx], his[idx], detas[idx]


def layer_window(layer: int, eta_c: np.ndarray, phi_c: np.ndarray, endcap: np.ndarray) -> LayerWindow:
    """Cells of ``layer`` around cluster centres (eta_c, phi_c), positive-eta frame.

    Args:
        layer: 0..3.
        eta_c: (c,) window-centre eta (>= 0 up to small negative values near eta = 0).
        phi_c: (c,) window-centre phi in rad.
        endcap: (c,) bool, the cluster uses the end-cap geometry.
    """
    c = eta_c.shape[0]
    ne, nph = WINDOW_N_ETA[layer], WINDOW_N_PHI[layer]
    lo = np.empty(c)
    hi = np.empty(c)
    deta = np.empty(c)
    for side, regions in ((False, BARREL_REGIONS[layer]), (True, ENDCAP_REGIONS[layer])):
        sel = endcap == side
        if np.any(sel):
            lo[sel], hi[sel], deta[sel] = _region_lookup(regions, np.abs(eta_c[sel]))
    # Column index of the centre cell on the region's grid (the grid continues through eta = 0 by
    # mirror symmetry), then ne columns around it.
    k_c = np.floor((eta_c - lo) / deta)
    offsets = np.arange(ne) - ne // 2
    eta_lo = lo[:, None] + (k_c[:, None] + offsets[None, :]) * deta[:, None]
    eta_hi = eta_lo + deta[:, None]
    # A cell exists if its mirrored |eta| interval lies within the region.
    abs_lo = np.where(eta_lo >= 0, eta_lo, -eta_hi)
    abs_hi = np.where(eta_lo >= 0, eta_hi, -eta_lo)
    tol = 1e-9
    in_region = (abs_lo >= lo[:, None] - tol) & (abs_hi <= hi[:, None] + tol) & (eta_lo * eta_hi >= -tol)
    in_window = np.abs(eta_lo + 0.5 * deta[:, None] - eta_c[:, None]) <= WINDOW_HALF_ETA
    dphi = 2 * np.pi / N_PHI[layer]
    j_c = np.floor((phi_c + np.pi) / dphi)
    phi_offsets = np.arange(nph) - nph // 2
    phi_lo = -np.pi + (j_c[:, None] + phi_offsets[None, :]) * dphi
    valid = np.broadcast_to((in_region & in_window)[:, :, None], (c, ne, nph)).copy()
    return LayerWindow(layer, eta_lo, deta, phi_lo, dphi, valid, endcap.copy())


_TWO_PI = 2 * np.pi


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Wrap angles to [-pi, pi): ``(phi + pi) % (2 pi) - pi``, bit for bit.

    Most angles wrapped here (differences of nearby directions, azimuths already in range) need no
    or a single turn, and the floating-point remainder is the slow part: for float64 arrays with
    phi + pi in [-2 pi, 4 pi) the remainder is fmod (exact) plus 2 pi for a negative value, i.e.
    x + 2 pi for x < 0, x - 2 pi (exact, Sterbenz) for x >= 2 pi, x otherwise; only those few
    elements are touched. Anything else (other dtypes, scalars, wider ranges) takes the remainder.
    """
    x = phi + np.pi
    if isinstance(x, np.ndarray) and x.dtype == np.float64 and x.size and -_TWO_PI <= x.min() and x.max() < 2 * _TWO_PI:
        neg = x < 0.0
        big = x >= _TWO_PI  # both masks before any shift: x + 2 pi may round up to 2 pi, as in fmod + 2 pi
        x[neg] += _TWO_PI
        x[big] -= _TWO_PI
        x -= np.pi
        return x
    return x % _TWO_PI - np.pi
