"""Readout: sampling fluctuations, accordion phi modulation, presampler response and cell noise.

All energies in GeV at the EM scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calo_calib.simulation.knobs import ETA_COVERAGE, knob


def sampling_term(abs_eta: np.ndarray, endcap: np.ndarray, cfg) -> np.ndarray:
    """Stochastic term a (sqrt(GeV)) of the accordion at |eta|.

    Barrel: 10% at eta = 0.687 [S19], scaled with the square root of the lead path per sampling
    cell, t_Pb cosh(eta) ([E]: the thinner lead above |eta| = 0.8 compensates the oblique path).
    End-cap: constant [E].
    """
    acc = cfg.accordion
    lead = np.where(abs_eta < float(acc.thin_lead_eta), float(acc.lead_mm_thick), float(acc.lead_mm_thin))
    ref = float(acc.lead_mm_thick) * np.cosh(float(cfg.sampling.a_ref_eta))
    a_barrel = float(cfg.sampling.a_barrel_ref) * np.sqrt(lead * np.cosh(abs_eta) / ref)
    return np.where(endcap, float(cfg.sampling.a_endcap), a_barrel)


def sampling_fluctuation(e_dep: np.ndarray, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Visible energy with Gamma fluctuations of variance a^2 E (card §3.4 recommendation).

    Args:
        e_dep: (c, ...) deposited EM-scale energy per cell, GeV (>= 0).
        a: (c,) stochastic term per cluster, sqrt(GeV).
    """
    a2 = a**2
    shape = e_dep / a2.reshape((-1,) + (1,) * (e_dep.ndim - 1))
    out = np.zeros_like(e_dep)
    pos = shape > 0
    # The scale of the cells drawn, in the (row-major) order of the boolean selection: each
    # cluster's a^2 once per selected cell of it (no full-size theta array to mask).
    theta = np.repeat(a2, pos.sum(axis=tuple(range(1, pos.ndim))))
    out[pos] = rng.gamma(shape[pos], theta)
    return out


def phi_modulation(phi: np.ndarray, abs_eta: np.ndarray, cfg) -> np.ndarray:
    """Accordion response versus phi within an absorber period (card §4.5, shape [S6]).

    response = 1 + |A| [a cos(N phi + B) + (1 - a) cos(2 N phi + D)], a = atan(C)/pi + 0.5,
    N = 1024 absorbers for |eta| < 1.5, 768 in the outer wheel.
    """
    r = cfg.readout
    n_abs = np.where(abs_eta < 1.5, 1024.0, 768.0)
    amp = np.where(abs_eta < 1.5, float(r.phi_mod_amplitude_barrel), float(r.phi_mod_amplitude_endcap))
    a = np.arctan(float(r.phi_mod_shape_c)) / np.pi + 0.5
    return 1.0 + amp * (
        a * np.cos(n_abs * phi + float(r.phi_mod_phase_b)) + (1 - a) * np.cos(2 * n_abs * phi + float(r.phi_mod_phase_d))
    )


def noise_sigmas(layer: int, eta_cell: np.ndarray, endcap: np.ndarray, mu: np.ndarray, cfg) -> tuple[np.ndarray, np.ndarray]:
    """Electronic and pile-up noise sigma (GeV) of cells, card §4.2 [E].

    Pile-up noise grows as cosh|eta| in energy and as sqrt(<mu>). Args broadcast: eta_cell (c, ne, 1)
    or (c, ne, nph), endcap and mu (c,). Returns two arrays of the broadcast shape. The optional
    knobs ``readout.elec_noise_scale`` and ``readout.pileup_noise_scale`` (default 1, exact identity)
    multiply the two sigmas: they change the cell noise and, consistently, the clustering thresholds.
    """
    r = cfg.readout
    s_el = np.where(endcap, float(r.sigma_elec_endcap[layer]), float(r.sigma_elec_barrel[layer]))
    s_el = s_el.reshape((-1,) + (1,) * (eta_cell.ndim - 1)) * float(knob(cfg, "readout.elec_noise_scale"))
    mu_b = mu.reshape((-1,) + (1,) * (eta_cell.ndim - 1))
    s_pu = float(r.sigma_pu_eta0[layer]) * np.cosh(eta_cell) * np.sqrt(np.maximum(mu_b, 0.0) / float(r.mu_ref_noise))
    s_pu = s_pu * float(knob(cfg, "readout.pileup_noise_scale"))
    return np.broadcast_to(s_el, np.broadcast_shapes(s_el.shape, s_pu.shape)), s_pu


def pileup_noise(sigma_pu: np.ndarray, mu: np.ndarray, cfg, rng: np.random.Generator) -> np.ndarray:
    """Pile-up noise: a compound Poisson of exponential hits, minus its mean (card §4.2 [E]).

    The mean-subtracted sum (baseline correction of the bipolar shaping) is zero on average, has the
    positive tail of in-time pile-up and the negative values of out-of-time pile-up, and its sigma
    is ``sigma_pu``. The mean number of hits nu scales with <mu>, the hit size does not. The
    compound Poisson is drawn as the Gamma with the same mean, variance and skewness
    (shape 8 nu / 9), one random number per cell instead of two.
    """
    r = cfg.readout
    nu_ref = float(r.pu_mean_hits)
    mu_b = mu.reshape((-1,) + (1,) * (sigma_pu.ndim - 1))
    nu = np.broadcast_to(nu_ref * np.maximum(mu_b, 0.0) / float(r.mu_ref_noise), sigma_pu.shape)
    k = (8.0 / 9.0) * nu
    out = np.zeros(sigma_pu.shape)
    pos = (k > 0) & (sigma_pu > 0)
    scale = sigma_pu[pos] / np.sqrt(k[pos])
    out[pos] = rng.gamma(k[pos], scale) - k[pos] * scale
    return out


