"""Validation section: the strip width w_s3 against the impact position in the strip (a diagnosis).

w_s3 = √(Σ E_i (i − i_max)² / Σ E_i) over the three strips around the hottest one depends on where the
shower hits that strip: a shower at the strip's centre shares little energy with its neighbours, one
at the edge shares more. How much it rises from centre to edge depends on the width of the shower core
in the strips. ATLAS corrects w_s3 for it (athena ``egammaqweta1c::Correct``):

    w_s3,corrected = w_s3 − 0.76 u²    (|η| < 1.0),

with u ∈ [−0.5, 0.5] the position of the cluster's η in the strips relative to the hottest strip's
centre, in strip pitches (``egammaqweta1c::RelPosition``). The coefficient is read from the code
[S: athena egammaUtils/egammaqweta1c.cxx]; that it was fitted to ATLAS simulation is [R]. It is a
Geant4-derived measure of the strip core that the [R] w_s3 peak (0.6) is not.

The section simulates clusters at fixed E and |η| (⟨μ⟩ = 0), computes w_s3 and u as athena does (u
from the energy-weighted η of the strips within ±12 strips of the hottest, the SW cluster's strip
span), and fits w_s3 = a + b u². It repeats this for electrons with the lateral profile narrowed
by ``detector.shower.width_scale`` (a probe, not a change of nominal). It then finds, by
interpolation, the scale at which b equals ATLAS's 0.76, and the mean w_s3 there. INFO rows; nothing
is tuned.
"""

from __future__ import annotations

import numpy as np

from calo_calib.validation.common import INFO
from calo_calib.validation.metrics import fit_line

SECTION = "The strip width w_s3 against the impact position in the strip (egammaqweta1c; diagnosis)"
SRC = "[S] athena egammaqweta1c.cxx: w_s3 − 0.76 u² at |η| < 1.0 (fitted to ATLAS simulation [R])"
ATLAS_SLOPE = 0.76  # egammaqweta1c::Correct, |eta| < 1.0
BARYCENTRE_HALF_STRIPS = 12  # the strips of a 3-middle-cell-wide cluster: +-1.5 middle cells = +-12 strips
SEED_OFFSET = 9900


