"""Validation section: energy outside the cluster against ATLAS's calibration hits (Geant4; a diagnosis).

ATLAS's calibration-hits cluster calibration (athena ``CaloSwCalibHitsCalibration_v9.py`` [S4],
coefficients fitted to ATLAS Geant4 simulation, GEO-18-00-00 geometry, June 2011) corrects the
accordion energy of an e/γ cluster for the energy deposited in the accordion outside it. The
"out-of-cone" term is a percentage of the in-cluster accordion energy, parametrised per 0.025 |η| bin
as a function of the shower depth X (X0, ``calibHitsShowerDepth``) [S4, ``CaloSwCalibHitsCalibration.cxx``]:

    barrel: ooc(X) [%] = c1 + c2 X + c3 X²,   E_acc,reco = acc(X) · E_acc · (1 + ooc/100).

For unconverted photons (no brem, no conversion pair) this is the lateral tail of the shower itself,
averaged over where the shower hits the seed cell: a Geant4 measurement of the far tail that the
R_η, R_φ and w_s,tot rows of the report cannot make (their targets are [R] peaks read off papers).

The section integrates the simulation's own radial profile (:func:`calo_calib.simulation.shower.radial_params`:
GFlash core + tail, the fluctuated per-shower parameters, the configured ``lateral_log_sigma`` and
``width_scale``) over the accordion depth of each layer, in a window of 3 × 5 and 3 × 7 middle cells
(0.025 × 2π/256 each, at each layer's radius [S2]) centred on the cell the shower hits, with the
impact point uniform over that cell; photons start at X_ID + Exp(9/7 X0), as simulated. It reports
the mean ooc = E_out/E_in next to ATLAS's ooc(X) evaluated at the same showers' depth X (the
simulated layer contents and the [S4] layer depths), and from the same integral the R_η and R_φ of
the profile and the R_η that ATLAS's excess would allow if all of it lay between 3 and 7 middle cells
in η (the most it can lower R_η).

The same calibration parametrises the energy leaking behind the accordion, as a percentage of the
accordion energy: leak(X) [%] = c3 + c1 X + c2 exp(X) (barrel). The section simulates electrons and
unconverted photons at fixed E and |η| (⟨μ⟩ = 0) and compares the simulated truth leakage over the
truth accordion energy with ATLAS's leak(X) at each cluster's depth X (from its layer energies, as
ATLAS computes it). The ratio also scales the simulated f3: the back layer lies just before the
leaking tail. INFO rows; nothing is tuned. Not modelled: the accordion's
φ-smearing of the charge collection and any upstream spread (the lever-arm section bounds the latter).
"""

from __future__ import annotations

import numpy as np

from calo_calib.validation.common import INFO

SECTION = "Out-of-cone energy against ATLAS's calibration hits (Geant4; diagnosis)"
SRC = "[S4] athena CaloSwCalibHitsCalibration_v9.py, CaloSwCalHitsOutOfCone_v9_gam{35,37}_unconv (Geant4, GEO-18, 2011)"
SEED_OFFSET = 9800
PHOTON_START_X0 = 9.0 / 7.0  # mean free path of a high-energy photon before pair conversion [X0]
# (c1, c2, c3) of the barrel out-of-cone percentage c1 + c2 X + c3 X² for unconverted photons, by window
# (middle cells η × φ) and by the |η| bin centre of the 0.025 bins [S4].
ATLAS_OOC = {
    (3, 5): {0.3125: (1.8846, 0.71357, -0.036829), 0.6125: (4.4503, 0.26708, -0.015777),
             1.0125: (11.111, -0.39613, 0.0050841)},
    (3, 7): {0.3125: (1.2164, 0.69209, -0.034918), 0.6125: (2.3084, 0.46453, -0.022344),
             1.0125: (7.8201, -0.098258, -0.0038942)},
}  # fmt: skip
# the same for electrons (CaloSwCalHitsOutOfCone_v9_ele35 / ele37), the |η| = 0.3125 bin only [S4]
ATLAS_OOC_ELECTRON = {(3, 5): {0.3125: (10.735, -0.69039, 0.018539)}, (3, 7): {0.3125: (5.9973, -0.080786, -0.0039151)}}
WINDOWS = ((3, 3), (3, 5), (3, 7), (7, 7))
SRC_BAND = "[S4] athena CaloSwCalibHitsCalibration_v9.py, OutOfCone_v9_{ele35 − ele37, gam35_unconv − gam37_unconv} (Geant4, GEO-18, 2011)"
SRC_LEAK = "[S4] athena CaloSwCalibHitsCalibration_v9.py, CaloSwCalHitsLongLeakage_v9_{ele,gam_unconv} (Geant4, GEO-18, 2011)"
# (c1, c2, c3) of the barrel leakage percentage c3 + c1 X + c2 exp(X), by particle and |η| bin centre [S4].
# The photon bin at 0.3125 is a poor fit in the file (chi2/NDF 869): its neighbour 0.2875 (6.5) is used.
ATLAS_LEAK = {
    "electron": {0.3125: (5.5322e-02, 1.3015e-06, -2.6134e-01), 0.6125: (1.8114e-02, 2.2452e-07, -2.9046e-02),
                 1.0125: (-8.2437e-02, 2.2383e-07, 1.2882e00)},
    "photon_unconv": {0.2875: (8.5060e-02, 8.0647e-07, -5.6703e-01), 0.6125: (2.9974e-02, 1.1637e-07, -1.8085e-01),
                      1.0125: (1.5626e-02, 6.6748e-08, -1.2395e-02)},
}  # fmt: skip


