"""Z -> ee events at generator level: Z line shape, Z pT and rapidity, decay, boost to the lab.

Every step is sampled by an exact inverse CDF (vectorised numpy, reproducible from the
``numpy.random.Generator`` it is given). Tags as in ``docs/zee.md``: [R] recalled PDG/ATLAS value,
[E] estimate.

* mass: relativistic Breit-Wigner with a fixed width, density in s = m^2
  ∝ 1 / ((s - m_Z^2)^2 + m_Z^2 Γ_Z^2), i.e. in m ∝ m / ((m^2 - m_Z^2)^2 + m_Z^2 Γ_Z^2), truncated to
  [m_min, m_max]; m_Z = 91.1876 GeV, Γ_Z = 2.4952 GeV [R: PDG]. No parton-luminosity factor, no
  γ*/Z interference, no final-state radiation [E: simplification].
* Z pT: density ∝ pT (1 + pT^2/a^2)^(-p) (a Lomax law in pT^2), mode a/sqrt(2p-1), mean
  a sqrt(pi)/2 Γ(p-3/2)/Γ(p-1); defaults a = 9 GeV, p = 2.2: mode 4.7 GeV, mean 11.3 GeV [E: the
  LHC Z pT peaks at a few GeV with a mean of ~10-15 GeV], truncated at pt_max.
* Z rapidity: Gaussian with σ_y = 2.0 truncated at |y| < 3.5 [E: broad, roughly flat core at 13.6 TeV].
* decay: cos θ* ~ 1 + cos^2 θ* in the Z rest frame, the polar axis being the beam axis boosted
  into that frame (close to Collins-Soper at low pT); no forward-backward asymmetry [E]; φ* uniform.
  Massless electrons, p* = m/2, the electron (charge -1) along the drawn direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
from scipy.special import ndtr, ndtri

M_Z = 91.1876  # GeV [R: PDG]
GAMMA_Z = 2.4952  # GeV [R: PDG]


@dataclass(frozen=True)
class ZeeConfig:
    """Parameters of the Z -> ee generator (GeV for masses, momenta and energies)."""

    m_z: float = M_Z
    gamma_z: float = GAMMA_Z
    m_min: float = 66.0  # generated mass window [R: the usual ATLAS Z window 66-116 GeV]
    m_max: float = 116.0
    pt_scale: float = 9.0  # a of the Z pT law [E]
    pt_power: float = 2.2  # p of the Z pT law [E]; the mean is finite for p > 1.5
    pt_max: float = 150.0
    y_sigma: float = 2.0  # [E]
    y_max: float = 3.5  # [E]
    et_min: float = 25.0  # per-electron E_T acceptance cut
    abs_eta_max: float = 2.47  # per-electron acceptance: precision e/gamma region [S10 of the card]

    def __post_init__(self) -> None:
        positive = ("m_z", "gamma_z", "m_min", "pt_scale", "pt_max", "y_sigma", "y_max", "abs_eta_max")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"zee generator: {name} must be a finite number > 0, got {value!r}")
        if not self.m_min < self.m_z < self.m_max:
            raise ValueError(f"zee generator: need m_min < m_z < m_max, got {self.m_min}, {self.m_z}, {self.m_max}")
        if not self.pt_power > 1.5:
            raise ValueError(f"zee generator: pt_power must be > 1.5 (finite mean pT), got {self.pt_power}")
        if self.et_min < 0:
            raise ValueError(f"zee generator: et_min must be >= 0 GeV, got {self.et_min}")
        if self.abs_eta_max > 2.5:
            raise ValueError(f"zee generator: abs_eta_max must be <= 2.5 (calorimeter edge), got {self.abs_eta_max}")

    @classmethod
    def from_mapping(cls, values: Mapping | None) -> ZeeConfig:
        """Build from a config mapping (e.g. the ``generator`` node); unknown keys are an error."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"zee generator: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: float(v) for k, v in values.items()})

    @property
    def pt_mean(self) -> float:
        """Mean Z pT [GeV] of the untruncated pT law."""
        a, p = self.pt_scale, self.pt_power
        return a * math.sqrt(math.pi) / 2 * math.gamma(p - 1.5) / math.gamma(p - 1)


