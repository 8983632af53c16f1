"""The minimum-bias library prepared for the pile-up overlay: impacts and same-event neighbours.

:class:`Prepared` holds the library particles that reach the calorimeter with a signal, ordered by
(event, middle-layer impact eta), with their impacts on every layer (:func:`helix_impacts`: photons
straight, charged particles on helices in the solenoid field) and, per particle, the other particles
of its event that can land in the same cluster window (:func:`neighbours`). :func:`library_geometry`
builds these once per library, field and window (cached per process); the per-detector parts of
:class:`Prepared` are added by :class:`calo_calib.simulation.pileup.ParticlePileup`. Angles in rad,
energies in GeV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from omegaconf import OmegaConf

from calo_calib.simulation import geometry as geo
from calo_calib.simulation.minbias import KIND_CHARGED, MinBiasLibrary


@dataclass
class Prepared:
    """The library particles that reach the calorimeter with a signal, with their impacts.

    Particle arrays (n,) are ordered by (event, middle-layer impact eta).
    """

    lib: MinBiasLibrary
    kind: np.ndarray  # (n,) int8
    energy: np.ndarray  # (n,) GeV
    impacts: np.ndarray  # (n, 8) float32: impact eta (signed as the particle) per layer, then phi per layer
    eta_imp: np.ndarray  # (4, n) impact eta per layer: a view of ``impacts``
    phi_imp: np.ndarray  # (4, n) impact phi per layer: a view of ``impacts``
    pool_eta: np.ndarray  # (2n,) sorted signed L2 impact eta, both reflections
    pool_particle: np.ndarray  # (2n,) particle index
    pool_flip: np.ndarray  # (2n,) +1 / -1
    density: np.ndarray  # (4, n_eta_bins) mean EM-scale energy per interaction per unit eta x phi
    em_row: np.ndarray  # (n,) int32 flat row of the mini-shower tables (energy, |eta| bins) at start quantile 0
    mip_e: np.ndarray  # (n, 4) mean EM-scale energy per layer as a MIP (GeV)
    nb_start: np.ndarray  # (n + 1,) CSR: same-event particles within 2 x the window of each particle
    nb_index: np.ndarray
    eta2: np.ndarray  # (n,) float32 middle-layer impact eta, contiguous (a copy of eta_imp[LAYER_L2])
    phi2: np.ndarray  # (n,) float32 middle-layer impact phi, contiguous
    nb_eta: np.ndarray  # eta2[nb_index], float32: the neighbours' values in neighbour-list order
    nb_phi: np.ndarray  # phi2[nb_index]


def helix_impacts(lib: MinBiasLibrary, det) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Impact (eta, phi) of every particle on each layer's surface; (4, n), (4, n), (n,) arrives.

    Photons go straight (impact = direction). Charged particles follow a helix of radius
    pT / (0.3 B) inside the solenoid (r < R_sol, |z| < L_sol), then a straight line; a helix that
    leaves the field through neither the barrel nor the ends curls up and never arrives. A particle
    with |eta| < barrel_end hits the barrel surfaces (radius of the layer at its |eta|), otherwise
    the end-cap planes.
    """
    f = det.field
    b, r_sol, z_sol = float(f.b_tesla), float(f.solenoid_radius_mm), float(f.solenoid_half_length_mm)
    n = lib.eta.size
    eta_imp = np.repeat(lib.eta[None, :].astype(np.float64), geo.N_LAYERS, axis=0)
    phi_imp = np.repeat(lib.phi[None, :].astype(np.float64), geo.N_LAYERS, axis=0)
    arrives = np.ones(n, bool)
    ch = np.flatnonzero(lib.charge != 0)
    eta = lib.eta[ch].astype(np.float64)
    phi0 = lib.phi[ch].astype(np.float64)
    q = lib.charge[ch].astype(np.float64)
    a_eta = np.abs(eta)
    sinh = np.sinh(a_eta)
    rho = lib.pt[ch].astype(np.float64) / (0.3 * b) * 1000.0  # mm
    # Transverse arc length to leave the field: through the barrel (chord 2 rho sin(s/2rho) = R_sol) or the end.
    with np.errstate(invalid="ignore", divide="ignore"):
        s_r = np.where(2 * rho > r_sol, 2 * rho * np.arcsin(np.minimum(r_sol / (2 * rho), 1.0)), np.inf)
        s_z = np.where(sinh > 0, z_sol / sinh, np.inf)
    s_exit = np.minimum(s_r, s_z)
    arrives[ch] = np.isfinite(s_exit)
    s_exit = np.where(np.isfinite(s_exit), s_exit, 0.0)
    turn = s_exit / rho  # angle turned in the field
    r_e = 2 * rho * np.sin(0.5 * turn)
    phi_e = phi0 - q * 0.5 * turn
    psi_e = phi0 - q * turn
    z_e = s_exit * sinh
    x_e, y_e = r_e * np.cos(phi_e), r_e * np.sin(phi_e)
    dx, dy = np.cos(psi_e), np.sin(psi_e)
    pd = x_e * dx + y_e * dy
    barrel = a_eta < float(det.accordion.barrel_end)
    sign = np.sign(eta)
    for layer in range(geo.N_LAYERS):
        big_r = geo.barrel_radius(layer, a_eta)
        u_b = -pd + np.sqrt(np.maximum(pd * pd - (r_e * r_e - big_r * big_r), 0.0))
        u_e = np.maximum(geo.ENDCAP_Z[layer] - z_e, 0.0) / np.maximum(sinh, 1e-9)
        u = np.where(barrel, u_b, u_e)
        x, y, z = x_e + u * dx, y_e + u * dy, z_e + u * sinh
        rt = np.maximum(np.hypot(x, y), 1e-6)
        eta_imp[layer, ch] = np.arcsinh(z / rt) * sign
        phi_imp[layer, ch] = np.arctan2(y, x)
    return eta_imp, phi_imp, arrives


