"""LAr pulse shaping, optimal filtering and the bunch-train pattern: what each bunch crossing's
deposit is reconstructed as (physics_cells.md §1a).

A deposit of energy E in crossing ``j`` (``j < 0``: earlier than the triggered crossing, ``j > 0``:
later) is reconstructed by the optimal filter (OF) of the triggered crossing as ``E r(j)``, with

    r(j) = sum_i a_i g(t_i - 25 ns j),

``g`` the shaped pulse normalised to its peak, ``t_i`` the sampling times (the peak in the middle
sample) and ``a_i`` the OF coefficients (``r(0) = 1``, no sensitivity to a small time shift).

Pulse [R: Cleland & Stern, NIM A338 (1994) 467]: the ionisation current is a triangle of the drift
time ``t_d``, shaped by a CR differentiator (``tau_d``) and two RC integrators (``tau_pa``); the
CR stage has zero gain at zero frequency, so the shaped pulse has zero net area (a long undershoot
after the peak). Time constants from Lorenzetti's cell-pulse parameters [S: lorenzetti
``CrossTalk.h``]: tau_d = 15.82 ns, tau_pa = 17.31 ns, t_d = 420 ns.

OF coefficients: minimum variance for a noise autocorrelation that is white electronic noise plus
pile-up noise built from the pulse itself (Campbell's theorem), with relative weight
``of_pileup_weight`` [E] (ATLAS computes the OF coefficients with the pile-up autocorrelation at a
nominal <mu>; the exact weight is not public).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BUNCH_SPACING_NS = 25.0
_DT_NS = 0.25  # time step of the numerical shaping
_T_MAX_NS = 1200.0


def shaped_pulse(drift_ns: float, tau_d_ns: float, tau_pa_ns: float) -> tuple[np.ndarray, np.ndarray]:
    """The shaped LAr pulse on a 0.25 ns grid: (t in ns, g(t) normalised to a peak of 1).

    The triangular current (1 - t/t_d on [0, t_d]) is passed through H(s) = s tau_d / (1 + s tau_d)
    x 1 / (1 + s tau_pa)^2, evaluated exactly on the grid with scipy's LTI simulation.
    """
    from scipy import signal

    t = np.arange(0.0, _T_MAX_NS, _DT_NS)
    current = np.where(t < drift_ns, 1.0 - t / drift_ns, 0.0)
    num = [tau_d_ns, 0.0]
    den = np.polymul([tau_d_ns, 1.0], np.polymul([tau_pa_ns, 1.0], [tau_pa_ns, 1.0]))
    _, g, _ = signal.lsim((num, den), current, t)
    return t, g / g.max()


@dataclass(frozen=True)
class CrossingResponse:
    """Reconstructed energy per unit deposited energy, per bunch-crossing offset.

    ``offsets`` (k,) int, crossing of the deposit relative to the triggered one (negative: earlier);
    ``response`` (k,) the OF output r(j) (1 at offset 0). Only offsets with |r| >= ``min_response``
    of the config are kept; the dropped tail is below that level everywhere.
    """

    offsets: np.ndarray
    response: np.ndarray
    of_coefficients: np.ndarray
    t_ns: np.ndarray
    pulse: np.ndarray

    @property
    def sum_response(self) -> float:
        """sum_j r(j): the mean pile-up per cell in a full bunch train is <mu> <E> times this."""
        return float(self.response.sum())

    @property
    def sum_squared(self) -> float:
        """sum_j r(j)^2: the pile-up variance in a full train is <mu> <E^2> times this (Campbell)."""
        return float((self.response**2).sum())


def crossing_response(cfg) -> CrossingResponse:
    """The OF response per crossing offset from the ``readout.pileup.pulse`` config node."""
    t, g = shaped_pulse(float(cfg.drift_ns), float(cfg.tau_d_ns), float(cfg.tau_pa_ns))
    n_samples = int(cfg.n_samples)
    t_peak = t[np.argmax(g)]
    t_i = t_peak + BUNCH_SPACING_NS * (np.arange(n_samples) - n_samples // 2)

    def sample(times: np.ndarray) -> np.ndarray:
        return np.interp(times, t, g, left=0.0, right=0.0)

    offsets = np.arange(-int(_T_MAX_NS // BUNCH_SPACING_NS), n_samples + 1)
    s = np.stack([sample(t_i - BUNCH_SPACING_NS * j) for j in offsets])  # (J, n_samples)
    g_i = sample(t_i)
    dg_i = (sample(t_i + 0.5) - sample(t_i - 0.5)) / 1.0
    pu = s.T @ s  # pile-up autocorrelation of the samples, up to a scale
    noise = np.eye(n_samples) * np.trace(pu) / n_samples + float(cfg.of_pileup_weight) * pu
    ninv = np.linalg.inv(noise)
    m = np.stack([g_i, dg_i], axis=1)
    a = ninv @ m @ np.linalg.solve(m.T @ ninv @ m, np.array([1.0, 0.0]))
    r = s @ a
    keep = np.abs(r) >= float(cfg.min_response)
    return CrossingResponse(offsets[keep], r[keep], a, t, g)


@dataclass(frozen=True)
class BunchTrain:
    """A repeating filling pattern: ``filled`` bunches, then ``empty`` empty crossings [E].

    Run-3-like trains of a few tens of bunches separated by short gaps; the triggered crossing is
    always a filled one, drawn uniformly among them.
    """

    filled: int
    empty: int

    @property
    def period(self) -> int:
        return self.filled + self.empty

    def draw_position(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Position (0 .. filled-1) in the train of ``n`` triggered crossings."""
        return rng.integers(0, self.filled, n)

    def is_filled(self, position: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """(n, k) bool: crossing ``position + offset`` holds a bunch."""
        if self.empty == 0:
            return np.ones((position.shape[0], offsets.shape[0]), bool)
        return np.mod(position[:, None] + offsets[None, :], self.period) < self.filled
