"""ATLAS egamma shower-shape variables from a cluster's cells, vectorised over many clusters.

:func:`shower_shapes` computes, for B clusters at once (no Python loop over clusters), the standard
ATLAS electron/photon identification variables plus a few cell-count and width summaries. Every
output is a (B,) float64 array. Cells come flattened: the (N,) arrays of all cells of all clusters
one after another, and ``seg`` (N,) the cluster index of each cell (:func:`flatten_cells` builds
them from Parquet list columns, using the list offsets).

Definitions
-----------
Window sizes are in cells of the named layer, centred on the hottest cell of the middle layer (the
cell with the largest energy among the cluster's middle-layer cells), as in athena's
``egammaMiddleShape`` / ``egammaStripsShape``. Window membership is the rounded index distance to
that cell, ``round(Δη / Δη_cell)`` and ``round(Δφ / Δφ_cell)`` with Δφ wrapped to [−π, π]; the cell
sizes come from :mod:`calo_calib.simulation.geometry` (``BARREL_REGIONS`` / ``ENDCAP_REGIONS`` at the
|η| of the hottest middle cell, the end-cap geometry from |η| ≥ :data:`BARREL_END`; ``N_PHI``).

Middle layer (``egammaMiddleShape``, ATLAS EPJC 79 (2019) 639 Table 1, EPJC 79 (2019) 205 Table 2):

* ``r_eta`` = E(3×7) / E(7×7) (η × φ middle cells);
* ``r_phi`` = E(3×3) / E(3×7);
* ``w_eta2`` = √(Σ E η² / Σ E − (Σ E η / Σ E)²) over the 3×5 window (``CaloLayerCalculator::etas``;
  the ATLAS correction for the position within the cell, ``egammaqweta2c``, is not applied); 0 when
  Σ E ≤ 0 or the variance is negative.

Strips (``egammaStripsShape``; same papers). The strips within ±2.5 middle cells in η and ±1 strip
cell in φ of the hottest middle cell are summed over φ at equal η, giving a 1-D profile E_i with i
the strip index in η (strip units). i_max is the hottest strip of the profile, E1max its energy.

* ``w_s_tot`` = √(Σ E_i (i − i_max)² / Σ E_i) over the strips within ±1.25 middle cells of the hottest
  middle cell (≈ 20 strips in the barrel, ``setWstot``); 0 when the sums are ≤ 0;
* ``w_s3`` = the same over the 3 strips i_max − 1 … i_max + 1 (``setWs3``);
* ``f_side`` = E(±3 strips) / E(±1 strip) − 1 around i_max (``setFside``); 0 when E1max ≤ 60 MeV
  (the ATLAS threshold);
* ``e_ratio`` = (E1max − E2max) / (E1max + E2max); E2max is the energy of the second local maximum
  (the hottest strip with E > 0, other than i_max, hotter than its nearest existing neighbours on
  both sides, ``setEmax2``); with no second maximum E2max = 0 and ``e_ratio`` = 1;
* ``delta_e`` = E2max − E_min [GeV], E_min the lowest strip strictly between the two maxima
  (``setEmin``: 0 when there is no second maximum or no strip between them).

Longitudinal: ``f1`` = E_L1 / E and ``f3`` = E_L3 / E with E = ``cluster_e`` (EPJC 79 (2019) 639).

Summaries (not ATLAS identification variables; defined here):

* ``n_cells_<ps|l1|l2|l3>``: the cluster's cells per layer;
* ``w_eta_<layer>``, ``w_phi_<layer>``: energy-weighted η and φ [rad] standard deviation of the
  layer's cells, about their own weighted mean (φ as Δφ to ``cluster_phi``, wrapped); 0 when Σ E ≤ 0;
* ``e_max_frac``: the hottest cell's energy (any layer) / ``cluster_e``;
* ``neg_e_frac``: Σ |E| of the negative cells / Σ |E| of all cells ∈ [0, 1];
* with ``cell_noise``: ``n_cells_below_2sigma`` (cells with |E| < 2 σ_noise, the cells that only
  the topo-cluster boundary step admits) and ``e_below_2sigma`` (their summed energy, GeV).

Ratio guards: every ratio whose |denominator| is below :data:`EPS_E` (1 keV) is 0 (``e_ratio``
included), as the high-level BDT inputs do; a cluster without middle-layer cells has all
middle-layer variables 0, one without strips (or with no strip above 0 GeV) all strip variables 0.
No output is NaN or inf for finite inputs.

Simplifications
---------------
* **Only the cluster's cells.** ATLAS computes the middle-layer windows from all calorimeter cells
  and the strip profile from the cluster's cells; here the Parquet rows hold only the cells of the
  egamma supercluster (topo-cluster cells within ±1.5 middle cells in η of the hottest middle cell
  in the barrel, ±2.5 in the end-cap; docs/simulation.md). The 7×7 window is therefore truncated to
  3 (barrel) or 5 (end-cap) cells in η: in the barrel ``r_eta`` = 1 exactly (E(3×7) and E(7×7)
  contain the same cells), and in the end-cap it measures E(3×7)/E(5×7). The strip windows (20
  strips) fit into the supercluster's ±1.5 middle cells (24 strips) in the barrel.
* One cell size per layer and cluster (the simulation's windows use the granularity of the region
  at the window centre); clusters within a cell of a granularity boundary (|η| = 1.4, 1.8, 2.0,
  2.4, the crack) can get slightly wrong index distances. ATLAS does not compute strip variables
  for 1.4 < |η| < 1.5 or |η| > 2.4; here they are computed everywhere.
* Index distances are geometric (a strip missing from the cluster still counts as a strip in the
  distances); ATLAS counts positions in its compacted strip array. F_side uses the strips within
  ±1 and ±3 of i_max (ATLAS takes the nearest existing strip as the ±1 neighbour).

Comparison with the published peaks (../shared/docs/physics_cells.md §2: ATLAS Geant4 MC, E_T 20–50
GeV, |η| < 0.8), measured on the default test samples (table in ``docs/models.md``, BDT section,
"Shower shapes"): w_η2 (median 0.0090–0.0095), w_s3 (0.64–0.67, 7–10 % above 0.6), F_side (0.09–0.12)
and E_ratio (0.95–0.96) are in or near the published ranges; R_φ is ≈ 0.02 too close to 1 for
electrons and unconverted photons (converted photons spread over 0.6–1 as published); w_s,tot is
≈ 35 % narrower than ≈ 2 strips; ΔE medians are 60–67 MeV (published < 50 MeV); f1 is low (0.23 e,
0.14 γ_unc, 0.25 γ_conv against ≈ 0.27) and f3 5–10× below 0.01–0.03; R_η is 1 in the barrel by
construction (truncated window, above).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from calo_calib.simulation.geometry import (
    BARREL_REGIONS,
    ENDCAP_REGIONS,
    LAYER_L1,
    LAYER_L2,
    N_LAYERS,
    N_PHI,
)

EPS_E = 1e-6  # GeV: a ratio's denominator below this counts as zero (same guard as high_level.EPS_E)
BARREL_END = 1.45  # |eta| from which the simulation uses the end-cap geometry (accordion.barrel_end)
FSIDE_EMAX_MIN = 0.06  # GeV: F_side is 0 unless the hottest strip exceeds this (egammaStripsShape::setFside)
STRIP_HALF_ETA_L2 = 2.5  # strip profile: +-2.5 middle cells in eta (athena neta = 5) ...
STRIP_HALF_PHI_L1 = 1.0  # ... and +-1 strip cell in phi (athena nphi = 2)
WSTOT_HALF_ETA_L2 = 1.25  # w_s_tot: strips within +-1.25 middle cells (half the strip profile, ~20 strips)
_MAX_STRIP_SLOTS = 64  # strip index bound around the reference strip (a window spans at most 40 strips)
_POS_TOL = 1e-5  # eta tolerance (cell positions are float32)

_LAYER_TAGS = ("ps", "l1", "l2", "l3")

ATLAS_SHAPE_NAMES: tuple[str, ...] = (
    "r_eta",
    "r_phi",
    "w_eta2",
    "w_s_tot",
    "w_s3",
    "f_side",
    "e_ratio",
    "delta_e",
    "f1",
    "f3",
)
"""The ATLAS identification shower shapes, in this order."""

SUMMARY_SHAPE_NAMES: tuple[str, ...] = (
    *(f"n_cells_{t}" for t in _LAYER_TAGS),
    *(f"w_eta_{t}" for t in _LAYER_TAGS),
    *(f"w_phi_{t}" for t in _LAYER_TAGS),
    "e_max_frac",
    "neg_e_frac",
)
NOISE_SHAPE_NAMES: tuple[str, ...] = ("n_cells_below_2sigma", "e_below_2sigma")
"""Computed only when the cells carry ``cell_noise``."""

SHOWER_SHAPE_NAMES: tuple[str, ...] = ATLAS_SHAPE_NAMES + SUMMARY_SHAPE_NAMES + NOISE_SHAPE_NAMES
"""Every output of :func:`shower_shapes` (with ``cell_noise``), in order."""

CELL_COLUMNS: tuple[str, ...] = ("cell_e", "cell_eta", "cell_phi", "cell_layer")
NOISE_COLUMN = "cell_noise"
CLUSTER_COLUMNS: tuple[str, ...] = (
    "cluster_e",
    "cluster_eta",
    "cluster_phi",
    "cluster_e_ps",
    "cluster_e_l1",
    "cluster_e_l2",
    "cluster_e_l3",
)
"""The scalar (per-cluster) columns :func:`shower_shapes` reads."""


def shower_shape_names(with_noise: bool = True) -> list[str]:
    """The output names of :func:`shower_shapes`, in order (``with_noise``: cells with ``cell_noise``)."""
    return list(SHOWER_SHAPE_NAMES if with_noise else ATLAS_SHAPE_NAMES + SUMMARY_SHAPE_NAMES)


def shower_shape_cell_columns(with_noise: bool = True) -> list[str]:
    """The Parquet list (per-cell) columns :func:`shower_shapes` reads."""
    return list(CELL_COLUMNS) + ([NOISE_COLUMN] if with_noise else [])


# --- helpers -------------------------------------------------------------------------------------


def _wrap(dphi: np.ndarray) -> np.ndarray:
    """Angle differences wrapped to [-pi, pi] (the nearest multiple of 2 pi removed)."""
    return dphi - (2 * np.pi) * np.rint(dphi * (0.5 / np.pi))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where |den| < EPS_E."""
    ok = np.abs(den) >= EPS_E
    return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


