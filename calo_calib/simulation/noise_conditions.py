"""The per-cell pile-up noise of the particle model, measured: the conditions of the clustering thresholds.

ATLAS's topo-clustering cuts on |E| / sigma_tot, with sigma_tot = sqrt(a^2 + b^2 L) per cell taken
from the noise conditions (``CaloNoiseCondAlg`` [S: athena]), which for simulation are measured on
the simulation's own pile-up. With pile-up as particles (``readout.pileup.model=particles``) the
per-cell sigma is a result of the overlay, not an input: at <mu> = 30 it is up to 1.5x the card's
estimated table in the middle layer and 2-3.5x in the presampler (docs/validation, "Pile-up").
Thresholds (and the stored ``cell_noise``) from that table would let noise cells pass the seed and
growth cuts far more often than a detector whose conditions were measured on it.

So the particle model's conditions are measured, once per detector configuration, exactly as the
validation measures the overlay: empty cluster windows (no signal) at fixed |eta| points, the
overlay at <mu> = ``readout.mu_ref_noise``, and the standard deviation of the cells near each
window's centre. The table (per region, layer and |eta| point) is cached as JSON next to the
minimum-bias library and read back by every process, so a dataset's bytes do not depend on which
process measured it. Between points sigma is interpolated linearly in |eta|; it scales as
sqrt(<mu> / mu_ref_noise), as a compound Poisson sum does (Campbell's theorem).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calo_calib.simulation import geometry as geo

# |eta| points of the measurement (window centres), per region: barrel windows use the barrel
# geometry, end-cap windows the end-cap one. Steps of 0.1 resolve the cosh|eta| growth and the
# material steps; the first and last points sit just inside each region.
BARREL_POINTS = tuple(round(0.05 + 0.1 * k, 3) for k in range(14)) + (1.42,)
ENDCAP_POINTS = (1.48,) + tuple(round(1.55 + 0.1 * k, 3) for k in range(10))
_ETA_HALF_USED = 0.03  # cells within +-0.03 of the window centre in eta (well inside the window)
_PHI_USED = (1, 1, 7, 7)  # central phi cells used per layer (PS and strips windows have 3 wide cells)
# Bump when the measurement changes (old cache files are then ignored), including a change of the
# overlay's float32 arithmetic: a table differing in its last bits moves a few threshold decisions,
# so the same seed would no longer give the same bytes as a fresh checkout. 2: tracks scattered
# into their cells, numpy's atan on AVX-512 (2026-12-02).
VERSION = 2


@dataclass(frozen=True)
class NoiseConditions:
    """Per-cell pile-up sigma (GeV) of the particle model at <mu> = ``mu_ref`` on an |eta| grid.

    ``barrel`` and ``endcap`` are (4, n_points) arrays (layer x point), NaN where a layer has no
    cells (e.g. the presampler beyond |eta| = 1.8).
    """

    mu_ref: float
    barrel_points: np.ndarray
    endcap_points: np.ndarray
    barrel: np.ndarray
    endcap: np.ndarray

    def sigma_pu(self, layer: int, abs_eta: np.ndarray, endcap: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """Pile-up sigma (GeV) of cells at ``abs_eta`` in clusters of region ``endcap`` and <mu> ``mu``.

        Args broadcast as in :func:`calo_calib.simulation.readout.noise_sigmas`: abs_eta (c, ne, 1) or
        (c, ne, nph); endcap and mu (c,). Returns the broadcast shape.
        """
        shape = (-1,) + (1,) * (abs_eta.ndim - 1)
        s_b = _interp(abs_eta, self.barrel_points, self.barrel[layer])
        s_e = _interp(abs_eta, self.endcap_points, self.endcap[layer])
        s = np.where(np.asarray(endcap).reshape(shape), s_e, s_b)
        return s * np.sqrt(np.maximum(np.asarray(mu, float).reshape(shape), 0.0) / self.mu_ref)

    def scaled(self, factor: float) -> NoiseConditions:
        """The same table with every sigma multiplied by ``factor`` (the pile-up noise knob)."""
        if factor == 1.0:
            return self
        return NoiseConditions(self.mu_ref, self.barrel_points, self.endcap_points, self.barrel * factor, self.endcap * factor)

    def to_json(self) -> dict:
        return {
            "version": VERSION,
            "mu_ref": self.mu_ref,
            "barrel_points": self.barrel_points.tolist(),
            "endcap_points": self.endcap_points.tolist(),
            "barrel": self.barrel.tolist(),
            "endcap": self.endcap.tolist(),
        }

    @classmethod
    def from_json(cls, d: dict) -> NoiseConditions:
        arr = lambda k: np.array(d[k], dtype=np.float64)  # noqa: E731
        return cls(float(d["mu_ref"]), arr("barrel_points"), arr("endcap_points"), arr("barrel"), arr("endcap"))


def _interp(x: np.ndarray, points: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation over the finite values (clamped at the ends); 0 where none is finite."""
    ok = np.isfinite(values)
    if not ok.any():
        return np.zeros_like(x, dtype=np.float64)
    return np.interp(x, points[ok], values[ok])


