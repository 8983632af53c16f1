"""Summary shower shapes (not ATLAS identification variables): per-layer cell counts and widths, the
hottest-cell and negative-energy fractions, and the low-significance cells.

Definitions: :mod:`calo_calib.data.shower_shapes` (module docstring, "Summaries").
"""

from __future__ import annotations

import numpy as np

from calo_calib.data.cell_segments import bincount, ratio, seg_argmax, sqrt_pos, wrap
from calo_calib.simulation.geometry import N_LAYERS

LAYER_TAGS = ("ps", "l1", "l2", "l3")

SUMMARY_SHAPE_NAMES: tuple[str, ...] = (
    *(f"n_cells_{t}" for t in LAYER_TAGS),
    *(f"w_eta_{t}" for t in LAYER_TAGS),
    *(f"w_phi_{t}" for t in LAYER_TAGS),
    "e_max_frac",
    "neg_e_frac",
)
NOISE_SHAPE_NAMES: tuple[str, ...] = ("n_cells_below_2sigma", "e_below_2sigma")
"""Computed only when the cells carry ``cell_noise``."""


def summaries(e, eta, phi, layer, seg, B, cl, noise) -> dict[str, np.ndarray]:
    """Per-layer counts and widths, hottest-cell and negative-energy fractions, low-significance cells.

    Cells (N,) sorted by ``seg``; ``cl`` the (B,) cluster columns; ``noise`` (N,) σ_noise [GeV] or
    None (then no :data:`NOISE_SHAPE_NAMES`).
    """
    out: dict[str, np.ndarray] = {}
    lay = np.clip(layer, 0, N_LAYERS - 1)
    key = seg * N_LAYERS + lay
    nl = B * N_LAYERS
    d_eta = eta - cl["cluster_eta"][seg]
    d_phi = wrap(phi - cl["cluster_phi"][seg])
    count = bincount(key, None, nl).reshape(B, N_LAYERS)
    s0 = bincount(key, e, nl).reshape(B, N_LAYERS)
    pos = s0 > 0
    den = np.where(pos, s0, 1.0)
    for name, d in (("eta", d_eta), ("phi", d_phi)):
        mean = bincount(key, e * d, nl) / den.ravel()
        dev = d - mean[key]  # two passes: exact 0 for cells at one position
        var = bincount(key, e * dev * dev, nl).reshape(B, N_LAYERS) / den
        w = np.where(pos, sqrt_pos(var), 0.0)
        for li, tag in enumerate(LAYER_TAGS):
            out[f"w_{name}_{tag}"] = w[:, li]
    for li, tag in enumerate(LAYER_TAGS):
        out[f"n_cells_{tag}"] = count[:, li]
    hot = seg_argmax(e, np.ones(e.shape, bool), seg, B)
    e_hot = np.where(hot >= 0, e[np.maximum(hot, 0)], 0.0)
    out["e_max_frac"] = ratio(e_hot, cl["cluster_e"])
    abs_e = np.abs(e)
    out["neg_e_frac"] = ratio(bincount(seg, np.where(e < 0, abs_e, 0.0), B), bincount(seg, abs_e, B))
    if noise is not None:
        low = abs_e < 2.0 * noise
        out["n_cells_below_2sigma"] = bincount(seg, low.astype(np.float64), B)
        out["e_below_2sigma"] = bincount(seg, np.where(low, e, 0.0), B)
    return out
