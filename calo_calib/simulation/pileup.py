"""Pile-up as particles: minimum-bias interactions overlaid on every cluster's cells (physics_cells.md §1a).

For each cluster, every bunch crossing that the optimal filter still sees (offsets of
:func:`calo_calib.simulation.pulse.crossing_response`, about -22 to +3) holds Poisson(<mu>)
minimum-bias interactions if its bunch is filled (:class:`~calo_calib.simulation.pulse.BunchTrain`).
Each interaction is an event of the Pythia8 library (:mod:`calo_calib.simulation.minbias`) with a
random phi rotation and a random eta reflection. Its particles reach the calorimeter (photons
straight; charged particles on helices in the solenoid field, straight beyond it; those that curl
up never arrive) and deposit:

* photons and electrons: a small electromagnetic shower, its layer energies from the GFlash mean
  profile of the same code as the signal (start depth drawn from the conversion length), Gamma
  sampling fluctuations of variance a^2 E, the presampler a Poisson count of charged particles;
  lateral spread from the GFlash core + tail radii at each layer's mean depth;
* charged hadrons and muons: a minimum-ionising track, one cell per layer, energy = thickness in
  X0 x the MIP loss per X0 at the EM scale, Landau-like Gamma fluctuations.

A deposit in crossing j is reconstructed as E r(j) (bipolar pulse + OF), then the per-BCID mean
(<mu> sum_j filled(j) r(j) <E per interaction in the cell>) is subtracted, as ATLAS does
[S: athena CaloBCIDAvgAlg]. What remains has zero mean, a positive in-time tail, negative
out-of-time images, and is correlated across neighbouring cells and layers.

Only the interactions that put a particle into the cluster's window can matter. Instead of drawing
~1,700 whole interactions per cluster, the overlay draws "anchors": (interaction, particle) pairs
that land in the window, as a Poisson process whose rate is <mu> x (library particles per event
inside the eta strip) x (window phi width / 2 pi). Each anchor brings the other particles of its
event that land in the window with the same rotation, and is kept with probability 1/k (k: the
event's particles in the window), so an interaction with k particles inside is counted once. This is
exact for the window, for any library, and costs ~300 particles per cluster at <mu> = 51.

Simplifications (docs/simulation.md): one vertex at z = 0 for all pile-up interactions; charged
hadrons never interact (MIPs only); photons do not convert in the inner detector before their
shower (the shower start is drawn from the conversion length along the path, in the same X0 axis
as the signal); the lateral profile is the product of the 1-D marginals of the radial profile.
"""

from __future__ import annotations

import numpy as np

from calo_calib.simulation import geometry as geo
from calo_calib.simulation.minbias import KIND_CHARGED, MinBiasLibrary, load_or_generate
from calo_calib.simulation.pileup_library import Prepared, helix_impacts, neighbours, search_f32
from calo_calib.simulation.pileup_overlay import CHUNK, WIDE, Deposits, deposit_chunk, track_cells
from calo_calib.simulation.pulse import BunchTrain, CrossingResponse, crossing_response
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
_E_EDGES = np.geomspace(0.02, 50.0, 25)  # GeV, table bins of the mini-shower energy
_ETA_STEP = 0.05
_N_START = 8  # quantile bins of the shower start depth
_ETA_HALF = geo.WINDOW_HALF_ETA + 0.5 * 0.05  # furthest cell centre plus half the widest (L3) cell
_PHI_HALF = 0.5 * max(n * 2 * np.pi / geo.N_PHI[layer] for layer, n in enumerate(geo.WINDOW_N_PHI))


class _ZeroNormal:
    """Stand-in generator whose normal deviates are 0: the GFlash *mean* profile (table building)."""

    @staticmethod
    def standard_normal(shape):
        return np.zeros(shape)