def empty_windows(eta: float, c: int, rng: np.random.Generator, endcap: bool | None = None):
    """``c`` cluster windows centred at |eta| (positive frame), random phi: (eta_c, phi_c, endcap,
    windows per layer, transverse radius per layer in mm). ``endcap`` None: end-cap from |eta| 1.45."""
    eta_c = np.full(c, float(eta))
    phi_c = rng.uniform(-np.pi, np.pi, c)
    endcap = eta_c >= 1.45 if endcap is None else np.full(c, bool(endcap))
    wins = [geo.layer_window(layer, eta_c, phi_c, endcap) for layer in range(geo.N_LAYERS)]
    rho = [
        np.where(endcap, geo.ENDCAP_Z[layer] / np.sinh(eta_c), geo.barrel_radius(layer, eta_c))
        for layer in range(geo.N_LAYERS)
    ]
    return eta_c, phi_c, endcap, wins, rho


def overlay_windows(pu, det, eta: float, mu: float, n: int, rng: np.random.Generator, endcap: bool | None = None):
    """Pile-up cells of ``n`` empty windows at |eta| (no signal) from the model ``pu`` of detector
    config ``det`` at <mu> ``mu``: (cells per layer (n, ne, nph) GeV, windows, endcap (n,))."""
    from calo_calib.simulation.readout import sampling_term

    eta_c, phi_c, ec, wins, rho = empty_windows(eta, n, rng, endcap=endcap)
    cells = pu.cells(wins, rho, eta_c, phi_c, np.full(n, float(mu)), sampling_term(eta_c, ec, det), rng)
    return cells, wins, ec


def measure(pu, det, n_windows: int, seed: int) -> NoiseConditions:
    """Measure the conditions of the pile-up model ``pu`` (a ``ParticlePileup`` of detector ``det``).

    ``n_windows`` empty windows per |eta| point; the draws follow one generator of ``seed``.
    """
    mu_ref = float(det.readout.mu_ref_noise)
    rng = np.random.default_rng(seed)
    tables = []
    for region, points in ((False, BARREL_POINTS), (True, ENDCAP_POINTS)):
        table = np.full((geo.N_LAYERS, len(points)), np.nan)
        for k, eta in enumerate(points):
            cells, wins, _ = overlay_windows(pu, det, eta, mu_ref, n_windows, rng, endcap=region)
            for layer in range(geo.N_LAYERS):
                table[layer, k] = central_sigma(cells[layer], wins[layer], layer, eta)
        tables.append(table)
    return NoiseConditions(mu_ref, np.array(BARREL_POINTS), np.array(ENDCAP_POINTS), *tables)


def central_sigma(cells: np.ndarray, w, layer: int, eta: float) -> float:
    """Standard deviation (GeV) of the valid cells near the centre of the windows; NaN if none."""
    near = np.abs(w.eta_centre - eta) <= _ETA_HALF_USED  # (c, ne)
    nph = w.phi_lo.shape[1]
    lo = (nph - _PHI_USED[layer]) // 2
    cols = np.zeros(nph, bool)
    cols[lo : lo + _PHI_USED[layer]] = True
    sel = near[:, :, None] & cols[None, None, :] & w.valid
    if sel.sum() < 10:
        return float("nan")
    return float(np.std(cells[sel].astype(np.float64)))


