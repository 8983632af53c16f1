"""The particle's way through the inner detector and solenoid: conversions and bremsstrahlung.

Output is a flat list of electromagnetic (sub)showers per cluster, each with an energy, the depth
(X0 along the path) where it starts, and a straight-line state (radius, azimuth, direction) from
which its impact point at any calorimeter layer follows. Azimuths are relative to the generated
particle's phi and treated in the small-angle approximation (deflections are < 0.1 rad above
5 GeV).

Physics (card §2.3, §2.4):
* photons convert after an Exp(9/7 X0) depth; inside the inner detector (X < X_ID) the pair shares
  the energy with dsigma/dx ∝ 1 - 4/3 x (1 - x) and each electron is propagated like a primary one;
  later conversions start a single shower at the conversion depth;
* electrons lose energy at each thin inner-detector element by Bethe-Heitler bremsstrahlung,
  -ln z ~ Gamma(X/ln 2), and bend in the 2 T field (d psi/dr = -q 0.3 B / pT); brem photons leave
  tangentially and are grouped per inner-detector region (pixel, SCT, TRT);
* electron showers start where the dense material begins (end of the inner detector), brem-photon
  showers where the photon converts (at least there too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calo_calib.simulation.material import InnerDetectorProfile

CONVERSION_MEAN_X0 = 9.0 / 7.0  # photon mean free path in X0 (high-energy limit, [R-PDG])
R_REF_MM = 1500.0  # radius at which grouped brem photons are averaged
N_BREM_GROUPS = 3


@dataclass
class Showers:
    """Flat arrays, one entry per (sub)shower, sorted by cluster index."""

    cluster: np.ndarray  # (s,) int, index of the cluster in the batch
    e: np.ndarray  # (s,) GeV
    t0: np.ndarray  # (s,) X0 along the path where the shower starts
    r_a: np.ndarray  # (s,) mm, radius of the straight-line state
    phi_a: np.ndarray  # (s,) rad relative to the particle's phi, position at r_a
    psi_a: np.ndarray  # (s,) rad relative to the particle's phi, direction beyond r_a
    n_charged: np.ndarray  # (s,) charged particles the shower starts with (1: electron, 2: converted photon)

    def phi_at(self, radius: np.ndarray) -> np.ndarray:
        """Relative azimuth of each shower's axis at transverse radius ``radius`` (mm), shape (s,)."""
        return (self.r_a * self.phi_a + self.psi_a * (radius - self.r_a)) / radius

    @staticmethod
    def concat(parts: list[Showers]) -> Showers:
        merged = Showers(*(np.concatenate([getattr(p, f) for p in parts]) for f in Showers.__dataclass_fields__))
        order = np.argsort(merged.cluster, kind="stable")
        return Showers(*(getattr(merged, f)[order] for f in Showers.__dataclass_fields__))


@dataclass
class ElectronResult:
    """Result of propagating electrons through the inner detector."""

    e_final: np.ndarray  # (n,) energy entering the dense material, GeV
    keep_fraction: np.ndarray  # (n,) e_final / e_initial
    showers: Showers  # the electrons' own showers and their brem photons


def _advance(r_a, phi_a, psi_a, r_b, k):
    """Move a track from radius r_a to r_b (mm) with constant curvature term k (rad/mm).

    Small-angle solution of d(r phi)/dr = psi, d psi/dr = k.
    """
    d = r_b - r_a
    phi_b = (r_a * phi_a + psi_a * d + 0.5 * k * d * d) / r_b
    return phi_b, psi_a + k * d


def _advance_in_field(r_a, phi_a, psi_a, r_b, k, r_exit):
    """Advance with curvature k inside the solenoid (r < r_exit) and straight beyond."""
    r_mid = np.clip(r_exit, r_a, r_b)
    phi_m, psi_m = _advance(r_a, phi_a, psi_a, np.maximum(r_mid, 1e-6), k)
    phi_m = np.where(r_mid > r_a, phi_m, phi_a)
    psi_m = np.where(r_mid > r_a, psi_m, psi_a)
    phi_b, psi_b = _advance(r_mid, phi_m, psi_m, np.maximum(r_b, 1e-6), 0.0)
    return np.where(r_b > r_mid, phi_b, phi_m), np.where(r_b > r_mid, psi_b, psi_m)