class ParticlePileup:
    """The particle pile-up model of one detector configuration (``det.readout.pileup``)."""

    def __init__(self, det, media: list[Medium], material, accordion, progress: bool = True) -> None:
        pcfg = det.readout.pileup
        self.det = det
        self.media = media
        self.material = material
        self.accordion = accordion
        self.response: CrossingResponse = crossing_response(pcfg.pulse)
        self.train = BunchTrain(int(pcfg.train.filled), int(pcfg.train.empty))
        self.photon_min_e = float(pcfg.photon_min_e)
        self.w_eta = _ETA_HALF + float(pcfg.window_margin)
        self.w_phi = _PHI_HALF + float(pcfg.window_margin)
        from calo_calib.simulation.knobs import knob

        # The data-like knob scales the pile-up noise sigma: as more minimum-bias activity (rate x s^2).
        self.rate_scale = float(knob(det, "readout.pileup_noise_scale")) ** 2
        lib = load_or_generate(int(pcfg.library_events), int(pcfg.library_seed), float(pcfg.sqrt_s_gev), progress)
        self._build_tables()
        self.prep = self._prepare(lib)

    # -- tables ----------------------------------------------------------------------------------
    def _build_tables(self) -> None:
        """Mean mini-shower per (energy, |eta|, start-depth quantile): layer energies and radii.

        ``self.em_frac`` (nE, nEta, nQ, 4): fraction of E visible in L1-L3 (index 1-3) and the mean
        presampler charged-particle count per GeV (index 0); ``self.em_radii`` (nE, nEta, nQ, 4, 3):
        core radius, tail radius (mm) and core probability at each layer's mean depth.
        """
        det = self.det
        e_c = np.sqrt(_E_EDGES[:-1] * _E_EDGES[1:])
        eta_c = np.arange(0.5 * _ETA_STEP, 2.8, _ETA_STEP)
        u = (np.arange(_N_START) + 0.5) / _N_START
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
        shape = (e_c.size, eta_c.size, _N_START)
        self.em_frac = frac.reshape(shape + (4,))
        self.em_radii = radii.reshape(shape + (4, 3))
        # float32 per layer and radius kind, (4, 3, rows): a shower's radii come out of one gather
        # per layer in the (3, m) layout of the marginals (the cast commutes with the gather).
        self.em_radii_t32 = np.ascontiguousarray(radii.transpose(1, 2, 0).astype(np.float32))
        # MIP: EM-scale energy per X0 of the accordion medium (dE/dx_min x X0 / (e/mip)).
        self.mip_per_x0 = np.array([self._mip_per_x0(m) for m in self.media])

    @staticmethod
    def _mip_per_x0(m: Medium) -> float:
        from calo_calib.simulation.shower import LAR, PB

        # Mass fractions from Z_eff = w_pb Z_pb + w_lar Z_lar; energy loss per X0 of the mix is
        # sum_i w_i dE/dx_i times X0 (g/cm^2), 1/X0 = sum_i w_i / X0_i; EM scale: divided by e/mip.
        w_pb = (m.z_eff - LAR["Z"]) / (PB["Z"] - LAR["Z"])
        w_lar = 1.0 - w_pb
        x0_gcm2 = 1.0 / (w_pb / PB["x0"] + w_lar / LAR["x0"])
        return (w_pb * DEDX_MIN["pb"] + w_lar * DEDX_MIN["lar"]) * x0_gcm2 / 1000.0 / m.ehat  # GeV

    def _table_bins(self, e: np.ndarray, abs_eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energy and |eta| bins of the mini-shower tables for showers of ``e`` GeV at ``abs_eta``."""
        ie = np.clip(np.searchsorted(_E_EDGES, e) - 1, 0, _E_EDGES.size - 2)
        ia = np.clip((abs_eta / _ETA_STEP).astype(np.intp), 0, self.em_frac.shape[1] - 1)
        return ie, ia

    def _mip_layers(self, abs_eta: np.ndarray) -> np.ndarray:
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

    def _geometry(self, lib: MinBiasLibrary) -> dict:
        """Impacts, the anchor pool and the neighbour lists: they depend on the library, the field,
        the barrel/end-cap boundary and the window only, so detector variants that change material
        or shower knobs share them (cached per process)."""
        from omegaconf import OmegaConf

        pcfg = self.det.readout.pileup
        key_parts = (
            int(pcfg.library_events), int(pcfg.library_seed), float(pcfg.sqrt_s_gev), OmegaConf.to_yaml(self.det.field),
            float(self.det.accordion.barrel_end), self.photon_min_e, self.w_eta, self.w_phi,
        )  # fmt: skip
        if key_parts in _GEOMETRY:
            return _GEOMETRY[key_parts]
        eta_imp, phi_imp, arrives = helix_impacts(lib, self.det)
        energy = lib.energy.astype(np.float64)
        usable = arrives & ((lib.kind == KIND_CHARGED) | (energy >= self.photon_min_e))
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
        nb_start, nb_index = neighbours(key[order], phi_imp[geo.LAYER_L2], 2 * self.w_eta, 2 * self.w_phi)
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

    def _prepare(self, lib: MinBiasLibrary) -> Prepared:
        """Keep the particles that reach the calorimeter with a signal, ordered by (event, L2 eta)."""
        g = self._geometry(lib)
        kind, energy, eta_imp = g["kind"], g["energy"], g["eta_imp"]
        e2 = eta_imp[geo.LAYER_L2]
        a2 = np.abs(e2)
        em_ie, em_ia = self._table_bins(energy, a2)
        mip_e = self._mip_layers(a2.astype(np.float64)).astype(np.float32)
        em = kind != KIND_CHARGED
        mean_e = np.where(em[:, None], 0.0, mip_e).astype(np.float64)  # (n, 4) mean layer energy per particle
        frac = self.em_frac[em_ie[em], em_ia[em]].mean(axis=1)  # (m, 4), averaged over the start depth
        mean_e[em, 1:] = energy[em, None] * frac[:, 1:]
        mean_e[em, 0] = energy[em] * frac[:, 0] * mip_e[em, 0]
        density = self._density(lib.n_events, eta_imp, mean_e)
        return Prepared(
            lib, kind, energy, g["impacts"], eta_imp, g["phi_imp"], g["pool_eta"], g["pool_particle"], g["pool_flip"],
            density, ((em_ie * self.em_frac.shape[1] + em_ia) * _N_START).astype(np.int32), mip_e,
            g["nb_start"], g["nb_index"], g["eta2"], g["phi2"], g["nb_eta"], g["nb_phi"],
        )  # fmt: skip

    def _density(self, n_events: int, eta_imp: np.ndarray, mean_e: np.ndarray) -> np.ndarray:
        """(4, n_bins) mean EM-scale energy per interaction per unit eta per unit phi at |eta|."""
        n_bins = self.em_frac.shape[1]
        dens = np.zeros((4, n_bins))
        for layer in range(4):
            b = np.clip((np.abs(eta_imp[layer]) / _ETA_STEP).astype(np.intp), 0, n_bins - 1)
            # Both signs of eta fall in a |eta| bin: per unit signed eta, divide by 2 x the bin width.
            dens[layer] = np.bincount(b, mean_e[:, layer], n_bins) / (n_events * 2 * _ETA_STEP * 2 * np.pi)
        return dens

    # -- overlay ---------------------------------------------------------------------------------
    def mean_cell(self, layer: int, abs_eta_cell: np.ndarray, deta: np.ndarray, dphi: float) -> np.ndarray:
        """Mean EM-scale energy per interaction in cells at |eta| of size deta x dphi (broadcast)."""
        b = np.clip((abs_eta_cell / _ETA_STEP).astype(np.intp), 0, self.prep.density.shape[1] - 1)
        return self.prep.density[layer][b] * deta * dphi

    def draw(self, eta_c: np.ndarray, phi_c: np.ndarray, mu: np.ndarray, rng: np.random.Generator) -> dict:
        """The deposited pile-up particles of ``c`` clusters centred at (eta_c, phi_c), positive frame.

        Returns flat arrays over deposits: ``cluster``, ``particle``, ``flip`` (+-1), ``rotation``
        (rad) and ``weight`` (the OF response of the deposit's crossing, times nothing else), plus
        ``sum_response`` (c,): sum of r(j) over the filled crossings of each cluster.
        """
        p = self.prep
        c = eta_c.shape[0]
        resp = self.response
        position = self.train.draw_position(c, rng)
        filled = self.train.is_filled(position, resp.offsets)  # (c, J)
        n_filled = filled.sum(axis=1)
        lo = search_f32(p.pool_eta, eta_c - self.w_eta)
        hi = search_f32(p.pool_eta, eta_c + self.w_eta)
        per_interaction = (hi - lo) / (2.0 * p.lib.n_events) * (2 * self.w_phi) / (2 * np.pi)
        lam = np.maximum(mu, 0.0) * self.rate_scale * per_interaction * n_filled
        n_anchor = rng.poisson(lam)
        cl = np.repeat(np.arange(c), n_anchor)
        # Crossing of each anchor: uniform among the cluster's filled crossings.
        rows, cols = np.nonzero(filled)
        row_start = np.zeros(c + 1, np.int64)
        np.cumsum(n_filled, out=row_start[1:])
        k_cross = cols[row_start[cl] + (rng.random(cl.size) * n_filled[cl]).astype(np.int64)]
        pick = lo[cl] + (rng.random(cl.size) * (hi - lo)[cl]).astype(np.int64)
        anchor = p.pool_particle[pick]
        flip = p.pool_flip[pick].astype(np.float64)
        phi_cl = phi_c[cl]
        phi_new = phi_cl + rng.uniform(-self.w_phi, self.w_phi, cl.size)
        rotation = phi_new - p.phi2[anchor]
        # Partners: the other particles of the anchor's event within twice the window of it (its
        # neighbour list), kept if they land in the window with the anchor's rotation.
        start = p.nb_start[anchor]
        n_nb = p.nb_start[anchor + 1] - start
        a_of = np.repeat(np.arange(cl.size), n_nb)
        # Per-anchor values are spread over its pairs by np.repeat (sequential), not gathered by a_of;
        # the partners' impacts are read in neighbour-list order (nb_eta, nb_phi).
        pos = np.repeat(start - (np.cumsum(n_nb) - n_nb), n_nb) + np.arange(a_of.size)
        e_in = np.repeat(flip, n_nb) * p.nb_eta[pos] - np.repeat(eta_c[cl], n_nb)
        # The phi test only for the pairs that pass the eta test (same result, far fewer wraps).
        inside = np.flatnonzero(np.abs(e_in) < self.w_eta)
        a_in = a_of[inside]
        f_in = geo.wrap_phi(p.nb_phi[pos[inside]] + rotation[a_in] - phi_cl[a_in])
        inside = inside[np.abs(f_in) < self.w_phi]  # (pairs inside the window,) index into a_of / pos
        a_in = a_of[inside]
        k = 1 + np.bincount(a_in, minlength=cl.size)
        accept = rng.random(cl.size) * k < 1.0
        kept = accept[a_in]
        dep_anchor = np.concatenate([np.flatnonzero(accept), a_in[kept]])
        particle = np.concatenate([anchor[accept], p.nb_index[pos[inside[kept]]]])
        sum_resp = (filled * resp.response[None, :]).sum(axis=1)
        return {
            "cluster": cl[dep_anchor],
            "particle": particle,
            "flip": flip[dep_anchor],
            "rotation": rotation[dep_anchor],
            "weight": resp.response[k_cross[dep_anchor]],
            "sum_response": sum_resp,
        }

    def cells(
        self,
        windows: list,
        layer_rho: list[np.ndarray],
        eta_c: np.ndarray,
        phi_c: np.ndarray,
        mu: np.ndarray,
        sampling_a: np.ndarray,
        rng: np.random.Generator,
    ) -> list[np.ndarray]:
        """Pile-up energy (GeV, EM scale, after the per-BCID mean subtraction) in every window cell.

        Args:
            windows: the four :class:`~calo_calib.simulation.geometry.LayerWindow` of the batch.
            layer_rho: (c,) per layer, the transverse radius of the cluster's layer surface (mm).
            eta_c, phi_c: (c,) window centre (middle-layer impact), positive-eta frame.
            mu: (c,) <mu> of each cluster's event.
            sampling_a: (c,) stochastic term of the accordion at each cluster (sqrt(GeV)).
        Returns:
            Per layer a (c, ne, nph) array.
        """
        p = self.prep
        c = eta_c.shape[0]
        d = self.draw(eta_c, phi_c, mu, rng)
        order = np.argsort(d["cluster"], kind="stable")
        cl = d["cluster"][order]
        part = d["particle"][order]
        em = p.kind[part] != KIND_CHARGED
        # Showers and tracks are handled apart from here on, each in deposit order (so in cluster order).
        showers, tracks = (Deposits.subset(np.flatnonzero(sel), cl, part, d, order, c) for sel in (em, ~em))
        for deposits in (showers, tracks):
            deposits.gather_impacts(p)
        self._layer_energies(showers, tracks, sampling_a, rng)

        out_cells = []
        for layer, w in enumerate(windows):
            cells = np.zeros(w.valid.shape, np.float32)
            rho = layer_rho[layer]
            # Cell edges in mm from the window's first edge (eta) and from the window centre (phi).
            eta_edges = np.concatenate([w.eta_lo, w.eta_lo[:, -1:] + w.deta[:, None]], axis=1)
            x_edges = (eta_edges * rho[:, None]).astype(np.float32)
            nph = w.phi_lo.shape[1]
            y_edges = ((w.phi_lo[:, :1] - phi_c[:, None] + np.arange(nph + 1)[None, :] * w.dphi) * rho[:, None]).astype(
                np.float32
            )
            sh = showers.in_layer(layer, rho, phi_c, rows=x_edges.shape[1] > WIDE)
            tr = tracks.in_layer(layer, rho, phi_c)
            tr_a, tr_b, tr_e, tr_bounds = track_cells(x_edges, y_edges, tracks, tr)
            for k in range(showers.width.size):
                c0, c1 = k * CHUNK, min((k + 1) * CHUNK, c)
                if showers.bounds[k + 1] > showers.bounds[k] or tracks.bounds[k + 1] > tracks.bounds[k]:
                    deposit_chunk(x_edges, y_edges, showers, sh, tr_a, tr_b, tr_e, tr_bounds, k, c0, c1, cells[c0:c1])
            # Per-BCID mean: <mu> sum_j filled r(j) x mean energy per interaction in the cell.
            mean = self.mean_cell(layer, np.abs(w.eta_centre), w.deta[:, None], w.dphi)  # (c, ne)
            sub = (np.maximum(mu, 0.0) * self.rate_scale * d["sum_response"])[:, None] * mean
            out_cells.append((cells - sub[:, :, None]) * w.valid)
        return out_cells

    def _layer_energies(self, showers: Deposits, tracks: Deposits, sampling_a: np.ndarray, rng) -> None:
        """Draw the layer energies (m, 4) of showers and tracks (GeV, times the crossing response)
        and the showers' lateral radii (m, 4, 3); stored on the two deposit sets.

        The random draws are made in a fixed order (shower starts, accordion Gamma, presampler
        Poisson and Gamma, then the tracks' Gamma), each only when its set is not empty.
        """
        p = self.prep
        k_mip = float(self.det.presampler.mip_gamma_shape)
        if showers.n:
            pe = showers.part
            q = rng.integers(0, _N_START, pe.size)
            # Flat table row of each shower: np.take on rows is much faster than 3-index fancy indexing.
            row = p.em_row[pe] + q
            frac = np.take(self.em_frac.reshape(-1, 4), row, axis=0)  # (m, 4)
            showers.radii = [np.take(t, row, axis=1) for t in self.em_radii_t32]
            energy = p.energy[pe]
            e_layer = np.zeros((pe.size, 4))
            vis = energy[:, None] * frac[:, 1:]
            pos = vis > 0
            out = np.zeros_like(vis)
            # Each shower's a^2 once per drawn layer, in the order of the boolean selection.
            a2_pos = np.repeat(sampling_a[showers.cl] ** 2, pos.sum(axis=1))
            out[pos] = rng.gamma(vis[pos] / a2_pos, a2_pos)
            e_layer[:, 1:] = out
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


_MODELS: dict[str, ParticlePileup] = {}
_GEOMETRY: dict[tuple, dict] = {}


def pileup_model(det, media: list[Medium], material, accordion) -> ParticlePileup | None:
    """The pile-up model of detector config ``det``: None for ``gaussian`` (per-cell noise in readout.py).

    ``particles`` models are cached per process and detector config (building one loads the library
    and prepares ~1.5 M particles, about 2 s).
    """
    from omegaconf import OmegaConf

    model = str(det.readout.pileup.model)
    if model == "gaussian":
        return None
    if model != "particles":
        from calo_calib.simulation.material import ConfigError

        raise ConfigError(f"detector.readout.pileup.model: expected 'particles' or 'gaussian', got {model!r}")
    key = OmegaConf.to_yaml(det)
    if key not in _MODELS:
        _MODELS[key] = ParticlePileup(det, media, material, accordion)
    return _MODELS[key]
