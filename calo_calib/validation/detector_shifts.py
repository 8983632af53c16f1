"""Measured properties of a simulated sample, for comparing detector variants with nominal.

Every quantity is computed from the Parquet columns alone (``docs/data_format.md``), so the same
numbers can be taken on any sample, "data-like" or not:

* response E_cluster/E_true: mean, median and sigma_rel = IQR / (1.349 mean);
* layer fractions E_layer / E_cluster (PS, strips, middle, back) and the presampler energy / E_true;
* the truth upstream loss / E_true (simulation truth, for diagnostics);
* lateral shape in the middle layer: R_phi = E(3x3) / E(3x7) around the hottest middle cell (the
  ATLAS shower-shape variable), and the fraction of the cluster's middle-layer energy outside 3x3;
* cell noise: the rms of the negative cell energies per layer (signals are >= 0, so negative cells
  measure the noise, up to the small signal they carry) and the mean clustering noise ``cell_noise``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from calo_calib.simulation.geometry import L2_DETA, L2_DPHI, LAYER_L2, N_LAYERS, wrap_phi
from calo_calib.validation.metrics import median_response, sigma_rel

LAYER_NAMES = ("ps", "l1", "l2", "l3")


def _flat(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, offsets) of a list column; values as numpy, offsets (n + 1,) int64."""
    col = table.column(name).combine_chunks()
    return col.values.to_numpy(zero_copy_only=False), col.offsets.to_numpy().astype(np.int64)


def middle_layer_shape(table: pa.Table) -> dict[str, np.ndarray]:
    """Per-cluster lateral shape in the middle layer (arrays (n,), NaN where undefined).

    Windows around the hottest middle-layer cell of each cluster, in L2 cell units (0.025 x 2 pi/256):
    3x3 = |d eta| < 1.5 cells and |d phi| < 1.5 cells, 3x7 = |d eta| < 1.5 and |d phi| < 3.5.

    Returns:
        ``r_phi``: E(3x3) / E(3x7); ``frac_outside_3x3``: 1 - E(3x3) / E(middle layer of the cluster).
    """
    e, offsets = _flat(table, "cell_e")
    layer, _ = _flat(table, "cell_layer")
    eta, _ = _flat(table, "cell_eta")
    phi, _ = _flat(table, "cell_phi")
    n = offsets.size - 1
    cid = np.repeat(np.arange(n), np.diff(offsets))
    sel = layer == LAYER_L2
    e, eta, phi, cid = e[sel].astype(np.float64), eta[sel], phi[sel], cid[sel]
    nan = np.full(n, np.nan)
    if e.size == 0:
        return {"r_phi": nan, "frac_outside_3x3": nan.copy()}
    order = np.lexsort((-e, cid))  # by cluster, hottest first
    first = order[np.r_[True, cid[order][1:] != cid[order][:-1]]]
    hot_eta = np.full(n, np.nan)
    hot_phi = np.full(n, np.nan)
    hot_eta[cid[first]] = eta[first]
    hot_phi[cid[first]] = phi[first]
    d_eta = np.abs(eta - hot_eta[cid]) / L2_DETA
    d_phi = np.abs(wrap_phi(phi - hot_phi[cid])) / L2_DPHI
    in_eta = d_eta < 1.5
    e33 = np.bincount(cid, np.where(in_eta & (d_phi < 1.5), e, 0.0), n)
    e37 = np.bincount(cid, np.where(in_eta & (d_phi < 3.5), e, 0.0), n)
    e_all = np.bincount(cid, e, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_phi = np.where(e37 > 0, e33 / e37, np.nan)
        outside = np.where(e_all > 0, 1.0 - e33 / e_all, np.nan)
    return {"r_phi": r_phi, "frac_outside_3x3": outside}


def negative_cell_rms(table: pa.Table) -> np.ndarray:
    """RMS (GeV) of the negative cell energies per layer, shape (4,) (NaN for a layer without any)."""
    e, _ = _flat(table, "cell_e")
    layer, _ = _flat(table, "cell_layer")
    out = np.full(N_LAYERS, np.nan)
    for k in range(N_LAYERS):
        neg = e[(layer == k) & (e < 0)].astype(np.float64)
        if neg.size:
            out[k] = float(np.sqrt(np.mean(neg**2)))
    return out


def sample_summary(table: pa.Table) -> dict[str, Any]:
    """The measured properties of one sample (see the module docstring); plain floats, JSON-ready."""
    col = {name: table.column(name).to_numpy() for name in table.column_names if not name.startswith("cell_")}
    e_true = col["truth_e"].astype(np.float64)
    e_cl = col["cluster_e"].astype(np.float64)
    response = e_cl / e_true
    shape = middle_layer_shape(table)
    noise_rms = negative_cell_rms(table)
    cell_noise, _ = _flat(table, "cell_noise")
    out: dict[str, Any] = {
        "n": int(table.num_rows),
        "mean_response": float(response.mean()),
        "median_response": median_response(response),
        "sigma_rel": sigma_rel(response),
        "ps_over_true": float(np.mean(col["cluster_e_ps"] / e_true)),
        "lost_upstream_over_true": float(np.mean(col["truth_e_lost_upstream"] / e_true)),
        "r_phi": float(np.nanmean(shape["r_phi"])),
        "frac_outside_3x3": float(np.nanmean(shape["frac_outside_3x3"])),
        "mean_cell_noise": float(np.mean(cell_noise)),
        "mean_n_cells": float(np.mean(col["n_cells"])),
    }
    for k, name in enumerate(LAYER_NAMES):
        out[f"frac_{name}"] = float(np.mean(col[f"cluster_e_{name}"] / e_cl))
        out[f"noise_rms_{name}"] = float(noise_rms[k])
    return out


def shifts(variant: dict[str, Any], nominal: dict[str, Any]) -> dict[str, float]:
    """Relative shift (variant / nominal - 1) of every numeric quantity both summaries share (except n).

    NaN where the nominal value is 0 or not finite; non-numeric entries are skipped.
    """
    out = {}
    for key, value in variant.items():
        ref = nominal.get(key)
        if key == "n" or not isinstance(value, (int, float)) or not isinstance(ref, (int, float)):
            continue
        out[key] = float(value) / float(ref) - 1.0 if ref != 0 and np.isfinite(ref) else float("nan")
    return out
