"""4-2-0 topo-clustering and the egamma supercluster window (card §4.3, [S14][S15]).

Runs on the simulated window of every cluster in a batch at once. Neighbours are "super3D"-like:
the 8 surrounding cells in the same layer, and cells of the adjacent layer whose (eta, phi)
rectangles overlap. Cuts are on |E| / sigma_tot (SeedCutsInAbsE).

Simplifications (docs/simulation.md): no cluster splitting; all topo-clusters whose seed lies in a
satellite window around the hottest middle cell are merged (5x5 middle cells, wider in phi for
electrons, standing in for the Run-2 brem satellites); the supercluster then keeps cells within
+-3/2 (barrel) or +-5/2 (end-cap) middle cells in eta of the hottest middle cell, with no phi
restriction in the middle and back layers, and presampler/strip cells within the middle layer's
phi extent +-1 middle cell.
"""

from __future__ import annotations

import numpy as np

from calo_calib.simulation.geometry import L2_DETA, L2_DPHI, LAYER_L2, N_LAYERS, LayerWindow


def _dilate(mask: np.ndarray) -> np.ndarray:
    """Cells touching (8-neighbourhood, itself included) any True cell; mask (c, ne, nph).

    The 3x3 box dilation is separable: dilate along eta, then along phi.
    """
    rows = mask.copy()
    rows[:, 1:] |= mask[:, :-1]
    rows[:, :-1] |= mask[:, 1:]
    # Along phi as shifts of the flat array by one cell (numpy's loops over rows of 3 or 13 cells
    # are slow), dropping what would cross from one eta row into the next.
    not_first = _not_first_in_row(mask.shape)
    f = rows.reshape(-1)
    out = f.copy()
    out[1:] |= f[:-1] & not_first[1:]
    out[:-1] |= f[1:] & not_first[1:]  # cell i gets i + 1 unless i + 1 starts a new row
    return out.reshape(mask.shape)


def _not_first_in_row(shape: tuple[int, ...]) -> np.ndarray:
    """Flat bool mask of the cells of a C-contiguous array of ``shape`` that are not first in their
    last-axis row. The pattern repeats every row, so one array per row shape (the last two axes),
    grown as needed, serves every number of clusters (the growth passes shrink it) as a prefix."""
    key = shape[1:]
    size = int(np.prod(shape))
    have = _NOT_FIRST.get(key)
    if have is None or have.size < size:
        first = np.zeros(shape[-1], bool)
        first[0] = True
        n_rows = max(size, 2 * (have.size if have is not None else 0)) // shape[-1]
        _NOT_FIRST[key] = have = ~np.tile(first, n_rows)
    return have[:size]


_NOT_FIRST: dict[tuple[int, ...], np.ndarray] = {}


def _overlaps(a: LayerWindow, b: LayerWindow) -> tuple[np.ndarray, np.ndarray]:
    """(c, neA, neB) eta-overlap and (c, nphA, nphB) phi-overlap matrices (float32 0/1)."""
    eps = 1e-7
    a_lo, b_lo = a.eta_lo, b.eta_lo
    a_hi, b_hi = a_lo + a.deta[:, None], b_lo + b.deta[:, None]
    eta = (a_lo[:, :, None] < b_hi[:, None, :] - eps) & (b_lo[:, None, :] < a_hi[:, :, None] - eps)
    pa_lo, pb_lo = a.phi_lo, b.phi_lo
    pa_hi, pb_hi = pa_lo + a.dphi, pb_lo + b.dphi
    phi = (pa_lo[:, :, None] < pb_hi[:, None, :] - eps) & (pb_lo[:, None, :] < pa_hi[:, :, None] - eps)
    return eta.astype(np.float32), phi.astype(np.float32)


def _spread(mask: np.ndarray, eta_ov: np.ndarray, phi_ov: np.ndarray) -> np.ndarray:
    """Cells of layer B overlapping any True cell of layer A; mask (c, neA, nphA) -> (c, neB, nphB).

    ``eta_ov`` is (c, neB, neA) and ``phi_ov`` (c, nphA, nphB), float32 0/1.
    """
    t = np.matmul(eta_ov, mask.astype(np.float32))  # (c, neB, nphA)
    return np.matmul(t, phi_ov) > 0.5  # (c, neB, nphB)


