"""The egamma supercluster: seed topo-cluster, its satellites and the cell window (card §4.3, [S15]).

Follows athena's egammaSuperClusterBuilderBase and its electron and photon builders [S]:

- the seed is the topo-cluster holding the hottest middle-layer cell of the window;
- a satellite is a topo-cluster of E > ``satellite_min_e`` (egammaTopoClusterCopier's ECut) whose
  barycentre lies in a 5 x 5 middle-cell window around the seed's (``satellite_window_*``), for every
  particle type;
- for electrons also a topo-cluster in the wider 5 x 12 window (``electron_window_*``) matched to the
  electron's track; for converted photons a topo-cluster matched to a track of the conversion vertex
  (Si conversions only, UseOnlySi), with no window;
- the supercluster keeps the L2/L3 cells of the merged topo-clusters within +-3/2 (barrel) or +-5/2
  (end-cap) middle cells in eta of the hottest middle cell, and their presampler and strip cells
  within the middle layer's phi extent +-1 middle cell.

A topo-cluster is matched to a track when its barycentre is within EMTrackMatchBuilder's narrow
windows of the track extrapolated to the middle layer [S]: |d eta| < ``track_match_deta`` and
d phi from -``track_match_dphi`` (away from the brem) to +``track_match_dphi_brem`` (towards the
brem photons, the side of the track's perigee direction). Simplifications (docs/simulation.md): the
extrapolation is the electron's own line (the last-measurement extrapolation; no rescaled perigee
extrapolation and no best-track competition with other tracks: pile-up tracks are not reconstructed),
and the vertex match (matchesVtx) is covered by the match to the vertex's tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calo_calib.simulation.clustering import TopoClusters, topo_clusters
from calo_calib.simulation.geometry import L2_DETA, L2_DPHI, LAYER_L2, LayerWindow, wrap_phi

# Satellite rule of each window (batch row).
WINDOW_ONLY, SAME_TRACK, VERTEX_TRACKS = 0, 1, 2


@dataclass
class Tracks:
    """Reconstructed tracks of each window extrapolated to the middle layer, (c, t) arrays.

    ``eta`` (positive-eta frame) and ``phi`` (absolute, rad) of the extrapolation; ``brem_side`` +-1,
    the sign of d phi on which the track's brem photons land (towards its perigee direction);
    ``valid`` bool, the track exists.
    """

    eta: np.ndarray
    phi: np.ndarray
    brem_side: np.ndarray
    valid: np.ndarray


def egamma_supercluster(
    energy: list[np.ndarray],
    sigma: list[np.ndarray],
    windows: list[LayerWindow],
    rule: np.ndarray,
    tracks: Tracks,
    cfg,
) -> list[np.ndarray]:
    """Select the cells of each window's egamma supercluster.

    Args:
        energy: per layer (c, ne, nph) cell energies (GeV, noise included).
        sigma: per layer (c, ne, nph) total noise sigma used for the thresholds (GeV).
        windows: per layer the simulated cells.
        rule: (c,) int, the satellite rule: WINDOW_ONLY (photons without Si conversion tracks),
            SAME_TRACK (electrons) or VERTEX_TRACKS (Si-converted photons).
        tracks: the tracks of each window (the electron; the legs of a conversion).
        cfg: the ``detector.clustering`` node.
    Returns:
        Per layer a (c, ne, nph) bool mask of the cells in the supercluster; a window whose hottest
        middle cell is in no topo-cluster has none.
    """
    topo = topo_clusters(energy, sigma, windows, cfg)
    c = energy[0].shape[0]
    rows = np.arange(c)

    # Seed: the topo-cluster of the hottest middle-layer cell (the centre of the cell window too).
    w2 = windows[LAYER_L2]
    e2 = np.where(w2.valid, energy[LAYER_L2], -np.inf)
    i_h, j_h = np.divmod(np.argmax(e2.reshape(c, -1), axis=1), e2.shape[2])
    seed = topo.labels[LAYER_L2][rows, i_h, j_h]  # (c,) -1: no cluster
    merged = np.zeros(topo.row.size, bool)
    merged[seed[seed >= 0]] = True
    merged |= satellites(topo, seed, rule, tracks, cfg)

    core = [(lab >= 0) & merged[np.maximum(lab, 0)] for lab in topo.labels]
    cells = topo.with_perimeter(core)
    eta_h_lo = w2.eta_lo[rows, i_h]
    return _supercluster_window(cells, windows, eta_h_lo, eta_h_lo + w2.deta, cfg)


def satellites(topo: TopoClusters, seed: np.ndarray, rule: np.ndarray, tracks: Tracks, cfg) -> np.ndarray:
    """(k,) bool: the topo-clusters that are satellites of their window's seed ``seed`` (c,)."""
    row = topo.row
    s = seed[row]
    has_seed = s >= 0
    s = np.maximum(s, 0)
    d_eta = np.abs(topo.eta - topo.eta[s])
    d_phi = np.abs(wrap_phi(topo.phi - topo.phi[s]))

    def in_window(n_eta, n_phi):
        return (d_eta < 0.5 * float(n_eta) * L2_DETA) & (d_phi < 0.5 * float(n_phi) * L2_DPHI)

    candidate = has_seed & (np.arange(row.size) != s) & (topo.e > float(cfg.satellite_min_e))
    window = in_window(cfg.satellite_window_eta, cfg.satellite_window_phi)
    matched = track_matched(topo.eta, topo.phi, row, tracks, cfg)
    r = rule[row]
    same_track = (r == SAME_TRACK) & in_window(cfg.electron_window_eta, cfg.electron_window_phi) & matched
    vertex_tracks = (r == VERTEX_TRACKS) & matched
    return candidate & (window | same_track | vertex_tracks)


def track_matched(eta: np.ndarray, phi: np.ndarray, row: np.ndarray, tracks: Tracks, cfg) -> np.ndarray:
    """(k,) bool: the positions (``eta``, ``phi``, in window ``row``) matched to any track of their window."""
    d_eta = np.abs(eta[:, None] - tracks.eta[row])
    d_phi = wrap_phi(phi[:, None] - tracks.phi[row]) * tracks.brem_side[row]
    ok = (
        tracks.valid[row]
        & (d_eta < float(cfg.track_match_deta))
        & (d_phi > -float(cfg.track_match_dphi))
        & (d_phi < float(cfg.track_match_dphi_brem))
    )
    return ok.any(axis=1)


def _supercluster_window(
    topo: list[np.ndarray], windows: list[LayerWindow], eta_h_lo: np.ndarray, eta_h_hi: np.ndarray, cfg
) -> list[np.ndarray]:
    """The egamma supercluster cells of the merged topo-clusters ``topo`` (per layer (c, ne, nph) bool).

    L2/L3 cells within +-eg_half_eta middle cells in eta of the hottest middle cell (whose lower and
    upper eta edges are ``eta_h_lo``, ``eta_h_hi`` (c,)), presampler and strip cells within the middle
    layer's phi extent +- ``ps_l1_extra_phi`` cells; a cluster without middle-layer cells is dropped.
    """
    w2 = windows[LAYER_L2]
    half_eta = np.where(w2.endcap, float(cfg.eg_half_eta_endcap), float(cfg.eg_half_eta_barrel))
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