def _sqrt_pos(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(x, 0.0))


def _region_deta(regions: list[tuple[float, float, float]], abs_eta: np.ndarray) -> np.ndarray:
    """η size of the cells of the region containing each |η| (clipped into the layer's coverage)."""
    los = np.array([r[0] for r in regions])
    his = np.array([r[1] for r in regions])
    detas = np.array([r[2] for r in regions])
    a = np.clip(abs_eta, los[0], his[-1] - 1e-9)
    return detas[np.clip(np.searchsorted(his, a, side="right"), 0, len(regions) - 1)]


def cell_deta(layer: int, abs_eta: np.ndarray, endcap: np.ndarray) -> np.ndarray:
    """η size of the ``layer`` cells at ``abs_eta`` (B,), barrel or end-cap geometry per cluster."""
    a = np.asarray(abs_eta, dtype=np.float64)
    return np.where(endcap, _region_deta(ENDCAP_REGIONS[layer], a), _region_deta(BARREL_REGIONS[layer], a))


def _segments(seg_sub: np.ndarray) -> np.ndarray:
    """Start positions of the runs of equal values in a sorted array (non-empty)."""
    return np.concatenate([[0], np.flatnonzero(seg_sub[1:] != seg_sub[:-1]) + 1])


def _seg_argmax(values: np.ndarray, mask: np.ndarray, seg: np.ndarray, n: int) -> np.ndarray:
    """Per cluster the index of the cell with the largest value among ``mask`` (first on ties), -1 if none.

    ``seg`` must be non-decreasing.
    """
    out = np.full(n, -1, dtype=np.int64)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return out
    s = seg[idx]
    v = values[idx]
    starts = _segments(s)
    vmax = np.maximum.reduceat(v, starts)
    lengths = np.diff(np.append(starts, s.size))
    pos = np.flatnonzero(v == np.repeat(vmax, lengths))
    first = _segments(s[pos])
    out[s[pos[first]]] = idx[pos[first]]
    return out


