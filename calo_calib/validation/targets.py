"""Reference numbers of the detector card (``/work/shared/docs/detector_card.md``) as functions.

Each function's docstring carries the card's source tag:

* [S#]: taken from a checked public source (numbered list in card §8);
* [R]: recalled, not checked; [E]: the card author's estimate or a derivation from the config.

Energies in GeV unless stated; resolutions as fractions (0.0148 = 1.48 %).
"""

from __future__ import annotations

import math

import numpy as np

from calo_calib.physics.observables import S4_LAYER_DEPTHS, layer_depths  # noqa: F401  (re-exported)

# ------------------------------------------------------------------------------------------------
# §4.1 Resolution model [S12] and pile-up term [S13]: calo_calib.physics.resolution (re-exported)
# ------------------------------------------------------------------------------------------------
from calo_calib.physics.resolution import (  # noqa: E402, F401  (re-exported)
    _NOISE37,
    mc_constant_term,
    mc_noise_term,
    mc_sampling_term,
    pileup_noise_run2,
    resolution_model,
)

CARD_RESOLUTION_TABLE: dict[tuple[float, float], tuple[float, float]] = {
    (0.1, 10): (4.0, 5.2),
    (0.1, 25): (2.2, 2.9),
    (0.1, 50): (1.48, 1.87),
    (0.1, 100): (1.07, 1.21),
    (0.1, 500): (0.65, 0.65),
    (0.9, 10): (5.6, 6.9),
    (0.9, 25): (3.3, 4.1),
    (0.9, 50): (2.25, 2.69),
    (0.9, 100): (1.58, 1.78),
    (0.9, 500): (0.75, 0.75),
    (1.2, 10): (6.7, 8.2),
    (1.2, 25): (4.0, 4.9),
    (1.2, 50): (2.79, 3.29),
    (1.2, 100): (1.96, 2.22),
    (1.2, 500): (0.91, 0.91),
    (1.6, 10): (9.7, 11.5),
    (1.6, 25): (5.8, 6.7),
    (1.6, 50): (3.98, 4.57),
    (1.6, 100): (2.79, 3.11),
    (1.6, 500): (1.26, 1.26),
    (2.1, 10): (5.7, 11.5),
    (2.1, 25): (3.4, 5.6),
    (2.1, 50): (2.34, 3.83),
    (2.1, 100): (1.65, 2.53),
    (2.1, 500): (0.79, 0.92),
}
"""Card §4.1 table "Resulting sigma/E in %" [E, computed from S12 and S13]: (|eta|, E) -> (without,
with pile-up at <mu> = 32). Where the card gives a single 500 GeV number it is used for both."""


# ------------------------------------------------------------------------------------------------
# §2.2 / §2.3 Conversions
# ------------------------------------------------------------------------------------------------


def _material_node(cfg):
    """Accept a full simulation config, a ``detector`` node or a ``detector.material`` node."""
    if hasattr(cfg, "detector") or (isinstance(cfg, dict) and "detector" in cfg):
        cfg = cfg["detector"]
    if hasattr(cfg, "material") or (isinstance(cfg, dict) and "material" in cfg):
        cfg = cfg["material"]
    return cfg


def x_id(abs_eta, material) -> np.ndarray:
    """Inner-detector material X_ID(|eta|) in X0 (R < 800 mm, along the path), card §2.2 [E].

    Linear interpolation of the config's material table (``detector.material``: columns
    abs_eta, x_id, ...) times ``detector.material.scale``. ``material`` may be the full simulation
    config, its ``detector`` node or the ``material`` node.
    """
    node = _material_node(material)
    cols = list(node["columns"])
    table = np.asarray([list(r) for r in node["table"]], dtype=np.float64)
    scale = float(node.get("scale", 1.0)) if hasattr(node, "get") else float(node["scale"])
    a = np.abs(np.asarray(abs_eta, dtype=np.float64))
    return np.interp(a, table[:, cols.index("abs_eta")], table[:, cols.index("x_id")]) * scale


