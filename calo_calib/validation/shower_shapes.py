"""Validation section: the ATLAS shower shapes against the published Geant4-MC peaks, and their ⟨μ⟩ dependence.

Targets: ``../shared/docs/physics_cells.md`` §2 ("Validation targets, ATLAS Geant4 MC, E_T 20–50 GeV,
|η| < 0.8"), encoded in :data:`TARGETS` with their source tags. Peaks are [R] (recalled from EPJC 79
(2019) 639 and 205, EPJC 76 (2016) 666), the tight-photon cuts [S] (athena
``PhotonIsEMSelectorCutDefs.py``, 2012 tight menu, |η| < 1.37 bins), tolerances and core widths [E].

Samples (built here, appended to the report's samples by :func:`calo_calib.validation.sections.extra_samples`):
electron, photon_unconv and photon_conv, E_T flat in [20, 50] GeV, |η| < 0.8, fixed ⟨μ⟩ for every ⟨μ⟩
of ``shower_shapes.mus`` (default 0, 40, 80). The shapes are computed in the report's worker processes
(:func:`summarise`, from the cell list columns, which the report otherwise drops) with
:func:`calo_calib.data.shower_shapes.shower_shapes_from_table`.

Estimators:

* **peak** = the half-sample mode (:func:`half_sample_mode`, Bickel & Frühwirth 2006): repeatedly keep
  the shortest interval holding half of the remaining values; robust against the one-sided tails of
  R_η, R_φ, E_ratio and ΔE, where the median and the mean are pulled away from the peak. Its
  statistical error is a bootstrap standard deviation;
* **core width** = half the shortest interval holding 68.27 % of the values (:func:`core_width`; σ
  for a Gaussian, insensitive to a tail holding < 32 % of the clusters).

Verdicts: **OK** when the peak lies inside the target band (the table's peak range widened by its
tolerance) within 2 statistical σ, else **DEVIATION**; **INFO** where the table gives a tolerance but
no number (R_φ fraction below 0.9, the ΔE tail). The comparison is made at ⟨μ⟩ = ``shower_shapes.mu_target``
(default 40, near the Run-2 average of the MC the peaks come from [E]).

⟨μ⟩ dependence (second section): peak, mean and core width of R_η, w_η2 and ΔE at every ⟨μ⟩; the mean
shift from ⟨μ⟩ = 0 to the largest ⟨μ⟩ is compared with "about 0" (physics_cells.md §2, "at train centre
the mean shift is about 0" [E]) within the variable's peak tolerance, and the R_η core width with
σ(R_η)² ≈ σ_intr² + 28 σ_cell²/E₇ₓ₇² [E] (σ_cell: the rms ``cell_noise`` of the cluster's middle
cells, E₇ₓ₇ ≈ the cluster's middle-layer energy; median over the clusters), within ±50 % [E].

This module holds the targets, the estimators, the samples and the worker summary (imported by
:mod:`~calo_calib.validation.lateral` too); the rows and results are made in
:mod:`~calo_calib.validation.shower_shapes_checks`, the figures in :mod:`~calo_calib.validation.shower_shapes_plots`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from calo_calib.validation.metrics import bootstrap_error

SECTION = "Shower shapes vs ATLAS MC (E_T 20-50 GeV, |η| < 0.8)"
SECTION_MU = "Shower shapes vs ⟨μ⟩"
PARTICLES = ("electron", "photon_unconv", "photon_conv")
PREFIX = "shape_"  # worker-summary column prefix of the shower shapes
L2_NOISE_KEY = "l2_cell_noise_rms"  # worker summary: rms cell_noise of the cluster's middle cells [GeV]

SRC_PEAK = "[R] EPJC 79 (2019) 639, 205; EPJC 76 (2016) 666 (physics_cells.md §2); tol. [E]"
SRC_CUT = "[S] athena PhotonIsEMSelectorCutDefs.py (2012 tight, |η|<1.37)"
SRC_EFF = "[R] EPJC 79 (2019) 205 (physics_cells.md §2)"
SRC_MU = "[E] physics_cells.md §2 (pile-up)"
MU_WIDTH_TOL = 0.5  # relative tolerance of the [E] R_eta width-growth formula
N_CELLS_RETA = 28.0  # physics_cells.md §2: sigma(R_eta)^2 ~ sigma_intr^2 + 28 sigma_cell^2 / E_7x7^2 [E]
TIGHT_EFF = (0.80, 0.95)  # tight photon efficiency at E_T 25-50 GeV [R]


@dataclass(frozen=True)
class ShapeTarget:
    """One row of the physics_cells.md §2 table.

    ``peak``: particle -> nominal peak range (lo, hi) in the variable's native unit (GeV for ΔE);
    the target band is (lo − tol_abs − tol_rel·|lo|, hi + tol_abs + tol_rel·|hi|). ``width``: core-width
    range (σ) with relative tolerance ``width_tol_rel``. ``cuts``: particle -> (">" | "<", a, b), the
    tight cut's range of thresholds over the |η| < 1.37 bins.
    """

    name: str
    tex: str
    unit: str
    peak: Mapping[str, tuple[float, float]]
    peak_text: str
    tol_text: str
    tol_abs: float = 0.0
    tol_rel: float = 0.0
    scale: float = 1.0  # display factor of values and plots (1000: GeV -> MeV)
    plot_scale: float = 1.0  # extra plotting factor (axis in units of 1/plot_scale)
    plot_unit: str = ""  # axis unit when plot_scale != 1
    width: tuple[float, float] | None = None
    width_tol_rel: float = 0.0
    width_source: str = ""
    cuts: Mapping[str, tuple[str, float, float]] = field(default_factory=dict)
    hist: tuple[float, float] = (0.0, 1.0)
    note: str = ""

    def band(self, particle: str) -> tuple[float, float] | None:
        if particle not in self.peak:
            return None
        lo, hi = self.peak[particle]
        return lo - self.tol_abs - self.tol_rel * abs(lo), hi + self.tol_abs + self.tol_rel * abs(hi)

    def width_band(self) -> tuple[float, float] | None:
        if self.width is None:
            return None
        lo, hi = self.width
        return lo * (1 - self.width_tol_rel), hi * (1 + self.width_tol_rel)

    def axis_label(self) -> str:
        unit = self.plot_unit or self.unit
        return f"{self.tex} [{unit}]" if unit else self.tex

    @property
    def f(self) -> float:
        """Factor from the native unit to the plot axis."""
        return self.scale * self.plot_scale


_ALL = PARTICLES
_NOTE_RETA = (
    "R_η ≡ 1 in the barrel by construction: the supercluster keeps only 3 middle cells in η, so "
    "E(3×7) = E(7×7) (calo_calib/data/shower_shapes.py, Simplifications); measured on the full simulated "
    "middle window in the lateral-widths section (calo_calib/validation/lateral.py)"
)

TARGETS: tuple[ShapeTarget, ...] = (
    ShapeTarget(
        "r_eta", r"$R_\eta$ = E(3×7)/E(7×7)", "", {"electron": (0.94, 0.94), "photon_unconv": (0.955, 0.955),
        "photon_conv": (0.945, 0.945)}, "e 0.94, γ_unc 0.955, γ_conv 0.945", "±0.005; RMS ±25%",
        tol_abs=0.005, width=(0.005, 0.01), width_tol_rel=0.25, width_source="[E] physics_cells.md §2 (core widths)",
        cuts={"photon_unconv": (">", 0.92, 0.93), "photon_conv": (">", 0.91, 0.92)}, hist=(0.85, 1.005), note=_NOTE_RETA,
    ),
    ShapeTarget(
        "r_phi", r"$R_\phi$ = E(3×3)/E(3×7)", "", {"electron": (0.95, 0.95), "photon_unconv": (0.965, 0.965),
        "photon_conv": (0.6, 1.0)}, "γ_unc 0.965; γ_conv 0.6–1; e 0.95 + tail", "±0.01; frac<0.9 ±30%",
        tol_abs=0.01, cuts={"photon_unconv": (">", 0.93, 0.93), "photon_conv": (">", 0.57, 0.64)}, hist=(0.5, 1.005),
    ),
    ShapeTarget(
        "w_eta2", r"$w_{\eta 2}$", "η units", {p: (0.0095, 0.0105) for p in _ALL}, "0.0095–0.0105", "±3×10⁻⁴",
        tol_abs=3e-4, width=(4e-4, 7e-4), width_tol_rel=0.25, width_source="[E] physics_cells.md §2 (core widths; ±25% [E] here)",
        cuts={"photon_unconv": ("<", 0.011, 0.0115), "photon_conv": ("<", 0.011, 0.012)}, hist=(0.005, 0.016),
        plot_scale=1000.0, plot_unit=r"$10^{-3}$ η units",
        note="no correction for the impact point within the cell (ATLAS egammaqweta2c), which widens the distribution; "
        "the corrected w_η2 is in the lateral-widths section (calo_calib/validation/lateral.py)",
    ),
    ShapeTarget(
        "w_s_tot", r"$w_{s,tot}$", "strips", {p: (2.0, 2.0) for p in _ALL}, "≈2 strips", "±10%", tol_rel=0.10,
        cuts={"photon_unconv": ("<", 3.0, 3.5), "photon_conv": ("<", 2.8, 3.3)}, hist=(0.0, 4.5),
    ),
    ShapeTarget(
        "w_s3", r"$w_{s3}$", "strips", {p: (0.6, 0.6) for p in _ALL}, "≈0.6", "±5%", tol_rel=0.05,
        cuts={"photon_unconv": ("<", 0.67, 0.72), "photon_conv": ("<", 0.72, 0.75)}, hist=(0.3, 0.95),
    ),
    ShapeTarget(
        "f_side", r"$F_{side}$", "", {p: (0.1, 0.25) for p in _ALL}, "0.1–0.25", "±20%", tol_rel=0.20,
        cuts={"photon_unconv": ("<", 0.28, 0.43), "photon_conv": ("<", 0.33, 0.52)}, hist=(0.0, 0.6),
    ),
    ShapeTarget(
        "e_ratio", r"$E_{ratio}$", "", {p: (0.9, 0.95) for p in _ALL}, "0.9–0.95", "±0.02", tol_abs=0.02,
        cuts={"photon_unconv": (">", 0.76, 0.82), "photon_conv": (">", 0.78, 0.85)}, hist=(0.5, 1.005),
    ),
    ShapeTarget(
        "delta_e", r"$\Delta E$", "MeV", {p: (0.0, 0.05) for p in _ALL}, "<50 MeV", "tail ±30%", scale=1000.0,
        cuts={"photon_unconv": ("<", 0.160, 0.180), "photon_conv": ("<", 0.120, 0.160)}, hist=(0.0, 0.3),
    ),
    ShapeTarget(
        "f1", r"$f_1$ = $E_{L1}/E$", "", {p: (0.27, 0.27) for p in _ALL}, "≈0.27", "±10%", tol_rel=0.10, hist=(0.0, 0.6),
    ),
    ShapeTarget(
        "f3", r"$f_3$ = $E_{L3}/E$", "", {p: (0.01, 0.03) for p in _ALL}, "0.01–0.03", "±20%", tol_rel=0.20,
        hist=(-0.01, 0.06), plot_scale=100.0, plot_unit="%",
    ),
)  # fmt: skip
"""physics_cells.md §2, one entry per row (f1 and f3 split)."""

MU_VARIABLES = ("r_eta", "w_eta2", "delta_e")
MU_SHIFT_TOL = {"r_eta": 0.005, "w_eta2": 3e-4, "delta_e": 0.015}  # the peak tolerances; ΔE: 30% of 50 MeV [E]


def target(name: str) -> ShapeTarget:
    for t in TARGETS:
        if t.name == name:
            return t
    raise KeyError(name)


# ================================================================================================
# Estimators
# ================================================================================================


def half_sample_mode(x) -> float:
    """Half-sample mode of the finite values of ``x`` (Bickel & Frühwirth, CSDA 50 (2006) 3500).

    Sorted values; while more than 3 remain, keep the ⌈n/2⌉ consecutive ones spanning the shortest
    interval (among equally short intervals the middle one); 3 values: the mean of the closer pair
    (the middle one if equally close); 1–2 values: their mean. NaN for an empty sample.
    """
    y = np.sort(np.asarray(x, dtype=np.float64).ravel())
    y = y[np.isfinite(y)]
    while y.size > 3:
        h = (y.size + 1) // 2
        widths = y[h - 1 :] - y[: y.size - h + 1]
        ties = np.flatnonzero(widths == widths.min())
        i = int(ties[ties.size // 2])
        y = y[i : i + h]
    if y.size == 0:
        return float("nan")
    if y.size == 3:
        d1, d2 = y[1] - y[0], y[2] - y[1]
        if d1 < d2:
            return float(0.5 * (y[0] + y[1]))
        if d2 < d1:
            return float(0.5 * (y[1] + y[2]))
        return float(y[1])
    return float(y.mean())


def core_width(x, frac: float = 0.6827) -> float:
    """Half the length of the shortest interval holding ``frac`` of the finite values (σ for a Gaussian)."""
    y = np.sort(np.asarray(x, dtype=np.float64).ravel())
    y = y[np.isfinite(y)]
    if y.size < 3:
        return float("nan")
    k = max(2, int(math.ceil(frac * y.size)))
    return float(0.5 * np.min(y[k - 1 :] - y[: y.size - k + 1]))


def bootstrap(fn, x, n: int, rng: np.random.Generator) -> float:
    """Bootstrap standard deviation of ``fn`` over ``n`` resamples (NaN for n < 2 or < 2 values).

    :func:`calo_calib.validation.metrics.bootstrap_error` on ``x`` as float64 (non-finite replicates dropped)."""
    return bootstrap_error(fn, np.asarray(x, dtype=np.float64), n, rng)


def in_band(value: float, err: float, band: tuple[float, float], n_sigma: float = 2.0) -> bool:
    """Whether ``value`` lies in ``band`` within ``n_sigma`` × ``err`` (a NaN error counts as 0)."""
    e = 0.0 if not np.isfinite(err) else n_sigma * err
    return bool(np.isfinite(value) and band[0] - e <= value <= band[1] + e)


def tight_pass(shapes: Mapping[str, np.ndarray], particle: str, which: str = "loose") -> np.ndarray:
    """(N,) bool: passes every tight photon cut of :data:`TARGETS` at the ``loose`` or ``tight`` end of its range."""
    n = len(next(iter(shapes.values())))
    ok = np.ones(n, dtype=bool)
    for t in TARGETS:
        if particle not in t.cuts or t.name not in shapes:
            continue
        op, a, b = t.cuts[particle]
        x = np.asarray(shapes[t.name], dtype=np.float64)
        if op == ">":
            ok &= x > (min(a, b) if which == "loose" else max(a, b))
        else:
            ok &= x < (max(a, b) if which == "loose" else min(a, b))
    return ok


# ================================================================================================
# Samples and the worker summary (used by the report machinery)
# ================================================================================================


def _section_cfg(cfg) -> Mapping | None:
    c = cfg.get("shower_shapes") if hasattr(cfg, "get") else None
    if c is None or not bool(c.get("enabled", True)):
        return None
    return c


def _size(cfg, key: str, default: int) -> int:
    s = cfg.quick_sizes if cfg.quick else cfg
    return int(s.get(key, default)) if hasattr(s, "get") else default


def mus(c) -> list[float]:
    out = [float(m) for m in c.get("mus", [0, 40, 80])]
    mt = float(c.get("mu_target", 40))
    return sorted(set(out) | {mt})


def samples(cfg) -> list:
    """The shower-shape samples: one per (particle, ⟨μ⟩); size ``n_shapes`` (``quick_sizes.n_shapes``)."""
    from calo_calib.validation.samples import Sample

    c = _section_cfg(cfg)
    if c is None:
        return []
    n = _size(cfg, "n_shapes", 3000)
    et_min, et_max = float(c.get("et_min", 20)), float(c.get("et_max", 50))
    eta_max = float(c.get("abs_eta_max", 0.8))
    extra = list(cfg.get("sim_overrides") or [])
    out = []
    for particle in c.get("particles", PARTICLES):
        for mu in mus(c):
            ov = [
                f"particle={particle}",
                "gun.spectrum=flat_et",
                f"gun.e_min={et_min:g}",
                f"gun.e_max={et_max:g}",
                "gun.abs_eta_min=0",
                f"gun.abs_eta_max={eta_max:g}",
                f"mu={mu:g}",
                "pileup.mu_rel_sigma=0",
            ]
            meta = {"particle": str(particle), "mu": mu, "e": 0.5 * (et_min + et_max), "summaries": ["shower_shapes"]}
            out.append(Sample(sample_key(particle, mu), "shapes", ov + extra, n, meta))
    return out


def summarise(table) -> dict[str, np.ndarray]:
    """Worker-side: the shower shapes (``shape_<name>``) and the rms noise of the middle cells, per cluster."""
    import pyarrow.compute as pc

    from calo_calib.data.shower_shapes import ATLAS_SHAPE_NAMES, shower_shapes_from_table

    shapes = shower_shapes_from_table(table)
    out = {PREFIX + k: np.asarray(shapes[k], dtype=np.float64) for k in ATLAS_SHAPE_NAMES}
    n = table.num_rows
    noise = table["cell_noise"].combine_chunks()
    parent = pc.list_parent_indices(noise).to_numpy()
    sig = pc.list_flatten(noise).to_numpy().astype(np.float64)
    layer = pc.list_flatten(table["cell_layer"].combine_chunks()).to_numpy()
    m = layer == 2
    cnt = np.bincount(parent[m], minlength=n)
    s2 = np.bincount(parent[m], weights=sig[m] ** 2, minlength=n)
    out[L2_NOISE_KEY] = np.sqrt(s2 / np.maximum(cnt, 1))
    return out


def shapes_of(d: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The shapes of a merged worker summary ``d`` as {name: (N,) float64}."""
    return {k[len(PREFIX) :]: np.asarray(v, dtype=np.float64) for k, v in d.items() if k.startswith(PREFIX)}


def sample_key(particle: str, mu: float) -> str:
    """Data key of the (particle, ⟨μ⟩) sample."""
    return f"shapes/{particle}/mu{mu:g}"


# ================================================================================================
# The sections (rows and results: shower_shapes_checks; figures: shower_shapes_plots)
# ================================================================================================


def run(v) -> None:
    """Both sections on a :class:`~calo_calib.validation.report.Validation` (no-op without the samples)."""
    # the checks import this module's targets and estimators, hence imported here
    from calo_calib.validation.shower_shapes_checks import mu_section, target_section

    c = _section_cfg(v.cfg)
    if c is None:
        return
    target_section(v, c)
    mu_section(v, c)
