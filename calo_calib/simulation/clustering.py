"""4-2-0 topo-clustering (card §4.3, [S14]): the labelled topo-clusters of every window in a batch.

Runs on the simulated window of every cluster in a batch at once. Neighbours are "super3D"-like:
the 8 surrounding cells in the same layer, and cells of the adjacent layer whose (eta, phi)
rectangles overlap. Cuts are on |E| / sigma_tot (SeedCutsInAbsE). A topo-cluster is a connected
set of cells above the growth threshold holding at least one seed cell; the cells above the
boundary threshold that touch it are its perimeter. The egamma supercluster built from these
topo-clusters (seed, satellites, window) is in :mod:`calo_calib.simulation.supercluster`.

Simplification (docs/simulation.md): no cluster splitting (no local-maximum splitter), as in
egamma's topo-cluster input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from calo_calib.simulation.geometry import N_LAYERS, LayerWindow


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


@dataclass
class TopoClusters:
    """The labelled topo-clusters of a batch of windows (k topo-clusters in all).

    ``labels`` per layer (c, ne, nph) int64: the topo-cluster of each growth cell (cells above the
    growth threshold connected to a seed), -1 elsewhere; perimeter cells are not labelled (they are
    added to the merged supercluster by :meth:`with_perimeter`). ``row`` (k,) the window (batch row)
    of each topo-cluster; ``e`` (k,) [GeV] the energy of its growth cells; ``eta``, ``phi`` (k,) their
    |E|-weighted barycentre over all layers (positive-eta frame; phi absolute, contiguous with the
    window's cells).
    """

    labels: list[np.ndarray]
    row: np.ndarray
    e: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    boundary_ok: list[np.ndarray]
    overlaps: dict

    def with_perimeter(self, core: list[np.ndarray]) -> list[np.ndarray]:
        """``core`` (per layer (c, ne, nph) bool growth cells of merged topo-clusters) plus their
        perimeter: the touching cells above the boundary threshold."""
        nb = _neighbours(core, self.overlaps)
        return [m | (n & b) for m, n, b in zip(core, nb, self.boundary_ok)]


def topo_clusters(
    energy: list[np.ndarray], sigma: list[np.ndarray], windows: list[LayerWindow], cfg
) -> TopoClusters:
    """Label the 4-2-0 topo-clusters of every window.

    Args:
        energy: per layer (c, ne, nph) cell energies (GeV, noise included).
        sigma: per layer (c, ne, nph) total noise sigma used for the thresholds (GeV).
        windows: per layer the simulated cells.
        cfg: the ``detector.clustering`` node (``seed_sigma``, ``grow_sigma``, ``boundary_sigma``).
    """
    valid = [w.valid for w in windows]
    sig = [np.abs(e) / np.maximum(s, 1e-9) for e, s in zip(energy, sigma)]
    grow = [v & (s > float(cfg.grow_sigma)) for v, s in zip(valid, sig)]
    boundary_ok = [v & (s >= float(cfg.boundary_sigma)) for v, s in zip(valid, sig)]
    overlaps = _layer_overlaps(windows)

    # Growth cells are the nodes of a graph whose edges are the neighbour relations between them; a
    # topo-cluster is a connected component holding a seed. Node ids: growth cells in layer order.
    node = []
    n_nodes = 0
    for g in grow:
        ids = np.full(g.shape, -1, np.int64)
        k = int(g.sum())
        ids[g] = np.arange(n_nodes, n_nodes + k)
        node.append(ids)
        n_nodes += k
    src, dst = _same_layer_edges(grow, node)
    for (a, b), (eta_ab, phi_ab, _, _) in overlaps.items():
        s_ab, d_ab = _cross_layer_edges(grow[a], grow[b], node[a], node[b], eta_ab, phi_ab)
        src.append(s_ab)
        dst.append(d_ab)
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(n_nodes, n_nodes)).tocsr()
    n_comp, comp = connected_components(graph, directed=False)

    # Keep the components with a seed cell, numbered 0..k-1.
    seeded = np.zeros(n_comp, bool)
    for g, s, ids in zip(grow, sig, node):
        seeded[comp[ids[g & (s > float(cfg.seed_sigma))]]] = True
    number = np.where(seeded, np.cumsum(seeded) - 1, -1)
    k = int(seeded.sum())
    labels, row = [], np.zeros(k, np.int64)
    e_sum, w_sum, eta_sum, phi_sum = (np.zeros(k) for _ in range(4))
    for g, ids, e, w in zip(grow, node, energy, windows):
        lab = np.full(g.shape, -1, np.int64)
        lab[g] = number[comp[ids[g]]]
        labels.append(lab)
        c_idx, i_idx, j_idx = np.nonzero(lab >= 0)
        lk = lab[c_idx, i_idx, j_idx]
        ek = e[c_idx, i_idx, j_idx]
        row[lk] = c_idx
        e_sum += np.bincount(lk, ek, k)
        wk = np.abs(ek)
        w_sum += np.bincount(lk, wk, k)
        eta_sum += np.bincount(lk, wk * w.eta_centre[c_idx, i_idx], k)
        phi_sum += np.bincount(lk, wk * w.phi_centre[c_idx, j_idx], k)
    w_sum = np.maximum(w_sum, 1e-12)
    return TopoClusters(labels, row, e_sum, eta_sum / w_sum, phi_sum / w_sum, boundary_ok, overlaps)


def _same_layer_edges(grow: list[np.ndarray], node: list[np.ndarray]) -> tuple[list, list]:
    """Edges between growth cells that touch in their layer (sides and corners), one per pair.

    Works on the list of growth cells (a small fraction of the window), each tried against its
    neighbours to the right and in the next eta row.
    """
    src, dst = [], []
    for g, ids in zip(grow, node):
        _, ne, nph = g.shape
        flat = np.flatnonzero(g)
        i, j = (flat // nph) % ne, flat % nph
        g_flat, ids_flat = g.reshape(-1), ids.reshape(-1)
        for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):
            inside = (i + di < ne) & (j + dj >= 0) & (j + dj < nph)
            a = flat[inside]
            b = a + (di * nph + dj)
            ok = g_flat[b]
            src.append(ids_flat[a[ok]])
            dst.append(ids_flat[b[ok]])
    return src, dst


def _cross_layer_edges(grow_a, grow_b, node_a, node_b, eta_ab, phi_ab):
    """Edges between growth cells of layers a and b whose (eta, phi) rectangles overlap.

    ``eta_ab`` (c, ne_b, ne_a) and ``phi_ab`` (c, nph_a, nph_b) are the 0/1 overlap matrices. The cells
    of b overlapping one cell of a are a contiguous block (regular grids), so each growth cell of a
    is tried against the cells of its block only.
    """
    c_idx, i_idx, j_idx = np.nonzero(grow_a)
    eta_ov = eta_ab[c_idx, :, i_idx] > 0.5  # (m, ne_b)
    phi_ov = phi_ab[c_idx, j_idx, :] > 0.5  # (m, nph_b)
    k0, nk = np.argmax(eta_ov, axis=1), eta_ov.sum(axis=1)
    l0, nl = np.argmax(phi_ov, axis=1), phi_ov.sum(axis=1)
    ne_b, nph_b = grow_b.shape[1:]
    src, dst = [], []
    for dk in range(int(nk.max(initial=0))):
        for dl in range(int(nl.max(initial=0))):
            k = np.minimum(k0 + dk, ne_b - 1)
            col = np.minimum(l0 + dl, nph_b - 1)
            ok = (dk < nk) & (dl < nl) & grow_b[c_idx, k, col]
            src.append(node_a[c_idx[ok], i_idx[ok], j_idx[ok]])
            dst.append(node_b[c_idx[ok], k[ok], col[ok]])
    if not src:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(src), np.concatenate(dst)


def _layer_overlaps(windows: list[LayerWindow]) -> dict:
    """Per adjacent layer pair (a, a + 1): the overlap matrices (eta_ab, phi_ab, eta_ba, phi_ba)."""
    overlaps = {}
    for a in range(N_LAYERS - 1):
        eta_ov, phi_ov = _overlaps(windows[a], windows[a + 1])
        overlaps[(a, a + 1)] = (
            np.ascontiguousarray(np.swapaxes(eta_ov, 1, 2)),
            phi_ov,
            eta_ov,
            np.ascontiguousarray(np.swapaxes(phi_ov, 1, 2)),
        )
    return overlaps


def _neighbours(mask: list[np.ndarray], overlaps: dict) -> list[np.ndarray]:
    """Per layer (c, ne, nph) bool: the cells touching a True cell of ``mask`` (itself included)."""
    out = [_dilate(m) for m in mask]
    for (a, b), (eta_ab, phi_ab, eta_ba, phi_ba) in overlaps.items():
        out[b] |= _spread(mask[a], eta_ab, phi_ab)
        out[a] |= _spread(mask[b], eta_ba, phi_ba)
    return out