def atlas_ooc(window: tuple[int, int], abs_eta: float, depth_x0: np.ndarray) -> np.ndarray:
    """ATLAS's out-of-cone percentage for unconverted photons in a barrel ``window`` at the [S4] bin
    centre ``abs_eta``, at shower depths ``depth_x0`` (X0)."""
    c1, c2, c3 = ATLAS_OOC[window][abs_eta]
    x = np.asarray(depth_x0, float)
    return c1 + c2 * x + c3 * x * x


def atlas_leak(particle: str, abs_eta: float, depth_x0: np.ndarray) -> np.ndarray:
    """ATLAS's leakage behind the accordion (percent of the accordion energy) for ``particle`` at the
    [S4] bin centre ``abs_eta``, at shower depths ``depth_x0`` (X0)."""
    c1, c2, c3 = ATLAS_LEAK[particle][abs_eta]
    x = np.asarray(depth_x0, float)
    return c3 + c1 * x + c2 * np.exp(x)


def leakage_point(particle: str, abs_eta: float, e_gev: float, n: int, seed: int, sim_overrides=()) -> dict:
    """Simulated leakage behind the accordion of ``n`` clusters of ``particle`` at fixed ``e_gev`` [GeV] and
    ``abs_eta`` (±0.01, ⟨μ⟩ = 0) against ATLAS's leak(X) at each cluster's depth, and the simulated f3."""
    from calo_calib.physics.observables import shower_depth
    from calo_calib.simulation import compose_config, simulate_table
    from calo_calib.validation.samples import fixed_overrides

    cfg = compose_config(fixed_overrides(particle, e_gev, abs_eta, 0.01, 0.0) + list(sim_overrides))
    t = simulate_table(cfg, n, seed)
    col = {k: t.column(k).to_numpy().astype(float) for k in (
        "cluster_e", "cluster_e_ps", "cluster_e_l1", "cluster_e_l2", "cluster_e_l3", "cluster_eta",
        "truth_e_leak_behind", "truth_e_outside_cluster", "truth_e_dep_cluster")}  # fmt: skip
    layers = np.column_stack([col[k] for k in ("cluster_e_ps", "cluster_e_l1", "cluster_e_l2", "cluster_e_l3")])
    depth = shower_depth(layers, np.abs(col["cluster_eta"]))
    acc_truth = col["truth_e_outside_cluster"] + col["truth_e_dep_cluster"]
    leak = 100.0 * col["truth_e_leak_behind"] / acc_truth
    ref = atlas_leak(particle, abs_eta, depth)
    f3 = col["cluster_e_l3"] / col["cluster_e"]  # as the shower-shape rows define it
    ratio = float(np.mean(ref) / np.mean(leak))
    return {
        "particle": particle, "abs_eta": abs_eta, "e": e_gev, "n": int(leak.size), "depth_x0": float(np.median(depth)),
        "sim": float(np.mean(leak)), "sim_err": float(np.std(leak) / np.sqrt(leak.size)), "atlas": float(np.mean(ref)),
        "ratio": ratio, "f3_median": float(np.median(f3)), "f3_scaled": float(np.median(f3)) * ratio,
    }  # fmt: skip