def relative_position(eta: np.ndarray, eta_cell: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """athena's ``egammaqweta1c::RelPosition``: the offset of ``eta`` from the centre of the strip at
    ``eta_cell`` in units of the strip ``pitch``, folded into [−0.5, 0.5) (0 at the centre)."""
    pos = np.abs(np.asarray(eta, float) - np.asarray(eta_cell, float) - np.asarray(pitch, float) / 2.0)
    return np.fmod(pos, pitch) / pitch - 0.5


def ws3_and_position(table) -> tuple[np.ndarray, np.ndarray]:
    """(w_s3, u) of every cluster of ``table`` that has a strip maximum above 0 GeV.

    w_s3 as :func:`calo_calib.data.shower_shapes_strips.strip_shapes` computes it; u from the
    energy-weighted η of the positive strips within ±12 strips of the hottest (φ-summed profile).
    """
    from calo_calib.data.cell_segments import flatten_cells
    from calo_calib.data.shower_shapes import CLUSTER_COLUMNS, shower_shape_cell_columns
    from calo_calib.data.shower_shapes_middle import middle_shapes
    from calo_calib.data.shower_shapes_strips import profile_maximum, profile_width, strip_profile

    cells, seg = flatten_cells(table, shower_shape_cell_columns(False))
    n = table.num_rows
    cl = {k: table.column(k).to_numpy().astype(float) for k in CLUSTER_COLUMNS}
    order = np.argsort(seg, kind="stable")
    seg = np.asarray(seg)[order]
    e, eta, phi = (np.asarray(cells[k], float)[order] for k in ("cell_e", "cell_eta", "cell_phi"))
    layer = np.asarray(cells["cell_layer"]).astype(np.int64)[order]
    mid = middle_shapes(e, eta, phi, layer, seg, n, cl)
    prof = strip_profile(e, eta, phi, layer, seg, n, mid["_eta_h2"], mid["_phi_h2"], mid["_endcap"])
    if prof is None:
        return np.zeros(0), np.zeros(0)
    p, c = prof.P, prof.C
    kmax, _, good, rel = profile_maximum(prof)
    in3 = c & (np.abs(rel) <= 1)
    ws3 = profile_width(p, in3, rel, good)
    slot_eta = prof.slot_eta()
    wb = np.where(c & (np.abs(rel) <= BARYCENTRE_HALF_STRIPS), np.maximum(p, 0.0), 0.0)
    eta_bary = (wb * slot_eta).sum(1) / np.where(wb.sum(1) > 0, wb.sum(1), 1.0)
    u = relative_position(eta_bary, slot_eta[np.arange(n), kmax], prof.deta1)
    ok = good & (np.where(in3, p, 0.0).sum(1) > 0) & np.isfinite(u)
    return ws3[ok], u[ok]


def measure(particle: str, c, n: int, seed: int, extra: list[str]) -> dict:
    """Fit of w_s3 = a + b u² for ``n`` clusters of ``particle`` (config block ``c``, overrides ``extra``)."""
    from calo_calib.simulation import compose_config, simulate_table
    from calo_calib.validation.samples import fixed_overrides

    lo, hi = (float(x) for x in c.get("abs_eta", [0.2, 0.7]))
    overrides = fixed_overrides(particle, float(c.get("e", 40)), (lo + hi) / 2, (hi - lo) / 2, float(c.get("mu", 0)))
    ws3, u = ws3_and_position(simulate_table(compose_config(overrides + list(extra)), n, seed))
    fit = fit_line(u * u, ws3)  # w_s3 = a + b u²
    return {"particle": particle, "overrides": list(extra), "n": int(ws3.size), "intercept": fit["a"], "slope": fit["b"],
            "slope_err": fit["b_err"],
            "mean": float(np.mean(ws3)), "mean_err": float(np.std(ws3) / np.sqrt(max(ws3.size, 1)))}  # fmt: skip


def scale_at_atlas_slope(scales: np.ndarray, slopes: np.ndarray, means: np.ndarray) -> tuple[float, float] | None:
    """(width scale, mean w_s3) where the slope crosses :data:`ATLAS_SLOPE`, by linear interpolation
    between neighbouring probes (sorted by scale); None when no pair brackets it."""
    o = np.argsort(scales)
    s, b, m = np.asarray(scales)[o], np.asarray(slopes)[o], np.asarray(means)[o]
    for i in range(s.size - 1):
        if (b[i] - ATLAS_SLOPE) * (b[i + 1] - ATLAS_SLOPE) <= 0 and b[i] != b[i + 1]:
            f = (ATLAS_SLOPE - b[i]) / (b[i + 1] - b[i])
            return float(s[i] + f * (s[i + 1] - s[i])), float(m[i] + f * (m[i + 1] - m[i]))
    return None


def run(v) -> None:
    """Add the section's rows to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    c = v.cfg.get("strip_position", {})
    if not c.get("enabled", True):
        return
    n = 600 if v.cfg.quick else int(c.get("n", 6000))
    seed = int(v.cfg.seed) + SEED_OFFSET
    extra = list(v.cfg.get("sim_overrides") or [])
    where = f"E = {float(c.get('e', 40)):g} GeV, |η| {c.get('abs_eta', [0.2, 0.7])[0]}–{c.get('abs_eta', [0.2, 0.7])[1]}, ⟨μ⟩ = {float(c.get('mu', 0)):g}"
    out = {"nominal": [], "probes": []}
    for k, particle in enumerate(c.get("particles", ["electron", "photon_unconv"])):
        r = measure(particle, c, n, seed + k, extra)
        out["nominal"].append(r)
        v.row(SECTION, f"w_s3 = a + b u², {particle}, nominal", f"a = {r['intercept']:.3f}, b = {r['slope']:.3f} ± {r['slope_err']:.3f}",
              f"b = {ATLAS_SLOPE:g} (ATLAS's correction)", SRC, INFO,
              f"mean w_s3 {r['mean']:.4f} ± {r['mean_err']:.4f} (the [R] peak 0.6); {r['n']} clusters, {where}")  # fmt: skip
    scales = [0.7] if v.cfg.quick else [float(x) for x in c.get("width_scales", [0.85, 0.7, 0.55])]
    electron = next((r for r in out["nominal"] if r["particle"] == "electron"), None)
    for ws in scales:
        r = measure("electron", c, n, seed, extra + [f"+detector.shower.width_scale={ws:g}"])
        r["width_scale"] = ws
        out["probes"].append(r)
        v.row(SECTION, f"w_s3 = a + b u², electron, lateral profile × {ws:g} (probe)",
              f"a = {r['intercept']:.3f}, b = {r['slope']:.3f} ± {r['slope_err']:.3f}", f"b = {ATLAS_SLOPE:g} (ATLAS's correction)",
              SRC, INFO, f"mean w_s3 {r['mean']:.4f} ± {r['mean_err']:.4f}; same showers' seed as the nominal row; {where}")  # fmt: skip
    if electron is not None and out["probes"]:
        pts = [(1.0, electron["slope"], electron["mean"])] + [(r["width_scale"], r["slope"], r["mean"]) for r in out["probes"]]
        hit = scale_at_atlas_slope(*(np.array(x) for x in zip(*pts)))
        out["crossing"] = hit
        text = (f"b = {ATLAS_SLOPE:g} at a profile × {hit[0]:.2f}, where the mean w_s3 is {hit[1]:.3f}" if hit
                else "no probe brackets b = 0.76")  # fmt: skip
        v.row(SECTION, "electron: profile width at which w_s3 rises with u as ATLAS's correction says", text,
              "mean w_s3 ≈ 0.6 ([R] peak)", SRC + "; physics_cells.md §2", INFO,
              "linear interpolation between the probes; the probes scale the profile in every layer, the row "
              "speaks only of the strip core")  # fmt: skip
    v.note(SECTION, "u is athena's RelPosition of the strips' energy-weighted η (positive strips within ±12 of the "
           "hottest) about the hottest strip's centre; w_s3 is the report's. The probes narrow the whole radial "
           "profile (detector.shower.width_scale), a diagnosis of the strip core only: they are not a proposed "
           "nominal (a narrower profile everywhere would also narrow w_s,tot, R_η and R_φ, already too narrow).")  # fmt: skip
    v.results["strip_position"] = out


def samples(cfg) -> list:
    """No report samples: the section simulates its own clusters."""
    return []
