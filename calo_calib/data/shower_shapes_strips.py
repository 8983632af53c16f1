"""Strip-layer shower shapes w_s,tot, w_s3, F_side, E_ratio and ΔE from the φ-summed strip profile
(``egammaStripsShape``).

Definitions and simplifications: :mod:`calo_calib.data.shower_shapes` (module docstring).
:func:`strip_profile` builds the dense (B, S) profile of the strips in the window around the
hottest middle cell (:func:`calo_calib.data.shower_shapes_middle.middle_shapes`);
:func:`strip_shapes` computes the variables from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calo_calib.data.cell_segments import bincount, cell_deta, ratio, segments, wrap
from calo_calib.simulation.geometry import LAYER_L1, LAYER_L2, N_PHI

FSIDE_EMAX_MIN = 0.06  # GeV: F_side is 0 unless the hottest strip exceeds this (egammaStripsShape::setFside)
STRIP_HALF_ETA_L2 = 2.5  # strip profile: +-2.5 middle cells in eta (athena neta = 5) ...
STRIP_HALF_PHI_L1 = 1.0  # ... and +-1 strip cell in phi (athena nphi = 2)
WSTOT_HALF_ETA_L2 = 1.25  # w_s_tot: strips within +-1.25 middle cells (half the strip profile, ~20 strips)
_MAX_STRIP_SLOTS = 64  # strip index bound around the reference strip (a window spans at most 40 strips)
_POS_TOL = 1e-5  # eta tolerance (cell positions are float32)

STRIP_SHAPE_NAMES: tuple[str, ...] = ("w_s_tot", "w_s3", "f_side", "e_ratio", "delta_e")
"""The outputs of :func:`strip_shapes`, in order."""


def strip_pitch(eta: np.ndarray, s: np.ndarray, B: int, nominal: np.ndarray) -> np.ndarray:
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


@dataclass
class StripProfile:
    """The φ-summed strip profiles of B clusters on S slots (strip index in η, slot 0 the lowest).

    ``P`` (B, S) energy [GeV], ``C`` (B, S) bool: the slot holds a strip of the cluster, ``ref`` (B,)
    η of the slot ``off`` (the cluster's reference strip), ``deta1`` (B,) strip pitch, ``deta2`` (B,)
    middle-cell η size.
    """

    P: np.ndarray
    C: np.ndarray
    ref: np.ndarray
    off: int
    deta1: np.ndarray
    deta2: np.ndarray

    def slot_eta(self) -> np.ndarray:
        """(B, S) η of every slot (also of slots without a strip)."""
        return self.ref[:, None] + (np.arange(self.P.shape[1])[None, :] - self.off) * self.deta1[:, None]


def strip_profile(e, eta, phi, layer, seg, B, eta_h2, phi_h2, endcap) -> StripProfile | None:
    """The strips within ±2.5 middle cells in η, ±1 strip in φ of the hottest middle cell, summed over φ.

    None when no cluster has a strip in its window.
    """
    abs_h = np.abs(eta_h2)
    deta2 = cell_deta(LAYER_L2, abs_h, endcap)
    deta1 = cell_deta(LAYER_L1, abs_h, endcap)
    dphi1 = 2 * np.pi / N_PHI[LAYER_L1]
    idx = np.flatnonzero(layer == LAYER_L1)
    if idx.size == 0:
        return None
    s = seg[idx]
    in_win = (np.abs(eta[idx] - eta_h2[s]) <= STRIP_HALF_ETA_L2 * deta2[s] + _POS_TOL) & (
        np.abs(wrap(phi[idx] - phi_h2[s])) <= STRIP_HALF_PHI_L1 * dphi1 + _POS_TOL
    )
    idx, s = idx[in_win], s[in_win]
    if idx.size == 0:
        return None
    deta1 = strip_pitch(eta[idx], s, B, deta1)
    # Strip index relative to a reference strip of the cluster (its first strip in the window), so
    # that rounding never falls on a half-integer; then a dense (B, S) profile summed over phi.
    ref = np.zeros(B)
    first = segments(s)
    ref[s[first]] = eta[idx[first]]
    k = np.rint((eta[idx] - ref[s]) / deta1[s]).astype(np.int64)
    k = np.clip(k, -_MAX_STRIP_SLOTS, _MAX_STRIP_SLOTS)  # never reached: the window spans <= 40 strips
    off = -int(k.min())
    k += off
    S = int(k.max()) + 1  # slots of this batch's profiles (the span of the widest one)
    flat = s * S + k
    P = bincount(flat, e[idx], B * S).reshape(B, S)
    C = bincount(flat, None, B * S).reshape(B, S) > 0
    return StripProfile(P, C, ref, off, deta1, deta2)


def profile_maximum(prof: StripProfile) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(B,) slot of the hottest strip ``kmax``, its energy ``emax`` [GeV] (0 without strips), ``good``
    (a strip maximum above 0 GeV; ATLAS's emaxs1 starts at 0) and (B, S) ``rel``, each slot's index
    distance to the hottest strip."""
    P, C = prof.P, prof.C
    kmax = np.argmax(np.where(C, P, -np.inf), axis=1)
    emax = np.where(C.any(axis=1), P[np.arange(P.shape[0]), kmax], 0.0)
    rel = np.arange(P.shape[1])[None, :] - kmax[:, None]
    return kmax, emax, emax > 0, rel


def profile_width(P: np.ndarray, sel: np.ndarray, rel: np.ndarray, good: np.ndarray) -> np.ndarray:
    """(B,) √(Σ E_i (i − i_max)² / Σ E_i) over the slots ``sel`` of the (B, S) profile ``P``; 0 where the
    cluster is not ``good`` or either sum is ≤ 0 (``setWstot``/``setWs3``)."""
    w = np.where(sel, P, 0.0)
    s0 = w.sum(axis=1)
    s2 = (w * rel * rel).sum(axis=1)
    return np.where(good & (s0 > 0) & (s2 > 0), np.sqrt(np.maximum(s2, 0) / np.where(s0 > 0, s0, 1.0)), 0.0)


def strip_shapes(e, eta, phi, layer, seg, B, cl, eta_h2, phi_h2, endcap) -> dict[str, np.ndarray]:
    """w_s_tot, w_s3, F_side, E_ratio, DeltaE from the phi-summed strip profile (all 0 without strips)."""
    prof = strip_profile(e, eta, phi, layer, seg, B, eta_h2, phi_h2, endcap)
    if prof is None:
        return {k: np.zeros(B) for k in STRIP_SHAPE_NAMES}
    P, C = prof.P, prof.C
    kmax, emax, good, rel = profile_maximum(prof)
    slot_eta = prof.slot_eta()
    in_tot = C & (np.abs(slot_eta - eta_h2[:, None]) <= WSTOT_HALF_ETA_L2 * prof.deta2[:, None] + _POS_TOL)
    w_s_tot = profile_width(P, in_tot, rel, good)
    w_s3 = profile_width(P, C & (np.abs(rel) <= 1), rel, good)

    e3 = np.where(C & (np.abs(rel) <= 1), P, 0.0).sum(axis=1)
    e7 = np.where(C & (np.abs(rel) <= 3), P, 0.0).sum(axis=1)
    f_side = np.where(good & (emax > FSIDE_EMAX_MIN), ratio(e7 - e3, e3), 0.0)
    e2max, emin, has2 = second_maximum(P, C, kmax, rel, good)
    return {
        "w_s_tot": w_s_tot,
        "w_s3": w_s3,
        "f_side": f_side,
        "e_ratio": np.where(good, ratio(emax - e2max, emax + e2max), 0.0),
        "delta_e": np.where(has2, e2max - emin, 0.0),
    }


def second_maximum(
    P: np.ndarray, C: np.ndarray, kmax: np.ndarray, rel: np.ndarray, good: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E2max, E_min, has2), each (B,), of profiles ``P``/``C`` (B, S) with hottest slot ``kmax``.

    The second local maximum is the hottest strip with E > 0, other than ``kmax``, hotter than the
    nearest existing strip on each side (``setEmax2``); E_min the lowest strip strictly between the
    two maxima (``setEmin``; 0 without a second maximum or a strip between). ``rel`` (B, S) is the
    slot index minus ``kmax``, ``good`` (B,) the clusters whose hottest strip is above 0 GeV.
    """
    B, S = P.shape
    ar = np.arange(S)
    rows = np.arange(B)
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
    return e2max, emin, has2
