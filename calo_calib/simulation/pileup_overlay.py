"""The pile-up deposits of a batch of clusters in their cells (the overlay's inner loop).

:class:`Deposits` holds the drawn pile-up particles (mini-showers or MIP tracks) of the batch, sorted
by cluster; :func:`layer_cells` adds them to the cells of one layer: the showers of each chunk of clusters as one
batched matrix product of their lateral marginals (:func:`deposit_chunk`, :func:`marginal_fractions`,
:func:`fill_showers`), the tracks as a scatter into the one cell each crosses (:func:`track_cells`). Called by
:meth:`calo_calib.simulation.pileup.ParticlePileup.cells`. Energies in GeV, lengths in mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from calo_calib.simulation import geometry as geo
from calo_calib.simulation.pileup_library import Prepared

CHUNK = 128  # clusters per batched matrix product (bounds the padded deposit matrices)


@dataclass
class Deposits:
    """One kind of deposit (showers or tracks) of a batch, in deposit order (sorted by cluster).

    Arrays (m,): cluster ``cl``, library particle ``part``, eta reflection ``flip`` (+-1), phi
    rotation ``rot`` (rad), crossing response ``weight``; ``slot`` the deposit's row in its chunk's
    padded deposit matrices (local cluster x width + rank of the deposit among its cluster's deposits
    of this kind); ``bounds`` (n_chunks + 1,) the deposits of each chunk of CHUNK clusters;
    ``width`` (n_chunks,) the most deposits of a cluster in each chunk (the three are empty for the
    tracks, which need no padded layout). Filled later: ``impacts`` (8, m) float32 (:meth:`gather_impacts`),
    ``e_layer`` (m, 4) GeV and, for showers, ``radii``: per layer (3, m) float32, core radius, tail
    radius (mm) and core probability.
    """

    cl: np.ndarray
    part: np.ndarray
    flip: np.ndarray
    rot: np.ndarray
    weight: np.ndarray
    slot: np.ndarray
    bounds: np.ndarray
    width: np.ndarray
    impacts: np.ndarray | None = None
    e_layer: np.ndarray | None = None
    radii: list[np.ndarray] | None = None
    phi_cl: np.ndarray | None = None  # (m,) the window centre phi of each deposit's cluster (cached)

    @property
    def n(self) -> int:
        return int(self.cl.size)

    @staticmethod
    def layout(cl: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
        """(rank, width) of the cluster-sorted deposits ``cl`` of ``c`` clusters: each deposit's rank
        in its cluster, and the most deposits of a cluster in each chunk of CHUNK clusters."""
        counts = np.bincount(cl, minlength=c)
        rank = np.arange(cl.size) - (np.cumsum(counts) - counts)[cl]
        n_chunks = -(-c // CHUNK)
        width = np.zeros(n_chunks * CHUNK, np.int64)
        width[:c] = counts
        return rank, width.reshape(n_chunks, CHUNK).max(axis=1)

    @staticmethod
    def subset(
        idx: np.ndarray, cl: np.ndarray, part: np.ndarray, d: dict, order: np.ndarray, c: int, padded: bool = True
    ) -> Deposits:
        """Deposits ``idx`` of all the (cluster-sorted) deposits ``cl``, ``part``; ``d`` from draw, unsorted.

        With ``padded`` the subset gets its own padded layout (``slot``, ``bounds``, ``width``) for the
        batched matrix products of the showers; without (the tracks, which are scattered into their
        cells) those arrays are empty.
        """
        sub = cl[idx]
        o = order[idx]
        if padded:
            rank, width = Deposits.layout(sub, c)
            slot = (sub % CHUNK) * width[sub // CHUNK] + rank
            bounds = np.searchsorted(sub, np.minimum(np.arange(width.size + 1) * CHUNK, c))
        else:
            slot, bounds, width = (np.zeros(0, np.int64) for _ in range(3))
        return Deposits(sub, part[idx], d["flip"][o], d["rotation"][o], d["weight"][o], slot, bounds, width)

    def gather_impacts(self, p: Prepared) -> None:
        """``self.impacts`` (8, m): the impact eta (rows 0-3) and phi (4-7) per layer of each deposit.

        One row gather of the particles' 32-byte impact records (instead of a gather per layer and
        coordinate), transposed so that each layer's values are contiguous.
        """
        self.impacts = np.ascontiguousarray(np.take(p.impacts, self.part, axis=0).T)

    def in_layer(self, layer: int, rho: np.ndarray, phi_c: np.ndarray, rows: bool = False) -> dict:
        """Impact (mm, float32, frames of the cell edges), energy and radii of the deposits in ``layer``.

        ``phi_c`` must be the same on every call (its gather is cached). Showers get ``radii_t``
        (3, m) and, with ``rows`` (the wide layout of :func:`fill_showers`),
        also ``radii`` (m, 3).
        """
        r = rho[self.cl]
        if self.phi_cl is None:
            self.phi_cl = phi_c[self.cl]
        out = {
            "x": (self.flip * self.impacts[layer] * r).astype(np.float32),
            "y": (geo.wrap_phi(self.impacts[4 + layer] + self.rot - self.phi_cl) * r).astype(np.float32),
            "e": self.e_layer[:, layer].astype(np.float32) if self.n else np.zeros(0, np.float32),
        }
        if self.radii is not None:
            out["radii_t"] = self.radii[layer]  # (3, m)
            out["radii"] = np.ascontiguousarray(out["radii_t"].T) if rows else None  # (m, 3)
        return out


def track_cells(x_edges, y_edges, tracks: Deposits, tr: dict) -> tuple[np.ndarray, np.ndarray]:
    """The cell each track (MIP) crosses, for the tracks inside the window (in deposit order).

    Returns the flat cell index into the layer's (c, ne, nph) cells (cluster x ne x nph + eta cell x
    nph + phi cell) and the energy (GeV, float32).
    """
    ne, nph = x_edges.shape[1] - 1, y_edges.shape[1] - 1
    ct = tracks.cl
    # Cell size per cluster first, then gathered: the same float32 subtraction on the same values.
    x0, y0 = x_edges[:, 0], y_edges[:, 0]
    ix = np.floor((tr["x"] - x0[ct]) / (x_edges[:, 1] - x0)[ct]).astype(np.int64)
    iy = np.floor((tr["y"] - y0[ct]) / (y_edges[:, 1] - y0)[ct]).astype(np.int64)
    keep = np.flatnonzero((ix >= 0) & (ix < ne) & (iy >= 0) & (iy < nph))
    return (ct[keep] * ne + ix[keep]) * nph + iy[keep], tr["e"][keep]


def layer_cells(x_edges, y_edges, showers: Deposits, sh: dict, tracks: Deposits, tr: dict) -> np.ndarray:
    """The pile-up energy (GeV, before the per-BCID mean subtraction) in one layer's window cells.

    Showers spread over the window: the product of their eta and phi marginals, summed per cluster
    as one batched matrix product per chunk (:func:`deposit_chunk`). Tracks put their energy in the
    one cell they cross, added by a scatter (a track is a single entry: no matrix row for it).

    Args: x_edges (c, ne+1), y_edges (c, nph+1) cell edges in mm; ``showers``, ``tracks`` and ``sh``,
    ``tr`` their :meth:`Deposits.in_layer`. Returns (c, ne, nph) float32.
    """
    c = x_edges.shape[0]
    ne, nph = x_edges.shape[1] - 1, y_edges.shape[1] - 1
    cells = np.zeros((c, ne, nph), np.float32)
    for k in range(showers.width.size):
        if showers.bounds[k + 1] > showers.bounds[k]:
            c0, c1 = k * CHUNK, min((k + 1) * CHUNK, c)
            deposit_chunk(x_edges, y_edges, showers, sh, k, c0, c1, cells[c0:c1])
    cell, energy = track_cells(x_edges, y_edges, tracks, tr)
    if cell.size:
        cells += np.bincount(cell, energy, cells.size).astype(np.float32).reshape(cells.shape)
    return cells


# Showers per pass of the marginal-fraction arithmetic: its float32 temporaries (block x up to 60
# edges, ~0.5 MB each) then stay in the CPU cache, which is ~2x faster than whole-chunk passes.
_BLOCK = 2048
# Above this many cell edges (the strips' 60 in eta) the marginals are computed one shower per row;
# for the narrow windows (4 to 14 edges) one edge per row, so numpy's loops run along the showers.
WIDE = 32


def deposit_chunk(x_edges, y_edges, showers: Deposits, sh: dict, k: int, c0: int, c1: int, out: np.ndarray) -> None:
    """Cells ``out`` (c1 - c0, ne, nph), C-contiguous float32, of the clusters c0..c1-1 of chunk ``k``
    from their showers (written in place).

    Each shower's cell fractions are the product of its eta and phi marginals; the sum over the
    showers of a cluster is one batched matrix product (ne x P) @ (P x nph), P the chunk's width
    (zero-padded).

    Args: x_edges (c, ne+1), y_edges (c, nph+1) cell edges in mm; ``showers`` and ``sh`` (its
    :meth:`Deposits.in_layer`).
    """
    nc = c1 - c0
    ne, nph = x_edges.shape[1] - 1, y_edges.shape[1] - 1
    width = int(showers.width[k])
    a_mat = _zeroed_scratch(0, (nc * width, ne))
    b_mat = _zeroed_scratch(1, (nc * width, nph))
    x_t, y_t = np.ascontiguousarray(x_edges.T), np.ascontiguousarray(y_edges.T)
    for s in range(int(showers.bounds[k]), int(showers.bounds[k + 1]), _BLOCK):
        i = slice(s, min(s + _BLOCK, int(showers.bounds[k + 1])))
        ce, slot, r_t = showers.cl[i], showers.slot[i], sh["radii_t"][:, i]
        r = sh["radii"][i] if sh["radii"] is not None else None
        fill_showers(a_mat, slot, x_edges, x_t, ce, sh["x"][i], r, r_t, sh["e"][i])
        fill_showers(b_mat, slot, y_edges, y_t, ce, sh["y"][i], r, r_t, None)
    a_mat, b_mat = a_mat.reshape(nc, width, ne), b_mat.reshape(nc, width, nph)
    torch.bmm(torch.from_numpy(a_mat).transpose(1, 2), torch.from_numpy(b_mat), out=torch.from_numpy(out))


# Two reusable float32 buffers for the padded deposit matrices (up to ~10 MB each): zeroing memory
# that is already mapped is much cheaper than the page faults of a fresh allocation per chunk.
_SCRATCH: list[np.ndarray] = [np.zeros(0, np.float32), np.zeros(0, np.float32)]


def _zeroed_scratch(i: int, shape: tuple[int, int]) -> np.ndarray:
    """A C-contiguous float32 array of ``shape``, all zeros, in reusable buffer ``i``."""
    size = shape[0] * shape[1]
    if _SCRATCH[i].size < size:
        _SCRATCH[i] = np.zeros(size + size // 4, np.float32)  # some room for the next, wider chunks
        view = _SCRATCH[i][:size]
    else:
        view = _SCRATCH[i][:size]
        view.fill(0.0)
    return view.reshape(shape)


def fill_showers(mat, slot, edges, edges_t, ce, impact, radii, radii_t, energy) -> None:
    """``mat[slot] = energy x`` the marginal fractions of showers in the cells of their clusters.

    Args: mat (rows, k) float32 padded deposit matrix; slot (b,) its rows; edges (c, k+1) and its
    transpose edges_t cell edges (mm) per cluster; ce (b,) cluster; impact (b,) mm, same frame;
    radii (b, 3) and radii_t (3, b); energy (b,) float32, or None for fractions only.
    Both layouts give the same numbers (the same element-wise float32 operations).
    """
    if edges.shape[1] > WIDE:
        # Row gathers by np.take: several times faster than fancy indexing for narrow rows.
        x = np.take(edges, ce, axis=0)
        x -= impact[:, None]
        frac = marginal_fractions(x, radii)
        if energy is not None:
            frac *= energy[:, None]
        mat[slot] = frac
    else:
        x = np.take(edges_t, ce, axis=1)
        x -= impact
        frac = marginal_fractions_t(x, radii_t)
        if energy is not None:
            frac *= energy
        mat[slot] = frac.T


def marginal_fractions_t(edges: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """:func:`marginal_fractions` in the transposed layout: edges (k+1, n), radii (3, n) -> (k, n)."""
    x2 = edges * edges
    core = x2 + radii[0] ** 2
    np.sqrt(core, out=core)
    np.divide(edges, core, out=core)
    tail = np.add(x2, radii[1] ** 2, out=x2)
    np.sqrt(tail, out=tail)
    np.divide(edges, tail, out=tail)
    core -= tail
    core *= radii[2]
    core += tail
    out = np.subtract(core[1:], core[:-1])
    out *= 0.5
    return out


def marginal_fractions(edges: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Fractions of a core + tail GFlash radial profile between consecutive ``edges`` along one axis.

    The 1-D marginal of the 2-D density R^2 / (pi (x^2 + y^2 + R^2)^2) has the CDF
    1/2 + x / (2 sqrt(x^2 + R^2)). Args: edges (n, k+1) float32, mm relative to the impact;
    radii (n, 3) float32: core radius, tail radius (mm), core probability. Returns (n, k).
    """
    x2 = edges * edges
    core = x2 + radii[:, 0:1] ** 2
    np.sqrt(core, out=core)
    np.divide(edges, core, out=core)
    tail = np.add(x2, radii[:, 1:2] ** 2, out=x2)  # x^2 is not needed any more: reuse its memory
    np.sqrt(tail, out=tail)
    np.divide(edges, tail, out=tail)
    core -= tail
    core *= radii[:, 2:3]
    core += tail  # p x_core + (1 - p) x_tail
    out = np.subtract(core[:, 1:], core[:, :-1])
    out *= 0.5
    return out