# Detector keys that cannot change the overlay's cells (the signal's readout, the clustering, the
# signal's upstream physics, the gaussian model's parameters): left out of the cache key so that
# variants differing only there share one measurement. Everything else enters the key.
# ``pileup_noise_scale`` s multiplies the minimum-bias rate by s^2, so the sigma of the overlay (a
# compound Poisson sum, variance proportional to the rate) by exactly s: the table is measured at
# s = 1 and scaled (:func:`load_or_measure`), as the <mu> dependence is.
_READOUT_NOT_IN_KEY = (
    "noise", "phi_modulation", "phi_mod_amplitude_barrel", "phi_mod_amplitude_endcap", "phi_mod_shape_c",
    "phi_mod_phase_b", "phi_mod_phase_d", "sigma_elec_barrel", "sigma_elec_endcap", "sigma_pu_eta0",
    "pu_mean_hits", "elec_noise_scale", "pileup_noise_scale", "gain_map",
)  # fmt: skip
# Dotted paths under ``detector``; ``sampling.enabled`` is the switch of the signal's sampling
# fluctuations (the overlay always draws its own, from the same a); ``shower.depth_slice_factor``
# slices only the signal's showers (the overlay's pile-up showers have their own, pileup_energies.py).
_PATHS_NOT_IN_KEY = (
    "name", "clustering", "shower.depth_slice_factor", "conversion", "brem", "sampling.enabled", *(f"readout.{k}" for k in _READOUT_NOT_IN_KEY),
)  # fmt: skip
_PILEUP_SCALE = "readout.pileup_noise_scale"


def cache_key(det) -> str:
    """Hash of everything the measurement can depend on (the overlay's library, pulse, geometry,
    material and showers) and the measurement's own version. A data-like knob set to its identity
    default (knobs.py) is the same detector as one that leaves it out, so it shares the key."""
    from omegaconf import OmegaConf

    from calo_calib.simulation.knobs import DEFAULTS

    node = OmegaConf.to_container(det, resolve=True)
    for path, default in DEFAULTS.items():
        _drop(node, path, only_if=default)
    for path in _PATHS_NOT_IN_KEY:
        _drop(node, path)
    text = json.dumps({"version": VERSION, "detector": node}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_ANY = object()


def _drop(node: dict, path: str, only_if=_ANY) -> None:
    """Delete the dotted ``path`` from a nested dict (if present and, given ``only_if``, equal to it)."""
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and leaf in node and (only_if is _ANY or node[leaf] == only_if):
        del node[leaf]


def cache_path(det) -> Path:
    from calo_calib.simulation.minbias import cache_dir

    return cache_dir() / "noise_conditions" / f"{cache_key(det)}.json"


_MEMORY: dict[str, NoiseConditions] = {}


def load_or_measure(pu, det, progress: bool = True) -> NoiseConditions:
    """The cached conditions of detector ``det`` (measured with ``pu`` and cached when missing or
    unreadable, under a file lock so that parallel workers measure once).

    The table is measured and cached at pile-up noise scale 1 (``pu.at_unit_scale()``) and returned
    multiplied by the detector's ``readout.pileup_noise_scale``.
    """
    from calo_calib.simulation.knobs import knob

    path = cache_path(det)
    key = str(path)
    scale = float(knob(det, _PILEUP_SCALE))
    if key not in _MEMORY:
        cond = _read(path)
        if cond is None:
            cond = _measure_locked(pu if scale == 1.0 else pu.at_unit_scale(), det, path, progress)
        _MEMORY[key] = cond
    return _MEMORY[key].scaled(scale)


def _read(path: Path) -> NoiseConditions | None:
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
        if int(d.get("version", -1)) != VERSION:
            return None
        return NoiseConditions.from_json(d)
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"[noise conditions] cached table {path} is unreadable ({type(err).__name__}: {err}); measuring again")
        return None


def _measure_locked(pu, det, path: Path, progress: bool) -> NoiseConditions:
    import fcntl
    import time

    cfg = det.readout.pileup.conditions
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cond = _read(path)  # another process finished it while we waited
        if cond is not None:
            return cond
        t0 = time.perf_counter()
        measured = measure(pu, det, int(cfg.windows_per_point), int(cfg.seed))
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            tmp.write_text(json.dumps(measured.to_json(), indent=1))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if progress:
            print(f"[noise conditions] measured the pile-up sigma table in {time.perf_counter() - t0:.0f} s -> {path}")
        # Read back what was written, so this process uses exactly the bytes every other one reads.
        return NoiseConditions.from_json(json.loads(path.read_text()))