def conversion_probability(abs_eta, material) -> np.ndarray:
    """P_conv = 1 - exp(-7 X_ID / 9), high-energy limit [R-PDG]; X_ID from :func:`x_id` (card §2.2 [E])."""
    return 1.0 - np.exp(-7.0 / 9.0 * x_id(abs_eta, material))


def expected_reco_conversion_fraction(abs_eta, detector) -> np.ndarray:
    """Rough expected fraction of photons reconstructed as converted (conversion_type > 0) [E].

    Derived here (not a card number) from the config's conversion-reconstruction model (card §2.3
    [E]): the ID material is split over the config's layer radii (``id_layers_*`` plus the TRT
    slab, renormalised to X_ID), conversions at radius R are found with efficiency eff(R)
    (``conversion.eff_r``/``eff_values``, linear, flat outside), and unconverted photons fake a
    conversion with ``conversion.fake_rate``. Ignores track pT thresholds and the forward geometry
    (radii are used as in the barrel), so it is indicative only.
    """
    det = (
        detector["detector"]
        if (hasattr(detector, "detector") or (isinstance(detector, dict) and "detector" in detector))
        else detector
    )
    mat, conv = det["material"], det["conversion"]
    a = np.atleast_1d(np.abs(np.asarray(abs_eta, dtype=np.float64)))
    radii = [float(r) for r in mat["id_layers_radius"]]
    fracs = [float(f) for f in mat["id_layers_x_fraction"]]
    # TRT: continuous slab, split into 10 sub-slabs
    r0, r1 = (float(r) for r in mat["trt_radius"])
    n_sub = 10
    radii += list(np.linspace(r0, r1, n_sub + 1)[:-1] + (r1 - r0) / (2 * n_sub))
    fracs += [float(mat["trt_x_fraction"]) / n_sub] * n_sub
    radii_a, fracs_a = np.asarray(radii), np.asarray(fracs)
    order = np.argsort(radii_a)
    radii_a, fracs_a = radii_a[order], fracs_a[order] / fracs_a.sum()
    eff = np.interp(radii_a, [float(r) for r in conv["eff_r"]], [float(v) for v in conv["eff_values"]])
    xid = x_id(a, mat)
    out = np.empty_like(a)
    for i, x in enumerate(xid):
        xs = fracs_a * x
        cum_before = np.concatenate([[0.0], np.cumsum(xs)[:-1]])
        p_layer = np.exp(-7.0 / 9.0 * cum_before) * (1.0 - np.exp(-7.0 / 9.0 * xs))
        p_conv = p_layer.sum()
        out[i] = (p_layer * eff).sum() + float(conv["fake_rate"]) * (1.0 - p_conv)
    return out.reshape(np.shape(abs_eta)) if np.ndim(abs_eta) else out[0]


# ------------------------------------------------------------------------------------------------
# §4.5 eta-modulation [S6]
# ------------------------------------------------------------------------------------------------

ETAMOD_3x7_ELECTRON_50GEV: tuple[float, float, float] = (0.99318, 1.4737, -54.72)
"""(p0, p1, p2) of ``CaloSwEtamod_v4.py`` for 3x7 electrons at 50 GeV [S6] (card §4.5)."""

ETAMOD_5x5_ELECTRON_50GEV: tuple[float, float, float] = (0.99698, 0.5282, -17.99)
"""(p0, p1, p2) of ``CaloSwEtamod_v4.py`` for 5x5 electrons at 50 GeV [S6] (card §4.5)."""

L2_CELL_DETA = 0.025
"""Middle-layer cell size in eta [S1]."""


def eta_modulation(u, params=ETAMOD_3x7_ELECTRON_50GEV) -> np.ndarray:
    """Response f(u) = p0 + p1 u + p2 u^2 vs position u in [0, 0.025) inside the L2 cell [S6].

    Normalised to mean 1 over the cell (card §4.5); default parameters: 3x7 electrons at 50 GeV.
    """
    p0, p1, p2 = params
    w = L2_CELL_DETA
    mean = p0 + p1 * w / 2 + p2 * w**2 / 3
    u = np.asarray(u, dtype=np.float64)
    return (p0 + p1 * u + p2 * u**2) / mean