def middle_phi_band(particle: str, lateral_cfg, abs_eta: tuple[float, float], n: int, seed: int,
                    sim_overrides=()) -> dict:  # fmt: skip
    """Energy between 5 and 7 φ cells (3 η cells) of the full simulation's middle-layer window, over
    E(3×7), and the mean R_φ, for ``n`` clusters of ``particle`` at ⟨μ⟩ = 0 without electronic noise
    (E_T of the lateral section's config ``lateral_cfg``; |η| in ``abs_eta``); windows around the hottest
    middle cell (:mod:`calo_calib.validation.lateral`)."""
    from calo_calib.simulation import compose_config
    from calo_calib.validation import lateral

    ov = lateral.overrides(lateral_cfg, particle, [*sim_overrides, "+detector.readout.elec_noise_scale=0"], mu=0.0, abs_eta=abs_eta)
    d = lateral.simulate_windows(compose_config(ov), n, seed, int(lateral_cfg.get("batch", 1000)))
    sh = lateral.lateral_shapes(d["l2_window_e"], d["l2_window_eta"], d["cluster_eta"], d["l2_window_valid"])
    e = {w: lateral.block(d["l2_window_e"], sh["hot_i"], sh["hot_j"], *w).sum(axis=(1, 2)) for w in ((3, 3), (3, 5), (3, 7))}
    ok = e[(3, 7)] > 0
    band = 100.0 * (e[(3, 7)][ok] - e[(3, 5)][ok]) / e[(3, 7)][ok]
    return {"particle": particle, "n": int(ok.sum()), "band_5_7": float(np.mean(band)),
            "band_err": float(np.std(band) / np.sqrt(max(band.size, 1))), "r_phi_mean": float(np.mean(e[(3, 3)][ok] / e[(3, 7)][ok]))}  # fmt: skip


def atlas_phi_band(particle: str, depth_x0: np.ndarray) -> np.ndarray:
    """ATLAS's energy between 5 and 7 φ cells (3 η cells, all layers) at |η| = 0.3125: ooc(3×5) − ooc(3×7) [%]
    of ``ele35``/``ele37`` or ``gam35_unconv``/``gam37_unconv`` [S4]."""
    tab = {"electron": ATLAS_OOC_ELECTRON, "photon_unconv": ATLAS_OOC}[particle]
    x = np.asarray(depth_x0, float)
    (a1, a2, a3), (b1, b2, b3) = tab[(3, 5)][0.3125], tab[(3, 7)][0.3125]
    return (a1 - b1) + (a2 - b2) * x + (a3 - b3) * x * x