@dataclass
class ZeeEvents:
    """Generated events; per-event arrays (n,), per-electron arrays (n, 2): column 0 the electron
    (charge -1), column 1 the positron (charge +1). Energies and momenta in GeV, angles in rad."""

    m: np.ndarray  # Z mass
    pt: np.ndarray  # Z transverse momentum
    y: np.ndarray  # Z rapidity
    phi_z: np.ndarray  # Z azimuth
    cos_theta_star: np.ndarray  # electron polar angle in the Z rest frame
    e: np.ndarray  # (n, 2) electron energies
    px: np.ndarray  # (n, 2)
    py: np.ndarray  # (n, 2)
    pz: np.ndarray  # (n, 2)
    charge: np.ndarray  # (n, 2) -1, +1
    accepted: np.ndarray  # (n,) both electrons pass |eta| and E_T

    @property
    def n(self) -> int:
        return int(self.m.shape[0])

    @property
    def et(self) -> np.ndarray:
        """(n, 2) transverse energy = pT for massless electrons."""
        return np.hypot(self.px, self.py)

    @property
    def eta(self) -> np.ndarray:
        """(n, 2) pseudorapidity."""
        return np.arcsinh(self.pz / self.et)

    @property
    def phi(self) -> np.ndarray:
        """(n, 2) azimuth in (-pi, pi]."""
        return np.arctan2(self.py, self.px)

    def subset(self, mask: np.ndarray) -> ZeeEvents:
        """The events where ``mask`` (n,) is True."""
        return ZeeEvents(*(getattr(self, f.name)[mask] for f in fields(self)))

    @staticmethod
    def concat(parts: list[ZeeEvents]) -> ZeeEvents:
        return ZeeEvents(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(ZeeEvents)))


def sample_mass(n: int, rng: np.random.Generator, m_z: float, gamma_z: float, m_min: float, m_max: float) -> np.ndarray:
    """(n,) masses [GeV] from the fixed-width relativistic Breit-Wigner on [m_min, m_max] (exact inverse CDF in s)."""
    mg = m_z * gamma_z
    lo, hi = np.arctan((m_min**2 - m_z**2) / mg), np.arctan((m_max**2 - m_z**2) / mg)
    s = m_z**2 + mg * np.tan(rng.uniform(lo, hi, n))
    return np.sqrt(s)


def breit_wigner_pdf(m: np.ndarray, m_z: float, gamma_z: float, m_min: float, m_max: float) -> np.ndarray:
    """Normalised density [1/GeV] of :func:`sample_mass` at ``m`` (0 outside [m_min, m_max])."""
    mg = m_z * gamma_z
    norm = (np.arctan((m_max**2 - m_z**2) / mg) - np.arctan((m_min**2 - m_z**2) / mg)) / mg
    dens = 2 * m / ((m**2 - m_z**2) ** 2 + mg**2) / norm
    return np.where((m >= m_min) & (m <= m_max), dens, 0.0)


def sample_pt(n: int, rng: np.random.Generator, a: float, p: float, pt_max: float) -> np.ndarray:
    """(n,) Z pT [GeV] with density ∝ pT (1 + pT²/a²)^(-p) on [0, pt_max] (exact inverse CDF in pT²)."""
    u_max = 1.0 - (1.0 + pt_max**2 / a**2) ** (1.0 - p)
    u = rng.uniform(0.0, u_max, n)
    return a * np.sqrt((1.0 - u) ** (1.0 / (1.0 - p)) - 1.0)


def sample_rapidity(n: int, rng: np.random.Generator, sigma: float, y_max: float) -> np.ndarray:
    """(n,) Z rapidity from N(0, sigma²) truncated to |y| < y_max (exact inverse CDF)."""
    lo, hi = ndtr(-y_max / sigma), ndtr(y_max / sigma)
    return sigma * ndtri(rng.uniform(lo, hi, n))


