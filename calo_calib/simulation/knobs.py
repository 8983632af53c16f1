"""Optional detector knobs for data-like mis-modelling: their identity defaults and validation.

The nominal detector (``conf/detector/nominal.yaml``, passed in by the caller where needed) does not set these keys, so its composed
configuration, its Parquet provenance and its output stay exactly what they were before the knobs
existed. A variant (``conf/detector/<variant>.yaml``, inheriting from nominal) sets only what it
changes. Every knob's default is the identity: a config that sets all of them to their defaults
simulates the same bytes as nominal (tested).

| key (under ``detector.``)          | default | meaning                                              | used in |
|------------------------------------|---------|------------------------------------------------------|---------|
| ``material.bumps``                 | ``[]``  | localised extra X0 in an \\|eta\\| x phi window        | material.py |
| ``shower.depth_scale``             | 1       | longitudinal profile stretched by this factor        | shower.py |
| ``shower.width_scale``             | 1       | both radial components scaled (Moliere-radius-like)  | shower.py |
| ``shower.depth_slice_factor``      | 1       | numerics, not a mis-modelling: each accordion layer's | deposits.py |
|                                    |         | depth slices multiplied (a convergence check)        |         |
| ``readout.elec_noise_scale``       | 1       | electronic noise sigma multiplied                    | readout.py |
| ``readout.pileup_noise_scale``     | 1       | pile-up noise sigma multiplied                       | readout.py |
| ``readout.gain_map.sigma_barrel``  | 0       | rms of the per-region gain miscalibration, barrel    | readout.py |
| ``readout.gain_map.sigma_endcap``  | 0       | same in the end-cap                                  | readout.py |
| ``readout.gain_map.region_deta``   | 0.2     | eta size of a gain region (HV-sector-like)           | readout.py |
| ``readout.gain_map.region_n_phi``  | 32      | gain regions in 2 pi                                 | readout.py |
| ``readout.gain_map.seed``          | 0       | seed of the map (a detector property, fixed per run) | readout.py |
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from calo_calib.simulation.material import ConfigError

GAIN_MAP_DEFAULTS: dict[str, Any] = {
    "sigma_barrel": 0.0,
    "sigma_endcap": 0.0,
    "region_deta": 0.2,
    "region_n_phi": 32,
    "seed": 0,
}

DEFAULTS: dict[str, Any] = {
    "material.bumps": [],
    "shower.depth_scale": 1.0,
    "shower.width_scale": 1.0,
    "shower.depth_slice_factor": 1,
    "readout.elec_noise_scale": 1.0,
    "readout.pileup_noise_scale": 1.0,
    **{f"readout.gain_map.{k}": v for k, v in GAIN_MAP_DEFAULTS.items()},
}
"""Every optional knob (path under ``detector``) and its identity value."""

MAX_DEPTH_SLICE_FACTOR = 64  # 64 x (1, 2, 1) slices already resolves the profile far below 0.1 X0
MAX_GAIN_SIGMA = 0.2  # beyond this a Gaussian gain could reach zero: not a miscalibration any more
ETA_COVERAGE = 2.5  # the gain map covers -2.5 < eta < 2.5 (the EM calorimeter's precision region)


def knob(det: DictConfig, key: str) -> Any:
    """Value of the optional knob ``key`` (a key of :data:`DEFAULTS`) in the detector config ``det``."""
    if key not in DEFAULTS:
        raise KeyError(f"{key!r} is not a detector knob; known: {sorted(DEFAULTS)}")
    value = OmegaConf.select(det, key, default=DEFAULTS[key])
    return DEFAULTS[key] if value is None else value


def _paths(node: Any, prefix: str = "") -> list[str]:
    out = []
    if isinstance(node, DictConfig):
        for key, value in node.items():
            path = f"{prefix}{key}"
            out.append(path)
            out.extend(_paths(value, f"{path}."))
    return out


def _positive(det: DictConfig, key: str, allow_zero: bool = False) -> float:
    value = knob(det, key)
    bad = isinstance(value, bool)
    try:
        x = float(value)
    except (TypeError, ValueError):
        bad = True
    if bad or not math.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        need = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"detector.{key} must be a finite number {need}, got {value!r}")
    return x


def validate_knobs(det: DictConfig, nominal: DictConfig | None = None) -> None:
    """Fail, naming the key, on an unknown detector key or a knob value the simulation cannot honour.

    With the ``nominal`` detector config (``conf/detector/nominal.yaml``, handed down by the config
    layer: :func:`calo_calib.config.detector_config`), unknown keys are keys neither in it nor in
    :data:`DEFAULTS` (e.g. a typo such as ``shower.depth_scal``), which would otherwise be silently
    ignored. Without it (a config already checked when it was composed) only the knob values are checked.
    """
    known = set(_paths(nominal)) | set(DEFAULTS) | {"readout.gain_map"} if nominal is not None else None
    unknown = [] if known is None else sorted(p for p in _paths(det) if p not in known)
    if unknown:
        raise ConfigError(
            f"unknown detector setting(s): {', '.join('detector.' + u for u in unknown)}; "
            f"the optional knobs are {', '.join('detector.' + k for k in sorted(DEFAULTS))}"
        )
    for key in ("shower.depth_scale", "shower.width_scale"):
        _positive(det, key)
    for key in ("readout.elec_noise_scale", "readout.pileup_noise_scale"):
        _positive(det, key, allow_zero=True)
    factor = knob(det, "shower.depth_slice_factor")
    if not isinstance(factor, int) or isinstance(factor, bool) or not 1 <= factor <= MAX_DEPTH_SLICE_FACTOR:
        raise ConfigError(
            f"detector.shower.depth_slice_factor must be an integer in 1..{MAX_DEPTH_SLICE_FACTOR}, got {factor!r}"
        )
    for side in ("sigma_barrel", "sigma_endcap"):
        s = _positive(det, f"readout.gain_map.{side}", allow_zero=True)
        if s > MAX_GAIN_SIGMA:
            raise ConfigError(f"detector.readout.gain_map.{side} must be <= {MAX_GAIN_SIGMA} (relative rms), got {s}")
    deta = _positive(det, "readout.gain_map.region_deta")
    if deta > 2 * ETA_COVERAGE:
        raise ConfigError(f"detector.readout.gain_map.region_deta must be <= {2 * ETA_COVERAGE}, got {deta}")
    for key in ("region_n_phi", "seed"):
        value = knob(det, f"readout.gain_map.{key}")
        if not isinstance(value, int) or isinstance(value, bool) or value < (1 if key == "region_n_phi" else 0):
            need = "an integer >= 1" if key == "region_n_phi" else "an integer >= 0"
            raise ConfigError(f"detector.readout.gain_map.{key} must be {need}, got {value!r}")
    bumps = OmegaConf.select(det, "material.bumps", default=[])
    if bumps is not None and not isinstance(bumps, (list, ListConfig)):
        raise ConfigError(f"detector.material.bumps must be a list, got {bumps!r}")
