"""The signal of one batch in the cells: impact points, longitudinal development, accordion and presampler.

The stages of :meth:`calo_calib.simulation.generator.Simulator.batch` that turn showers into cell
energies, before the readout adds sampling fluctuations, noise and pile-up. Shapes: ``c`` clusters
(particles that passed the type selection), ``s`` showers (``sc`` maps each to its cluster, sorted),
per layer windows of (c, ne, nph) cells (:class:`calo_calib.simulation.geometry.LayerWindow`).

Energies in GeV, lengths in mm, depths in X0. The random draws here (shower parameters, presampler
counts and Landau-like amounts) happen in the order the batch calls these functions; keep it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calo_calib.simulation import geometry as geo
from calo_calib.simulation.readout import presampler_mip_energy, presampler_path_factor, presampler_present
from calo_calib.simulation.shower import (
    ShowerParams,
    cumulative,
    longitudinal_params,
    mean_depth_in,
    profile_density,
    radial_params,
    rectangle_fractions,
)
from calo_calib.simulation.upstream import Showers

# Depth slices per accordion layer: the radial profile widens with depth, so each layer is
# integrated in slices, each with the radial parameters at the slice's energy-weighted mean depth.
# The knob detector.shower.depth_slice_factor multiplies them (a convergence check; the diagnosis
# "Depth slices of the lateral integration" in the validation report shows the nominal is converged).
SLICES_PER_LAYER = {geo.LAYER_L1: 1, geo.LAYER_L2: 2, geo.LAYER_L3: 1}
LAR_X0_MM = 140.0


@dataclass
class Impacts:
    """Where the clusters meet each layer, and their cell windows.

    ``layer_rho``/``layer_eta``: per layer (c,) radius [mm] and eta of the impact (the vertex shifts
    the eta seen by the projective cells); ``endcap`` (c,); ``phi_rel2`` (s,) each shower's phi offset
    at the middle layer; ``phi_c`` (c,) the window centre (energy-weighted shower axis at the middle
    layer); ``windows`` the four :class:`~calo_calib.simulation.geometry.LayerWindow`.
    """

    layer_rho: list[np.ndarray]
    layer_eta: list[np.ndarray]
    endcap: np.ndarray
    phi_rel2: np.ndarray
    phi_c: np.ndarray
    windows: list[geo.LayerWindow]


def layer_impacts(ev, showers: Showers, barrel_end: float) -> Impacts:
    """Impact positions per layer and the cell windows around the clusters' middle-layer axis."""
    sc, c = showers.cluster, ev.e.shape[0]
    sinh_eta = np.sinh(ev.abs_eta)
    r2_b = geo.barrel_radius(geo.LAYER_L2, ev.abs_eta)
    eta2_b = np.arcsinh((ev.z0 + r2_b * sinh_eta) / r2_b)
    endcap = eta2_b >= barrel_end
    layer_rho, layer_eta = [], []
    for layer in range(geo.N_LAYERS):
        rb = geo.barrel_radius(layer, ev.abs_eta)
        eta_b = np.arcsinh((ev.z0 + rb * sinh_eta) / rb)
        zl = geo.ENDCAP_Z[layer]
        rho_e = (zl - ev.z0) / np.maximum(sinh_eta, 1e-6)
        eta_e = np.arcsinh(zl / rho_e)
        layer_rho.append(np.where(endcap, rho_e, rb))
        layer_eta.append(np.where(endcap, eta_e, eta_b))
    phi_rel2 = showers.phi_at(layer_rho[geo.LAYER_L2][sc])
    phi_c_rel = np.bincount(sc, showers.e * phi_rel2, c) / np.bincount(sc, showers.e, c)
    phi_c = geo.wrap_phi(ev.phi + phi_c_rel)
    windows = [geo.layer_window(layer, layer_eta[layer], phi_c, endcap) for layer in range(geo.N_LAYERS)]
    return Impacts(layer_rho, layer_eta, endcap, phi_rel2, phi_c, windows)


@dataclass
class Longitudinal:
    """Each shower's development through the depth slices (s showers, k slices).

    ``params`` the drawn GFlash parameters; ``slice_frac`` (s, k) energy fraction per accordion slice
    and ``layer_of_slice`` (k,) its layer; ``r_core``, ``r_tail``, ``p_core`` (s, k) the radial
    profile per slice; the losses (s,) [GeV]: ``e_up`` before the presampler, ``e_passive`` between
    it and the accordion, ``e_leak`` behind, ``e_acc_total`` in the accordion; ``x_ps`` (c,) the
    presampler depth.
    """

    params: ShowerParams
    slice_frac: np.ndarray
    layer_of_slice: list[int]
    r_core: np.ndarray
    r_tail: np.ndarray
    p_core: np.ndarray
    e_up: np.ndarray
    e_passive: np.ndarray
    e_leak: np.ndarray
    e_acc_total: np.ndarray
    x_ps: np.ndarray