def sample_cos_theta(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) cos θ* with density 3/8 (1 + cos²θ*) on [-1, 1].

    The CDF is (c³ + 3c + 4)/8; c³ + 3c + (4 - 8u) = 0 has one real root (Cardano).
    """
    q = 4.0 - 8.0 * rng.random(n)
    root = np.sqrt(q * q / 4.0 + 1.0)
    return np.cbrt(-q / 2.0 + root) + np.cbrt(-q / 2.0 - root)


def boost(e: np.ndarray, p: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lorentz-boost 4-vectors (e (n,), p (n, 3)) by velocity ``beta`` (n, 3); returns (e', p')."""
    b2 = np.sum(beta * beta, axis=1)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = np.sum(beta * p, axis=1)
    # (gamma - 1)/beta² written as gamma²/(gamma + 1): finite at beta = 0
    coef = gamma**2 / (gamma + 1.0) * bp + gamma * e
    return gamma * (e + bp), p + coef[:, None] * beta


def generate_all(n: int, rng: np.random.Generator, cfg: ZeeConfig) -> ZeeEvents:
    """``n`` Z -> ee decays, with the acceptance flag computed but not applied."""
    m = sample_mass(n, rng, cfg.m_z, cfg.gamma_z, cfg.m_min, cfg.m_max)
    pt = sample_pt(n, rng, cfg.pt_scale, cfg.pt_power, cfg.pt_max)
    y = sample_rapidity(n, rng, cfg.y_sigma, cfg.y_max)
    phi_z = rng.uniform(-np.pi, np.pi, n)
    cos_t = sample_cos_theta(n, rng)
    phi_star = rng.uniform(-np.pi, np.pi, n)

    # Z 4-momentum in the lab
    mt = np.sqrt(m * m + pt * pt)
    e_z = mt * np.cosh(y)
    p_z = np.stack([pt * np.cos(phi_z), pt * np.sin(phi_z), mt * np.sinh(y)], axis=1)
    beta = p_z / e_z[:, None]

    # electron along (θ*, φ*) in the rest frame, positron opposite; both with energy m/2
    sin_t = np.sqrt(np.clip(1.0 - cos_t**2, 0.0, None))
    direction = np.stack([sin_t * np.cos(phi_star), sin_t * np.sin(phi_star), cos_t], axis=1)
    half = m / 2.0
    e1, p1 = boost(half, half[:, None] * direction, beta)
    e2, p2 = boost(half, -half[:, None] * direction, beta)

    e = np.stack([e1, e2], axis=1)
    px, py, pz = (np.stack([p1[:, k], p2[:, k]], axis=1) for k in range(3))
    charge = np.tile(np.array([-1.0, 1.0]), (n, 1))
    ev = ZeeEvents(m, pt, y, phi_z, cos_t, e, px, py, pz, charge, np.zeros(n, bool))
    ok = (np.abs(ev.eta) < cfg.abs_eta_max) & (ev.et > cfg.et_min)
    ev.accepted = ok.all(axis=1)
    return ev


def generate(n: int, rng: np.random.Generator, cfg: ZeeConfig, batch: int = 20000) -> tuple[ZeeEvents, int]:
    """``n`` ACCEPTED events (both electrons |eta| < abs_eta_max, E_T > et_min).

    Returns ``(events, n_tried)``: n_tried decays were generated to get them (acceptance = n / n_tried).
    """
    if n <= 0:
        raise ValueError(f"zee generator: n must be > 0, got {n}")
    parts, have, tried = [], 0, 0
    while have < n:
        ev = generate_all(batch, rng, cfg)
        need = n - have
        positions = np.flatnonzero(ev.accepted)
        if positions.size >= need:  # this batch completes the sample: count decays up to the last one used
            tried += int(positions[need - 1]) + 1
            parts.append(ev.subset(positions[:need]))
            have = n
        else:
            tried += batch
            parts.append(ev.subset(positions))
            have += positions.size
    return ZeeEvents.concat(parts), tried
