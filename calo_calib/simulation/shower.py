"""GFlash parametrisation of electromagnetic showers in a sampling calorimeter (card §3, [S7][S8]).

Each (sub)shower gets its own fluctuated longitudinal profile (correlated log-normal T and alpha,
sampling-calorimeter tuning) and radial profile (core + tail). Instead of scattering energy spots,
the energy in any depth interval is the exact integral of the gamma profile, and the energy in a
calorimeter cell is the exact integral of the radial profile over the cell rectangle. This keeps
the physics fluctuations (T, alpha, shower start, sampling, noise) and removes the artificial
spot-counting noise, at a fraction of the cost. A per-shower log-normal scale on both radii stands
in for the lateral shape fluctuations that spot sampling would give (``lateral_log_sigma``, [E]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import gammainc, gammaln

# PDG material constants (card §1.5): Z, A, density g/cm3, X0 g/cm2, critical energy MeV.
PB = dict(Z=82.0, A=207.2, rho=11.35, x0=6.37, ec=7.43)
LAR = dict(Z=18.0, A=39.948, rho=1.396, x0=19.55, ec=32.84)
E_S = 21.2  # MeV, scale energy of the Moliere radius


@dataclass(frozen=True)
class Medium:
    """GFlash effective medium of a Pb/LAr sampling structure (card §3.1)."""

    z_eff: float
    x0_cm: float  # radiation length in cm: the full structure's when given (pb_lar's x0_cm_full)
    ec_mev: float
    rm_mm: float
    fs: float  # sampling layers per X0
    ehat: float  # e/mip

    @classmethod
    def pb_lar(cls, lead_mm: float, lar_mm: float, x0_cm_full: float | None = None) -> Medium:
        """The GFlash medium of lead plates ``lead_mm`` thick with ``lar_mm`` of LAr per absorber.

        ``x0_cm_full``: the radiation length (cm) of the full structure, with the steel cladding, glue
        and electrodes that the Pb + LAr mix leaves out (ATLAS quotes 2.137 / 2.695 cm for thick /
        thin barrel lead, card §1.4a [S3], against 1.89 / 2.30 cm for Pb + LAr alone). Those layers
        dilute the medium: a shower keeps its GFlash shape in units of X0 and R_M (R_M / X0 = E_s / E_c
        is a property of the composition), but both units are longer in millimetres. So the Molière
        radius is stretched by X0_full / X0_PbLAr, as the depths already are (the layer boundaries are
        in X0 of the full structure). The extra layers' small change of Z_eff and E_c is neglected [E].
        ``None`` keeps the Pb + LAr lengths.
        """
        d1, d2 = lead_mm / 10.0, lar_mm / 10.0  # cm
        m1, m2 = d1 * PB["rho"], d2 * LAR["rho"]
        w1, w2 = m1 / (m1 + m2), m2 / (m1 + m2)
        z_eff = w1 * PB["Z"] + w2 * LAR["Z"]
        rho_eff = (m1 + m2) / (d1 + d2)
        x0_gcm2 = 1.0 / (w1 / PB["x0"] + w2 / LAR["x0"])
        x0_cm = x0_gcm2 / rho_eff
        # PDG critical energies (the card warns that Geant4's mm-based formula is wrong for LAr).
        ec_over_x0 = w1 * PB["ec"] / PB["x0"] + w2 * LAR["ec"] / LAR["x0"]
        ec = x0_gcm2 * ec_over_x0
        rm_cm = E_S / ec_over_x0 / rho_eff
        fs = x0_cm / (d1 + d2)
        ehat = 1.0 / (1.0 + 0.007 * (PB["Z"] - LAR["Z"]))
        stretch = 1.0 if x0_cm_full is None else float(x0_cm_full) / x0_cm
        return cls(z_eff, x0_cm * stretch, ec, rm_cm * stretch * 10.0, fs, ehat)


def accordion_media(acc) -> list[Medium]:
    """The three GFlash media of ``detector.accordion``: thick-lead barrel, thin-lead barrel, end-cap.

    Each is stretched to the full structure's radiation length (:meth:`Medium.pb_lar`): the barrel
    ones to ATLAS's quoted cm/X0 (``x0_cm_thick``, ``x0_cm_thin``), the end-cap by the ratio
    ``x0_stretch_endcap`` = X0_full / X0_PbLAr (no quoted value). Keys set to null (or absent) keep
    the Pb + LAr lengths.
    """
    def opt(key: str) -> float | None:
        v = acc.get(key)
        return None if v is None else float(v)

    lead_ec, gap_ec = float(acc.lead_mm_endcap), float(acc.lar_gap_mm_endcap)
    stretch_ec = opt("x0_stretch_endcap")
    x0_ec = None if stretch_ec is None else stretch_ec * Medium.pb_lar(lead_ec, gap_ec).x0_cm
    return [
        Medium.pb_lar(float(acc.lead_mm_thick), float(acc.lar_gap_mm_barrel), opt("x0_cm_thick")),
        Medium.pb_lar(float(acc.lead_mm_thin), float(acc.lar_gap_mm_barrel), opt("x0_cm_thin")),
        Medium.pb_lar(lead_ec, gap_ec, x0_ec),
    ]


@dataclass
class ShowerParams:
    """Per-shower GFlash parameters, each array of shape (s,) for s showers."""

    alpha: np.ndarray
    beta: np.ndarray  # 1/X0
    tmax: np.ndarray  # X0
    tau_scale: np.ndarray  # tau = (t - t0) * tau_scale
    log_e: np.ndarray  # ln(E/GeV)
    z_eff: np.ndarray
    fs: np.ndarray
    ehat: np.ndarray
    rm_mm: np.ndarray
    lateral_scale: np.ndarray


def longitudinal_params(
    e_gev: np.ndarray,
    medium_idx: np.ndarray,
    media: list[Medium],
    rng: np.random.Generator,
    lateral_log_sigma: float,
    depth_scale: float = 1.0,
    width_scale: float = 1.0,
) -> ShowerParams:
    """Draw fluctuated GFlash parameters (sampling tuning, [S7]) for showers of energy ``e_gev``.

    Args:
        e_gev: (s,) shower energies in GeV.
        medium_idx: (s,) index into ``media`` of the medium each shower develops in.
        media: effective media.
        rng: random generator.
        lateral_log_sigma: sigma of the per-shower log-normal scale of both radial components.
        depth_scale: data-like mis-modelling knob: multiplies each shower's T at fixed alpha, so the
            whole longitudinal profile (maximum and mean depth from the shower start) stretches by
            this factor. 1 (nominal) leaves the parameters bit-identical.
        width_scale: data-like mis-modelling knob: multiplies both radial components (a Moliere
            radius scale). 1 (nominal) leaves the parameters bit-identical.

    Neither knob changes how many random numbers are drawn.
    """
    z = np.array([m.z_eff for m in media])[medium_idx]
    ec = np.array([m.ec_mev for m in media])[medium_idx]
    fs = np.array([m.fs for m in media])[medium_idx]
    ehat = np.array([m.ehat for m in media])[medium_idx]
    rm = np.array([m.rm_mm for m in media])[medium_idx]
    # GFlash is not meant for very soft showers (card §6): floor y so the formulas stay defined.
    lny = np.log(np.maximum(e_gev * 1000.0 / ec, 20.0))
    mean_ln_t_hom = np.log(lny - 0.812)
    mean_ln_a_hom = np.log(0.81 + (0.458 + 2.26 / z) * lny)
    t_sam = np.exp(mean_ln_t_hom) - 0.55 / fs - 0.69 * (1.0 - ehat)
    a_sam = np.exp(mean_ln_a_hom) - 0.476 / fs
    mean_ln_t = np.log(np.maximum(t_sam, 1.0))
    mean_ln_a = np.log(np.maximum(a_sam, 1.1))
    sig_t = np.clip(1.0 / (-2.5 + 1.25 * lny), 0.0, 0.5)
    sig_a = np.clip(1.0 / (-0.82 + 0.79 * lny), 0.0, 0.5)
    sig_t = np.where(-2.5 + 1.25 * lny <= 0, 0.5, sig_t)
    rho = np.clip(0.784 - 0.023 * lny, -1.0, 1.0)
    z1, z2 = rng.standard_normal((2, e_gev.shape[0]))
    ln_t = mean_ln_t + sig_t * (np.sqrt((1 + rho) / 2) * z1 + np.sqrt((1 - rho) / 2) * z2)
    ln_a = mean_ln_a + sig_a * (np.sqrt((1 + rho) / 2) * z1 - np.sqrt((1 - rho) / 2) * z2)
    tmax = np.maximum(np.exp(ln_t), 1.0) * depth_scale  # x * 1.0 is exact: nominal unchanged
    alpha = np.maximum(np.exp(ln_a), 1.1)
    beta = (alpha - 1.0) / tmax
    mean_alpha = np.exp(mean_ln_a)
    # Geant4 ComputeTau: tau = t / T * (alpha - 1)/alpha * <alpha>/(<alpha> - 1)
    tau_scale = (alpha - 1.0) / alpha * mean_alpha / (mean_alpha - 1.0) / tmax
    lateral = np.exp(lateral_log_sigma * rng.standard_normal(e_gev.shape[0])) if lateral_log_sigma > 0 else np.ones_like(e_gev)
    lateral = lateral * width_scale
    return ShowerParams(alpha, beta, tmax, tau_scale, np.log(e_gev), z, fs, ehat, rm, lateral)


def cumulative(params: ShowerParams, t0: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Fraction of each shower's energy deposited before absolute depth ``t`` (X0).

    Args:
        t0: (s,) shower start depth; t: (s,) or (s, k) depths. Returns the shape of ``t``.
    """
    d = np.maximum(t - (t0 if t.ndim == 1 else t0[:, None]), 0.0)
    if t.ndim == 1:
        return gammainc(params.alpha, params.beta * d)
    return gammainc(params.alpha[:, None], params.beta[:, None] * d)


