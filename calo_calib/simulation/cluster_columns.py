"""From the clustered cells of one batch to the output columns (:mod:`calo_calib.io.schema`).

The last stages of :meth:`calo_calib.simulation.generator.Simulator.batch`: cluster sums, position
and truth bookkeeping per cluster (c clusters), then the selected clusters' cells flattened layer by
layer (eta, then phi) with their offsets. No random numbers. Energies in GeV, lengths in mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calo_calib.simulation import geometry as geo

CELL_NAMES = ("cell_e", "cell_eta", "cell_phi", "cell_x", "cell_y", "cell_z", "cell_layer", "cell_noise")


@dataclass
class Clustered:
    """The readout and clustering of one batch: per layer (c, ne, nph) cell energies ``cells``,
    clustering noise ``sigma_tot`` and selection ``masks``; ``dep`` the deposited accordion signal
    (None for the presampler); ``windows``; ``phi_c`` (c,) the window centre."""

    cells: list[np.ndarray]
    sigma_tot: list[np.ndarray]
    masks: list[np.ndarray]
    dep: list
    windows: list[geo.LayerWindow]
    phi_c: np.ndarray


def cluster_columns(
    ev, info: dict, showers, lon, cl: Clustered, electron: bool, min_et: float
) -> tuple[dict, np.ndarray]:
    """Per-cluster columns (c,) of the whole batch and ``good`` (c,): the clusters that are egamma
    clusters (positive energy, cells, and positive middle-layer energy, which gives the position)
    with an EM-scale E_T = E / cosh(eta) of at least ``min_et`` GeV (the supercluster's EtThresholdCut)."""
    c, sc, masks, cells = ev.e.shape[0], showers.cluster, cl.masks, cl.cells
    layer_e = np.stack([np.where(m, e, 0.0).sum(axis=(1, 2)) for m, e in zip(masks, cells)], axis=1)  # (c, 4)
    cluster_e = layer_e.sum(axis=1)
    dep_cluster = sum(np.where(masks[layer], cl.dep[layer], 0.0).sum(axis=(1, 2)) for layer in (1, 2, 3))
    w2 = cl.windows[geo.LAYER_L2]
    wgt = np.where(masks[2], np.maximum(cells[2], 0.0), 0.0)
    wsum = np.maximum(wgt.sum(axis=(1, 2)), 1e-12)
    cl_eta = (wgt * w2.eta_centre[:, :, None]).sum(axis=(1, 2)) / wsum
    dphi_rel = geo.wrap_phi(w2.phi_centre - cl.phi_c[:, None])
    cl_phi = geo.wrap_phi(cl.phi_c + (wgt * dphi_rel[:, None, :]).sum(axis=(1, 2)) / wsum)
    n_cells = sum(m.sum(axis=(1, 2)) for m in masks)
    good = (cluster_e > 0) & (n_cells > 0) & (wgt.sum(axis=(1, 2)) > 0) & (cluster_e >= min_et * np.cosh(cl_eta))

    def per_cluster(x):
        return np.bincount(sc, x, c)

    e_acc = layer_e[:, 1:].sum(axis=1)
    et_over_pt = info["reco"].et_over_pt(e_acc, np.cosh(cl_eta)) if info["reco"] is not None else np.zeros(c)
    sign = ev.sign
    cols = {
        "cluster_e": cluster_e, "cluster_eta": cl_eta * sign, "cluster_phi": cl_phi,
        "cluster_e_ps": layer_e[:, 0], "cluster_e_l1": layer_e[:, 1], "cluster_e_l2": layer_e[:, 2],
        "cluster_e_l3": layer_e[:, 3], "cluster_e_tg3": np.zeros(c), "mu": ev.mu,
        "n_cells": n_cells.astype(np.int32), "is_crack": (np.abs(cl_eta) >= 1.37) & (np.abs(cl_eta) <= 1.52),
        "conversion_type": info["ctype"].astype(np.int8), "conv_r": info["conv_r_input"],
        "conv_pt_ratio": info["conv_pt_ratio"], "conv_et_over_pt": et_over_pt, "conv_pt": info["conv_pt"],
        "truth_e": ev.e, "truth_eta": ev.abs_eta * sign, "truth_phi": ev.phi, "truth_vertex_z": ev.z0 * sign,
        "truth_e_lost_upstream": per_cluster(lon.e_up), "truth_e_lost_passive": per_cluster(lon.e_passive),
        "truth_e_leak_behind": per_cluster(lon.e_leak),
        "truth_e_outside_cluster": per_cluster(lon.e_acc_total) - dep_cluster, "truth_e_dep_cluster": dep_cluster,
        "truth_converted": info["converted"], "truth_conv_r": info["conv_r"],
        "truth_conv_fraction": info["conv_fraction"], "truth_brem_fraction": info["brem_fraction"],
        "truth_n_showers": np.bincount(sc, minlength=c).astype(np.int8),
    }  # fmt: skip
    # Particle label: the reconstructed category for photons.
    if electron:
        cols["particle"] = np.full(c, "electron", dtype=object)
    else:
        cols["particle"] = np.where(info["ctype"] > 0, "photon_conv", "photon_unconv").astype(object)
    return cols, good


def selected_output(cols: dict, good: np.ndarray, cl: Clustered, sign: np.ndarray) -> dict[str, np.ndarray]:
    """The ``good`` clusters' columns plus their cells, flattened layer by layer (eta then phi), with
    ``cell_offsets`` (k + 1,), ``n_cells`` recounted and ``n_rejected`` (1,)."""
    c = good.shape[0]
    flat: dict[str, list] = {name: [] for name in CELL_NAMES}
    for layer in range(geo.N_LAYERS):
        w = cl.windows[layer]
        shape = cl.masks[layer].shape
        x, y, z = w.cell_xyz()
        flat["cell_e"].append(cl.cells[layer].reshape(c, -1))
        flat["cell_eta"].append(np.broadcast_to(w.eta_centre[:, :, None] * sign[:, None, None], shape).reshape(c, -1))
        flat["cell_phi"].append(np.broadcast_to(geo.wrap_phi(w.phi_centre)[:, None, :], shape).reshape(c, -1))
        flat["cell_x"].append(x.reshape(c, -1))
        flat["cell_y"].append(y.reshape(c, -1))
        flat["cell_z"].append((z * sign[:, None, None]).reshape(c, -1))
        flat["cell_layer"].append(np.full((c, shape[1] * shape[2]), layer, dtype=np.int8))
        flat["cell_noise"].append(cl.sigma_tot[layer].reshape(c, -1))
    mask_all = np.concatenate([m.reshape(c, -1) for m in cl.masks], axis=1)
    mask_all &= good[:, None]  # one boolean selection below (row-major: the good rows' cells in order)
    counts_sel = mask_all[good].sum(axis=1)
    out = {k: v[good] for k, v in cols.items()}
    out["n_cells"] = counts_sel.astype(np.int32)
    offsets = np.zeros(int(good.sum()) + 1, dtype=np.int32)
    np.cumsum(counts_sel, out=offsets[1:])
    out["cell_offsets"] = offsets
    for name, parts in flat.items():
        out[name] = np.concatenate(parts, axis=1)[mask_all]
    out["n_rejected"] = np.array([int((~good).sum())])
    return out


def noise_truth_columns(cl: Clustered, good: np.ndarray, pu_cells: list, el_cells: list) -> dict[str, np.ndarray]:
    """``truth_e_pileup_cluster`` and ``truth_e_noise_cluster`` (k,) [GeV]: pile-up and electronic noise
    summed over each selected cluster's accordion cells (L1-L3)."""
    out = {}
    for name, parts in (("truth_e_pileup_cluster", pu_cells), ("truth_e_noise_cluster", el_cells)):
        # np.where broadcasts a layer without noise (0.0) to the mask's shape, so the sum is always (c,)
        in_cluster = sum(np.where(cl.masks[layer], parts[layer], 0.0).sum(axis=(1, 2)) for layer in (1, 2, 3))
        out[name] = in_cluster[good]
    return out


def l2_window_columns(cl: Clustered, good: np.ndarray, sign: np.ndarray) -> dict[str, np.ndarray]:
    """The full middle-layer window of each selected cluster (validation only; see Simulator.batch)."""
    w2 = cl.windows[geo.LAYER_L2]
    e_win = np.where(w2.valid, cl.cells[2], 0.0)[good]
    hot_e = np.where(w2.valid[good], e_win, -np.inf)
    return {
        "l2_window_e": e_win,
        "l2_window_eta": (w2.eta_centre * sign[:, None])[good],
        "l2_window_phi": geo.wrap_phi(w2.phi_centre)[good],
        "l2_window_valid": w2.valid[:, :, 0][good],
        "l2_window_hot": hot_e.reshape(hot_e.shape[0], -1).argmax(axis=1),
    }
