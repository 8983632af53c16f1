"""Validation section: is the lateral profile's integration over depth converged? (a diagnosis)

The simulation integrates each accordion layer in a few depth slices (1 strip, 2 middle, 1 back:
``calo_calib/simulation/deposits.py``), each with the GFlash radial profile at the slice's
energy-weighted mean depth. The radial tail widens roughly exponentially with depth, so a coarse
slicing could understate the far tail, which is where R_η, R_φ and w_s,tot sit below their ATLAS
targets (a 3–4 % energy deficit at 2–3 middle cells from the axis). This section simulates the same
showers (same seeds: the same truth, GFlash parameters and losses) with the nominal slicing and with
``detector.shower.depth_slice_factor`` times more slices, and shows the shapes side by side: R_η and w_η2 on the full middle window
(:mod:`calo_calib.validation.lateral`), and R_φ, w_s,tot, w_s3, E_ratio and f1 on the stored cells.
The layer sums are the same by construction (the slices split the same layer integral); only the
lateral spread within a layer can change. The later random draws (sampling fluctuations, noise)
diverge between the two runs, since a Gamma draw consumes a variable number of random numbers, so
the change of a mean carries a statistical error, quoted as for independent samples (an upper bound:
the showers are shared). INFO rows; nothing is tuned.
"""

from __future__ import annotations

import numpy as np

from calo_calib.validation.common import INFO

SECTION = "Depth slices of the lateral integration (diagnosis)"
STORED_SHAPES = ("r_phi", "w_s_tot", "w_s3", "e_ratio", "f1")
WINDOW_SHAPES = ("r_eta", "w_eta2")
SEED_OFFSET = 9700


def shapes_at(overrides: list[str], lateral_cfg, n: int, seed: int) -> dict[str, float]:
    """Mean shower shapes of ``n`` clusters simulated with ``overrides`` (Hydra overrides of the simulation),
    and their standard errors (``<name>_err``).

    R_η and w_η2 come from the full middle window of the lateral section's estimator, the others from
    the stored cells (:func:`~calo_calib.data.shower_shapes.shower_shapes_from_table`). Both samples use
    fixed seeds derived from ``seed``, so two calls that differ only in the slicing see the same showers.
    """
    from calo_calib.data.shower_shapes import shower_shapes_from_table
    from calo_calib.simulation import compose_config, simulate_table
    from calo_calib.validation import lateral

    cfg = compose_config(list(overrides))
    d = lateral.simulate_windows(cfg, n, seed, int(lateral_cfg.get("batch", 1000)))
    win = lateral.lateral_shapes(d["l2_window_e"], d["l2_window_eta"], d["cluster_eta"], d["l2_window_valid"])
    stored = shower_shapes_from_table(simulate_table(cfg, n, seed + 1))
    out = {}
    for names, src in ((WINDOW_SHAPES, win), (STORED_SHAPES, stored)):
        for k in names:
            x = np.asarray(src[k], dtype=np.float64)
            out[k] = float(np.mean(x))
            out[k + "_err"] = float(np.std(x) / np.sqrt(max(x.size, 1)))
    return out


def run(v) -> None:
    """Add one row per particle and shape to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    c = v.cfg.get("depth_slices", {})
    if not c.get("enabled", True):
        return
    from calo_calib.validation import lateral

    lat = v.cfg.get("lateral", {}) or {}
    factor = int(c.get("factor", 16))
    mu = float(c.get("mu", 0))
    n = 300 if v.cfg.quick else int(c.get("n", 2000))
    extra = list(v.cfg.get("sim_overrides") or [])
    out = {}
    for k, particle in enumerate(c.get("particles", ["electron", "photon_unconv"])):
        base = lateral.overrides({**dict(lat), "mu": mu}, str(particle), extra)
        seed = int(v.cfg.seed) + SEED_OFFSET + 10 * k
        nominal = shapes_at(base, lat, n, seed)
        fine = shapes_at([*base, f"+detector.shower.depth_slice_factor={factor}"], lat, n, seed)
        out[particle] = {"nominal": nominal, f"x{factor}": fine}
        for name in (*WINDOW_SHAPES, *STORED_SHAPES):
            a, b = nominal[name], fine[name]
            digits = 5 if name == "w_eta2" else 4
            v.row(
                SECTION, f"{name} mean, {particle}, ⟨μ⟩ = {mu:g}: depth slices × 1 / × {factor}",
                f"{a:.{digits}f} / {b:.{digits}f}",
                "a converged integration: the change is small against the shape's deviation",
                "same showers (seeds), GFlash radial profile per slice [S7]", INFO,
                f"change {b - a:+.{digits}f} ± {np.hypot(nominal[name + '_err'], fine[name + '_err']):.{digits}f} "
                f"({(b - a) / a * 100:+.2f} %); {n} clusters; "
                + ("full middle window" if name in WINDOW_SHAPES else "stored cells"),
            )  # fmt: skip
    v.results["depth_slices"] = out


def samples(cfg) -> list:
    """No report samples: the section simulates its own clusters twice."""
    return []
