"""Flattened per-cluster cell arrays and the vectorised per-cluster reductions on them.

The shower shapes (:mod:`calo_calib.data.shower_shapes`) see the cells of B clusters as (N,) arrays
one after another, with ``seg`` (N,) the cluster index of each cell (non-decreasing).
:func:`flatten_cells` builds them from Parquet list columns; :func:`seg_argmax` and :func:`bincount`
reduce them per cluster without a Python loop; :func:`cell_deta` gives the η size of a layer's
cells from :mod:`calo_calib.simulation.geometry`; :func:`wrap`, :func:`ratio` and :func:`sqrt_pos`
are the guarded arithmetic the shapes share.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from calo_calib.simulation.geometry import BARREL_REGIONS, ENDCAP_REGIONS

EPS_E = 1e-6  # GeV: a ratio's denominator below this counts as zero (same guard as high_level.EPS_E)


def wrap(dphi: np.ndarray) -> np.ndarray:
    """Angle differences wrapped to [-pi, pi] (the nearest multiple of 2 pi removed)."""
    return dphi - (2 * np.pi) * np.rint(dphi * (0.5 / np.pi))


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where |den| < EPS_E."""
    ok = np.abs(den) >= EPS_E
    return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


def sqrt_pos(x: np.ndarray) -> np.ndarray:
    """√x, 0 for x < 0 (a variance that came out negative by rounding)."""
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


def segments(seg_sub: np.ndarray) -> np.ndarray:
    """Start positions of the runs of equal values in a sorted array (non-empty)."""
    return np.concatenate([[0], np.flatnonzero(seg_sub[1:] != seg_sub[:-1]) + 1])


def seg_argmax(values: np.ndarray, mask: np.ndarray, seg: np.ndarray, n: int) -> np.ndarray:
    """Per cluster the index of the cell with the largest value among ``mask`` (first on ties), -1 if none.

    ``seg`` must be non-decreasing.
    """
    out = np.full(n, -1, dtype=np.int64)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return out
    s = seg[idx]
    v = values[idx]
    starts = segments(s)
    vmax = np.maximum.reduceat(v, starts)
    lengths = np.diff(np.append(starts, s.size))
    pos = np.flatnonzero(v == np.repeat(vmax, lengths))
    first = segments(s[pos])
    out[s[pos[first]]] = idx[pos[first]]
    return out


def bincount(index: np.ndarray, weights: np.ndarray | None, n: int) -> np.ndarray:
    """(n,) float64 sums of ``weights`` (counts without) per ``index`` value 0 … n − 1."""
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