def longitudinal(sim, ev, showers: Showers, endcap: np.ndarray, rng: np.random.Generator) -> Longitudinal:
    """Draw the shower parameters and integrate the profiles over the layer boundaries at each |eta|.

    ``sim`` is the :class:`~calo_calib.simulation.generator.Simulator` (material, accordion depths,
    media and the shower knobs).
    """
    sc = showers.cluster
    _, x_ps, x_acc = sim.material.at(ev.abs_eta, ev.phi)
    l1, l2, l3 = sim.accordion.at(ev.abs_eta)
    thin = ev.abs_eta < float(sim.det.accordion.thin_lead_eta)
    medium = np.where(endcap, 2, np.where(thin, 0, 1))
    params = longitudinal_params(showers.e, medium[sc], sim.media, rng, sim.lateral_log_sigma, sim.depth_scale, sim.width_scale)
    t0 = showers.t0
    bounds = [x_acc[sc]]
    layer_of_slice = []
    for layer, lo, hi in ((1, x_acc, l1), (2, l1, l2), (3, l2, l3)):
        k = SLICES_PER_LAYER[layer] * sim.depth_slice_factor
        for j in range(1, k + 1):
            bounds.append(lo[sc] + (hi[sc] - lo[sc]) * j / k)
            layer_of_slice.append(layer)
    bounds = np.stack(bounds, axis=1)  # (s, n_slices + 1)
    cdf_b = cumulative(params, t0, bounds)
    cdf_ps = cumulative(params, t0, x_ps[sc])
    t_mid = mean_depth_in(params, t0, bounds[:, :-1], bounds[:, 1:])
    tau = np.maximum(t_mid - t0[:, None], 0.0) * params.tau_scale[:, None]
    r_core, r_tail, p_core = radial_params(params, tau)
    return Longitudinal(
        params=params, slice_frac=np.diff(cdf_b, axis=1), layer_of_slice=layer_of_slice,
        r_core=r_core, r_tail=r_tail, p_core=p_core,
        e_up=showers.e * cdf_ps, e_passive=showers.e * (cdf_b[:, 0] - cdf_ps),
        e_leak=showers.e * (1.0 - cdf_b[:, -1]), e_acc_total=showers.e * (cdf_b[:, -1] - cdf_b[:, 0]), x_ps=x_ps,
    )  # fmt: skip


def _cell_edges(w: geo.LayerWindow, rho: np.ndarray, eta: np.ndarray, phi_axis: np.ndarray, sc: np.ndarray):
    """Cell edges (mm) of window ``w`` relative to each shower's axis: x (s, ne + 1) in eta, y (s, nph + 1) in phi."""
    x_edges = rho[:, None] * (np.concatenate([w.eta_lo, w.eta_lo[:, -1:] + w.deta[:, None]], axis=1)[sc] - eta[:, None])
    base = geo.wrap_phi(w.phi_lo[sc, 0] - phi_axis)
    y_edges = rho[:, None] * (base[:, None] + np.arange(w.phi_lo.shape[1] + 1)[None, :] * w.dphi)
    return x_edges, y_edges


def accordion_deposits(ev, showers: Showers, imp: Impacts, lon: Longitudinal, mod: np.ndarray, starts: np.ndarray):
    """Deposited (``dep``) and visible (``vis``, times the accordion modulation ``mod`` (s,)) energy per
    accordion cell: two lists over the layers, None for the presampler, else (c, ne, nph) [GeV]."""
    sc = showers.cluster
    dep: list = [None] * geo.N_LAYERS
    vis: list = [None] * geo.N_LAYERS
    for layer in (1, 2, 3):
        w = imp.windows[layer]
        rho = imp.layer_rho[layer][sc]
        x_edges, y_edges = _cell_edges(w, rho, imp.layer_eta[layer][sc], ev.phi[sc] + showers.phi_at(rho), sc)
        acc_layer = None
        for k, lay in enumerate(lon.layer_of_slice):
            if lay != layer:
                continue
            # (p core + (1 - p) tail) x E_slice, summed over the layer's slices from 0.0, in place.
            p = lon.p_core[:, k, None, None]
            frac = np.multiply(p, rectangle_fractions(x_edges, y_edges, lon.r_core[:, k]))
            frac += (1 - p) * rectangle_fractions(x_edges, y_edges, lon.r_tail[:, k])
            frac *= (showers.e * lon.slice_frac[:, k])[:, None, None]
            if acc_layer is None:
                frac += 0.0  # as 0.0 + x: -0.0 becomes +0.0
                acc_layer = frac
            else:
                acc_layer += frac
        dep[layer] = segment_sum(acc_layer, starts) * w.valid
        vis[layer] = segment_sum(acc_layer * mod[:, None, None], starts) * w.valid
    return dep, vis


