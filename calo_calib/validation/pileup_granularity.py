"""Validation section: why the per-cell pile-up σ of the strips departs from the card's table (a diagnosis).

The card's per-cell table (§4.2, [E]) is σ_pu(η = 0) · cosh|η| · √(⟨μ⟩/30) per layer: it follows the
energy (not E_T) of a flat-in-η pile-up flux and ignores two things a cell sees:

* **granularity**: at a fixed energy density per unit η × φ, σ² of a cell grows with its area Δη × Δφ;
  the strips are 0.025/8 wide in η up to |η| = 1.8 (barrel and outer end-cap), 0.025/6 at 1.8–2.0
  and 0.025/4 at 2.0–2.4 (card §1.1);
* **upstream material**: 1.7 X0 in front of the strips at η = 0 rising to 3.9 X0 at |η| = 1.2–1.4 in
  the nominal table; the soft pile-up photons and electrons shower in it (and in the presampler) before
  they reach the strips.

The section overlays pile-up particles on empty windows (no signal, as :mod:`pileup_cells` does) with
the nominal detector and with ``detector.material.scale = 0``, and reports per |η| the strip and middle σ
and the reduced σ / (cosh|η| √(Δη Δφ)) relative to its value at the first point: if the reduced σ is
flat without material and falls with the material in front, material and granularity are the causes.
INFO rows; nothing is tuned.
"""

from __future__ import annotations

import numpy as np

from calo_calib.validation.common import INFO

SECTION = "Per-cell pile-up σ: granularity and upstream material (diagnosis)"
ETAS = (0.3, 1.0, 1.3, 1.8, 2.2)  # the |η| points of calo_calib.validation.pileup_cells
MU = 30.0
LAYERS = {1: "strips", 2: "middle"}
SEED_OFFSET = 7000  # windows seeded with cfg.seed + SEED_OFFSET + point index (independent of pileup_cells)


def measure(sim_cfg, n: int, seed: int) -> dict[int, list[tuple[float, float]]]:
    """{layer: [(σ [GeV], Δη Δφ of the central cell) per |η| of :data:`ETAS`]} on ``n`` empty windows at ⟨μ⟩ = 30."""
    from calo_calib.simulation.generator import Simulator
    from calo_calib.simulation.noise_conditions import overlay_windows

    sim = Simulator(sim_cfg)
    out: dict[int, list[tuple[float, float]]] = {layer: [] for layer in LAYERS}
    for k, eta in enumerate(ETAS):
        cells, wins, _ = overlay_windows(sim.pileup, sim_cfg.detector, eta, MU, n, np.random.default_rng(seed + k))
        for layer in LAYERS:
            w = wins[layer]
            ie, ip = w.eta_lo.shape[1] // 2, w.phi_lo.shape[1] // 2
            out[layer].append((float(cells[layer][:, ie, ip].std()), float(w.deta[0] * w.dphi)))
    return out


def reduced(points: list[tuple[float, float]]) -> np.ndarray:
    """σ / (cosh|η| √area) of each point of :func:`measure`, relative to the first point."""
    r = np.array([s / (np.cosh(eta) * np.sqrt(area)) for (s, area), eta in zip(points, ETAS)])
    return r / r[0]


def run(v) -> None:
    """Add the section's rows to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    from calo_calib.simulation import compose_config

    if not v.cfg.get("pileup_granularity", {}).get("enabled", True):
        return
    base = ["particle=electron", *list(v.cfg.sim_overrides or [])]
    nominal_cfg = compose_config(base)
    if str(nominal_cfg.detector.readout.pileup.model) != "particles":
        return
    # The material-free detector only serves this overlay: the clustering conditions are not needed.
    bare_cfg = compose_config([*base, "detector.material.scale=0", "detector.readout.pileup.conditions.source=table"])
    n = 300 if v.cfg.quick else 3000
    seed = int(v.cfg.seed) + SEED_OFFSET
    nom, bare = measure(nominal_cfg, n, seed), measure(bare_cfg, n, seed)
    for layer, name in LAYERS.items():
        r_nom, r_bare = reduced(nom[layer]), reduced(bare[layer])
        for k, eta in enumerate(ETAS):
            (s_n, area), (s_b, _) = nom[layer][k], bare[layer][k]
            v.row(
                SECTION, f"σ_pu {name} cell, |η| = {eta:g}, ⟨μ⟩ = 30: nominal / no upstream material",
                f"{1000 * s_n:.0f} / {1000 * s_b:.0f} MeV",
                f"reduced σ/(cosh|η|√(ΔηΔφ)) relative to |η| = {ETAS[0]:g}: {r_nom[k]:.2f} / {r_bare[k]:.2f}",
                "card §1.1 granularity; nominal material table", INFO,
                f"cell {area * 1e4:.2f}×10⁻⁴ (Δη×Δφ); a flat reduced σ means the cosh|η|·√area scaling holds",
            )  # fmt: skip
    v.results["pileup_granularity"] = {
        "etas": list(ETAS),
        **{f"{name}_{kind}_mev": [1000 * s for s, _ in pts[layer]] for layer, name in LAYERS.items()
           for kind, pts in (("nominal", nom), ("no_material", bare))},
    }  # fmt: skip


def samples(cfg) -> list:
    """No report samples: the section overlays pile-up on empty windows itself."""
    return []