def window_energies(params, t0: np.ndarray, bounds: list[float], abs_eta: float, offsets: np.ndarray,
                    windows=WINDOWS, n_depth: int = 600) -> dict:  # fmt: skip
    """Energy of each shower's accordion deposit inside middle-cell windows, from the radial profile.

    Args:
        params: :class:`~calo_calib.simulation.shower.ShowerParams` of s showers.
        t0: (s,) shower start [X0 from the IP].
        bounds: accordion front and the L1, L2, L3 ends [X0 from the IP].
        abs_eta: |η| (barrel) of the showers: sets each layer's radius.
        offsets: (s, 2) impact point relative to the hit cell's centre, in middle cells (η, φ).
        windows: (n_eta, n_phi) window sizes in middle cells, centred on the hit cell.

    Returns:
        ``acc`` (s,) the whole accordion deposit (unit: fractions of the shower energy), ``layers``
        (s, 3) the L1, L2, L3 contents, and per window ``(n_eta, n_phi)`` and per ``(n_eta, n_phi, "l2")``
        (s,) the content inside it, over the whole accordion and in the middle layer alone.
    """
    from calo_calib.simulation import geometry as geo
    from calo_calib.simulation import shower

    t = np.linspace(bounds[0], bounds[3], n_depth + 1)
    t = 0.5 * (t[1:] + t[:-1])  # depth midpoints [X0 from the IP]
    dt = (bounds[3] - bounds[0]) / n_depth
    depths = np.broadcast_to(t, (t0.shape[0], t.size))
    w = shower.profile_density(params, t0, depths) * dt  # 0 before each shower's start
    tau = np.maximum(depths - t0[:, None], 1e-6)  # the radial profile is used only where w > 0
    r_c, r_t, p = shower.radial_params(params, tau * params.tau_scale[:, None])
    layer = np.where(t < bounds[1], geo.LAYER_L1, np.where(t < bounds[2], geo.LAYER_L2, geo.LAYER_L3))
    radius = np.array([float(geo.barrel_radius(int(k), np.array(abs_eta))) for k in layer])
    cx, cy = geo.L2_DETA * radius, geo.L2_DPHI * radius  # (k,) middle-cell size [mm] at each depth
    u, v = offsets[:, :1], offsets[:, 1:]

    def inside(n_eta: int, n_phi: int) -> np.ndarray:
        x1, x2 = (-n_eta / 2 - u) * cx, (n_eta / 2 - u) * cx
        y1, y2 = (-n_phi / 2 - v) * cy, (n_phi / 2 - v) * cy

        def rect(r):
            f = shower.corner_integral
            return f(x2, y2, r) - f(x1, y2, r) - f(x2, y1, r) + f(x1, y1, r)

        return p * rect(r_c) + (1 - p) * rect(r_t)

    mid = layer == geo.LAYER_L2
    out = {"acc": w.sum(1), "layers": np.stack([(w * (layer == k)).sum(1) for k in (1, 2, 3)], axis=1)}
    for n_eta, n_phi in windows:
        box = w * inside(n_eta, n_phi)
        out[(n_eta, n_phi)] = box.sum(1)
        out[(n_eta, n_phi, "l2")] = box[:, mid].sum(1)
    return out


def photon_point(det, abs_eta: float, e_gev: float, n: int, rng: np.random.Generator) -> dict:
    """Out-of-cone energy of ``n`` unconverted-photon showers of ``e_gev`` [GeV] at ``abs_eta`` (barrel),
    from the configured detector ``det``, and ATLAS's ooc(X) at the same showers' depths."""
    from omegaconf import OmegaConf

    from calo_calib.physics.observables import shower_depth
    from calo_calib.simulation import shower
    from calo_calib.simulation.knobs import knob
    from calo_calib.validation.longitudinal import layer_boundaries
    from calo_calib.validation.longitudinal_tail import medium_index, x_id

    d = OmegaConf.to_container(det, resolve=True)
    media = shower.accordion_media(det.accordion)
    medium = int(medium_index(np.array([abs_eta]), det.accordion)[0])
    params = shower.longitudinal_params(
        np.full(n, float(e_gev)), np.full(n, medium), media, rng, float(det.shower.lateral_log_sigma), 1.0,
        float(knob(det, "shower.width_scale")),
    )  # fmt: skip
    t0 = float(x_id(det, np.array(abs_eta))) + rng.exponential(PHOTON_START_X0, n)
    bounds = [float(b) for b in layer_boundaries(d, abs_eta)]
    offsets = rng.uniform(-0.5, 0.5, (n, 2))
    e = window_energies(params, t0, bounds, abs_eta, offsets)
    mat = np.asarray(d["material"]["table"], float)
    x_ps = float(np.interp(abs_eta, mat[:, 0], mat[:, 2])) * float(d["material"]["scale"])
    e_ps = shower.cumulative(params, t0, np.full(n, bounds[0])) - shower.cumulative(params, t0, np.full(n, x_ps))
    depth = shower_depth(np.column_stack([e_ps, e["layers"]]), abs_eta)
    res = {"abs_eta": abs_eta, "e": e_gev, "n": n, "depth_x0": float(np.mean(depth))}
    for win in ((3, 5), (3, 7)):
        ooc = 100.0 * (e["acc"] - e[win]) / e[win]
        ref = atlas_ooc(win, abs_eta, depth)
        key = f"{win[0]}x{win[1]}"
        res[key] = {"sim": float(np.mean(ooc)), "sim_err": float(np.std(ooc) / np.sqrt(n)), "atlas": float(np.mean(ref))}
    r_eta = e[(3, 7, "l2")] / e[(7, 7, "l2")]
    r_phi = e[(3, 3, "l2")] / e[(3, 7, "l2")]
    # ATLAS's extra out-of-cone energy (of the 3x7 window), moved entirely into the middle layer's
    # 3x7 -> 7x7 ring: the lowest R_eta it allows with the simulated profile's other parts unchanged
    excess = (res["3x7"]["atlas"] - res["3x7"]["sim"]) / 100.0 * e[(3, 7)]
    res["r_eta"] = float(np.mean(r_eta))
    res["r_eta_lowest"] = float(np.mean((e[(3, 7, "l2")] - excess) / e[(7, 7, "l2")]))
    # if even all of ATLAS's out-of-cone energy lay in that ring: a bound that holds whatever the
    # neighbourhood over which the calibration hits count the energy outside (as long as it holds 7x7)
    all_out = res["3x7"]["atlas"] / 100.0 * e[(3, 7)]
    res["r_eta_strict"] = float(np.mean(1.0 - all_out / e[(7, 7, "l2")]))
    res["r_phi"] = float(np.mean(r_phi))
    res["f_l2"] = float(np.mean(e["layers"][:, 1] / e["acc"]))
    # the energy between 5 and 7 φ cells (3 η cells, whole accordion) is the difference of the two ooc;
    # its ATLAS/simulated ratio, applied to the profile's 3 -> 7 φ band, gives the R_φ that a φ tail
    # heavier in that proportion would have
    band_sim, band_atlas = (res["3x5"][k] - res["3x7"][k] for k in ("sim", "atlas"))
    res["phi_band_5_7"] = {"sim": band_sim, "atlas": band_atlas}
    res["r_phi_scaled"] = 1.0 - (1.0 - res["r_phi"]) * band_atlas / band_sim
    return res