def topo_egamma_cluster(
    energy: list[np.ndarray],
    sigma: list[np.ndarray],
    windows: list[LayerWindow],
    is_electron: np.ndarray,
    cfg,
) -> list[np.ndarray]:
    """Select the cells of each cluster.

    Args:
        energy: per layer (c, ne, nph) cell energies (GeV, noise included).
        sigma: per layer (c, ne, nph) total noise sigma used for the thresholds (GeV).
        windows: per layer the simulated cells.
        is_electron: (c,) bool, electrons get the wider phi satellite window.
        cfg: the ``detector.clustering`` node.
    Returns:
        Per layer a (c, ne, nph) bool mask of the cells in the final cluster.
    """
    valid = [w.valid for w in windows]
    sig = [np.abs(e) / np.maximum(s, 1e-9) for e, s in zip(energy, sigma)]
    grow_ok = [v & (s > float(cfg.grow_sigma)) for v, s in zip(valid, sig)]
    boundary_ok = [v & (s >= float(cfg.boundary_sigma)) for v, s in zip(valid, sig)]

    # Hottest middle-layer cell: centre of the satellite and supercluster windows.
    e2 = np.where(valid[LAYER_L2], energy[LAYER_L2], -np.inf)
    c, ne2, nph2 = e2.shape
    flat = np.argmax(e2.reshape(c, -1), axis=1)
    i_h, j_h = np.divmod(flat, nph2)
    rows = np.arange(c)
    w2 = windows[LAYER_L2]
    eta_h = w2.eta_centre[rows, i_h]
    eta_h_lo = w2.eta_lo[rows, i_h]
    eta_h_hi = eta_h_lo + w2.deta
    phi_h = w2.phi_centre[rows, j_h]

    half_phi_seed = np.where(is_electron, float(cfg.seed_window_phi_electron), float(cfg.seed_window_phi))
    half_eta_seed = float(cfg.seed_window_eta)
    seeds = []
    for w, v, s in zip(windows, valid, sig):
        in_eta = np.abs(w.eta_centre - eta_h[:, None]) <= (half_eta_seed + 0.5) * L2_DETA
        in_phi = np.abs(w.phi_centre - phi_h[:, None]) <= (half_phi_seed[:, None] + 0.5) * L2_DPHI
        seeds.append(v & (s > float(cfg.seed_sigma)) & in_eta[:, :, None] & in_phi[:, None, :])

    # Cross-layer overlap matrices in both directions.
    overlaps = {}
    for a in range(N_LAYERS - 1):
        eta_ov, phi_ov = _overlaps(windows[a], windows[a + 1])
        overlaps[(a, a + 1)] = (
            np.ascontiguousarray(np.swapaxes(eta_ov, 1, 2)),
            phi_ov,
            eta_ov,
            np.ascontiguousarray(np.swapaxes(phi_ov, 1, 2)),
        )

    def neighbours(mask: list[np.ndarray], rows: np.ndarray | None = None) -> list[np.ndarray]:
        """Neighbours of the True cells; ``rows`` restricts the work to some clusters."""
        out = [_dilate(m) for m in mask]
        for (a, b), ovs in overlaps.items():
            eta_ab, phi_ab, eta_ba, phi_ba = ovs if rows is None else (o[rows] for o in ovs)
            out[b] |= _spread(mask[a], eta_ab, phi_ab)
            out[a] |= _spread(mask[b], eta_ba, phi_ba)
        return out

    # Grow from the seeds through cells above the growth threshold. Only clusters that still
    # changed in the last pass are processed, so the cost follows the slowest few clusters only.
    reached = [s.copy() for s in seeds]
    active = np.arange(reached[0].shape[0])
    for _ in range(256):
        sub = [r[active] for r in reached]
        nb = neighbours(sub, active)
        new = [r | (n & g[active]) for r, n, g in zip(sub, nb, grow_ok)]
        changed = np.zeros(active.shape[0], bool)
        for r, nw in zip(sub, new):
            changed |= (r != nw).any(axis=(1, 2))
        for layer in range(N_LAYERS):
            reached[layer][active] = new[layer]
        active = active[changed]
        if active.size == 0:
            break
    nb = neighbours(reached)
    topo = [r | (n & b) for r, n, b in zip(reached, nb, boundary_ok)]

    return _supercluster_window(topo, windows, eta_h_lo, eta_h_hi, cfg)


def _supercluster_window(
    topo: list[np.ndarray], windows: list[LayerWindow], eta_h_lo: np.ndarray, eta_h_hi: np.ndarray, cfg
) -> list[np.ndarray]:
    """The egamma supercluster cells of the merged topo-clusters ``topo`` (per layer (c, ne, nph) bool).

    L2/L3 cells within +-eg_half_eta middle cells in eta of the hottest middle cell (whose lower and
    upper eta edges are ``eta_h_lo``, ``eta_h_hi`` (c,)), presampler and strip cells within the middle
    layer's phi extent +- ``ps_l1_extra_phi`` cells; a cluster without middle-layer cells is dropped.
    """
    w2 = windows[LAYER_L2]
    # egamma supercluster window
    half_eta = np.where(windows[LAYER_L2].endcap, float(cfg.eg_half_eta_endcap), float(cfg.eg_half_eta_barrel))
    eta_min = eta_h_lo - half_eta * L2_DETA
    eta_max = eta_h_hi + half_eta * L2_DETA
    final = []
    for w, t in zip(windows, topo):
        centre = w.eta_centre
        in_eta = (centre > eta_min[:, None]) & (centre < eta_max[:, None])
        final.append(t & in_eta[:, :, None])
    # Presampler and strip cells within the middle layer's phi extent +- extra cells.
    sel2 = final[LAYER_L2]
    has2 = sel2.any(axis=(1, 2))
    phi_cols = sel2.any(axis=1)  # (c, nph2)
    big = 1e9
    phi_lo2 = np.where(phi_cols, w2.phi_lo, big).min(axis=1)
    phi_hi2 = np.where(phi_cols, w2.phi_lo + w2.dphi, -big).max(axis=1)
    extra = float(cfg.ps_l1_extra_phi) * L2_DPHI
    for layer in (0, 1):
        w = windows[layer]
        ov = (w.phi_lo < (phi_hi2 + extra - 1e-7)[:, None]) & ((w.phi_lo + w.dphi) > (phi_lo2 - extra + 1e-7)[:, None])
        final[layer] = final[layer] & ov[:, None, :]
    # A cluster without middle-layer cells is no egamma cluster.
    return [f & has2[:, None, None] for f in final]
