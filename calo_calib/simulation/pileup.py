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

The modules: this one draws the deposits (:meth:`ParticlePileup.draw`) and sums them into the cells
(:meth:`ParticlePileup.cells`); :mod:`~calo_calib.simulation.pileup_library` prepares the library
(impacts, anchor pool, same-event neighbours); :mod:`~calo_calib.simulation.pileup_energies` holds
the mini-shower and MIP tables and draws the deposits' layer energies;
:mod:`~calo_calib.simulation.pileup_overlay` spreads them over the cells.

Simplifications (docs/simulation.md): one vertex at z = 0 for all pile-up interactions; charged
hadrons never interact (MIPs only); photons do not convert in the inner detector before their
shower (the shower start is drawn from the conversion length along the path, in the same X0 axis
as the signal); the lateral profile is the product of the 1-D marginals of the radial profile.
"""

from __future__ import annotations

import copy

import numpy as np

from calo_calib.simulation import geometry as geo
from calo_calib.simulation.minbias import KIND_CHARGED, MinBiasLibrary, load_or_generate
from calo_calib.simulation.pileup_energies import ETA_STEP, N_START, MiniShowers
from calo_calib.simulation.pileup_library import Prepared, library_geometry, search_f32
from calo_calib.simulation.pileup_overlay import WIDE, Deposits, layer_cells
from calo_calib.simulation.pulse import BunchTrain, CrossingResponse, crossing_response
from calo_calib.simulation.shower import Medium

_ETA_HALF = geo.WINDOW_HALF_ETA + 0.5 * 0.05  # furthest cell centre plus half the widest (L3) cell
_PHI_HALF = 0.5 * max(n * 2 * np.pi / geo.N_PHI[layer] for layer, n in enumerate(geo.WINDOW_N_PHI))


class ParticlePileup:
    """The particle pile-up model of one detector configuration (``det.readout.pileup``)."""

    def __init__(self, det, media: list[Medium], material, accordion, progress: bool = True) -> None:
        pcfg = det.readout.pileup
        self.det = det
        self.response: CrossingResponse = crossing_response(pcfg.pulse)
        self.train = BunchTrain(int(pcfg.train.filled), int(pcfg.train.empty))
        self.photon_min_e = float(pcfg.photon_min_e)
        self.w_eta = _ETA_HALF + float(pcfg.window_margin)
        self.w_phi = _PHI_HALF + float(pcfg.window_margin)
        from calo_calib.simulation.knobs import knob

        # The data-like knob scales the pile-up noise sigma: as more minimum-bias activity (rate x s^2).
        self.rate_scale = float(knob(det, "readout.pileup_noise_scale")) ** 2
        lib = load_or_generate(int(pcfg.library_events), int(pcfg.library_seed), float(pcfg.sqrt_s_gev), progress)
        self.tables = MiniShowers(det, media, material, accordion)
        self.prep = self._prepare(lib)

    def at_unit_scale(self) -> ParticlePileup:
        """This model without the pile-up noise knob (rate scale 1); shares the prepared library."""
        unit = copy.copy(self)
        unit.rate_scale = 1.0
        return unit

    def _prepare(self, lib: MinBiasLibrary) -> Prepared:
        """Keep the particles that reach the calorimeter with a signal, ordered by (event, L2 eta)."""
        t = self.tables
        g = library_geometry(lib, self.det, self.photon_min_e, self.w_eta, self.w_phi)
        kind, energy, eta_imp = g["kind"], g["energy"], g["eta_imp"]
        e2 = eta_imp[geo.LAYER_L2]
        a2 = np.abs(e2)
        em_ie, em_ia = t.table_bins(energy, a2)
        mip_e = t.mip_layers(a2.astype(np.float64)).astype(np.float32)
        em = kind != KIND_CHARGED
        mean_e = np.where(em[:, None], 0.0, mip_e).astype(np.float64)  # (n, 4) mean layer energy per particle
        frac = t.em_frac[em_ie[em], em_ia[em]].mean(axis=1)  # (m, 4), averaged over the start depth
        mean_e[em, 1:] = energy[em, None] * frac[:, 1:]
        mean_e[em, 0] = energy[em] * frac[:, 0] * mip_e[em, 0]
        density = t.density(lib.n_events, eta_imp, mean_e)
        return Prepared(
            lib, kind, energy, g["impacts"], eta_imp, g["phi_imp"], g["pool_eta"], g["pool_particle"], g["pool_flip"],
            density, ((em_ie * t.em_frac.shape[1] + em_ia) * N_START).astype(np.int32), mip_e,
            g["nb_start"], g["nb_index"], g["eta2"], g["phi2"], g["nb_eta"], g["nb_phi"],
        )  # fmt: skip

    # -- overlay ---------------------------------------------------------------------------------
    def mean_cell(self, layer: int, abs_eta_cell: np.ndarray, deta: np.ndarray, dphi: float) -> np.ndarray:
        """Mean EM-scale energy per interaction in cells at |eta| of size deta x dphi (broadcast)."""
        b = np.clip((abs_eta_cell / ETA_STEP).astype(np.intp), 0, self.prep.density.shape[1] - 1)
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
        showers = Deposits.subset(np.flatnonzero(em), cl, part, d, order, c)
        tracks = Deposits.subset(np.flatnonzero(~em), cl, part, d, order, c, padded=False)
        for deposits in (showers, tracks):
            deposits.gather_impacts(p)
        self.tables.draw(p, showers, tracks, sampling_a, rng)

        out_cells = []
        for layer, w in enumerate(windows):
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
            cells = layer_cells(x_edges, y_edges, showers, sh, tracks, tr)
            # Per-BCID mean: <mu> sum_j filled r(j) x mean energy per interaction in the cell.
            mean = self.mean_cell(layer, np.abs(w.eta_centre), w.deta[:, None], w.dphi)  # (c, ne)
            sub = (np.maximum(mu, 0.0) * self.rate_scale * d["sum_response"])[:, None] * mean
            out_cells.append((cells - sub[:, :, None]) * w.valid)
        return out_cells


_MODELS: dict[str, ParticlePileup] = {}


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