def profile_density(params: ShowerParams, t0: np.ndarray, t: np.ndarray) -> np.ndarray:
    """dE/dt / E at absolute depth ``t`` (1/X0), 0 before the shower start.

    Args:
        t0: (s,) shower start depth; t: (s,) or (s, k) depths. Returns the shape of ``t``.
    """
    a, b = params.alpha, params.beta
    if t.ndim == 2:
        a, b, t0 = a[:, None], b[:, None], t0[:, None]
    d = np.maximum(t - t0, 1e-9)
    return np.exp((a - 1) * np.log(b * d) - b * d - gammaln(a)) * b * (t > t0)


def radial_params(params: ShowerParams, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Core radius, tail radius (mm) and core probability at depth ``tau`` (card §3.3, [S7]).

    Args:
        tau: (s, k) depth in units of the shower's tau scale. Returns three (s, k) arrays.
    """
    z = params.z_eff[:, None]
    ln_e = params.log_e[:, None]
    inv_fs = 1.0 / params.fs[:, None]
    one_m_ehat = 1.0 - params.ehat[:, None]
    z1 = 0.0251 + 0.00319 * ln_e
    z2 = 0.1162 - 0.000381 * z
    r_c = z1 + z2 * tau
    k1 = 0.659 - 0.00309 * z
    k2, k3 = 0.645, -2.59
    k4 = 0.3585 + 0.0412 * ln_e
    r_t = k1 * (np.exp(k3 * (tau - k2)) + np.exp(k4 * (tau - k2)))
    p1 = 2.632 - 0.00094 * z
    p2 = 0.401 + 0.00187 * z
    p3 = 1.313 - 0.0686 * ln_e
    x = (p2 - tau) / p3
    p = p1 * np.exp(x - np.exp(x))
    # Sampling-calorimeter corrections
    r_c = r_c - 0.0203 * one_m_ehat + 0.0397 * inv_fs * np.exp(-tau)
    r_t = r_t - 0.14 * one_m_ehat - 0.495 * inv_fs * np.exp(-tau)
    p = p + one_m_ehat * (0.348 - 0.642 * inv_fs * np.exp(-((tau - 1.0) ** 2)))
    scale = (params.rm_mm * params.lateral_scale)[:, None]
    return np.maximum(r_c, 0.005) * scale, np.maximum(r_t, 0.02) * scale, np.clip(p, 0.0, 1.0)


def mean_depth_in(params: ShowerParams, t0: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Energy-weighted mean absolute depth of each shower inside [lo, hi] (X0), shape (s, k).

    For a gamma profile, E[t | lo < t < hi] = (alpha/beta) [P(alpha+1, .)]_lo^hi / [P(alpha, .)]_lo^hi.
    Falls back to the interval centre where the shower deposits nothing there.
    """
    a, b = params.alpha[:, None], params.beta[:, None]
    d_lo = np.maximum(lo - t0[:, None], 0.0)
    d_hi = np.maximum(hi - t0[:, None], 0.0)
    den = gammainc(a, b * d_hi) - gammainc(a, b * d_lo)
    num = gammainc(a + 1, b * d_hi) - gammainc(a + 1, b * d_lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = t0[:, None] + a / b * num / den
    ok = (den > 1e-9) & np.isfinite(mean)
    return np.where(ok, np.clip(mean, lo, hi), 0.5 * (lo + hi))


def corner_integral(x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Integral over [0, x] x [0, y] of the GFlash radial density R^2 / (pi (x^2 + y^2 + R^2)^2).

    The density is the 2-D form of f(r) = 2 r R^2 / (r^2 + R^2)^2 (unit total). Odd in x and in y,
    so the content of any rectangle follows from its four corners. Broadcasts its arguments.
    """
    a = np.sqrt(x * x + r * r)
    b = np.sqrt(y * y + r * r)
    return (x / a * np.arctan(y / a) + y / b * np.arctan(x / b)) / (2.0 * np.pi)


def rectangle_fractions(x_edges: np.ndarray, y_edges: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Fractions of a radial profile inside each cell of a rectangular grid.

    Same as differencing :func:`corner_integral` over the grid corners, with the square roots
    taken on the 1-D edge arrays and the grid work in float32 (the fractions need ~1e-6 precision).

    Args:
        x_edges: (s, nx + 1) cell edges along eta direction, relative to the shower axis (mm).
        y_edges: (s, ny + 1) cell edges along phi direction (mm).
        r: (s,) profile radius (mm).
    Returns:
        (s, nx, ny) fraction of the profile in each cell.
    """
    x = x_edges.astype(np.float32)
    y = y_edges.astype(np.float32)
    r2 = (r * r).astype(np.float32)[:, None]
    inv_a = 1.0 / np.sqrt(x * x + r2)  # (s, nx + 1)
    inv_b = 1.0 / np.sqrt(y * y + r2)  # (s, ny + 1)
    tx, ty, ta, tb = (torch.from_numpy(v) for v in (x, y, inv_a, inv_b))  # shared memory, no copies
    xa = (tx * ta)[:, :, None]
    yb = (ty * tb)[:, None, :]
    # The (s, nx+1, ny+1) grid work in torch: its broadcasting loops are much faster than numpy's
    # on these narrow grids, and its vectorised atan ~3x faster than numpy's scalar loop. Each
    # product and sum is its own (exactly rounded) float32 operation, as in numpy.
    g = xa * _atan_(ty[:, None, :] * ta[:, :, None]) + yb * _atan_(tx[:, :, None] * tb[:, None, :])
    g = g.numpy()
    g *= np.float32(1.0 / (2.0 * np.pi))
    # float32 cancellation can leave -1e-8 in empty cells: clip to keep energies non-negative.
    return np.maximum(_corner_difference(g), 0.0)


def np_cpu_features() -> dict[str, bool]:
    """The CPU features numpy's runtime dispatch found ({} if this numpy does not say)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return {}
    return dict(__cpu_features__)


# numpy dispatches its float32 arctan to an AVX-512 (SVML) kernel where the CPU has AVX512_SKX,
# ~7x faster than torch's atan there (0.43 vs 3.0 ns per element, AMD EPYC Zen 4, 2026-12-02);
# without it numpy's loop is scalar and torch's vectorised atan is the faster one. The choice is
# fixed per machine (the same CPU features give the same kernel, so the same bytes).
_NUMPY_SIMD_ATAN = bool(np_cpu_features().get("AVX512_SKX", False))


def _atan_(t: torch.Tensor) -> torch.Tensor:
    """atan of the float32 tensor ``t``, in place (``t`` is a fresh product, overwritten and returned)."""
    if _NUMPY_SIMD_ATAN:
        a = t.numpy()
        np.arctan(a, out=a)
        return t
    return t.atan_()


def _corner_difference(g: np.ndarray) -> np.ndarray:
    """g[:, 1:, 1:] - g[:, :-1, 1:] - g[:, 1:, :-1] + g[:, :-1, :-1] of a C-contiguous (s, n+1, m+1) grid.

    Done as three passes over the flat array with shifted slices (the four corners of cell (i, j)
    are at flat offsets f + m + 2, f + 1, f + m + 1 and f of f = i (m + 1) + j): the same
    operations in the same order as the 3-D slices, without numpy's slow loops over rows of
    m + 1 elements. Returns an (s, n, m) view.
    """
    s, n1, m1 = g.shape
    f = g.reshape(-1)
    size = f.size - m1 - 1
    d = np.empty(f.size, g.dtype)
    np.subtract(f[m1 + 1 :], f[1 : 1 + size], out=d[:size])
    d[:size] -= f[m1 : m1 + size]
    d[:size] += f[:size]
    d[size:] = 0.0  # the last row's tail: not a cell (dropped below)
    return d.reshape(s, n1, m1)[:, :-1, :-1]