def presampler_cells(det, ev, showers: Showers, imp: Impacts, lon: Longitudinal, starts: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """Presampler cell energies (c, ne, nph) [GeV]: a Poisson count of charged particles crossing it
    (card §3.4 [E]), each depositing a Landau-like amount in the thin LAr gap."""
    sc, endcap, params, t0 = showers.cluster, imp.endcap, lon.params, showers.t0
    w0 = imp.windows[0]
    ps_on = presampler_present(np.abs(imp.layer_eta[0]), endcap, det)
    path = presampler_path_factor(ev.abs_eta, endcap)
    active_mm = np.where(endcap, float(det.presampler.active_mm_endcap), float(det.presampler.active_mm_barrel))
    t_ps = lon.x_ps + 0.5 * (active_mm / LAR_X0_MM * path)
    dens = profile_density(params, t0, t_ps[sc])
    lam = showers.e * 1000.0 * dens / float(det.presampler.ec_upstream_mev)
    lam = lam + np.where(t0 < t_ps[sc], showers.n_charged, 0)
    tau_ps = np.maximum(t_ps[sc] - t0, 0.0) * params.tau_scale
    rc_ps, rt_ps, p_ps = radial_params(params, tau_ps[:, None])
    rho0 = imp.layer_rho[0][sc]
    x_edges, y_edges = _cell_edges(w0, rho0, imp.layer_eta[0][sc], ev.phi[sc] + showers.phi_at(rho0), sc)
    p = p_ps[:, 0, None, None]
    frac_ps = p * rectangle_fractions(x_edges, y_edges, rc_ps[:, 0]) + (1 - p) * rectangle_fractions(x_edges, y_edges, rt_ps[:, 0])
    expected = segment_sum(lam[:, None, None] * frac_ps, starts) * w0.valid * ps_on[:, None, None]
    counts = rng.poisson(expected)
    # A Gamma with shape k per particle (relative width 1/sqrt(k)) stands in for the sum of Landaus.
    k_mip = float(det.presampler.mip_gamma_shape)
    mip = presampler_mip_energy(ev.abs_eta, endcap, det)[:, None, None] * np.ones(counts.shape)
    e_ps_cells = np.zeros(counts.shape)
    hit = counts > 0
    e_ps_cells[hit] = rng.gamma(k_mip * counts[hit], mip[hit] / k_mip)
    return e_ps_cells


# numpy's pairwise summation adds fewer than this many terms one after the other (else 8 partial sums).
_PAIRWISE_SEQUENTIAL = 8


def segment_sum(a: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``np.add.reduceat(a, starts, axis=0)`` bit for bit, for float ``a`` and increasing ``starts``.

    reduceat calls numpy's inner loop once per segment and per element of the other axes (slow for
    (s, ne, nph) arrays with a few rows per segment). Its order of additions is: the first row, plus
    the pairwise sum of the others, which for fewer than 8 terms is ((-0.0 + a1) + a2) + ... That
    order is reproduced here one row index at a time over all segments; the rare segments of more
    than 8 rows (9 or more showers in a cluster) keep reduceat itself.
    """
    length = np.diff(np.append(starts, a.shape[0]))
    out = a[starts]
    rest = np.full_like(out, -0.0)
    short = length - 1 < _PAIRWISE_SEQUENTIAL
    for j in range(1, min(int(length.max(initial=1)), _PAIRWISE_SEQUENTIAL)):
        m = np.flatnonzero((length > j) & short)
        rest[m] += a[starts[m] + j]
    out += rest
    for i in np.flatnonzero(~short):
        out[i] = np.add.reduceat(a[starts[i] : starts[i] + length[i]], [0], axis=0)[0]
    return out
