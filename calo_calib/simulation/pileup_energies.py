"""What a pile-up particle deposits in each layer: the mean tables and the fluctuated draws.

:class:`MiniShowers` tabulates once per detector configuration the mean mini-shower of a photon or
electron per (energy, |eta|, start-depth quantile): the fraction of its energy visible in L1-L3,
the presampler's charged-particle count per GeV and the GFlash core and tail radii at each layer's
mean depth (the mean profile of the signal's shower code, :mod:`calo_calib.simulation.shower`); and
the EM-scale energy of a minimum-ionising track per layer. :meth:`MiniShowers.density` gives the
mean energy per interaction per unit eta x phi (the per-BCID mean subtracted by
:mod:`calo_calib.simulation.pileup`); :meth:`MiniShowers.draw` the fluctuated layer energies of the
drawn deposits. Energies in GeV.
"""

from __future__ import annotations

import numpy as np

from calo_calib.simulation.pileup_library import Prepared
from calo_calib.simulation.pileup_overlay import Deposits
from calo_calib.simulation.shower import (
    Medium,
    cumulative,
    longitudinal_params,
    mean_depth_in,
    profile_density,
    radial_params,
)

# PDG minimum ionisation, MeV cm^2/g
DEDX_MIN = {"pb": 1.122, "lar": 1.519}
E_EDGES = np.geomspace(0.02, 50.0, 25)  # GeV, table bins of the mini-shower energy
ETA_STEP = 0.05
N_START = 8  # quantile bins of the shower start depth


class _ZeroNormal:
    """Stand-in generator whose normal deviates are 0: the GFlash *mean* profile (table building)."""

    @staticmethod
    def standard_normal(shape):
        return np.zeros(shape)


