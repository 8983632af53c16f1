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
  -ln z ~ Gamma(X/ln 2), resolved into its individual photons (the Gamma process is a Poisson
  process of jumps with the 1/k spectrum, :func:`sample_element_brem`), and bend in the 2 T field
  (d psi/dr = -q 0.3 B / pT); each photon leaves along the electron's tangent at its emission
  point, flies straight and converts Exp(9/7 X0) later; a per-electron shower budget merges the
  softest or overlapping photons into their nearest shower (docs/simulation.md, "Brem photons");
* electron showers start where the dense material begins (end of the inner detector), brem-photon
  showers where the photon converts (at least there too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calo_calib.simulation.material import InnerDetectorProfile

CONVERSION_MEAN_X0 = 9.0 / 7.0  # photon mean free path in X0 (high-energy limit, [R-PDG])
R_REF_MM = 1500.0  # radius at which every shower's straight line is stored (merges are averages there)
MAX_PHOTON_SHOWERS = 4  # default shower budget: separate brem-photon showers per electron
MERGE_DPHI = 0.005  # rad: a photon landing this close to a harder shower is merged into it


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
class BremPhotons:
    """Every brem photon above the threshold, before any merging (flat arrays, one per photon)."""

    electron: np.ndarray  # (m,) int, index of the radiating electron in the call
    e: np.ndarray  # (m,) GeV
    e_parent: np.ndarray  # (m,) GeV, the electron's energy just before this emission
    r_emit: np.ndarray  # (m,) mm, emission radius (an inner-detector element)
    phi_ref: np.ndarray  # (m,) rad, relative azimuth of the straight photon line at R_REF_MM
    psi: np.ndarray  # (m,) rad, relative direction (the electron's tangent at emission)
    t_emit: np.ndarray  # (m,) X0 along the path at emission
    t_start: np.ndarray  # (m,) X0 along the path where the photon converts (>= X_ID)
    separate: np.ndarray  # (m,) bool, the photon got its own shower (else merged into a neighbour)


@dataclass
class ElectronResult:
    """Result of propagating electrons through the inner detector."""

    e_final: np.ndarray  # (n,) energy of the electron's own shower (with merged photons), GeV
    keep_fraction: np.ndarray  # (n,) 1 - (photons >= min_photon_e) / e_initial (soft brem stays)
    showers: Showers  # the electrons' own showers and their brem photons
    e_track: np.ndarray | None = None  # (n,) the electron's energy after all brem (soft too), GeV
    photons: BremPhotons | None = None  # the individual photons above min_photon_e
    # The electron's own line beyond the field (its track extrapolated to the calorimeter), used by the
    # supercluster's track matching: relative azimuth at R_REF_MM and direction, (n,) rad each.
    track_phi_ref: np.ndarray | None = None
    track_psi: np.ndarray | None = None


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


def _group_exclusive_cumsum(values: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``values`` before each entry within runs of equal (sorted) ``owner``."""
    if values.size == 0:
        return values.copy()
    incl = np.cumsum(values)
    new = np.r_[True, owner[1:] != owner[:-1]]
    run = np.cumsum(new) - 1
    base = (incl - values)[np.flatnonzero(new)]
    return incl - values - base[run]


def sample_element_brem(e, c, k_min, rng):
    """Bethe-Heitler brem of electrons of energy ``e`` (n,) crossing ``c`` = X/ln 2 (n,) of material.

    -ln z ~ Gamma(c) is a Gamma process in the thickness: a Poisson process of jumps y = -ln(1 - u)
    (u = k/E of one photon) with density c e^-y / y dy, i.e. dN/du = c / (-ln(1 - u)) ≈ c/u, the
    1/k spectrum. Jumps with k >= ``k_min`` are sampled one by one (Poisson count by thinning a
    log-uniform proposal); the sum of the infinitely many softer ones is drawn as a Gamma with
    their exact mean and variance. Returns (owner (m,), k (m,), e_parent (m,), e_soft (n,), e_after (n,)):
    e = e_after + e_soft + sum(k) per electron, exactly by construction.
    """
    n = e.shape[0]
    u_min = np.minimum(k_min / np.maximum(e, 1e-300), 1.0)
    hard_possible = (u_min < 1.0) & (c > 0)
    log_umin = np.log(np.where(hard_possible, u_min, 0.5))
    cnt = rng.poisson(np.where(hard_possible, -c * log_umin, 0.0))
    owner = np.repeat(np.arange(n), cnt)
    u = np.minimum(np.exp(rng.random(owner.size) * log_umin[owner]), 1.0 - 1e-12)  # log-uniform on (u_min, 1)
    accept = rng.random(owner.size) * -np.log1p(-u) < u  # thinning to dN/du ∝ 1/(-ln(1-u))
    owner, u = owner[accept], u[accept]
    log_keep = np.log1p(-u)
    e_parent = e[owner] * np.exp(_group_exclusive_cumsum(log_keep, owner))
    k = e_parent * u
    e_hard_after = np.maximum(e - np.bincount(owner, k, n).astype(float), 0.0)  # = e prod(1 - u), exact sum
    # Jumps below k_min (y < y_min): mean c (1 - e^-y_min) = c u_min, variance c (1 - e^-y_min (1 + y_min)).
    y_min = -np.log1p(-np.where(hard_possible, u_min, 0.0))
    m = c * np.where(hard_possible, u_min, 1.0)
    v = c * np.where(hard_possible, 1.0 - (1.0 - u_min) * (1.0 + y_min), 1.0)
    ok = (m > 0) & (v > 0)
    shape = np.where(ok, m * m / np.where(ok, v, 1.0), 1.0)
    scale = np.where(ok, v / np.where(ok, m, 1.0), 0.0)
    y_soft = rng.gamma(shape, scale)
    e_soft = e_hard_after * -np.expm1(-y_soft)
    e_after = e_hard_after - e_soft
    return owner, k, e_parent, e_soft, e_after


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
    max_photon_showers: int = MAX_PHOTON_SHOWERS,
    merge_dphi: float = MERGE_DPHI,
) -> ElectronResult:
    """Propagate electrons from radius ``r0`` through the inner-detector elements beyond it.

    All arrays have shape (n,). ``phi0`` is the starting position and direction (relative azimuth,
    a radial start). At every element the electron radiates individual Bethe-Heitler photons
    (:func:`sample_element_brem`); photons below ``min_photon_e`` stay with the electron. Each
    photon leaves along the electron's tangent at its emission point and converts Exp(9/7 X0)
    later (at the earliest at X_ID). Shower budget: per electron, the ``max_photon_showers``
    hardest photons get their own shower unless they land within ``merge_dphi`` (rad, at
    R_REF_MM) of the electron or of a harder photon shower; every other photon is merged into
    the nearest shower (energy-weighted line and start depth). Returns the showers (electrons
    start at X_ID) and the individual photons.
    """
    # Long (~100 lines) on purpose: one vectorised walk through the inner-detector elements that carries
    # eight per-electron arrays from element to element; a split must keep the order of the random
    # draws (datasets are byte-identical for a seed) and would pass all of them between helpers.
    n = e0.shape[0]
    r_exit = np.minimum(solenoid_radius, solenoid_half_length / np.maximum(sinh_eta, 1e-9))
    e = e0.copy()
    e_soft = np.zeros(n)
    r, phi, psi = r0.copy(), phi0.copy(), phi0.copy()
    ph = {key: [] for key in ("own", "e", "e_parent", "r", "phi_ref", "psi", "t")}
    cum_x = 0.0
    for r_k, f_k in zip(idp.radius, idp.fraction):
        x_k = f_k * x_id  # X0 of this element along the path
        cum_x = cum_x + x_k
        active = r_k > r0
        k = -charge * 0.3 * b_tesla / (e / cosh_eta) / 1000.0  # rad/mm, pT in GeV
        phi_new, psi_new = _advance_in_field(r, phi, psi, np.full(n, r_k), k, r_exit)
        phi = np.where(active, phi_new, phi)
        psi = np.where(active, psi_new, psi)
        r = np.where(active, r_k, r)
        c = np.where(active, x_k / np.log(2.0), 0.0)
        own, k_ph, e_par, soft_k, e = sample_element_brem(e, c, min_photon_e, rng)
        e_soft += soft_k
        low = k_ph < min_photon_e  # softened by an earlier photon of the same element
        if np.any(low):
            e_soft += np.bincount(own[low], k_ph[low], n).astype(float)
            own, k_ph, e_par = own[~low], k_ph[~low], e_par[~low]
        if own.size:
            ph["own"].append(own)
            ph["e"].append(k_ph)
            ph["e_parent"].append(e_par)
            ph["r"].append(np.full(own.size, r_k))
            ph["phi_ref"].append((r_k * phi[own] + psi[own] * (R_REF_MM - r_k)) / R_REF_MM)
            ph["psi"].append(psi[own])
            ph["t"].append((cum_x - 0.5 * x_k)[own])
    e_track = e
    # Straight-line state of the electron after the field region, at R_REF_MM.
    k = -charge * 0.3 * b_tesla / (e_track / cosh_eta) / 1000.0
    r_out = np.maximum(r_exit, r)
    phi_out, psi_out = _advance_in_field(r, phi, psi, r_out, k, r_exit)
    el_phi_ref = (r_out * phi_out + psi_out * (R_REF_MM - r_out)) / R_REF_MM

    cat = {key: (np.concatenate(v) if v else np.zeros(0)) for key, v in ph.items()}
    own = cat["own"].astype(np.int64)
    m = own.size
    t_start = np.maximum(cat["t"] + rng.exponential(CONVERSION_MEAN_X0, m), x_id[own])
    # Shower budget: slot 0 is the electron, slots 1..K-1 the hardest photons.
    n_slot = max_photon_showers + 1
    order = np.lexsort((-cat["e"], own))
    rank = np.empty(m, np.int64)
    if m:
        own_s = own[order]
        start = np.r_[0, np.flatnonzero(own_s[1:] != own_s[:-1]) + 1]
        run_len = np.diff(np.r_[start, m])
        rank[order] = np.arange(m) - np.repeat(start, run_len)
    slot_phi = np.full((n, n_slot), np.inf)
    slot_phi[:, 0] = el_phi_ref
    slot = np.full(m, -1, np.int64)
    is_slot = np.zeros(m, bool)
    for j in range(max_photon_showers):
        sel = np.flatnonzero(rank == j)
        if sel.size == 0:
            break
        d = np.abs(slot_phi[own[sel]] - cat["phi_ref"][sel, None]).min(axis=1)
        new = sel[d >= merge_dphi]
        slot[new] = j + 1
        is_slot[new] = True
        slot_phi[own[new], j + 1] = cat["phi_ref"][new]
    rest = np.flatnonzero(slot < 0)
    if rest.size:
        slot[rest] = np.argmin(np.abs(slot_phi[own[rest]] - cat["phi_ref"][rest, None]), axis=1)
    flat = own * n_slot + slot
    size = n * n_slot
    s_e = np.bincount(flat, cat["e"], size).astype(float)
    s_phi = np.bincount(flat, cat["e"] * cat["phi_ref"], size).astype(float)
    s_psi = np.bincount(flat, cat["e"] * cat["psi"], size).astype(float)
    s_t = np.bincount(flat, cat["e"] * t_start, size).astype(float)
    # The electron (with its soft brem) in slot 0.
    e_el = e_track + e_soft
    s_e[0::n_slot] += e_el
    s_phi[0::n_slot] += e_el * el_phi_ref
    s_psi[0::n_slot] += e_el * psi_out
    s_t[0::n_slot] += e_el * x_id
    used = np.flatnonzero(s_e > 0)
    used = np.union1d(used, np.arange(n) * n_slot)  # every electron keeps its shower
    se = s_e[used]
    owner_slot = used // n_slot
    showers = Showers(
        cluster[owner_slot],
        se,
        s_t[used] / se,
        np.full(used.size, R_REF_MM),
        s_phi[used] / se,
        s_psi[used] / se,
        np.where(used % n_slot == 0, 1, 2).astype(np.int8),  # electron / a pair once converted
    )
    order_c = np.argsort(showers.cluster, kind="stable")
    showers = Showers(*(getattr(showers, f)[order_c] for f in Showers.__dataclass_fields__))
    e_brem_hard = np.bincount(own, cat["e"], n).astype(float)
    photons = BremPhotons(
        own, cat["e"], cat["e_parent"], cat["r"], cat["phi_ref"], cat["psi"], cat["t"], t_start, is_slot
    )  # fmt: skip
    return ElectronResult(s_e[0::n_slot], 1.0 - e_brem_hard / e0, showers, e_track, photons, el_phi_ref, psi_out)


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
