"""Material in front of and inside the calorimeter, as depth tables in radiation lengths.

Every depth is counted in X0 along the particle's path from the interaction point, so one axis
``t`` describes a shower from the inner detector to behind the back layer:

    0 ── X_ID ── X_before_PS ─[presampler]─ X_acc ── L1 ── l1_end ── L2 ── l2_end ── L3 ── l3_end ──▶ t
         inner     solenoid,                 passive     strips        middle         back     leakage
         detector  cryostat                  (PS→acc)

Tables come from the detector configuration (``conf/detector/*.yaml``) and are validated on load:
a bad table fails with a message naming the field, row and value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ConfigError(ValueError):
    """Invalid simulation configuration; the message names the offending field."""


def _table(rows: list, columns: list[str], field: str) -> np.ndarray:
    """Validate a depth table: rectangular, finite, non-negative, strictly increasing |eta|."""
    try:
        arr = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{field}.table: rows must be lists of numbers ({err})") from None
    if arr.ndim != 2 or arr.shape[1] != len(columns) or arr.shape[0] < 2:
        raise ConfigError(
            f"{field}.table: expected at least 2 rows of {len(columns)} values ({', '.join(columns)}), got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        i, j = np.argwhere(~np.isfinite(arr))[0]
        raise ConfigError(f"{field}.table row {i}: column {columns[j]} is not finite ({arr[i, j]})")
    if np.any(arr < 0):
        i, j = np.argwhere(arr < 0)[0]
        raise ConfigError(f"{field}.table row {i}: column {columns[j]} is negative ({arr[i, j]}); material must be >= 0")
    steps = np.diff(arr[:, 0])
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0)) + 1
        raise ConfigError(
            f"{field}.table row {i}: abs_eta must increase strictly (row {i - 1}: {arr[i - 1, 0]}, row {i}: {arr[i, 0]})"
        )
    return arr


BUMP_WHERE = ("id", "before_ps", "ps_to_acc")
"""Where a localised bump sits: in the inner detector (more conversions and brem, and more material
before the presampler), between the ID and the presampler (solenoid, cryostat), or between the
presampler and the accordion."""

BUMP_KEYS = ("abs_eta", "phi", "x0", "where")


@dataclass(frozen=True)
class MaterialBump:
    """Extra material (X0 along the path) inside a window |eta| in [lo, hi), phi in [lo, hi).

    A data-like mis-modelling knob (card §2.2: "localised ±X0 bumps"), not scaled by
    ``detector.material.scale``. phi is the particle's direction at the vertex (rad, [-pi, pi)).
    """

    abs_eta_lo: float
    abs_eta_hi: float
    phi_lo: float
    phi_hi: float
    x0: float
    where: str

    @classmethod
    def from_config(cls, node, field: str) -> MaterialBump:
        """Parse and validate one ``detector.material.bumps`` entry; ``field`` names it in errors."""
        if not hasattr(node, "keys"):
            raise ConfigError(f"{field} must be a mapping with keys {list(BUMP_KEYS)}, got {node!r}")
        unknown = sorted(set(node.keys()) - set(BUMP_KEYS))
        missing = [k for k in BUMP_KEYS if k not in node]
        if unknown or missing:
            raise ConfigError(f"{field}: unknown keys {unknown}, missing keys {missing}; expected {list(BUMP_KEYS)}")
        pairs = {}
        for key in ("abs_eta", "phi"):
            try:
                lo, hi = (float(v) for v in node[key])
            except (TypeError, ValueError):
                raise ConfigError(f"{field}.{key} must be two numbers [lo, hi], got {node[key]!r}") from None
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ConfigError(f"{field}.{key} must satisfy lo < hi (finite), got {[lo, hi]}")
            pairs[key] = (lo, hi)
        if pairs["abs_eta"][0] < 0:
            raise ConfigError(f"{field}.abs_eta must be >= 0, got {list(pairs['abs_eta'])}")
        if pairs["phi"][0] < -np.pi - 1e-9 or pairs["phi"][1] > np.pi + 1e-9:
            raise ConfigError(f"{field}.phi must lie within [-pi, pi] rad, got {list(pairs['phi'])}")
        try:
            x0 = float(node.x0)
        except (TypeError, ValueError):
            raise ConfigError(f"{field}.x0 must be a number (X0), got {node.x0!r}") from None
        if not np.isfinite(x0) or x0 < 0:
            raise ConfigError(f"{field}.x0 must be a finite number >= 0 (X0), got {node.x0!r}")
        where = str(node.where)
        if where not in BUMP_WHERE:
            raise ConfigError(f"{field}.where={where!r} is unknown; choose one of {', '.join(BUMP_WHERE)}")
        return cls(*pairs["abs_eta"], *pairs["phi"], x0, where)

    def inside(self, abs_eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """Whether each (|eta|, phi) lies in the window (bool, broadcast shape)."""
        return (abs_eta >= self.abs_eta_lo) & (abs_eta < self.abs_eta_hi) & (phi >= self.phi_lo) & (phi < self.phi_hi)


@dataclass(frozen=True)
class UpstreamMaterial:
    """Upstream material X(|eta|) in X0 along the path (card §2.2 [E]), plus optional local bumps.

    Attributes are the table columns; :meth:`at` interpolates linearly in |eta| and adds the
    ``bumps`` (none in the nominal detector).
    """

    abs_eta: np.ndarray
    x_id: np.ndarray
    x_before_ps: np.ndarray
    x_ps_to_acc: np.ndarray
    bumps: tuple[MaterialBump, ...] = ()

    @classmethod
    def from_config(cls, node) -> UpstreamMaterial:
        columns = ["abs_eta", "x_id", "x_before_ps", "x_ps_to_acc"]
        if list(node.columns) != columns:
            raise ConfigError(f"detector.material.columns must be {columns}, got {list(node.columns)}")
        arr = _table(list(node.table), columns, "detector.material")
        scale = float(node.scale)
        if not np.isfinite(scale) or scale < 0:
            raise ConfigError(f"detector.material.scale must be a finite number >= 0, got {node.scale}")
        if np.any(arr[:, 1] > arr[:, 2]):
            i = int(np.argmax(arr[:, 1] > arr[:, 2]))
            raise ConfigError(
                f"detector.material.table row {i}: x_id ({arr[i, 1]}) exceeds x_before_ps ({arr[i, 2]}); the ID is part of the material before the presampler"
            )
        raw_bumps = node.get("bumps", None)  # optional knob: absent in the nominal detector
        if raw_bumps is None:
            raw_bumps = []
        if isinstance(raw_bumps, (str, bytes)) or not hasattr(raw_bumps, "__len__") or hasattr(raw_bumps, "keys"):
            raise ConfigError(f"detector.material.bumps must be a list of bumps, got {raw_bumps!r}")
        bumps = tuple(MaterialBump.from_config(b, f"detector.material.bumps[{i}]") for i, b in enumerate(raw_bumps))
        return cls(arr[:, 0], arr[:, 1] * scale, arr[:, 2] * scale, arr[:, 3] * scale, bumps)

    def at(self, abs_eta: np.ndarray, phi: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X_ID, X_before_PS, X_acc) at each |eta|, shape of ``abs_eta``; X_acc = X_before_PS + X_PS_to_acc.

        ``phi`` (rad, the particle's direction, same shape) is needed only when there are bumps.
        """
        x_id = np.interp(abs_eta, self.abs_eta, self.x_id)
        x_ps = np.interp(abs_eta, self.abs_eta, self.x_before_ps)
        x_gap = np.interp(abs_eta, self.abs_eta, self.x_ps_to_acc)
        if self.bumps:
            if phi is None:
                raise ValueError("UpstreamMaterial.at: the material has localised bumps, so phi is required")
            for bump in self.bumps:
                extra = np.where(bump.inside(abs_eta, phi), bump.x0, 0.0)
                if bump.where == "id":  # the ID is part of the material before the presampler
                    x_id = x_id + extra
                    x_ps = x_ps + extra
                elif bump.where == "before_ps":
                    x_ps = x_ps + extra
                else:
                    x_gap = x_gap + extra
        x_acc = x_ps + x_gap
        return x_id, x_ps, x_acc