def eta_modulation_peak_to_edge(params=ETAMOD_3x7_ELECTRON_50GEV) -> float:
    """Peak-to-edge amplitude max(f) - mean(f(0), f(0.025)) of :func:`eta_modulation` [S6].

    About 1 % for 3x7 electrons at 50 GeV (card §4.5: "about 1% peak-to-edge for 3x5 and 3x7").
    """
    p0, p1, p2 = params
    u_peak = float(np.clip(-p1 / (2 * p2), 0.0, L2_CELL_DETA)) if p2 != 0 else 0.0
    f = eta_modulation(np.array([0.0, u_peak, L2_CELL_DETA]), params)
    return float(f[1] - 0.5 * (f[0] + f[2]))


# ------------------------------------------------------------------------------------------------
# Other card numbers used by the validation
# ------------------------------------------------------------------------------------------------

PS_FRACTION_RANGE_ETA05: tuple[float, float] = (0.01, 0.06)
"""E_PS/E "of order a few %" at |eta| ~ 0.5 (card §3.4, [E]); read here as 1-6 %."""

CELLS_PER_CLUSTER_RANGE: tuple[int, int] = (50, 200)
"""Cells per cluster expected by the product description ("~50-200 cells", not a card number)."""

LOSS_CORRELATION_RANGE: tuple[float, float] = (0.5, 0.95)
"""|Pearson r| of the upstream loss with f0 / shower depth: "strong but not one-to-one" (card §6, [E]).

The numerical band is this validation's reading of the card's words, not a card number."""

# GFlash effective media of the card §3.1 worked table [E]: (E_c,eff MeV, Z_eff, F_s, e/mip)
GFLASH_MEDIUM_THICK = (9.9, 65.8, 3.3, 0.691)
GFLASH_MEDIUM_THIN = (10.7, 61.9, 4.3, 0.691)


def gflash_mean_longitudinal(e, medium=GFLASH_MEDIUM_THICK) -> tuple[float, float]:
    """(alpha, beta) of the median GFlash sampling profile for energy ``e`` (GeV) [S7] (card §3.2).

    T = exp<ln T_sam>, alpha = exp<ln alpha_sam> with the [S7] sampling formulas and the §3.1
    worked medium [E]; beta = (alpha - 1)/T. Reproduces the card's worked table (e.g. 50 GeV:
    T = 7.3, alpha = 4.86, beta = 0.527).
    """
    ec, z, fs, ehat = medium
    ln_y = math.log(e * 1e3 / ec)
    t_hom = ln_y - 0.812
    a_hom = 0.81 + (0.458 + 2.26 / z) * ln_y
    t_sam = t_hom - 0.55 / fs - 0.69 * (1.0 - ehat)
    a_sam = a_hom - 0.476 / fs
    return a_sam, (a_sam - 1.0) / t_sam


def gflash_layer_fractions(e, boundaries, t0=0.0, medium=GFLASH_MEDIUM_THICK) -> np.ndarray:
    """Accordion layer fractions E_Li / (E1+E2+E3) of the average GFlash profile [E, derived].

    Integrates the median gamma profile (:func:`gflash_mean_longitudinal`) of a shower starting at
    depth ``t0`` (X0 from the IP) between ``boundaries`` = (acc_start, l1_end, l2_end, l3_end) (X0
    from the IP, e.g. from the simulation config). Ignores shower-to-shower fluctuations, the brem
    and conversion structure upstream and the lateral containment, so it is a rough cross-check of
    the layer boundaries and the profile, not an ATLAS number.
    """
    from scipy.stats import gamma

    alpha, beta = gflash_mean_longitudinal(e, medium)
    b = np.asarray(boundaries, dtype=np.float64) - t0
    cdf = gamma.cdf(np.maximum(b, 0.0), alpha, scale=1.0 / beta)
    parts = np.diff(cdf)
    return parts / parts.sum()