def _bincount(index: np.ndarray, weights: np.ndarray | None, n: int) -> np.ndarray:
    return np.bincount(index, weights=weights, minlength=n)[:n].astype(np.float64)


def flatten_cells(table: pa.Table, columns: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Flatten Parquet list columns of a table into (N,) arrays plus ``seg`` (N,) int64 from the offsets.

    All columns must have the same list lengths per row (the cluster's ``n_cells``).
    """
    out: dict[str, np.ndarray] = {}
    seg = None
    for name in columns:
        col = table.column(name)
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        offsets = np.asarray(arr.offsets, dtype=np.int64)
        lengths = np.diff(offsets)
        if seg is None:
            seg = np.repeat(np.arange(len(arr), dtype=np.int64), lengths)
            ref = lengths
        elif not np.array_equal(lengths, ref):
            raise ValueError(f"shower shapes: list column {name!r} has other lengths than {columns[0]!r}")
        out[name] = arr.flatten().to_numpy(zero_copy_only=False)
    assert seg is not None
    return out, seg


# --- the shapes ----------------------------------------------------------------------------------


def shower_shapes(
    cells: Mapping[str, np.ndarray],
    seg: np.ndarray,
    n_clusters: int,
    clusters: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """The shower shapes of ``n_clusters`` clusters (definitions in the module docstring).

    Args:
        cells: flattened (N,) arrays of all cells of all clusters: ``cell_e`` [GeV], ``cell_eta``,
            ``cell_phi`` [rad], ``cell_layer`` (0 presampler, 1 strips, 2 middle, 3 back) and, if
            present, ``cell_noise`` [GeV]. Finite values.
        seg: (N,) int, the cluster index (0 … n_clusters − 1) of each cell; the cells of a cluster
            need not be contiguous (they are sorted by ``seg`` first when they are not).
        n_clusters: B.
        clusters: (B,) columns ``cluster_e`` [GeV], ``cluster_eta``, ``cluster_phi`` [rad],
            ``cluster_e_ps``, ``cluster_e_l1``, ``cluster_e_l2``, ``cluster_e_l3`` [GeV].

    Returns:
        ``{name: (B,) float64}`` for every name of :func:`shower_shape_names` (``with_noise`` when
        ``cell_noise`` is in ``cells``).

    Raises:
        ValueError: a missing column, arrays of different lengths, ``seg`` out of range or a
            non-finite cell value.
    """
    B = int(n_clusters)
    for name in CELL_COLUMNS:
        if name not in cells:
            raise ValueError(f"shower shapes: missing cell column {name!r} (have {sorted(cells)})")
    for name in CLUSTER_COLUMNS:
        if name not in clusters:
            raise ValueError(f"shower shapes: missing cluster column {name!r} (have {sorted(clusters)})")
    with_noise = NOISE_COLUMN in cells
    seg = np.asarray(seg, dtype=np.int64)
    e = np.asarray(cells["cell_e"], dtype=np.float64)
    eta = np.asarray(cells["cell_eta"], dtype=np.float64)
    phi = np.asarray(cells["cell_phi"], dtype=np.float64)
    layer = np.asarray(cells["cell_layer"], dtype=np.int64)
    noise = np.asarray(cells[NOISE_COLUMN], dtype=np.float64) if with_noise else None
    n = e.shape[0]
    if any(a.shape != (n,) for a in (seg, eta, phi, layer, *([noise] if noise is not None else []))):
        raise ValueError("shower shapes: cell arrays and seg must all be (N,)")
    if n and (seg.min() < 0 or seg.max() >= B):
        raise ValueError(f"shower shapes: seg must lie in [0, {B}), got [{seg.min()}, {seg.max()}]")
    if not (np.isfinite(e).all() and np.isfinite(eta).all() and np.isfinite(phi).all()):
        raise ValueError("shower shapes: non-finite cell energy or position")
    cl = {k: np.asarray(clusters[k], dtype=np.float64).reshape(B) for k in CLUSTER_COLUMNS}
    if n > 1 and (np.diff(seg) < 0).any():
        order = np.argsort(seg, kind="stable")
        seg, e, eta, phi, layer = seg[order], e[order], eta[order], phi[order], layer[order]
        noise = noise[order] if noise is not None else None

    out: dict[str, np.ndarray] = {}
    out.update(_middle_shapes(e, eta, phi, layer, seg, B, cl))
    out.update(
        _strip_shapes(e, eta, phi, layer, seg, B, cl, out.pop("_eta_h2"), out.pop("_phi_h2"), out.pop("_endcap"))
    )
    out["f1"] = _ratio(cl["cluster_e_l1"], cl["cluster_e"])
    out["f3"] = _ratio(cl["cluster_e_l3"], cl["cluster_e"])
    out.update(_summaries(e, eta, phi, layer, seg, B, cl, noise))
    return {name: np.asarray(out[name], dtype=np.float64) for name in shower_shape_names(with_noise)}


def _middle_shapes(e, eta, phi, layer, seg, B, cl) -> dict[str, np.ndarray]:
    """R_eta, R_phi, w_eta2 around the hottest middle cell; also its (eta, phi) and the geometry side."""
    m2 = layer == LAYER_L2
    hot = _seg_argmax(e, m2, seg, B)
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
    dj = np.abs(np.rint(_wrap(phi[idx] - phi_h[s]) / dphi2))

    def window(ni: int, nj: int, w: np.ndarray) -> np.ndarray:
        return _bincount(s, np.where((di <= ni // 2) & (dj <= nj // 2), w, 0.0), B)

    e277 = window(7, 7, e2)
    e237 = window(3, 7, e2)
    e233 = window(3, 3, e2)
    # Two passes (mean, then the spread about it): no cancellation when all cells share one eta.
    s0 = window(3, 5, e2)
    pos = s0 > 0
    den = np.where(pos, s0, 1.0)
    mean = window(3, 5, e2 * d_eta) / den
    dev = d_eta - mean[s]
    w_eta2 = np.where(pos, _sqrt_pos(window(3, 5, e2 * dev * dev) / den), 0.0)
    return {
        "r_eta": _ratio(e237, e277),
        "r_phi": _ratio(e233, e237),
        "w_eta2": w_eta2,
        "_eta_h2": eta_h,
        "_phi_h2": phi_h,
        "_endcap": endcap,
    }


def _strip_pitch(eta: np.ndarray, s: np.ndarray, B: int, nominal: np.ndarray) -> np.ndarray:
    """(B,) eta pitch of each cluster's strips: the smallest gap between its distinct strip etas.

    The strip granularity changes at |eta| = 1.8, 2.0, 2.4; a cluster whose hottest middle cell sits
    on the other side of a boundary than its strips would otherwise get the wrong pitch, and strip
    indices on half-integers (order-dependent rounding). ``nominal`` is used where a cluster has
    fewer than two distinct strip etas.
    """
    o = np.lexsort((eta, s))
    es, ss = eta[o], s[o]
    gap = np.diff(es)
    ok = (ss[1:] == ss[:-1]) & (gap > 1e-5)
    pitch = np.full(B, np.inf)
    np.minimum.at(pitch, ss[1:][ok], gap[ok])
    return np.where(np.isfinite(pitch), pitch, nominal)


def _strip_shapes(e, eta, phi, layer, seg, B, cl, eta_h2, phi_h2, endcap) -> dict[str, np.ndarray]:
    """w_s_tot, w_s3, F_side, E_ratio, DeltaE from the phi-summed strip profile (module docstring)."""
    zeros = {k: np.zeros(B) for k in ("w_s_tot", "w_s3", "f_side", "e_ratio", "delta_e")}
    abs_h = np.abs(eta_h2)
    deta2 = cell_deta(LAYER_L2, abs_h, endcap)
    deta1 = cell_deta(LAYER_L1, abs_h, endcap)
    dphi1 = 2 * np.pi / N_PHI[LAYER_L1]
    idx = np.flatnonzero(layer == LAYER_L1)
    if idx.size == 0:
        return zeros
    s = seg[idx]
    in_win = (np.abs(eta[idx] - eta_h2[s]) <= STRIP_HALF_ETA_L2 * deta2[s] + _POS_TOL) & (
        np.abs(_wrap(phi[idx] - phi_h2[s])) <= STRIP_HALF_PHI_L1 * dphi1 + _POS_TOL
    )
    idx, s = idx[in_win], s[in_win]
    if idx.size == 0:
        return zeros
    deta1 = _strip_pitch(eta[idx], s, B, deta1)
    # Strip index relative to a reference strip of the cluster (its first strip in the window), so
    # that rounding never falls on a half-integer; then a dense (B, S) profile summed over phi.
    ref = np.zeros(B)
    first = _segments(s)
    ref[s[first]] = eta[idx[first]]
    k = np.rint((eta[idx] - ref[s]) / deta1[s]).astype(np.int64)
    k = np.clip(k, -_MAX_STRIP_SLOTS, _MAX_STRIP_SLOTS)  # never reached: the window spans <= 40 strips
    off = -int(k.min())
    k += off
    S = int(k.max()) + 1  # slots of this batch's profiles (the span of the widest one)
    flat = s * S + k
    P = _bincount(flat, e[idx], B * S).reshape(B, S)
    C = _bincount(flat, None, B * S).reshape(B, S) > 0
    ar = np.arange(S)

    kmax = np.argmax(np.where(C, P, -np.inf), axis=1)
    rows = np.arange(B)
    emax = np.where(C.any(axis=1), P[rows, kmax], 0.0)
    good = emax > 0  # a strip maximum above 0 GeV (ATLAS: emaxs1 starts at 0)
    rel = ar[None, :] - kmax[:, None]

    def width(sel: np.ndarray) -> np.ndarray:
        w = np.where(sel, P, 0.0)
        s0 = w.sum(axis=1)
        s2 = (w * rel * rel).sum(axis=1)
        return np.where(good & (s0 > 0) & (s2 > 0), np.sqrt(np.maximum(s2, 0) / np.where(s0 > 0, s0, 1.0)), 0.0)

    slot_eta = ref[:, None] + (ar[None, :] - off) * deta1[:, None]
    in_tot = C & (np.abs(slot_eta - eta_h2[:, None]) <= WSTOT_HALF_ETA_L2 * deta2[:, None] + _POS_TOL)
    w_s_tot = width(in_tot)
    w_s3 = width(C & (np.abs(rel) <= 1))

    e3 = np.where(C & (np.abs(rel) <= 1), P, 0.0).sum(axis=1)
    e7 = np.where(C & (np.abs(rel) <= 3), P, 0.0).sum(axis=1)
    f_side = np.where(good & (emax > FSIDE_EMAX_MIN), _ratio(e7 - e3, e3), 0.0)

    # Second local maximum: hotter than the nearest existing strip on each side, not the hottest.
    left = np.maximum.accumulate(np.where(C, ar, -1), axis=1)
    left = np.concatenate([np.full((B, 1), -1), left[:, :-1]], axis=1)
    right = np.minimum.accumulate(np.where(C, ar, S)[:, ::-1], axis=1)[:, ::-1]
    right = np.concatenate([right[:, 1:], np.full((B, 1), S)], axis=1)
    e_left = np.take_along_axis(P, np.clip(left, 0, S - 1), axis=1)
    e_right = np.take_along_axis(P, np.clip(right, 0, S - 1), axis=1)
    local = C & (left >= 0) & (right < S) & (P > e_left) & (P > e_right) & (rel != 0) & (P > 0)
    has2 = good & local.any(axis=1)
    k2 = np.argmax(np.where(local, P, -np.inf), axis=1)
    e2max = np.where(has2, P[rows, k2], 0.0)
    lo, hi = np.minimum(kmax, k2), np.maximum(kmax, k2)
    between = C & (ar[None, :] > lo[:, None]) & (ar[None, :] < hi[:, None])
    emin = np.where(has2 & between.any(axis=1), np.where(between, P, np.inf).min(axis=1), 0.0)
    emin = np.where(np.isfinite(emin), emin, 0.0)
    return {
        "w_s_tot": w_s_tot,
        "w_s3": w_s3,
        "f_side": f_side,
        "e_ratio": np.where(good, _ratio(emax - e2max, emax + e2max), 0.0),
        "delta_e": np.where(has2, e2max - emin, 0.0),
    }


def _summaries(e, eta, phi, layer, seg, B, cl, noise) -> dict[str, np.ndarray]:
    """Per-layer counts and widths, hottest-cell and negative-energy fractions, low-significance cells."""
    out: dict[str, np.ndarray] = {}
    lay = np.clip(layer, 0, N_LAYERS - 1)
    key = seg * N_LAYERS + lay
    nl = B * N_LAYERS
    d_eta = eta - cl["cluster_eta"][seg]
    d_phi = _wrap(phi - cl["cluster_phi"][seg])
    count = _bincount(key, None, nl).reshape(B, N_LAYERS)
    s0 = _bincount(key, e, nl).reshape(B, N_LAYERS)
    pos = s0 > 0
    den = np.where(pos, s0, 1.0)
    for name, d in (("eta", d_eta), ("phi", d_phi)):
        mean = _bincount(key, e * d, nl) / den.ravel()
        dev = d - mean[key]  # two passes: exact 0 for cells at one position
        var = _bincount(key, e * dev * dev, nl).reshape(B, N_LAYERS) / den
        w = np.where(pos, _sqrt_pos(var), 0.0)
        for li, tag in enumerate(_LAYER_TAGS):
            out[f"w_{name}_{tag}"] = w[:, li]
    for li, tag in enumerate(_LAYER_TAGS):
        out[f"n_cells_{tag}"] = count[:, li]
    hot = _seg_argmax(e, np.ones(e.shape, bool), seg, B)
    e_hot = np.where(hot >= 0, e[np.maximum(hot, 0)], 0.0)
    out["e_max_frac"] = _ratio(e_hot, cl["cluster_e"])
    abs_e = np.abs(e)
    out["neg_e_frac"] = _ratio(_bincount(seg, np.where(e < 0, abs_e, 0.0), B), _bincount(seg, abs_e, B))
    if noise is not None:
        low = abs_e < 2.0 * noise
        out["n_cells_below_2sigma"] = _bincount(seg, low.astype(np.float64), B)
        out["e_below_2sigma"] = _bincount(seg, np.where(low, e, 0.0), B)
    return out


def shower_shapes_from_table(table: pa.Table, chunk: int = 8192) -> dict[str, np.ndarray]:
    """:func:`shower_shapes` of every row of a table with the cell list columns and cluster columns.

    Processed in chunks of ``chunk`` clusters (bounded memory); ``cell_noise`` is used when present.
    Returns ``{name: (table.num_rows,) float64}``.
    """
    with_noise = NOISE_COLUMN in table.column_names
    cell_cols = shower_shape_cell_columns(with_noise)
    missing = [c for c in cell_cols + list(CLUSTER_COLUMNS) if c not in table.column_names]
    if missing:
        raise ValueError(f"shower shapes: missing column(s) {missing} (table has {table.column_names})")
    names = shower_shape_names(with_noise)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for start in range(0, max(table.num_rows, 1), chunk):
        t = table.slice(start, chunk)
        cells, seg = flatten_cells(t, cell_cols)
        clusters = {c: t.column(c).to_numpy() for c in CLUSTER_COLUMNS}
        res = shower_shapes(cells, seg, t.num_rows, clusters)
        for k in names:
            parts[k].append(res[k])
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