class MiniShowers:
    """The mean layer energies and radii of pile-up mini-showers and MIP tracks, for detector ``det``."""

    def __init__(self, det, media: list[Medium], material, accordion) -> None:
        self.det = det
        self.media = media
        self.material = material
        self.accordion = accordion
        self._build()

    def _build(self) -> None:
        """Mean mini-shower per (energy, |eta|, start-depth quantile): layer energies and radii.

        ``self.em_frac`` (nE, nEta, nQ, 4): fraction of E visible in L1-L3 (index 1-3) and the mean
        presampler charged-particle count per GeV (index 0); ``self.em_radii`` (nE, nEta, nQ, 4, 3):
        core radius, tail radius (mm) and core probability at each layer's mean depth.
        """
        det = self.det
        e_c = np.sqrt(E_EDGES[:-1] * E_EDGES[1:])
        eta_c = np.arange(0.5 * ETA_STEP, 2.8, ETA_STEP)
        u = (np.arange(N_START) + 0.5) / N_START
        from calo_calib.simulation.upstream import CONVERSION_MEAN_X0

        t_start = -CONVERSION_MEAN_X0 * np.log(1.0 - u)
        ee, aa, tt = (x.ravel() for x in np.meshgrid(e_c, eta_c, t_start, indexing="ij"))
        endcap = aa >= float(det.accordion.barrel_end)
        medium = np.where(endcap, 2, np.where(aa < float(det.accordion.thin_lead_eta), 0, 1))
        params = longitudinal_params(ee, medium, self.media, _ZeroNormal(), 0.0)
        _, x_ps, x_acc = self.material.at(aa, np.zeros_like(aa))
        l1, l2, l3 = self.accordion.at(aa)
        bounds = np.stack([x_acc, l1, l2, l3], axis=1)
        cdf = cumulative(params, tt, bounds)
        frac = np.zeros((ee.size, 4))
        frac[:, 1:] = np.diff(cdf, axis=1)
        # Presampler: charged particles crossing it per GeV of shower (as the signal's presampler model).
        path = np.where(endcap, 1.0 / np.tanh(np.maximum(aa, 0.1)), np.cosh(aa))
        w_ps = (
            np.where(endcap, float(det.presampler.active_mm_endcap), float(det.presampler.active_mm_barrel))
            / 140.0
            * path
        )
        t_ps = x_ps + 0.5 * w_ps
        dens = profile_density(params, tt, t_ps)
        frac[:, 0] = (ee * 1000.0 * dens / float(det.presampler.ec_upstream_mev) + 2.0 * (tt < t_ps)) / ee
        t_mid = mean_depth_in(params, tt, bounds[:, :-1], bounds[:, 1:])
        tau = np.maximum(t_mid - tt[:, None], 0.0) * params.tau_scale[:, None]
        rc, rt, pc = radial_params(params, tau)
        tau_ps = np.maximum(t_ps - tt, 0.0) * params.tau_scale
        rc0, rt0, pc0 = radial_params(params, tau_ps[:, None])
        radii = np.zeros((ee.size, 4, 3))
        radii[:, 0] = np.stack([rc0[:, 0], rt0[:, 0], pc0[:, 0]], axis=1)
        radii[:, 1:] = np.stack([rc, rt, pc], axis=2)
        shape = (e_c.size, eta_c.size, N_START)
        self.em_frac = frac.reshape(shape + (4,))
        self.em_radii = radii.reshape(shape + (4, 3))
        # float32 per layer and radius kind, (4, 3, rows): a shower's radii come out of one gather
        # per layer in the (3, m) layout of the marginals (the cast commutes with the gather).
        self.em_radii_t32 = np.ascontiguousarray(radii.transpose(1, 2, 0).astype(np.float32))
        # MIP: EM-scale energy per X0 of the accordion medium (dE/dx_min x X0 / (e/mip)).
        self.mip_per_x0 = np.array([_mip_per_x0(m) for m in self.media])

    def table_bins(self, e: np.ndarray, abs_eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energy and |eta| bins of the mini-shower tables for showers of ``e`` GeV at ``abs_eta``."""
        ie = np.clip(np.searchsorted(E_EDGES, e) - 1, 0, E_EDGES.size - 2)
        ia = np.clip((abs_eta / ETA_STEP).astype(np.intp), 0, self.em_frac.shape[1] - 1)
        return ie, ia

    def mip_layers(self, abs_eta: np.ndarray) -> np.ndarray:
        """(n, 4) mean EM-scale MIP energy per layer (GeV); presampler from its own model."""
        from calo_calib.simulation.readout import presampler_mip_energy, presampler_present

        det = self.det
        endcap = abs_eta >= float(det.accordion.barrel_end)
        medium = np.where(endcap, 2, np.where(abs_eta < float(det.accordion.thin_lead_eta), 0, 1))
        _, _, x_acc = self.material.at(abs_eta, np.zeros_like(abs_eta))
        l1, l2, l3 = self.accordion.at(abs_eta)
        thick = np.stack([l1 - x_acc, l2 - l1, l3 - l2], axis=1)
        out = np.zeros((abs_eta.size, 4))
        out[:, 1:] = thick * self.mip_per_x0[medium][:, None]
        out[:, 0] = presampler_mip_energy(abs_eta, endcap, det) * presampler_present(abs_eta, endcap, det)
        return out

    def density(self, n_events: int, eta_imp: np.ndarray, mean_e: np.ndarray) -> np.ndarray:
        """(4, n_bins) mean EM-scale energy per interaction per unit eta per unit phi at |eta|."""
        n_bins = self.em_frac.shape[1]
        dens = np.zeros((4, n_bins))
        for layer in range(4):
            b = np.clip((np.abs(eta_imp[layer]) / ETA_STEP).astype(np.intp), 0, n_bins - 1)
            # Both signs of eta fall in a |eta| bin: per unit signed eta, divide by 2 x the bin width.
            dens[layer] = np.bincount(b, mean_e[:, layer], n_bins) / (n_events * 2 * ETA_STEP * 2 * np.pi)
        return dens

    def draw(self, p: Prepared, showers: Deposits, tracks: Deposits, sampling_a: np.ndarray, rng) -> None:
        """Draw the layer energies (m, 4) of showers and tracks (GeV, times the crossing response)
        and the showers' lateral radii (per layer (3, m) float32); stored on the two deposit sets.

        The random draws are made in a fixed order (shower starts, accordion Gamma, presampler
        Poisson and Gamma, then the tracks' Gamma), each only when its set is not empty.
        """
        k_mip = float(self.det.presampler.mip_gamma_shape)
        if showers.n:
            pe = showers.part
            q = rng.integers(0, N_START, pe.size)
            # Flat table row of each shower: np.take on rows is much faster than 3-index fancy indexing.
            row = p.em_row[pe] + q
            frac = np.take(self.em_frac.reshape(-1, 4), row, axis=0)  # (m, 4)
            showers.radii = [np.take(t, row, axis=1) for t in self.em_radii_t32]
            energy = p.energy[pe]
            e_layer = np.zeros((pe.size, 4))
            vis = energy[:, None] * frac[:, 1:]
            pos = vis > 0
            # Each shower's a^2 once per drawn layer, in the order of the boolean selection.
            a2_pos = np.repeat(sampling_a[showers.cl] ** 2, pos.sum(axis=1))
            e_layer[:, 1:][pos] = rng.gamma(vis[pos] / a2_pos, a2_pos)
            # Presampler: Poisson count of crossing charged particles, Landau-like energy each.
            cnt = rng.poisson(energy * frac[:, 0])
            ps = np.zeros(cnt.shape)
            hit = cnt > 0
            ps[hit] = rng.gamma(k_mip * cnt[hit], p.mip_e[:, 0][pe[hit]] / k_mip)
            e_layer[:, 0] = ps
            e_layer *= showers.weight[:, None]
            showers.e_layer = e_layer
        if tracks.n:
            mip = np.take(p.mip_e, tracks.part, axis=0)
            e_layer = mip * rng.gamma(k_mip, 1.0 / k_mip, (tracks.n, 4))
            e_layer *= tracks.weight[:, None]
            tracks.e_layer = e_layer


def _mip_per_x0(m: Medium) -> float:
    """EM-scale energy (GeV) of a minimum-ionising particle per X0 of the accordion medium ``m``."""
    from calo_calib.simulation.shower import LAR, PB

    # Mass fractions from Z_eff = w_pb Z_pb + w_lar Z_lar; energy loss per X0 of the mix is
    # sum_i w_i dE/dx_i times X0 (g/cm^2), 1/X0 = sum_i w_i / X0_i; EM scale: divided by e/mip.
    w_pb = (m.z_eff - LAR["Z"]) / (PB["Z"] - LAR["Z"])
    w_lar = 1.0 - w_pb
    x0_gcm2 = 1.0 / (w_pb / PB["x0"] + w_lar / LAR["x0"])
    return (w_pb * DEDX_MIN["pb"] + w_lar * DEDX_MIN["lar"]) * x0_gcm2 / 1000.0 / m.ehat  # GeV