def propagate_electrons(
    cluster: np.ndarray,
    e0: np.ndarray,
    charge: np.ndarray,
    r0: np.ndarray,
    phi0: np.ndarray,
    x_id: np.ndarray,
    cosh_eta: np.ndarray,
    sinh_eta: np.ndarray,
    idp: InnerDetectorProfile,
    b_tesla: float,
    solenoid_radius: float,
    solenoid_half_length: float,
    min_photon_e: float,
    rng: np.random.Generator,
    group_by_region: bool = True,
) -> ElectronResult:
    """Propagate electrons from radius ``r0`` through the inner-detector elements beyond it.

    All arrays have shape (n,). ``phi0`` is the starting position and direction (relative azimuth,
    a radial start). Returns the electrons' showers (start at X_ID) and their brem photons: one
    photon per inner-detector region (pixel, SCT, TRT) with ``group_by_region``, else one in all.
    """
    n = e0.shape[0]
    r_exit = np.minimum(solenoid_radius, solenoid_half_length / np.maximum(sinh_eta, 1e-9))
    e = e0.copy()
    r, phi, psi = r0.copy(), phi0.copy(), phi0.copy()
    g_e = np.zeros((N_BREM_GROUPS, n))
    g_phi = np.zeros((N_BREM_GROUPS, n))
    g_psi = np.zeros((N_BREM_GROUPS, n))
    g_t = np.zeros((N_BREM_GROUPS, n))
    cum_x = 0.0
    for r_k, f_k, grp in zip(idp.radius, idp.fraction, idp.group):
        x_k = f_k * x_id  # X0 of this element along the path
        cum_x = cum_x + x_k
        active = r_k > r0
        k = -charge * 0.3 * b_tesla / (e / cosh_eta) / 1000.0  # rad/mm, pT in GeV
        phi_new, psi_new = _advance_in_field(r, phi, psi, np.full(n, r_k), k, r_exit)
        phi = np.where(active, phi_new, phi)
        psi = np.where(active, psi_new, psi)
        r = np.where(active, r_k, r)
        # Bethe-Heitler: -ln z ~ Gamma(X / ln 2)
        shape = np.maximum(x_k / np.log(2.0), 1e-12)
        z = np.exp(-rng.gamma(shape))
        e_ph = np.where(active, e * (1.0 - z), 0.0)
        e = e - e_ph
        phi_ref = (r_k * phi + psi * (R_REF_MM - r_k)) / R_REF_MM
        grp = grp if group_by_region else 0
        g_e[grp] += e_ph
        g_phi[grp] += e_ph * phi_ref
        g_psi[grp] += e_ph * psi
        g_t[grp] += e_ph * (cum_x - 0.5 * x_k)
    # Soft brem stays with its electron (card §6: no GFlash for very soft pieces).
    soft = g_e < min_photon_e
    e = e + np.where(soft, g_e, 0.0).sum(axis=0)
    # Straight-line state of the electron after the field region.
    k = -charge * 0.3 * b_tesla / (e / cosh_eta) / 1000.0
    r_out = np.maximum(r_exit, r)
    phi_out, psi_out = _advance_in_field(r, phi, psi, r_out, k, r_exit)
    t_id = x_id
    el = Showers(cluster, e, t_id.copy(), r_out, phi_out, psi_out, np.ones(n, dtype=np.int8))
    parts = [el]
    for grp in range(N_BREM_GROUPS):
        hard = ~soft[grp]
        if not np.any(hard):
            continue
        eg = g_e[grp, hard]
        t_emit = g_t[grp, hard] / eg
        t_start = np.maximum(t_emit + rng.exponential(CONVERSION_MEAN_X0, eg.shape[0]), x_id[hard])
        parts.append(
            Showers(
                cluster[hard],
                eg,
                t_start,
                np.full(eg.shape[0], R_REF_MM),
                g_phi[grp, hard] / eg,
                g_psi[grp, hard] / eg,
                np.full(eg.shape[0], 2, dtype=np.int8),  # the pair, once converted
            )
        )
    return ElectronResult(e, e / e0, Showers.concat(parts))


def sample_pair_fraction(n: int, rng: np.random.Generator) -> np.ndarray:
    """Energy fraction x of the conversion electron: dsigma/dx ∝ 1 - 4/3 x (1 - x) ([R-PDG])."""
    out = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        x = rng.random(todo.size)
        accept = rng.random(todo.size) < 1.0 - 4.0 / 3.0 * x * (1.0 - x)
        out[todo[accept]] = x[accept]
        todo = todo[~accept]
    return out
