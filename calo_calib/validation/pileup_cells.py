"""Validation section "Pile-up": the particle pile-up model against its own published observables.

Measured directly on the overlay (``ParticlePileup.cells`` on empty cluster windows, no signal):

* the pulse (zero net area) and the OF response per crossing;
* the per-cell pile-up sigma per layer and |eta| against the configured table
  sigma_pu(eta=0) cosh|eta| sqrt(<mu>/30) (card §4.2, itself [E] within the card's ranges) and the
  mean after the per-BCID subtraction (must be 0);
* the pile-up energy in an egamma-sized footprint (3 x 7 middle cells and the cells of the other
  layers in front of and behind it) versus <mu> against the card's cluster-level pile-up terms:
  Run 1 (240 MeV at <mu> = 20 for electrons, scaled as sqrt(<mu>)) and Run 2 (sqrt(<mu>) (60 + 40
  ln(E_T/10)/ln 5) MeV for E_T 10-50 GeV) [S12][S13].
"""

from __future__ import annotations

import numpy as np

from calo_calib.simulation import geometry as geo
from calo_calib.simulation.noise_conditions import central_sigma, overlay_windows

SECTION = "Pile-up"
ETAS = (0.3, 1.0, 1.3, 1.8, 2.2)
MUS = (10.0, 20.0, 32.0, 51.0, 80.0)
LAYER_NAMES = ("presampler", "strips", "middle", "back")
TOLERANCE = 1.5  # factor on the table for strips and middle (docs/simulation.md)
CONDITIONS_TOLERANCE = 0.2  # conditions table vs an independent measurement: statistics of heavy-tailed sums


def overlay(pu, det, eta: float, mu: float, n: int, seed: int):
    """Pile-up cells of ``n`` empty windows at |eta| (no signal) from the model ``pu`` of detector
    config ``det``, the draws from a generator of ``seed``: (cells per layer (n, ne, nph) GeV, windows, endcap)."""
    return overlay_windows(pu, det, eta, mu, n, np.random.default_rng(seed))


def footprint_sum(cells: list[np.ndarray], wins: list) -> np.ndarray:
    """(n,) pile-up energy in 3 x 7 middle cells around the window centre and the cells of the other
    layers whose centres lie inside that eta x phi rectangle (GeV)."""
    w2 = wins[geo.LAYER_L2]
    ie, ip = w2.eta_lo.shape[1] // 2, w2.phi_lo.shape[1] // 2
    eta0 = w2.eta_centre[:, ie]
    half_eta, half_phi = 1.5 * w2.deta, 3.5 * w2.dphi
    phi0 = w2.phi_centre[:, ip]
    total = np.zeros(cells[0].shape[0])
    for e, w in zip(cells, wins):
        in_eta = np.abs(w.eta_centre - eta0[:, None]) < half_eta[:, None]
        in_phi = np.abs(w.phi_centre - phi0[:, None]) < half_phi
        total += (e * in_eta[:, :, None] * in_phi[:, None, :]).sum(axis=(1, 2))
    return total


def samples(cfg) -> list:
    """No report samples: the section overlays pile-up on empty windows itself."""
    return []