@dataclass(frozen=True)
class AccordionDepth:
    """Accordion layer boundaries (X0 from the IP along the path) versus |eta|."""

    abs_eta: np.ndarray
    l1_end: np.ndarray
    l2_end: np.ndarray
    l3_end: np.ndarray

    @classmethod
    def from_config(cls, node) -> AccordionDepth:
        columns = ["abs_eta", "l1_end", "l2_end", "l3_end"]
        if list(node.columns) != columns:
            raise ConfigError(f"detector.accordion.columns must be {columns}, got {list(node.columns)}")
        arr = _table(list(node.table), columns, "detector.accordion")
        bad = (arr[:, 1] >= arr[:, 2]) | (arr[:, 2] >= arr[:, 3])
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ConfigError(f"detector.accordion.table row {i}: boundaries must satisfy l1_end < l2_end < l3_end, got {arr[i, 1:]}")
        return cls(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])

    def at(self, abs_eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(l1_end, l2_end, l3_end) at each |eta|."""
        return (
            np.interp(abs_eta, self.abs_eta, self.l1_end),
            np.interp(abs_eta, self.abs_eta, self.l2_end),
            np.interp(abs_eta, self.abs_eta, self.l3_end),
        )


@dataclass(frozen=True)
class InnerDetectorProfile:
    """Radial distribution of the inner-detector material (card §2.3 [R] radii, [E] split).

    ``elements`` are thin material elements (radius in mm, fraction of X_ID, region group) used as
    bremsstrahlung emission points; the TRT is split into two elements. :meth:`radius_at_fraction`
    inverts the cumulative material profile to turn a conversion depth into a radius.
    """

    radius: np.ndarray  # (n_elements,) mm
    fraction: np.ndarray  # (n_elements,) sums to 1
    group: np.ndarray  # (n_elements,) 0 pixel, 1 SCT, 2 TRT
    cdf_r: np.ndarray  # knots of the piecewise-linear cumulative profile, mm
    cdf_u: np.ndarray  # cumulative fraction at the knots

    @classmethod
    def from_config(cls, node) -> InnerDetectorProfile:
        r = np.asarray(list(node.id_layers_radius), dtype=float)
        f = np.asarray(list(node.id_layers_x_fraction), dtype=float)
        if r.shape != f.shape or r.size == 0:
            raise ConfigError("detector.material.id_layers_radius and id_layers_x_fraction must be non-empty lists of equal length")
        if np.any(np.diff(r) <= 0) or np.any(r <= 0):
            raise ConfigError(f"detector.material.id_layers_radius must be positive and increasing, got {r.tolist()}")
        if np.any(f < 0):
            raise ConfigError(f"detector.material.id_layers_x_fraction must be >= 0, got {f.tolist()}")
        trt_lo, trt_hi = (float(v) for v in node.trt_radius)
        f_trt = float(node.trt_x_fraction)
        if not (r[-1] < trt_lo < trt_hi <= 800.0) or f_trt < 0:
            raise ConfigError(f"detector.material.trt_radius must satisfy last ID layer < lo < hi <= 800 mm, got {[trt_lo, trt_hi]}")
        total = f.sum() + f_trt
        if total <= 0:
            raise ConfigError("detector.material: inner-detector fractions sum to zero")
        trt_mid = 0.5 * (trt_lo + trt_hi)
        radius = np.concatenate([r, [0.5 * (trt_lo + trt_mid), 0.5 * (trt_mid + trt_hi)]])
        fraction = np.concatenate([f, [f_trt / 2, f_trt / 2]]) / total
        group = np.where(radius < 250.0, 0, np.where(radius < trt_lo, 1, 2))
        # Thin layers become 2 mm wide steps of the cumulative profile; the TRT is a linear ramp.
        knots_r, knots_u, u = [0.0], [0.0], 0.0
        for ri, fi in zip(r, f / total):
            knots_r += [ri - 1.0, ri + 1.0]
            knots_u += [u, u + fi]
            u += fi
        knots_r += [trt_lo, trt_hi]
        knots_u += [u, 1.0]
        return cls(radius, fraction, group, np.asarray(knots_r), np.asarray(knots_u))

    def radius_at_fraction(self, u: np.ndarray) -> np.ndarray:
        """Radius (mm) where a fraction ``u`` in [0, 1) of the ID material has been traversed."""
        return np.interp(u, self.cdf_u, self.cdf_r)

    def fraction_at_radius(self, r: np.ndarray) -> np.ndarray:
        """Fraction of the ID material in front of radius ``r`` (mm)."""
        return np.interp(r, self.cdf_r, self.cdf_u)