def run(v) -> None:
    """Add one row per (|η|, E) point to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    c = v.cfg.get("calib_hits", {})
    if not c.get("enabled", True):
        return
    from calo_calib.simulation import compose_config

    det = compose_config(list(v.cfg.get("sim_overrides") or [])).detector
    rng = np.random.default_rng(int(v.cfg.seed) + SEED_OFFSET)
    n = 300 if v.cfg.quick else int(c.get("n", 4000))
    out = []
    for abs_eta in c.get("abs_eta", [0.3125, 0.6125, 1.0125]):
        for e in c.get("energies", [25, 50, 100]):
            r = photon_point(det, float(abs_eta), float(e), n, rng)
            out.append(r)
            ratios = [r[k]["sim"] / r[k]["atlas"] for k in ("3x5", "3x7")]
            v.row(
                SECTION, f"out-of-cone energy, γ_unc {e:g} GeV, |η| = {abs_eta:g}: 3×5 / 3×7 middle cells",
                f"{r['3x5']['sim']:.2f} % / {r['3x7']['sim']:.2f} %",
                f"ATLAS Geant4 {r['3x5']['atlas']:.2f} % / {r['3x7']['atlas']:.2f} % at X = {r['depth_x0']:.1f} X0",
                SRC, INFO,
                f"ratio simulated/ATLAS {ratios[0]:.2f} / {ratios[1]:.2f}; the profile's R_η {r['r_eta']:.4f} and R_φ "
                f"{r['r_phi']:.4f}; all of ATLAS's excess between 3 and 7 η cells would give R_η {r['r_eta_lowest']:.4f}, "
                f"all of its out-of-cone energy {r['r_eta_strict']:.4f}; "
                f"between 5 and 7 φ cells {r['phi_band_5_7']['sim']:.2f} % against ATLAS {r['phi_band_5_7']['atlas']:.2f} % "
                f"(R_φ {r['r_phi_scaled']:.4f} with the 3–7 φ band scaled alike); "
                f"{n} showers, middle layer {100 * r['f_l2']:.0f} % of the accordion",
            )  # fmt: skip
    v.note(SECTION, "ooc = E_out/E_in of the accordion deposit (percent), the simulation's radial profile integrated "
           "over each layer's depth in a window of middle cells centred on the hit cell (impact uniform over it), "
           "against ATLAS's calibration-hit parametrisation for unconverted photons ([S4], Geant4 of 2011) at the "
           "same showers' depth X. The last R_η of each row puts all of ATLAS's extra out-of-cone energy into the "
           "middle layer between 3 and 7 η cells: the lowest R_η that the calibration hits allow with the "
           "simulated profile's other parts unchanged; the next puts all of ATLAS's out-of-cone energy there, a bound "
           "that holds whatever neighbourhood the calibration hits count it over (if it holds the 7 × 7 cells). The difference of the two ooc is the energy between 5 and 7 φ "
           "cells; the R_φ after it scales the profile's 3 → 7 φ band by ATLAS/simulated of that difference. "
           "Not modelled here: the accordion's φ-smearing and upstream "
           "spread.")  # fmt: skip
    # The phi band of electrons (brem included) against unconverted photons, from the full simulation's
    # middle window: the simulated electron/photon ratio next to ATLAS's (all layers)
    band_rows = {}
    lat = v.cfg.get("lateral", {})
    n_band = 300 if v.cfg.quick else int(c.get("n_band", 4000))
    for k, particle in enumerate(("electron", "photon_unconv")):
        r = middle_phi_band(particle, lat, (0.3, 0.325), n_band, int(v.cfg.seed) + SEED_OFFSET + 50 + k,
                            v.cfg.get("sim_overrides") or ())  # fmt: skip
        r["atlas_x12_14"] = sorted(float(atlas_phi_band(particle, np.array([x]))[0]) for x in (12.0, 14.0))
        band_rows[particle] = r
    ratio_sim = band_rows["electron"]["band_5_7"] / band_rows["photon_unconv"]["band_5_7"]
    ratio_atlas = float(np.mean(band_rows["electron"]["atlas_x12_14"]) / np.mean(band_rows["photon_unconv"]["atlas_x12_14"]))
    for particle, r in band_rows.items():
        v.row(
            SECTION, f"energy between 5 and 7 φ cells, {particle}, |η| 0.30–0.325 (full simulation, middle layer)",
            f"{r['band_5_7']:.3f} % ± {r['band_err']:.3f} %",
            f"ATLAS Geant4 {r['atlas_x12_14'][0]:.2f}–{r['atlas_x12_14'][1]:.2f} % (all layers, X = 12–14 X0)", SRC_BAND, INFO,
            f"mean R_φ {r['r_phi_mean']:.4f}; electron/photon: simulated {ratio_sim:.2f}, ATLAS {ratio_atlas:.2f}; "
            f"E_T 20–50 GeV, ⟨μ⟩ = 0 without electronic noise, {r['n']} clusters",
        )  # fmt: skip
    leak_rows = []
    n_leak = 100 if v.cfg.quick else int(c.get("n_leak", 1500))
    for k, (particle, etas) in enumerate(ATLAS_LEAK.items()):
        for j, abs_eta in enumerate(etas):
            for i, e in enumerate([50] if v.cfg.quick else c.get("energies", [25, 50, 100])):
                seed = int(v.cfg.seed) + SEED_OFFSET + 100 * k + 10 * j + i
                r = leakage_point(particle, float(abs_eta), float(e), n_leak, seed, v.cfg.get("sim_overrides") or ())
                leak_rows.append(r)
                v.row(
                    SECTION, f"leakage behind the accordion, {particle} {e:g} GeV, |η| = {abs_eta:g}",
                    f"{r['sim']:.3f} % ± {r['sim_err']:.3f} %", f"ATLAS Geant4 {r['atlas']:.3f} % at X = {r['depth_x0']:.1f} X0",
                    SRC_LEAK, INFO,
                    f"ATLAS/simulated {r['ratio']:.2f}; f3 median {r['f3_median']:.4f}, scaled by that ratio "
                    f"{r['f3_scaled']:.4f}; {r['n']} clusters at ⟨μ⟩ = 0",
                )  # fmt: skip
    v.note(SECTION, "Leakage: the simulation's truth energy behind the calorimeter over its truth accordion energy (percent), "
           "against ATLAS's calibration-hit leakage for the same particle at each cluster's depth X (computed from the "
           "cluster's layer energies with the [S4] layer depths, as calibHitsShowerDepth does). The scaled f3 multiplies "
           "the simulated median f3 by ATLAS/simulated leakage: what the back layer would hold if the tail just before "
           "the end of the calorimeter were heavier in that proportion.")  # fmt: skip
    v.results["calib_hits"] = {"out_of_cone": out, "leakage": leak_rows, "phi_band": band_rows}


def samples(cfg) -> list:
    """No simulated sample: the section integrates the parametrisation."""
    return []
