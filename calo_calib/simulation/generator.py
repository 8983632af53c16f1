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
from calo_calib.simulation.cluster_columns import (
    Clustered,
    cluster_columns,
    l2_window_columns,
    noise_truth_columns,
    selected_output,
)
from calo_calib.simulation.conversions import CONV_R_NONE, reconstruct_conversions
from calo_calib.simulation.deposits import accordion_deposits, layer_impacts, longitudinal, presampler_cells
from calo_calib.simulation.knobs import knob
from calo_calib.simulation.material import AccordionDepth, InnerDetectorProfile, UpstreamMaterial
from calo_calib.simulation.noise_conditions import load_or_measure
from calo_calib.simulation.pileup import pileup_model
from calo_calib.simulation.readout import (
    GainMap,
    noise_sigmas,
    phi_modulation,
    pileup_noise,
    sampling_fluctuation,
    sampling_term,
)
from calo_calib.simulation.shower import accordion_media
from calo_calib.simulation.supercluster import SAME_TRACK, VERTEX_TRACKS, WINDOW_ONLY, Tracks, egamma_supercluster
from calo_calib.simulation.upstream import (
    CONVERSION_MEAN_X0,
    R_REF_MM,
    Showers,
    propagate_electrons,
    sample_pair_fraction,
)


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
        # Numerics (not a mis-modelling): how finely each accordion layer is cut in depth.
        self.depth_slice_factor = int(knob(det, "shower.depth_slice_factor"))
        self.gain_map = GainMap.from_config(det)
        self.pileup = pileup_model(det, self.media, self.material, self.accordion)
        # The clustering noise of the particle model: its own per-cell sigma, measured once per detector
        # and cached (noise_conditions.py); None: the configured table (the gaussian model's own sigma).
        self.noise_conditions = None
        if self.pileup is not None and str(det.readout.pileup.conditions.source) == "measured":
            self.noise_conditions = load_or_measure(self.pileup, det)

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
            # Up to two reconstructed tracks per particle (the electron; the legs of a Si conversion),
            # for the supercluster's track matching: their lines beyond the field (relative azimuth at
            # R_REF_MM, direction), (n, 2) rad, and which exist (n, 2) bool.
            "track_phi_ref": np.zeros((n, 2)),
            "track_psi": np.zeros((n, 2)),
            "track_valid": np.zeros((n, 2), bool),
        }
        if self.generate == "electron":
            if charge is None:
                charge = np.where(rng.random(n) < 0.5, -1.0, 1.0)
            res = self._propagate(idx, ev.e, charge, np.zeros(n), x_id, cosh_eta, sinh_eta, rng)
            info["brem_fraction"] = 1.0 - res.keep_fraction
            info["track_phi_ref"][:, 0] = res.track_phi_ref
            info["track_psi"][:, 0] = res.track_psi
            info["track_valid"][:, 0] = True
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
            for leg, part in enumerate((slice(None, ci.size), slice(ci.size, None))):
                info["track_phi_ref"][ci, leg] = res.track_phi_ref[part]
                info["track_psi"][ci, leg] = res.track_psi[part]
            parts.append(res.showers)
            info["brem_fraction"][conv] = 1.0 - (e1 * keep1[conv] + e2 * keep2[conv]) / ev.e[conv]
        reco = reconstruct_conversions(
            conv, np.where(conv, r_conv, 0.0), x * ev.e, (1 - x) * ev.e, keep1, keep2, ev.e, cosh_eta,
            self.det.conversion, rng,
        )  # fmt: skip
        # Only Si conversions lend their tracks to the satellite search (photonSuperClusterBuilder
        # UseOnlySi, [S]); ctype 1 singleSi, 3 doubleSi.
        si = (reco.conversion_type == 1) | (reco.conversion_type == 3)
        info["track_valid"] = np.stack([si & reco.track1, si & reco.track2], axis=1)
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
        det = self.det
        ev = self._gun(n, rng) if given is None else given.event()
        showers, info = self._upstream(ev, rng, None if given is None else given.charge)

        # Particle-type selection on the reconstructed conversion category, before the costly part.
        keep = self._type_selection(info, n)
        if not np.any(keep):
            return None
        ev, info, showers = _subset(ev, info, showers, keep)
        sc = showers.cluster  # shower -> cluster
        imp = layer_impacts(ev, showers, float(det.accordion.barrel_end))
        lon = longitudinal(self, ev, showers, imp.endcap, rng)
        # Accordion modulation per shower, from its impact phi at the middle layer.
        if bool(det.readout.phi_modulation):
            mod = phi_modulation(ev.phi[sc] + imp.phi_rel2, ev.abs_eta[sc], det)
        else:
            mod = np.ones(showers.e.shape[0])
        starts = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
        dep, vis = accordion_deposits(ev, showers, imp, lon, mod, starts)
        e_ps_cells = presampler_cells(det, ev, showers, imp, lon, starts, rng)
        cells, sigma_tot, pu_cells, el_cells = self._readout(ev, imp, e_ps_cells, vis, rng)
        electron = self.generate == "electron"
        rule, tracks = self._tracks(ev, info, imp)
        masks = egamma_supercluster(cells, sigma_tot, imp.windows, rule, tracks, det.clustering)
        cl = Clustered(cells, sigma_tot, masks, dep, imp.windows, imp.phi_c)

        cols, good = cluster_columns(ev, info, showers, lon, cl, electron, float(det.clustering.min_et))
        out = selected_output(cols, good, cl, ev.sign)
        if given is not None:
            out["input_index"] = np.flatnonzero(keep)[good]
        if self.noise_truth:
            out.update(noise_truth_columns(cl, good, pu_cells, el_cells))
        if self.keep_l2_window:
            out.update(l2_window_columns(cl, good, ev.sign))
        return out

    def _tracks(self, ev: _Event, info: dict, imp) -> tuple[np.ndarray, Tracks]:
        """The satellite rule (c,) and the tracks extrapolated to the middle layer of each cluster."""
        rho2 = imp.layer_rho[geo.LAYER_L2][:, None]
        phi_rel = (R_REF_MM * info["track_phi_ref"] + info["track_psi"] * (rho2 - R_REF_MM)) / rho2
        valid = info["track_valid"]
        # Brem photons leave along the track's earlier tangents: between its perigee direction
        # (relative azimuth 0) and its impact.
        tracks = Tracks(
            np.repeat(imp.layer_eta[geo.LAYER_L2][:, None], 2, axis=1),
            ev.phi[:, None] + phi_rel,
            np.where(phi_rel > 0, -1.0, 1.0),
            valid,
        )
        if self.generate == "electron":
            rule = np.full(ev.e.shape[0], SAME_TRACK)
        else:
            rule = np.where(valid.any(axis=1), VERTEX_TRACKS, WINDOW_ONLY)
        return rule, tracks

    def _type_selection(self, info: dict, n: int) -> np.ndarray:
        """(n,) the particles of the selected reconstructed type (``particle.select``)."""
        if self.select == "unconverted":
            return info["ctype"] == 0
        if self.select == "converted":
            return info["ctype"] > 0
        return np.ones(n, bool)

    def _readout(self, ev: _Event, imp, e_ps_cells: np.ndarray, vis: list, rng: np.random.Generator):
        """Sampling fluctuations, gain map, electronic noise and pile-up on the signal cells.

        Returns per layer (c, ne, nph): the cell energies, the clustering noise sigma (electronic and
        pile-up at the reference <mu>: the measured conditions of the particle model, else the table), and (for ``noise_truth``, else 0.0) the pile-up and electronic
        noise added to each cell. Draw order: sampling, then per layer noise (and the per-cell pile-up
        model), then the particle pile-up.
        """
        det, c, endcap, windows = self.det, ev.e.shape[0], imp.endcap, imp.windows
        a = sampling_term(ev.abs_eta, endcap, det)
        if bool(det.sampling.enabled):
            vis = [None] + [sampling_fluctuation(v, a, rng) for v in vis[1:]]
        cells = [e_ps_cells] + vis[1:]
        if self.gain_map is not None:  # fixed per-region miscalibration of the signal (noise is calibrated apart)
            cells = self.gain_map.apply(cells, windows, ev.sign, endcap)

        # Noise: per-event <mu> for the cell content; a reference <mu> for the clustering thresholds.
        sigma_tot = []
        mu_ref = np.full(c, float(self.cfg.pileup.mu_reference))
        el_cells: list = [0.0] * geo.N_LAYERS  # electronic noise and pile-up per layer (noise_truth)
        pu_cells: list = [0.0] * geo.N_LAYERS
        for layer in range(geo.N_LAYERS):
            w = windows[layer]
            eta_cell = np.abs(w.eta_centre)[:, :, None] * np.ones((1, 1, w.phi_lo.shape[1]))
            s_el, s_pu_ref = noise_sigmas(layer, eta_cell, endcap, mu_ref, det)
            if self.noise_conditions is not None:
                s_pu_ref = self.noise_conditions.sigma_pu(layer, eta_cell, endcap, mu_ref)
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
            pu = self.pileup.cells(windows, imp.layer_rho, imp.layer_eta[geo.LAYER_L2], imp.phi_c, ev.mu, a, rng)
            cells = [e + p for e, p in zip(cells, pu)]
            pu_cells = list(pu)
        return cells, sigma_tot, pu_cells, el_cells


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
