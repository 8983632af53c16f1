"""Generate clusters: gun -> upstream -> showers -> readout -> clustering -> columns.

:class:`Simulator` holds everything derived from the configuration; :meth:`Simulator.batch`
simulates one vectorised batch of particles and returns the selected clusters as columns of the
schema in :mod:`calo_calib.io.schema`. Everything is computed in the positive-eta frame and half
of the clusters are mirrored at the end (the detector is symmetric in eta).

Energy bookkeeping (exact, by construction): for every cluster

    truth_e = truth_e_dep_cluster + truth_e_outside_cluster + truth_e_lost_upstream
              + truth_e_lost_passive + truth_e_leak_behind

and, with noise, sampling fluctuations and the phi modulation switched off, the accordion cells
of the cluster sum to truth_e_dep_cluster. The presampler is a measurement of the shower in the
passive material (charged-particle count), as in ATLAS, and is part of cluster_e.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calo_calib.simulation import geometry as geo
from calo_calib.simulation.clustering import topo_egamma_cluster
from calo_calib.simulation.conversions import CONV_R_NONE, reconstruct_conversions
from calo_calib.simulation.knobs import knob
from calo_calib.simulation.material import AccordionDepth, InnerDetectorProfile, UpstreamMaterial
from calo_calib.simulation.pileup import pileup_model
from calo_calib.simulation.readout import (
    GainMap,
    noise_sigmas,
    phi_modulation,
    pileup_noise,
    presampler_mip_energy,
    presampler_path_factor,
    presampler_present,
    sampling_fluctuation,
    sampling_term,
)
from calo_calib.simulation.shower import (
    accordion_media,
    cumulative,
    longitudinal_params,
    mean_depth_in,
    profile_density,
    radial_params,
    rectangle_fractions,
)
from calo_calib.simulation.upstream import (
    CONVERSION_MEAN_X0,
    Showers,
    propagate_electrons,
    sample_pair_fraction,
)

# Depth slices per accordion layer: the radial profile widens with depth, so each layer is
# integrated in slices, each with the radial parameters at the slice's energy-weighted mean depth.
SLICES_PER_LAYER = {geo.LAYER_L1: 1, geo.LAYER_L2: 2, geo.LAYER_L3: 1}
LAR_X0_MM = 140.0


@dataclass
class _Event:
    """Generated particles of a batch (positive-eta frame), arrays (n,)."""

    e: np.ndarray
    abs_eta: np.ndarray
    sign: np.ndarray
    phi: np.ndarray
    z0: np.ndarray
    mu: np.ndarray


@dataclass
class GivenParticles:
    """Particles of known kinematics to simulate instead of the gun (lab frame), arrays (n,).

    ``e`` [GeV], ``eta`` (signed), ``phi`` [rad], ``vertex_z`` [mm], ``mu`` (<mu> of each particle's
    event), ``charge`` (-1/+1 for electrons; None: drawn at random). Checked by
    :func:`calo_calib.simulation.api.simulate_given`.
    """

    e: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    vertex_z: np.ndarray
    mu: np.ndarray
    charge: np.ndarray | None = None

    def event(self) -> _Event:
        """The simulator's positive-eta frame: |eta|, the sign, and the vertex z mirrored with it."""
        sign = np.where(self.eta < 0, -1.0, 1.0)
        return _Event(self.e, np.abs(self.eta), sign, self.phi, self.vertex_z * sign, self.mu)


def draw_mu(cfg, n: int, rng: np.random.Generator) -> np.ndarray:
    """Per-event <mu> (n,): N(mu, (pileup.mu_rel_sigma * mu)^2) clipped at 0, or fixed at ``mu``."""
    mu_mean = float(cfg.mu)
    mu_sigma = float(cfg.pileup.mu_rel_sigma) * mu_mean
    return np.maximum(rng.normal(mu_mean, mu_sigma, n), 0.0) if mu_sigma > 0 else np.full(n, mu_mean)