def run(v) -> None:
    """Add the section's rows, notes and figures to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    # Long (> 80 lines) on purpose for now: one linear script whose rows must come out in README order
    # and whose random draws (simulation, bootstrap) follow one generator; a split must re-check that
    # the quick validation output stays byte-identical (issue 17).
    from calo_calib.simulation import compose_config
    from calo_calib.simulation.readout import noise_sigmas

    cfg_v = v.cfg
    overrides = ["particle=electron", *list(cfg_v.sim_overrides or [])]
    sim_cfg = compose_config(overrides)
    det = sim_cfg.detector
    if str(det.readout.pileup.model) != "particles":
        v.note(
            SECTION, f"Pile-up model is `{det.readout.pileup.model}`: this section measures the particle model only."
        )
        return
    n = 300 if cfg_v.quick else 3000
    plt = v.plt
    from calo_calib.simulation.generator import Simulator

    sim = Simulator(sim_cfg)
    pu, cond = sim.pileup, sim.noise_conditions
    resp = pu.response
    # Pulse and OF response.
    dt = pu.response.t_ns[1] - pu.response.t_ns[0]
    area = float(resp.pulse.sum() * dt)
    pos = float(resp.pulse[resp.pulse > 0].sum() * dt)
    v.row(
        SECTION,
        "shaped pulse net area / positive lobe",
        f"{area / pos:+.4f}",
        "0",
        "[R] CR shaping",
        "pass" if abs(area / pos) < 0.01 else "deviates",
    )
    r = dict(zip(resp.offsets.tolist(), resp.response.tolist()))
    v.row(
        SECTION,
        "OF response r(-1), r(+1), min r",
        f"{r[-1]:.2f}, {r.get(1, 0):.2f}, {resp.response.min():.2f}",
        "r(-1), r(+1) > 0, undershoot < 0",
        "[R] physics_cells §1a",
        "pass" if r[-1] > 0 and resp.response.min() < 0 else "deviates",
    )
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 5))
    t = resp.t_ns
    sel = t < 700
    a1.plot(t[sel], resp.pulse[sel], color="C0")
    a1.axhline(0, color="k", lw=0.8)
    a1.set_xlabel("time after the deposit [ns]")
    a1.set_ylabel("shaped pulse g(t) / peak")
    v.label(a1, "LAr pulse")
    a2.bar(resp.offsets, resp.response, color="C1")
    a2.set_xlabel("crossing of the deposit relative to the triggered one")
    a2.set_ylabel("reconstructed / deposited energy r(j)")
    v.label(a2, f"OF response, Σr = {resp.sum_response:+.3f}, Σr² = {resp.sum_squared:.2f}")
    v.fig(SECTION, "pileup_pulse.png", fig)

    # Per-cell sigma versus |eta| per layer at <mu> = 30.
    mu = 30.0
    meas = {layer: [] for layer in range(4)}
    table = {layer: [] for layer in range(4)}
    conditions = {layer: [] for layer in range(4)}
    means = []
    for k, eta in enumerate(ETAS):
        cells, wins, endcap = overlay(pu, det, eta, mu, n, int(cfg_v.seed) + k)
        for layer in range(4):
            w = wins[layer]
            ie, ip = w.eta_lo.shape[1] // 2, w.phi_lo.shape[1] // 2
            x = cells[layer][:, ie, ip]
            valid = bool(w.valid[0, ie, ip])
            _, s_cfg = noise_sigmas(layer, np.abs(w.eta_centre[:, ie : ie + 1, None]), endcap, np.full(n, mu), det)
            s_tab = float(s_cfg.mean())
            sd = float(x.std()) if valid else np.nan
            meas[layer].append(sd)
            table[layer].append(s_tab if valid else np.nan)
            s_cond = np.nan
            if cond is not None and valid:
                s_cond = float(cond.sigma_pu(layer, np.abs(w.eta_centre[:1, ie : ie + 1, None]), endcap[:1], np.full(1, mu)).mean())
            conditions[layer].append(s_cond)
            if not valid or sd == 0:
                continue
            means.append(abs(float(x.mean())) / (sd / np.sqrt(n)))
            ratio = sd / s_tab
            if layer in (1, 2):
                verdict = "pass" if 1 / TOLERANCE < ratio < TOLERANCE else "deviates"
            else:
                verdict = "informational"
            v.row(
                SECTION, f"σ_pu {LAYER_NAMES[layer]} cell, |η| = {eta:g}, ⟨μ⟩ = 30", f"{1000 * sd:.0f} MeV",
                f"{1000 * s_tab:.0f} MeV (table)", "[E] card §4.2", verdict,
                f"ratio {ratio:.2f}; tolerance ×{TOLERANCE:.1f} for strips and middle" if layer in (1, 2) else f"ratio {ratio:.2f} (no tolerance: see docs/simulation.md)",
            )  # fmt: skip
            if np.isfinite(s_cond):  # the table's own cell selection, on this section's windows
                _conditions_row(v, layer, eta, central_sigma(cells[layer], w, layer, eta), s_cond)
    worst = max(means) if means else 0.0
    v.row(
        SECTION,
        "mean pile-up cell energy after the per-BCID subtraction",
        f"max |mean| = {worst:.1f} s.e.",
        "0 (within 4 s.e.)",
        "[S] CaloBCIDAvgAlg",
        "pass" if worst < 4 else "deviates",
    )
    fig, ax = plt.subplots(figsize=(8, 6))
    for layer in range(4):
        ax.plot(ETAS, 1000 * np.array(meas[layer]), "o-", color=f"C{layer}", label=f"{LAYER_NAMES[layer]}: particles")
        ax.plot(ETAS, 1000 * np.array(table[layer]), "--", color=f"C{layer}", label=f"{LAYER_NAMES[layer]}: table")
        if cond is not None:
            ax.plot(ETAS, 1000 * np.array(conditions[layer]), ":", color=f"C{layer}", marker="x",
                    label=f"{LAYER_NAMES[layer]}: conditions")  # fmt: skip
    ax.set_xlabel("|η| of the cell")
    ax.set_ylabel("pile-up σ per cell at ⟨μ⟩ = 30 [MeV]")
    ax.set_yscale("log")
    ax.legend(fontsize=10, ncol=2)
    v.label(ax, "per-cell pile-up noise")
    v.fig(SECTION, "pileup_cell_sigma.png", fig)

    # Footprint sum versus <mu> at |eta| = 0.3 against the card's cluster-level terms.
    widths = []
    for k, m in enumerate(MUS):
        cells, wins, _ = overlay(pu, det, 0.3, m, n, int(cfg_v.seed) + 100 + k)
        widths.append(float(footprint_sum(cells, wins).std()))
    widths = np.array(widths)
    mus = np.array(MUS)
    run1 = 0.240 * np.sqrt(mus / 20.0)
    run2_lo = np.sqrt(mus) * 0.060
    run2_hi = np.sqrt(mus) * (0.060 + 0.040 * np.log(5.0) / np.log(5.0))
    for m, w_, r1, lo, hi in zip(MUS, widths, run1, run2_lo, run2_hi):
        inside = min(r1, lo) * 0.8 <= w_ <= max(r1, hi) * 1.25
        v.row(
            SECTION, f"pile-up σ in a 3×7 footprint (all layers), |η| = 0.3, ⟨μ⟩ = {m:g}", f"{1000 * w_:.0f} MeV",
            f"Run 1 {1000 * r1:.0f}; Run 2 {1000 * lo:.0f}–{1000 * hi:.0f} MeV", "[S12][S13]",
            "pass" if inside else "deviates", "range of the two cluster-level terms (E_T 10–50 GeV), ±25 %",
        )  # fmt: skip
    slope = np.polyfit(np.log(mus), np.log(widths), 1)[0]
    v.row(
        SECTION,
        "footprint σ ∝ ⟨μ⟩^k",
        f"k = {slope:.2f}",
        "0.5",
        "Campbell's theorem",
        "pass" if abs(slope - 0.5) < 0.08 else "deviates",
    )
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.plot(mus, 1000 * widths, "o-", color="k", label="particles: 3×7 footprint, |η| = 0.3")
    ax.plot(mus, 1000 * run1, "--", color="C0", label="Run 1 term (240 MeV at ⟨μ⟩ = 20)")
    ax.fill_between(mus, 1000 * run2_lo, 1000 * run2_hi, color="C1", alpha=0.3, label="Run 2 term, E_T 10–50 GeV")
    ax.set_xlabel("⟨μ⟩")
    ax.set_ylabel("pile-up σ in the cluster footprint [MeV]")
    ax.legend(fontsize=11)
    v.label(ax, "cluster-level pile-up")
    v.fig(SECTION, "pileup_cluster_term.png", fig)
    v.results["pileup"] = {
        "etas": list(ETAS), "sigma_cell_mev": {LAYER_NAMES[k]: (1000 * np.array(meas[k])).tolist() for k in range(4)},
        "sigma_table_mev": {LAYER_NAMES[k]: (1000 * np.array(table[k])).tolist() for k in range(4)},
        "sigma_conditions_mev": {LAYER_NAMES[k]: (1000 * np.array(conditions[k])).tolist() for k in range(4)},
        "mus": list(MUS), "footprint_sigma_mev": (1000 * widths).tolist(), "of_response": {str(k): x for k, x in r.items()},
    }  # fmt: skip
    v.note(
        SECTION,
        "Measured on empty windows (no signal): the particle overlay through the pulse and optimal filter, "
        "after the per-BCID mean subtraction. The table is the card's estimated σ_pu(η=0)·cosh|η|·√(⟨μ⟩/30); "
        "the overlay is not tuned to it. Presampler and back layer are informational (docs/simulation.md "
        "explains their deviations). The clustering thresholds and the stored cell_noise use the particle "
        "model's own σ, measured once per detector on 3000 empty windows per |η| point "
        "(calo_calib/simulation/noise_conditions.py); the 'conditions' rows compare that table with this "
        "independent measurement (other windows, other seeds).",
    )


def _conditions_row(v, layer: int, eta: float, measured: float, conditions: float) -> None:
    """The clustering-threshold conditions at one (layer, |eta|) against the section's own measurement."""
    ratio = conditions / measured
    v.row(
        SECTION, f"σ_pu conditions / measured, {LAYER_NAMES[layer]} cell, |η| = {eta:g}, ⟨μ⟩ = 30",
        f"{1000 * conditions:.0f} MeV", f"{1000 * measured:.0f} MeV (this section's windows)",
        "noise_conditions.py (self-consistency)", "pass" if abs(ratio - 1) <= CONDITIONS_TOLERANCE else "deviates",
        f"ratio {ratio:.2f}; tolerance ±{CONDITIONS_TOLERANCE:.0%} (heavy-tailed pile-up: the RMS converges slowly)",
    )  # fmt: skip
