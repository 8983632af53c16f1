"""Photon-conversion reconstruction model and tracking variables (card §2.3, efficiencies [E]).

Keeps the migrations that make converted photons hard: true conversions lost by the
reconstruction (low efficiency at large radius, soft tracks below the pT threshold), single-track
conversions, TRT-only conversions without precise pT, and fake conversions of unconverted photons.
Conversion types follow xAOD EgammaEnums [S16]: 0 unconverted, 1 singleSi, 2 singleTRT,
3 doubleSi, 4 doubleTRT, 5 doubleSiTRT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONV_R_NONE = 799.0  # convR when there is no usable conversion vertex (ATLAS convention)


@dataclass
class ConversionReco:
    """Reconstructed conversion of each photon, arrays of shape (n,)."""

    conversion_type: np.ndarray  # int8, 0-5
    conv_r_reco: np.ndarray  # mm, reconstructed vertex radius (0 if none)
    conv_pt: np.ndarray  # GeV, |sum| of the reconstructed track pT (0 if none)
    pt1: np.ndarray  # GeV, leading reconstructed track pT
    pt2: np.ndarray  # GeV, sub-leading (0 if single track)
    track1: np.ndarray  # bool, conversion electron 1 (energy e1) is a track of the vertex
    track2: np.ndarray  # bool, conversion electron 2 is a track of the vertex

    def conv_r(self) -> np.ndarray:
        """The calibration input convR: the radius if pT_conv > 3 GeV, else 799 mm."""
        return np.where((self.conversion_type > 0) & (self.conv_pt > 3.0), self.conv_r_reco, CONV_R_NONE)

    def pt_ratio(self) -> np.ndarray:
        """convPtRatio: max(pT1, pT2)/(pT1 + pT2) for two Si tracks, else 1."""
        two_si = self.conversion_type == 3
        return np.where(two_si, self.pt1 / np.maximum(self.pt1 + self.pt2, 1e-9), 1.0)

    def et_over_pt(self, e_acc: np.ndarray, cosh_eta: np.ndarray) -> np.ndarray:
        """convEtOverPt = E_acc / (cosh(eta) pT_conv) for two Si tracks, else 0; clipped to [0, 2]."""
        two_si = self.conversion_type == 3
        val = e_acc / (cosh_eta * np.maximum(self.conv_pt, 1e-9))
        return np.where(two_si, np.clip(val, 0.0, 2.0), 0.0)


def reconstruct_conversions(
    converted: np.ndarray,
    r_conv: np.ndarray,
    e1: np.ndarray,
    e2: np.ndarray,
    keep1: np.ndarray,
    keep2: np.ndarray,
    e_photon: np.ndarray,
    cosh_eta: np.ndarray,
    cfg,
    rng: np.random.Generator,
) -> ConversionReco:
    """Apply the conversion reconstruction model to photons.

    Args:
        converted: (n,) bool, true conversion inside the inner detector (R < 800 mm).
        r_conv: (n,) true conversion radius, mm (ignored where not converted).
        e1, e2: (n,) energies of the conversion electrons at the vertex, GeV.
        keep1, keep2: (n,) fraction of their energy each electron keeps after bremsstrahlung in
            the rest of the inner detector (the track fit sees part of that loss).
        e_photon: (n,) photon energy, GeV; cosh_eta: (n,).
        cfg: the ``detector.conversion`` config node.
    """
    n = converted.shape[0]
    eff = np.interp(r_conv, list(cfg.eff_r), list(cfg.eff_values))
    found_vertex = converted & (rng.random(n) < eff)
    rec = float(cfg.brem_recovery)

    def measured_pt(e, keep, trt_only):
        # The fit (GSF-like) recovers the brem of most tracks; the unrecovered ones measure a part
        # of the momentum lost after the vertex, which makes the E/p tail above 1 (card §2.3 [E]).
        pt = e / cosh_eta
        unrecovered = rng.random(n) > rec
        seen = pt * (1.0 - np.where(unrecovered, rng.random(n) * (1.0 - keep), 0.0))
        sigma = np.hypot(float(cfg.pt_res_a) * pt, float(cfg.pt_res_b)) * np.where(trt_only, 3.0, 1.0)
        return np.maximum(seen * (1.0 + sigma * rng.standard_normal(n)), 0.0)

    trt_only = r_conv >= float(cfg.trt_min_r)
    pt_true1, pt_true2 = e1 / cosh_eta, e2 / cosh_eta
    min_pt = float(cfg.track_min_pt)
    t1 = found_vertex & (pt_true1 > min_pt)
    t2 = found_vertex & (pt_true2 > min_pt)
    double_frac = np.interp(r_conv, list(cfg.double_fraction_r), list(cfg.double_fraction_values))
    double = t1 & t2 & (rng.random(n) < double_frac)
    single = (t1 | t2) & ~double
    m1, m2 = measured_pt(e1, keep1, trt_only), measured_pt(e2, keep2, trt_only)
    # A single-track conversion keeps the harder track.
    lead_is_1 = t1 & (~t2 | (pt_true1 >= pt_true2))
    lead_single = np.where(lead_is_1, m1, m2)
    pt1 = np.where(double, np.maximum(m1, m2), np.where(single, lead_single, 0.0))
    pt2 = np.where(double, np.minimum(m1, m2), 0.0)

    si = r_conv < float(cfg.si_max_r)
    mixed = ~si & ~trt_only
    ctype = np.zeros(n, dtype=np.int8)
    ctype[single & si] = 1
    ctype[single & trt_only] = 2
    ctype[single & mixed] = np.where(rng.random(int(np.sum(single & mixed))) < 0.5, 1, 2)
    ctype[double & si] = 3
    ctype[double & trt_only] = 4
    ctype[double & mixed] = 5
    sigma_r = np.where(trt_only, float(cfg.r_resolution_trt), float(cfg.r_resolution_si))
    r_reco = np.where(ctype > 0, np.clip(r_conv + sigma_r * rng.standard_normal(n), 1.0, 800.0), 0.0)

    # Fake conversions: an unconverted (or lost) photon picks up a single TRT track.
    fake = (ctype == 0) & (rng.random(n) < float(cfg.fake_rate))
    nf = int(fake.sum())
    ctype[fake] = 2
    r_reco[fake] = rng.uniform(float(cfg.trt_min_r), 800.0, nf)
    pt1[fake] = rng.uniform(0.05, 0.9, nf) * e_photon[fake] / cosh_eta[fake]
    pt2[fake] = 0.0
    track1 = double | (single & lead_is_1)
    track2 = double | (single & ~lead_is_1)
    return ConversionReco(ctype, r_reco, pt1 + pt2, pt1, pt2, track1, track2)