class Simulator:
    """Everything the simulation derives from a validated config (``calo_calib.simulation.config``)."""

    def __init__(self, cfg, keep_l2_window: bool = False, noise_truth: bool = False) -> None:
        self.cfg = cfg
        # Validation only (calo_calib/validation/lateral.py): also return the full middle-layer window of
        # every selected cluster (``l2_window_*`` arrays, see :meth:`batch`). Off by default; it draws no
        # random numbers and leaves every other output unchanged.
        self.keep_l2_window = bool(keep_l2_window)
        # Diagnostics only (the information-content study): also return the pile-up and electronic-noise
        # energy inside each cluster (see :meth:`batch`). Never written to datasets: a truth leak.
        self.noise_truth = bool(noise_truth)
        det = cfg.detector
        self.det = det
        self.material = UpstreamMaterial.from_config(det.material)
        self.accordion = AccordionDepth.from_config(det.accordion)
        self.idp = InnerDetectorProfile.from_config(det.material)
        acc = det.accordion
        self.media = accordion_media(acc)
        self.generate = str(cfg.particle.generate)
        self.select = str(cfg.particle.select)
        self.lateral_log_sigma = float(det.shower.lateral_log_sigma)
        # Data-like detector knobs (calo_calib/simulation/knobs.py); their defaults are the identity.
        self.depth_scale = float(knob(det, "shower.depth_scale"))
        self.width_scale = float(knob(det, "shower.width_scale"))
        self.gain_map = GainMap.from_config(det)
        self.pileup = pileup_model(det, self.media, self.material, self.accordion)

    # -- gun -----------------------------------------------------------------------------------
    def _gun(self, n: int, rng: np.random.Generator) -> _Event:
        g = self.cfg.gun
        abs_eta = rng.uniform(float(g.abs_eta_min), float(g.abs_eta_max), n)
        if g.spectrum == "log_uniform":
            e = np.exp(rng.uniform(np.log(float(g.e_min)), np.log(float(g.e_max)), n))
        elif g.spectrum == "flat_et":
            e = rng.uniform(float(g.e_min), float(g.e_max), n) * np.cosh(abs_eta)
        else:  # fixed
            e = np.full(n, float(g.e_min))
        sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        phi = rng.uniform(-np.pi, np.pi, n)
        z0 = rng.normal(0.0, float(g.vertex_sigma_z), n)
        mu = draw_mu(self.cfg, n, rng)
        return _Event(e, abs_eta, sign, phi, z0, mu)

    # -- upstream ------------------------------------------------------------------------------
    def _propagate(self, idx, e0, charge, r0, x_id, cosh_eta, sinh_eta, rng):
        f, brem = self.det.field, self.det.brem
        return propagate_electrons(
            idx, e0, charge, r0, np.zeros_like(e0), x_id, cosh_eta, sinh_eta, self.idp,
            float(f.b_tesla), float(f.solenoid_radius_mm), float(f.solenoid_half_length_mm),
            float(brem.min_photon_e), rng, int(brem.max_photon_showers), float(brem.merge_dphi),
        )  # fmt: skip

    def _upstream(self, ev: _Event, rng: np.random.Generator, charge: np.ndarray | None = None):
        """Showers and conversion information of every particle; returns (showers, info dict).

        ``charge`` (n,) of given electrons (-1/+1); None draws it at random (the gun).
        """
        n = ev.e.shape[0]
        idx = np.arange(n)
        x_id, _, _ = self.material.at(ev.abs_eta, ev.phi)
        cosh_eta, sinh_eta = np.cosh(ev.abs_eta), np.sinh(ev.abs_eta)
        info = {
            "converted": np.zeros(n, bool),
            "conv_r": np.full(n, np.nan),
            "conv_fraction": np.full(n, np.nan),
            "brem_fraction": np.zeros(n),
            "ctype": np.zeros(n, np.int8),
            "conv_r_input": np.full(n, CONV_R_NONE),
            "conv_pt_ratio": np.ones(n),
            "conv_pt": np.zeros(n),
            "reco": None,
        }
        if self.generate == "electron":
            if charge is None:
                charge = np.where(rng.random(n) < 0.5, -1.0, 1.0)
            res = self._propagate(idx, ev.e, charge, np.zeros(n), x_id, cosh_eta, sinh_eta, rng)
            info["brem_fraction"] = 1.0 - res.keep_fraction
            return res.showers, info

        t_conv = rng.exponential(CONVERSION_MEAN_X0, n)
        conv = t_conv < x_id
        r_conv = np.where(conv, self.idp.radius_at_fraction(np.minimum(t_conv / x_id, 1.0)), np.nan)
        x = sample_pair_fraction(n, rng)
        parts = [
            Showers(
                idx[~conv], ev.e[~conv], t_conv[~conv], np.zeros(int((~conv).sum())), np.zeros(int((~conv).sum())),
                np.zeros(int((~conv).sum())), np.full(int((~conv).sum()), 2, np.int8),
            )
        ]  # fmt: skip
        keep1, keep2 = np.ones(n), np.ones(n)
        if np.any(conv):
            ci = idx[conv]
            e1, e2 = x[conv] * ev.e[conv], (1 - x[conv]) * ev.e[conv]
            both_idx = np.concatenate([ci, ci])
            res = self._propagate(
                both_idx, np.concatenate([e1, e2]), np.concatenate([-np.ones(ci.size), np.ones(ci.size)]),
                np.concatenate([r_conv[conv], r_conv[conv]]), x_id[both_idx], cosh_eta[both_idx],
                sinh_eta[both_idx], rng,
            )  # fmt: skip
            keep1[conv], keep2[conv] = res.keep_fraction[: ci.size], res.keep_fraction[ci.size :]
            parts.append(res.showers)
            info["brem_fraction"][conv] = 1.0 - (e1 * keep1[conv] + e2 * keep2[conv]) / ev.e[conv]
        reco = reconstruct_conversions(
            conv, np.where(conv, r_conv, 0.0), x * ev.e, (1 - x) * ev.e, keep1, keep2, ev.e, cosh_eta,
            self.det.conversion, rng,
        )  # fmt: skip
        info.update(
            converted=conv,
            conv_r=r_conv,
            conv_fraction=np.where(conv, x, np.nan),
            ctype=reco.conversion_type,
            conv_r_input=reco.conv_r(),
            conv_pt_ratio=reco.pt_ratio(),
            conv_pt=reco.conv_pt,
            reco=reco,
        )
        return Showers.concat(parts), info

    # -- one batch -----------------------------------------------------------------------------
    def batch(
        self, n: int, rng: np.random.Generator, given: GivenParticles | None = None
    ) -> dict[str, np.ndarray] | None:
        """Simulate ``n`` particles; return the columns of the clusters that pass the selection.

        ``given`` replaces the gun by particles of known kinematics (``n`` must be their number);
        the output then also has ``input_index`` (kept,): the position in ``given`` of each cluster.

        With ``keep_l2_window`` the output also has, per selected cluster (k clusters), the whole
        simulated middle-layer window before the topo/supercluster selection (signal, sampling
        fluctuations, gain map, noise and pile-up included; cells outside the window's valid region
        are 0): ``l2_window_e`` (k, WINDOW_N_ETA[2], WINDOW_N_PHI[2]) [GeV], ``l2_window_eta`` (k, ne)
        and ``l2_window_phi`` (k, nph) cell centres (lab frame: signed eta; for eta < 0 the eta index
        runs towards more negative eta), ``l2_window_valid`` (k, ne) and ``l2_window_hot`` (k,) the
        flat (eta * nph + phi) index of the hottest valid cell.

        With ``noise_truth`` the output also has ``truth_e_pileup_cluster`` and ``truth_e_noise_cluster``
        (k,) [GeV]: the pile-up (either model, after the baseline subtraction) and the electronic noise
        summed over the cluster's accordion cells (L1-L3, as ``truth_e_dep_cluster``). No extra random
        numbers; every other output unchanged.
        """
        cfg, det = self.cfg, self.det
        ev = self._gun(n, rng) if given is None else given.event()
        showers, info = self._upstream(ev, rng, None if given is None else given.charge)

        # Particle-type selection on the reconstructed conversion category, before the costly part.
        if self.select == "unconverted":
            keep = info["ctype"] == 0
        elif self.select == "converted":
            keep = info["ctype"] > 0
        else:
            keep = np.ones(n, bool)
        if not np.any(keep):
            return None
        ev, info, showers = _subset(ev, info, showers, keep)
        c = ev.e.shape[0]
        sc = showers.cluster  # shower -> cluster

        # Impact positions per layer (vertex shifts the eta seen by the projective cells).
        sinh_eta = np.sinh(ev.abs_eta)
        r2_b = geo.barrel_radius(geo.LAYER_L2, ev.abs_eta)
        eta2_b = np.arcsinh((ev.z0 + r2_b * sinh_eta) / r2_b)
        endcap = eta2_b >= float(det.accordion.barrel_end)
        layer_rho, layer_eta = [], []
        for layer in range(geo.N_LAYERS):
            rb = geo.barrel_radius(layer, ev.abs_eta)
            eta_b = np.arcsinh((ev.z0 + rb * sinh_eta) / rb)
            zl = geo.ENDCAP_Z[layer]
            rho_e = (zl - ev.z0) / np.maximum(sinh_eta, 1e-6)
            eta_e = np.arcsinh(zl / rho_e)
            layer_rho.append(np.where(endcap, rho_e, rb))
            layer_eta.append(np.where(endcap, eta_e, eta_b))
        # Window centre in phi: energy-weighted shower axis at the middle layer.
        phi_rel2 = showers.phi_at(layer_rho[geo.LAYER_L2][sc])
        phi_c_rel = np.bincount(sc, showers.e * phi_rel2, c) / np.bincount(sc, showers.e, c)
        phi_c = geo.wrap_phi(ev.phi + phi_c_rel)
        windows = [geo.layer_window(layer, layer_eta[layer], phi_c, endcap) for layer in range(geo.N_LAYERS)]

        # Longitudinal development: depth boundaries at the cluster's |eta|.
        _, x_ps, x_acc = self.material.at(ev.abs_eta, ev.phi)
        l1, l2, l3 = self.accordion.at(ev.abs_eta)
        medium = np.where(endcap, 2, np.where(ev.abs_eta < float(det.accordion.thin_lead_eta), 0, 1))
        params = longitudinal_params(
            showers.e, medium[sc], self.media, rng, self.lateral_log_sigma, self.depth_scale, self.width_scale
        )
        t0 = showers.t0
        bounds = [x_acc[sc]]
        layer_of_slice = []
        for layer, lo, hi in ((1, x_acc, l1), (2, l1, l2), (3, l2, l3)):
            k = SLICES_PER_LAYER[layer]
            for j in range(1, k + 1):
                bounds.append(lo[sc] + (hi[sc] - lo[sc]) * j / k)
                layer_of_slice.append(layer)
        bounds = np.stack(bounds, axis=1)  # (s, n_slices + 1)
        cdf_b = cumulative(params, t0, bounds)
        slice_frac = np.diff(cdf_b, axis=1)  # (s, n_slices)
        cdf_ps = cumulative(params, t0, x_ps[sc])
        e_up = showers.e * cdf_ps
        e_passive = showers.e * (cdf_b[:, 0] - cdf_ps)
        e_leak = showers.e * (1.0 - cdf_b[:, -1])
        e_acc_total = showers.e * (cdf_b[:, -1] - cdf_b[:, 0])
        t_mid = mean_depth_in(params, t0, bounds[:, :-1], bounds[:, 1:])
        tau = np.maximum(t_mid - t0[:, None], 0.0) * params.tau_scale[:, None]
        r_core, r_tail, p_core = radial_params(params, tau)

        # Accordion modulation per shower, from its impact phi at the middle layer.
        if bool(det.readout.phi_modulation):
            mod = phi_modulation(ev.phi[sc] + phi_rel2, ev.abs_eta[sc], det)
        else:
            mod = np.ones(showers.e.shape[0])

        starts = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
        dep = [None] * geo.N_LAYERS
        vis = [None] * geo.N_LAYERS
        for layer in (1, 2, 3):
            w = windows[layer]
            rho = layer_rho[layer][sc]
            x_edges = rho[:, None] * (
                np.concatenate([w.eta_lo, w.eta_lo[:, -1:] + w.deta[:, None]], axis=1)[sc]
                - layer_eta[layer][sc][:, None]
            )
            phi_axis = ev.phi[sc] + showers.phi_at(rho)
            base = geo.wrap_phi(w.phi_lo[sc, 0] - phi_axis)
            y_edges = rho[:, None] * (base[:, None] + np.arange(w.phi_lo.shape[1] + 1)[None, :] * w.dphi)
            acc_layer = 0.0
            for k, lay in enumerate(layer_of_slice):
                if lay != layer:
                    continue
                frac = p_core[:, k, None, None] * rectangle_fractions(x_edges, y_edges, r_core[:, k]) + (
                    1 - p_core[:, k, None, None]
                ) * rectangle_fractions(x_edges, y_edges, r_tail[:, k])
                acc_layer = acc_layer + (showers.e * slice_frac[:, k])[:, None, None] * frac
            dep[layer] = segment_sum(acc_layer, starts) * w.valid
            vis[layer] = segment_sum(acc_layer * mod[:, None, None], starts) * w.valid

        # Presampler: Poisson count of charged particles crossing it (card §3.4 [E]).
        w0 = windows[0]
        ps_on = presampler_present(np.abs(layer_eta[0]), endcap, det)
        path = presampler_path_factor(ev.abs_eta, endcap)
        w_ps = (
            np.where(endcap, float(det.presampler.active_mm_endcap), float(det.presampler.active_mm_barrel))
            / LAR_X0_MM
            * path
        )
        t_ps = x_ps + 0.5 * w_ps
        dens = profile_density(params, t0, t_ps[sc])
        lam = showers.e * 1000.0 * dens / float(det.presampler.ec_upstream_mev)
        lam = lam + np.where(t0 < t_ps[sc], showers.n_charged, 0)
        tau_ps = np.maximum(t_ps[sc] - t0, 0.0) * params.tau_scale
        rc_ps, rt_ps, p_ps = radial_params(params, tau_ps[:, None])
        rho0 = layer_rho[0][sc]
        x_edges = rho0[:, None] * (
            np.concatenate([w0.eta_lo, w0.eta_lo[:, -1:] + w0.deta[:, None]], axis=1)[sc] - layer_eta[0][sc][:, None]
        )
        phi_axis = ev.phi[sc] + showers.phi_at(rho0)
        base = geo.wrap_phi(w0.phi_lo[sc, 0] - phi_axis)
        y_edges = rho0[:, None] * (base[:, None] + np.arange(w0.phi_lo.shape[1] + 1)[None, :] * w0.dphi)
        frac_ps = p_ps[:, 0, None, None] * rectangle_fractions(x_edges, y_edges, rc_ps[:, 0]) + (
            1 - p_ps[:, 0, None, None]
        ) * rectangle_fractions(x_edges, y_edges, rt_ps[:, 0])
        expected = segment_sum(lam[:, None, None] * frac_ps, starts) * w0.valid * ps_on[:, None, None]
        counts = rng.poisson(expected)
        # Each crossing particle deposits a Landau-like amount in the thin LAr gap: a Gamma with
        # shape k per particle (relative width 1/sqrt(k)) stands in for the sum of Landaus.
        k_mip = float(det.presampler.mip_gamma_shape)
        mip = presampler_mip_energy(ev.abs_eta, endcap, det)[:, None, None] * np.ones(counts.shape)
        e_ps_cells = np.zeros(counts.shape)
        hit = counts > 0
        e_ps_cells[hit] = rng.gamma(k_mip * counts[hit], mip[hit] / k_mip)

        # Sampling fluctuations of the accordion's visible energy.
        a = sampling_term(ev.abs_eta, endcap, det)
        if bool(det.sampling.enabled):
            vis = [None] + [sampling_fluctuation(v, a, rng) for v in vis[1:]]
        cells = [e_ps_cells] + vis[1:]
        if self.gain_map is not None:  # fixed per-region miscalibration of the signal (noise is calibrated apart)
            cells = self.gain_map.apply(cells, windows, ev.sign, endcap)

        # Noise: per-event <mu> for the cell content; a reference <mu> for the clustering thresholds.
        sigma_tot = []
        mu_ref = np.full(c, float(cfg.pileup.mu_reference))
        el_cells: list = [0.0] * geo.N_LAYERS  # electronic noise and pile-up per layer (noise_truth)
        pu_cells: list = [0.0] * geo.N_LAYERS
        for layer in range(geo.N_LAYERS):
            w = windows[layer]
            eta_cell = np.abs(w.eta_centre)[:, :, None] * np.ones((1, 1, w.phi_lo.shape[1]))
            s_el, s_pu_ref = noise_sigmas(layer, eta_cell, endcap, mu_ref, det)
            sigma_tot.append(np.hypot(s_el, s_pu_ref))
            if bool(det.readout.noise):
                s_el_ev, s_pu_ev = noise_sigmas(layer, eta_cell, endcap, ev.mu, det)
                noise = s_el_ev * rng.standard_normal(eta_cell.shape)
                if self.noise_truth:
                    el_cells[layer] = noise * w.valid
                if self.pileup is None:  # the per-cell model: independent Gamma draws
                    pu_gamma = pileup_noise(s_pu_ev, ev.mu, det, rng)
                    noise = noise + pu_gamma
                    if self.noise_truth:
                        pu_cells[layer] = pu_gamma * w.valid
                cells[layer] = cells[layer] + noise * w.valid
        if self.pileup is not None and bool(det.readout.noise):  # minimum-bias particles
            pu = self.pileup.cells(windows, layer_rho, layer_eta[geo.LAYER_L2], phi_c, ev.mu, a, rng)
            cells = [e + p for e, p in zip(cells, pu)]
            pu_cells = list(pu)

        masks = topo_egamma_cluster(cells, sigma_tot, windows, np.full(c, self.generate == "electron"), det.clustering)

        # Cluster-level quantities.
        layer_e = np.stack([np.where(m, e, 0.0).sum(axis=(1, 2)) for m, e in zip(masks, cells)], axis=1)  # (c, 4)
        cluster_e = layer_e.sum(axis=1)
        dep_cluster = sum(np.where(masks[layer], dep[layer], 0.0).sum(axis=(1, 2)) for layer in (1, 2, 3))
        w2 = windows[geo.LAYER_L2]
        wgt = np.where(masks[2], np.maximum(cells[2], 0.0), 0.0)
        wsum = np.maximum(wgt.sum(axis=(1, 2)), 1e-12)
        cl_eta = (wgt * w2.eta_centre[:, :, None]).sum(axis=(1, 2)) / wsum
        dphi_rel = geo.wrap_phi(w2.phi_centre - phi_c[:, None])
        cl_phi = geo.wrap_phi(phi_c + (wgt * dphi_rel[:, None, :]).sum(axis=(1, 2)) / wsum)
        n_cells = sum(m.sum(axis=(1, 2)) for m in masks)
        # No egamma cluster without positive middle-layer energy (its position comes from there).
        good = (cluster_e > 0) & (n_cells > 0) & (wgt.sum(axis=(1, 2)) > 0)

        def per_cluster(x):
            return np.bincount(sc, x, c)

        e_acc = layer_e[:, 1:].sum(axis=1)
        cosh_eta = np.cosh(ev.abs_eta)
        if info["reco"] is not None:
            et_over_pt = info["reco"].et_over_pt(e_acc, np.cosh(cl_eta))
        else:
            et_over_pt = np.zeros(c)
        sign = ev.sign
        cols = {
            "cluster_e": cluster_e,
            "cluster_eta": cl_eta * sign,
            "cluster_phi": cl_phi,
            "cluster_e_ps": layer_e[:, 0],
            "cluster_e_l1": layer_e[:, 1],
            "cluster_e_l2": layer_e[:, 2],
            "cluster_e_l3": layer_e[:, 3],
            "cluster_e_tg3": np.zeros(c),
            "mu": ev.mu,
            "n_cells": n_cells.astype(np.int32),
            "is_crack": (np.abs(cl_eta) >= 1.37) & (np.abs(cl_eta) <= 1.52),
            "conversion_type": info["ctype"].astype(np.int8),
            "conv_r": info["conv_r_input"],
            "conv_pt_ratio": info["conv_pt_ratio"],
            "conv_et_over_pt": et_over_pt,
            "conv_pt": info["conv_pt"],
            "truth_e": ev.e,
            "truth_eta": ev.abs_eta * sign,
            "truth_phi": ev.phi,
            "truth_vertex_z": ev.z0 * sign,
            "truth_e_lost_upstream": per_cluster(e_up),
            "truth_e_lost_passive": per_cluster(e_passive),
            "truth_e_leak_behind": per_cluster(e_leak),
            "truth_e_outside_cluster": per_cluster(e_acc_total) - dep_cluster,
            "truth_e_dep_cluster": dep_cluster,
            "truth_converted": info["converted"],
            "truth_conv_r": info["conv_r"],
            "truth_conv_fraction": info["conv_fraction"],
            "truth_brem_fraction": info["brem_fraction"],
            "truth_n_showers": np.bincount(sc, minlength=c).astype(np.int8),
        }
        del cosh_eta
        # Particle label: the reconstructed category for photons.
        if self.generate == "electron":
            cols["particle"] = np.full(c, "electron", dtype=object)
        else:
            cols["particle"] = np.where(info["ctype"] > 0, "photon_conv", "photon_unconv").astype(object)

        # Cells: flatten the selected cells, layer by layer, eta then phi.
        flat = {
            name: []
            for name in ("cell_e", "cell_eta", "cell_phi", "cell_x", "cell_y", "cell_z", "cell_layer", "cell_noise")
        }
        for layer in range(geo.N_LAYERS):
            w = windows[layer]
            shape = masks[layer].shape
            x, y, z = w.cell_xyz()
            flat["cell_e"].append(cells[layer].reshape(c, -1))
            flat["cell_eta"].append(
                np.broadcast_to(w.eta_centre[:, :, None] * sign[:, None, None], shape).reshape(c, -1)
            )
            flat["cell_phi"].append(np.broadcast_to(geo.wrap_phi(w.phi_centre)[:, None, :], shape).reshape(c, -1))
            flat["cell_x"].append(x.reshape(c, -1))
            flat["cell_y"].append(y.reshape(c, -1))
            flat["cell_z"].append((z * sign[:, None, None]).reshape(c, -1))
            flat["cell_layer"].append(np.full((c, shape[1] * shape[2]), layer, dtype=np.int8))
            flat["cell_noise"].append(sigma_tot[layer].reshape(c, -1))
        mask_all = np.concatenate([m.reshape(c, -1) for m in masks], axis=1)[good]
        counts_sel = mask_all.sum(axis=1)
        out = {k: v[good] for k, v in cols.items()}
        out["n_cells"] = counts_sel.astype(np.int32)
        offsets = np.zeros(int(good.sum()) + 1, dtype=np.int32)
        np.cumsum(counts_sel, out=offsets[1:])
        out["cell_offsets"] = offsets
        for name, parts in flat.items():
            out[name] = np.concatenate(parts, axis=1)[good][mask_all]
        out["n_rejected"] = np.array([int((~good).sum())])
        if given is not None:
            out["input_index"] = np.flatnonzero(keep)[good]
        if self.noise_truth:
            for name, parts in (("truth_e_pileup_cluster", pu_cells), ("truth_e_noise_cluster", el_cells)):
                in_cluster = sum(np.where(masks[layer], parts[layer], 0.0).sum(axis=(1, 2)) for layer in (1, 2, 3))
                out[name] = (np.zeros(c) + in_cluster)[good]
        if self.keep_l2_window:
            valid2 = w2.valid[:, :, 0]
            e_win = np.where(w2.valid, cells[2], 0.0)[good]
            out["l2_window_e"] = e_win
            out["l2_window_eta"] = (w2.eta_centre * sign[:, None])[good]
            out["l2_window_phi"] = geo.wrap_phi(w2.phi_centre)[good]
            out["l2_window_valid"] = valid2[good]
            hot_e = np.where(w2.valid[good], e_win, -np.inf)
            out["l2_window_hot"] = hot_e.reshape(hot_e.shape[0], -1).argmax(axis=1)
        return out


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


def _subset(ev: _Event, info: dict, showers: Showers, keep: np.ndarray):
    """Keep the selected particles of a batch and re-index their showers."""
    new_index = np.cumsum(keep) - 1
    ev = _Event(*(getattr(ev, f)[keep] for f in _Event.__dataclass_fields__))
    reco = info.pop("reco")
    info = {k: v[keep] for k, v in info.items()}
    if reco is not None:
        from calo_calib.simulation.conversions import ConversionReco

        reco = ConversionReco(*(getattr(reco, f)[keep] for f in ConversionReco.__dataclass_fields__))
    info["reco"] = reco
    sel = keep[showers.cluster]
    showers = Showers(*(getattr(showers, f)[sel] for f in Showers.__dataclass_fields__))
    showers.cluster = new_index[showers.cluster]
    return ev, info, showers