def search_f32(sorted32: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``np.searchsorted(sorted32, v)`` (side left) for a sorted float32 array and float64 values.

    numpy would cast the whole float32 array (~3 M anchors) to float64 on every call. For float32
    a, a >= v holds exactly when a >= the smallest float32 not below v, so searching that value in
    float32 gives the same indices.
    """
    v32 = v.astype(np.float32)
    low = v32 < v  # rounded down: step to the next float32 up
    v32[low] = np.nextafter(v32[low], np.float32(np.inf))
    return np.searchsorted(sorted32, v32)


def neighbours(key: np.ndarray, phi: np.ndarray, d_eta: float, d_phi: float) -> tuple[np.ndarray, np.ndarray]:
    """CSR (start (n+1,), index) of the other particles of the same event within d_eta and d_phi.

    ``key`` (n,) sorted event x 100 + eta: the candidates of a particle are a contiguous range.
    Built in chunks of particles, so the candidate pairs in memory stay bounded (~20 MB).
    """
    n = key.size
    lo_all = np.searchsorted(key, key - d_eta)
    hi_all = np.searchsorted(key, key + d_eta)
    counts = np.zeros(n, np.int64)
    parts = []
    for c0 in range(0, n, 200_000):
        c1 = min(c0 + 200_000, n)
        lo, count = lo_all[c0:c1], hi_all[c0:c1] - lo_all[c0:c1]
        src = np.repeat(np.arange(c0, c1), count)
        dst = np.repeat(lo, count) + (np.arange(src.size) - np.repeat(np.cumsum(count) - count, count))
        keep = (dst != src) & (np.abs(geo.wrap_phi(phi[dst] - phi[src])) < d_phi)
        counts[c0:c1] = np.bincount(src[keep] - c0, minlength=c1 - c0)
        parts.append(dst[keep].astype(np.int32))  # src is sorted: dst is grouped by particle
    start = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=start[1:])
    return start, np.concatenate(parts)


def library_geometry(lib: MinBiasLibrary, det, photon_min_e: float, w_eta: float, w_phi: float) -> dict:
    """Impacts, the anchor pool and the neighbour lists: they depend on the library, the field,
    the barrel/end-cap boundary and the window only, so detector variants that change material
    or shower knobs share them (cached per process)."""
    pcfg = det.readout.pileup
    key_parts = (
        int(pcfg.library_events), int(pcfg.library_seed), float(pcfg.sqrt_s_gev), OmegaConf.to_yaml(det.field),
        float(det.accordion.barrel_end), photon_min_e, w_eta, w_phi,
    )  # fmt: skip
    if key_parts in _GEOMETRY:
        return _GEOMETRY[key_parts]
    eta_imp, phi_imp, arrives = helix_impacts(lib, det)
    energy = lib.energy.astype(np.float64)
    usable = arrives & ((lib.kind == KIND_CHARGED) | (energy >= photon_min_e))
    idx = np.flatnonzero(usable)
    key = lib.event[idx].astype(np.float64) * 100.0 + eta_imp[geo.LAYER_L2][idx]  # |eta| < 50: events never mix
    order = np.argsort(key)
    idx = idx[order]
    # One row (32 bytes) per particle: a deposit's 8 impacts come in one cache line, not from 8
    # arrays of ~6 MB each (the gathers by random particle index are the cost).
    impacts = np.concatenate([eta_imp[:, idx], phi_imp[:, idx]]).T.astype(np.float32, order="C")
    eta_imp, phi_imp = impacts[:, :4].T, impacts[:, 4:].T
    e2 = eta_imp[geo.LAYER_L2]
    n = idx.size
    pool_eta = np.concatenate([e2, -e2])
    o = np.argsort(pool_eta)
    nb_start, nb_index = neighbours(key[order], phi_imp[geo.LAYER_L2], 2 * w_eta, 2 * w_phi)
    # Contiguous middle-layer copies, and the neighbours' values in neighbour-list order: the
    # anchor search reads them in sequence instead of gathering from the 32-byte records.
    eta2, phi2 = np.ascontiguousarray(e2), np.ascontiguousarray(phi_imp[geo.LAYER_L2])
    out = {
        "kind": lib.kind[idx], "energy": energy[idx], "impacts": impacts, "eta_imp": eta_imp, "phi_imp": phi_imp,
        "pool_eta": pool_eta[o], "pool_particle": np.concatenate([np.arange(n), np.arange(n)])[o],
        "pool_flip": np.where(o < n, 1, -1).astype(np.int8), "nb_start": nb_start, "nb_index": nb_index,
        "eta2": eta2, "phi2": phi2, "nb_eta": eta2[nb_index], "nb_phi": phi2[nb_index],
    }  # fmt: skip
    _GEOMETRY[key_parts] = out
    return out


_GEOMETRY: dict[tuple, dict] = {}
