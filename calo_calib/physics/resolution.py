"""The ATLAS MC energy-resolution model of the detector card §4.1 as functions of |η| and E.

``egammaEnergyCorrectionTool`` [S12] parametrises the MC resolution as
σ/E = √(S(|η|)²/E + N(|η|)²/E² + C(|η|)²), plus a Run-2 pile-up term [S13]. The simulation is
validated against it (:mod:`calo_calib.validation.targets` re-exports these functions), and the
``loss.scale=resolution`` training option divides each residual by it, so that a cluster counts by
its expected precision rather than by its raw E_true/E_cluster spread (:mod:`calo_calib.training.losses`).

Energies in GeV; resolutions as fractions (0.0148 = 1.48 %).
"""

from __future__ import annotations

import math

import numpy as np

_NOISE37 = np.array(
    [
        0.27,
        0.27,
        0.27,
        0.27,
        0.27,
        0.26,
        0.25,
        0.23,
        0.21,
        0.19,
        0.17,
        0.16,
        0.15,
        0.14,
        0.27,
        0.23,
        0.17,
        0.15,
        0.13,
        0.10,
        0.07,
        0.06,
        0.05,
        0.04,
        0.03,
    ]
)


def mc_sampling_term(abs_eta) -> np.ndarray:
    """S(a) in sqrt(GeV): ATLAS MC sampling term, ``egammaEnergyCorrectionTool::mcSamplingTerm`` [S12].

    0.091 (a < 0.8); 0.036 + 0.130 a (< 1.37); 0.27 (< 1.52); 0.85 - 0.36 a (< 2.0); 0.16 (< 2.3);
    -1.05 + 0.52 a (< 2.5); 0 beyond (as in the tool).
    """
    a = np.abs(np.asarray(abs_eta, dtype=np.float64))
    return np.select(
        [a < 0.8, a < 1.37, a < 1.52, a < 2.0, a < 2.3, a < 2.5],
        [
            np.full_like(a, 0.091),
            0.036 + 0.130 * a,
            np.full_like(a, 0.27),
            0.85 - 0.36 * a,
            np.full_like(a, 0.16),
            -1.05 + 0.52 * a,
        ],
        default=0.0,
    )


def mc_noise_term(abs_eta) -> np.ndarray:
    """N(a) in GeV (on E): ``n[int(a/0.1)] * cosh(a)``, ``egammaEnergyCorrectionTool::mcNoiseTerm`` [S12].

    The 25-entry table n is given in E_T (hence the cosh); 0 for a >= 2.5 (as in the tool).
    """
    a = np.abs(np.asarray(abs_eta, dtype=np.float64))
    idx = (a / 0.1).astype(np.int64)
    ok = (idx >= 0) & (idx < len(_NOISE37))
    return np.where(ok, _NOISE37[np.clip(idx, 0, len(_NOISE37) - 1)] * np.cosh(a), 0.0)


def mc_constant_term(abs_eta) -> np.ndarray:
    """C(a): 0.005 (a < 0.6), 0.003 (< 1.75), 0.0055 (2.69 - a) (< 2.5), ``mcConstantTerm`` [S12]."""
    a = np.abs(np.asarray(abs_eta, dtype=np.float64))
    return np.select(
        [a < 0.6, a < 1.75, a < 2.5], [np.full_like(a, 0.005), np.full_like(a, 0.003), 0.0055 * (2.69 - a)], 0.0
    )


def pileup_noise_run2(e_t, mu) -> np.ndarray:
    """Cluster-level pile-up noise sigma_pu in GeV, Run-2 style [S13] (ATLAS SimpleAnalysis/GAMBIT).

    sigma_pu = sqrt(<mu>) * (60 + 40 ln(E_T/10) / ln 5) MeV with E_T clamped to [5, 50] GeV.
    """
    et = np.clip(np.asarray(e_t, dtype=np.float64), 5.0, 50.0)
    return np.sqrt(np.asarray(mu, dtype=np.float64)) * (60.0 + 40.0 * np.log(et / 10.0) / math.log(5.0)) * 1e-3


def resolution_model(e, abs_eta, mu=0.0) -> np.ndarray:
    """sigma/E of the ATLAS full-simulation model, card §4.1 [S12] (+ pile-up [S13] when mu > 0).

    sigma/E = sqrt(S(a)^2/E + N(a)^2/E^2 + C(a)^2 + (sigma_pu(E_T, mu)/E_T)^2), E_T = E/cosh(a).
    With ``mu = 0`` this is the card's "without pile-up" column; with ``mu = 32`` the "with" column.
    The S(a) model includes the upstream-material effects after the standard ATLAS calibration [E].
    """
    e = np.asarray(e, dtype=np.float64)
    a = np.abs(np.asarray(abs_eta, dtype=np.float64))
    s, n, c = mc_sampling_term(a), mc_noise_term(a), mc_constant_term(a)
    var = s**2 / e + (n / e) ** 2 + c**2
    mu = np.asarray(mu, dtype=np.float64)
    et = e / np.cosh(a)
    var = var + np.where(mu > 0, (pileup_noise_run2(et, np.maximum(mu, 0.0)) / et) ** 2, 0.0)
    return np.sqrt(var)