def presampler_path_factor(abs_eta: np.ndarray, endcap: np.ndarray) -> np.ndarray:
    """Path length through the presampler relative to normal incidence (projective geometry)."""
    return np.where(endcap, 1.0 / np.tanh(np.maximum(abs_eta, 0.1)), np.cosh(abs_eta))


def presampler_mip_energy(abs_eta: np.ndarray, endcap: np.ndarray, cfg) -> np.ndarray:
    """EM-scale presampler energy of one minimum-ionising particle, GeV (card §3.4 [E])."""
    ps = cfg.presampler
    active = np.where(endcap, float(ps.active_mm_endcap), float(ps.active_mm_barrel))
    vis_mev = float(ps.mip_mev_per_mm) * active * presampler_path_factor(abs_eta, endcap)
    return vis_mev * float(ps.em_scale) / 1000.0


def presampler_present(abs_eta: np.ndarray, endcap: np.ndarray, cfg) -> np.ndarray:
    """Whether the cluster's side has a presampler at |eta|."""
    ps = cfg.presampler
    lo, hi = (float(v) for v in ps.endcap_eta)
    return np.where(endcap, (abs_eta >= lo) & (abs_eta < hi), abs_eta < float(ps.barrel_max_eta))



@dataclass(frozen=True)
class GainMap:
    """A fixed per-region gain miscalibration: the data-like "constant term" knob.

    The calorimeter (-2.5 < eta < 2.5, all phi) is divided into regions of ``region_deta`` x
    2 pi / ``region_n_phi`` (default 0.2 x 2 pi/32, the size of an ATLAS barrel HV sector [R]). Each
    region gets a gain 1 + sigma z with z ~ N(0, 1) drawn once from ``seed``: the map is a property of
    the detector (identical for every event, shard and worker), not random per event. All four
    layers of a region share its gain, so a cluster inside one region is scaled as a whole and the
    cluster-level constant term is about sigma (sigma_barrel or sigma_endcap by the cluster's side).
    """

    z: np.ndarray  # (n_eta_regions, n_phi_regions) standard-normal deviates
    sigma_barrel: float
    sigma_endcap: float
    region_deta: float

    @classmethod
    def from_config(cls, det) -> GainMap | None:
        """The map of detector config ``det``; None when both sigmas are 0 (nominal: no change at all)."""
        s_b = float(knob(det, "readout.gain_map.sigma_barrel"))
        s_e = float(knob(det, "readout.gain_map.sigma_endcap"))
        if s_b == 0.0 and s_e == 0.0:
            return None
        deta = float(knob(det, "readout.gain_map.region_deta"))
        n_eta = int(np.ceil(2 * ETA_COVERAGE / deta - 1e-9))
        n_phi = int(knob(det, "readout.gain_map.region_n_phi"))
        z = np.random.default_rng(int(knob(det, "readout.gain_map.seed"))).standard_normal((n_eta, n_phi))
        return cls(z, s_b, s_e, deta)

    def gains(self, eta: np.ndarray, phi: np.ndarray, endcap: np.ndarray) -> np.ndarray:
        """Gain of cells at signed ``eta`` and ``phi`` (rad) on a cluster's side; broadcast shape.

        Args:
            eta, phi: cell centres, broadcastable, e.g. (c, ne, 1) and (c, 1, nph).
            endcap: (c,) bool, the cluster uses the end-cap geometry (selects the sigma).
        """
        n_eta, n_phi = self.z.shape
        i_eta = np.clip(np.floor((eta + ETA_COVERAGE) / self.region_deta), 0, n_eta - 1).astype(np.intp)
        phi01 = np.mod(phi + np.pi, 2 * np.pi) / (2 * np.pi)
        i_phi = np.minimum((phi01 * n_phi).astype(np.intp), n_phi - 1)
        ndim = max(np.ndim(eta), np.ndim(phi))
        sigma = np.where(endcap, self.sigma_endcap, self.sigma_barrel).reshape((-1,) + (1,) * (ndim - 1))
        return 1.0 + sigma * self.z[i_eta, i_phi]

    def apply(self, cells: list[np.ndarray], windows: list, sign: np.ndarray, endcap: np.ndarray) -> list[np.ndarray]:
        """Cell energies (one (c, ne, nph) array per layer) times their gains.

        ``windows`` are the layers' :class:`~calo_calib.simulation.geometry.LayerWindow` (positive-eta
        frame); ``sign`` (c,) mirrors them to the cluster's real side, so both detector halves have
        their own regions.
        """
        out = []
        for e, w in zip(cells, windows):
            eta = w.eta_centre[:, :, None] * sign[:, None, None]
            phi = w.phi_centre[:, None, :]
            out.append(e * self.gains(eta, phi, endcap))
        return out
