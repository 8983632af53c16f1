"""Validation section: the energy lost in front of the accordion against ATLAS's calibration hits.

athena's calibration-hit calibration ([S4] ``CaloSwCalibHitsCalibration_v9.py``, fitted to ATLAS
Geant4 of the GEO-18 geometry, 2011; applied in ``CaloSwCalibHitsCalibration.cxx``) estimates, in the
barrel, the energy deposited in front of the accordion (the presampler, the material in front of it
and the material between it and the strips) from the presampler's EM-scale energy E_PS:

    E_front = WpsOff(E) + WpsSlo(E) E_PS,
    WpsOff = o1 + o2 E + o3 E²  [MeV],   WpsSlo = s1 (ln E)^s2 + s3 √E,

with E the calibrated accordion energy in GeV. In the end-cap (1.55 < |η| < 1.8) the file's forms are
WpsOff = o1 + o2 E + o3 √E and WpsSlo = s1 + s2 ln E + s3 √E (E clamped at ≥ 20 GeV), plus a term
quadratic in E_PS that vanishes at E_PS = 0. The section simulates clusters at fixed E and |η|
(⟨μ⟩ = 0), takes the truth energy lost before the presampler and between it and the accordion as
E_front, and fits E_front = a + b E_PS on the simulated E_PS. Two things are compared:

- the intercept a against WpsOff: the part of the front energy that the presampler's signal does not
  predict linearly. It is counted in MeV of front energy, independent of the presampler's EM scale.
  If it fluctuates it is resolution that no calibration recovers; if it is energy that grows with the
  shower (backscatter from the accordion into the material in front, which GFlash lacks), little.
- the slope b against WpsSlo: front MeV per presampler MeV. It is the ratio of the two EM scales if
  the material matches ([E] ``presampler.em_scale``).

The residual scatter of E_front about the fitted line is the simulation's front energy that a line
in E_PS does not correct, at each point; the calibration hits do not give ATLAS's. INFO rows;
nothing is tuned.
"""

from __future__ import annotations

import numpy as np

from calo_calib.validation.common import INFO, PAL, tag
from calo_calib.validation.metrics import fit_line

SECTION = "Energy in front of the accordion against ATLAS's calibration hits (Geant4; diagnosis)"
SRC = "[S4] athena CaloSwCalibHitsCalibration_v9.py, CaloSwCalHitsEfront_{offset,slope}_v9_{ele,gam_unconv,gam_conv} (Geant4, GEO-18, 2011)"
SEED_OFFSET = 10100
# (o1, o2, o3) of WpsOff [MeV, E in GeV] and (s1, s2, s3) of WpsSlo, by particle and |η| bin centre [S4];
# 1.6125 (bin 64) is in the end-cap, with its own functional forms (see the module docstring).
ATLAS_OFFSET = {
    "electron": {0.3125: (297.17, 1.3371, -4.5206e-4), 0.6125: (378.52, 2.0943, -6.0411e-4),
                 0.9125: (916.05, 1.7800, 2.4101e-3), 1.2125: (1447.8, 6.2604, 1.9901e-3),
                 1.6125: (1742.7, 6.6619, -10.834)},
    "photon_unconv": {0.3125: (6.6324, 1.2384, -5.6390e-4), 0.6125: (-30.030, 2.2560, -1.1404e-3),
                      0.9125: (86.198, 3.5436, -1.2556e-3), 1.2125: (124.10, 9.2028, -3.7618e-3),
                      1.6125: (77.691, 6.0400, -29.135)},
    "photon_conv": {0.3125: (577.85, 0.47362, 3.2834e-4), 0.6125: (689.85, 1.2430, 1.9069e-4),
                    0.9125: (1173.3, 0.26937, 3.0679e-3), 1.2125: (1952.0, 5.2546, 2.4139e-3),
                    1.6125: (3116.4, 10.654, -149.28)},
}  # fmt: skip
ATLAS_SLOPE = {
    "electron": {0.3125: (0.61270, 0.44875, -6.9061e-3), 0.6125: (0.66097, 0.39135, -5.2188e-3),
                 0.9125: (0.81444, 0.40457, -1.6571e-2), 1.2125: (0.74963, 0.39906, -1.2885e-2),
                 1.6125: (1.6835, -0.11118, 3.4760e-3)},
    "photon_unconv": {0.3125: (0.75383, 0.33520, -2.0882e-3), 0.6125: (1.0738, 0.048892, 6.7152e-3),
                      0.9125: (0.98817, 0.16212, -7.1556e-4), 1.2125: (1.0399, 0.080461, 1.9336e-3),
                      1.6125: (1.5971, -0.13650, 1.1713e-2)},
    "photon_conv": {0.3125: (0.44071, 0.63668, -8.3653e-3), 0.6125: (0.51459, 0.53881, -7.2323e-3),
                    0.9125: (0.76516, 0.40242, -1.1621e-2), 1.2125: (0.68445, 0.43127, -1.1348e-2),
                    1.6125: (1.0736, 3.6035e-3, -4.2385e-3)},
}  # fmt: skip
ENDCAP = (1.55, 1.8)
# chi2/NDF of the file's fits at the five bins used: a line is a poor model of the electrons' front energy.
FIT_QUALITY = {
    "electron": "[S4] fits χ²/NDF 1,400–261,000 (offsets), 1.7–9.3 (slopes) at these bins",
    "photon_unconv": "[S4] fits χ²/NDF 9–88 (offsets), 2–19 (slopes) at these bins",
    "photon_conv": "[S4] fits χ²/NDF 3.7–4.7 (offsets), 3.8–5.8 (slopes) at these bins",
}


def atlas_offset(particle: str, abs_eta: float, e_gev: np.ndarray) -> np.ndarray:
    """ATLAS's WpsOff [MeV] for ``particle`` at the [S4] bin centre ``abs_eta``, accordion energy ``e_gev`` [GeV]."""
    o1, o2, o3 = ATLAS_OFFSET[particle][abs_eta]
    e = np.asarray(e_gev, float)
    if ENDCAP[0] < abs_eta < ENDCAP[1]:
        e = np.maximum(e, 20.0)
        return o1 + o2 * e + o3 * np.sqrt(e)
    return o1 + o2 * e + o3 * e * e


def atlas_slope(particle: str, abs_eta: float, e_gev: np.ndarray) -> np.ndarray:
    """ATLAS's WpsSlo (front MeV per presampler MeV) at the [S4] bin centre ``abs_eta``, energy ``e_gev`` [GeV]."""
    s1, s2, s3 = ATLAS_SLOPE[particle][abs_eta]
    e = np.asarray(e_gev, float)
    if ENDCAP[0] < abs_eta < ENDCAP[1]:
        e = np.maximum(e, 20.0)
        return s1 + s2 * np.log(e) + s3 * np.sqrt(e)
    return s1 * np.log(e) ** s2 + s3 * np.sqrt(e)


def front_point(particle: str, abs_eta: float, e_gev: float, n: int, seed: int, sim_overrides=()) -> dict:
    """Simulate ``n`` clusters of ``particle`` at ``e_gev`` [GeV], |η| = ``abs_eta`` ± 0.0125 (the [S4] bin),
    ⟨μ⟩ = 0; fit their truth front energy on E_PS and evaluate ATLAS's at their mean accordion energy.

    Photons keep the clusters reconstructed as ``particle`` (ATLAS's ``gam_unconv`` / ``gam_conv`` samples). Energies of
    the result in MeV, ``*_pct`` in percent of ``e_gev``.
    """
    from calo_calib.simulation import compose_config, simulate_table
    from calo_calib.validation.samples import fixed_overrides

    cfg = compose_config(fixed_overrides(particle, e_gev, abs_eta, 0.0125, 0.0) + list(sim_overrides))
    t = simulate_table(cfg, n, seed)
    col = {k: t.column(k).to_numpy() for k in ("particle", "cluster_e_ps", "truth_e_lost_upstream", "truth_e_lost_passive",
                                               "truth_e_dep_cluster", "truth_e_outside_cluster")}  # fmt: skip
    keep = col["particle"] == particle
    e_ps = 1e3 * col["cluster_e_ps"][keep].astype(float)
    front = 1e3 * (col["truth_e_lost_upstream"][keep] + col["truth_e_lost_passive"][keep]).astype(float)
    e_acc = (col["truth_e_dep_cluster"][keep] + col["truth_e_outside_cluster"][keep]).astype(float)
    fit = fit_line(e_ps, front)
    e_mean, front_mean = float(np.mean(e_acc)), float(np.mean(front))
    offset = float(atlas_offset(particle, abs_eta, e_mean))
    pct = 100.0 / e_gev / 1e3  # MeV -> percent of E
    return {
        "particle": particle, "abs_eta": abs_eta, "e": e_gev, "n": int(keep.sum()), "e_acc": e_mean,
        "front_mean": front_mean, "e_ps_mean": float(np.mean(e_ps)), **fit,
        "atlas_offset": offset, "atlas_slope": float(atlas_slope(particle, abs_eta, e_mean)),
        "a_pct": fit["a"] * pct, "a_err_pct": fit["a_err"] * pct, "rms_pct": fit["rms"] * pct, "atlas_offset_pct": offset * pct, "front_pct": front_mean * pct,
    }  # fmt: skip


def _add_row(v, r: dict, label: str, tail: str) -> None:
    """One report row of a :func:`front_point` result ``r``: simulated a, b against ATLAS's WpsOff, WpsSlo."""
    v.row(
        SECTION, f"front energy at E_PS = 0 and per PS MeV, {label}",
        f"a = {r['a']:.0f} ± {r['a_err']:.0f} MeV ({r['a_pct']:.2f} % of E), b = {r['b']:.2f}",
        f"ATLAS Geant4 WpsOff = {r['atlas_offset']:.0f} MeV ({r['atlas_offset_pct']:.2f} %), WpsSlo = {r['atlas_slope']:.2f}",
        SRC, INFO,
        f"simulated mean front energy {r['front_mean']:.0f} MeV ({r['front_pct']:.2f} %), mean E_PS {r['e_ps_mean']:.0f} MeV; "
        f"scatter about the simulated line {r['rms']:.0f} MeV ({r['rms_pct']:.2f} % of E), R² {r['r2']:.2f}; {tail}",
    )  # fmt: skip


def _plot(v, points: list[dict]) -> None:
    """front_energy.png: per particle, the simulated intercept and mean front energy of the nominal
    ``points`` against ATLAS's WpsOff versus |η| (percent of E), one colour per energy."""
    particles = list(dict.fromkeys(r["particle"] for r in points))
    fig, axes = v.plt.subplots(1, len(particles), figsize=(7.5 * len(particles), 5.5), squeeze=False)
    for ax, particle in zip(axes[0], particles):
        rows = [r for r in points if r["particle"] == particle]
        for k, e in enumerate(sorted({r["e"] for r in rows})):
            pts = sorted((r for r in rows if r["e"] == e), key=lambda r: r["abs_eta"])
            eta = np.array([r["abs_eta"] for r in pts])
            ax.plot(eta, [r["atlas_offset_pct"] for r in pts], "s-", color=PAL[k], label=f"ATLAS Geant4 WpsOff, {e:g} GeV")
            ax.errorbar(eta, [r["a_pct"] for r in pts], yerr=[r["a_err_pct"] for r in pts],
                        fmt="o", color=PAL[k], mfc="none", label=f"simulated intercept a, {e:g} GeV")  # fmt: skip
            ax.plot(eta, [r["front_pct"] for r in pts], ":", color=PAL[k], label=f"simulated mean front energy, {e:g} GeV")
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xlabel("|η|")
        ax.set_ylabel("energy in front of the accordion [% of E]")
        ax.legend(fontsize=9, loc="upper left")
        tag(ax, particle.replace("_", " ") + r", $\langle\mu\rangle$ = 0", "lower right", fontsize=11)
    v.fig(SECTION, "front_energy.png", fig)


def run(v) -> None:
    """Add one row per (particle, |η|, E) point to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    c = v.cfg.get("front_energy", {})
    if not c.get("enabled", True):
        return
    n = 300 if v.cfg.quick else int(c.get("n", 1500))
    extra = list(v.cfg.get("sim_overrides") or [])
    etas = [0.3125, 1.2125] if v.cfg.quick else [float(x) for x in c.get("abs_eta", [0.3125, 0.6125, 0.9125, 1.2125, 1.6125])]
    energies = [100.0] if v.cfg.quick else [float(x) for x in c.get("energies", [25, 100])]
    points, probes = [], []
    for k, particle in enumerate(c.get("particles", ["photon_unconv", "electron", "photon_conv"])):
        for j, abs_eta in enumerate(etas):
            for i, e in enumerate(energies):
                r = front_point(particle, abs_eta, e, n, int(v.cfg.seed) + SEED_OFFSET + 100 * k + 10 * j + i, extra)
                points.append(r)
                _add_row(v, r, f"{particle} {e:g} GeV, |η| = {abs_eta:g}", f"{FIT_QUALITY[particle]}; {r['n']} clusters at ⟨μ⟩ = 0")
    # Probe: more material in front (card §2.2's table is [E]); electrons at 100 GeV where the resolution deviates
    scale = float(c.get("material_probe", 1.5))
    probe_etas = [1.2125] if v.cfg.quick else [float(x) for x in c.get("probe_abs_eta", [0.9125, 1.2125, 1.6125])]
    for j, abs_eta in enumerate(probe_etas):
        r = front_point("electron", abs_eta, 100.0, n, int(v.cfg.seed) + SEED_OFFSET + 900 + j,
                        extra + [f"detector.material.scale={scale:g}"])  # fmt: skip
        probes.append({"material_scale": scale, **r})
        _add_row(v, r, f"electron 100 GeV, |η| = {abs_eta:g}, material × {scale:g} (probe)",
                 f"a probe (detector.material.scale), not nominal; {r['n']} clusters at ⟨μ⟩ = 0")  # fmt: skip
    v.note(SECTION, "E_front = the truth energy lost before the presampler and between it and the accordion (the simulation "
           "deposits nothing in the presampler's 11 mm of argon), fitted as a + b E_PS on the clusters' EM-scale E_PS "
           "(electronic noise included, as in ATLAS's fit). ATLAS's WpsOff and WpsSlo are evaluated at the clusters' mean "
           "truth accordion energy (ATLAS's E is the calibrated accordion energy). a against WpsOff does not depend on "
           "the presampler's EM scale; b against WpsSlo does. ATLAS's mean front energy is at least WpsOff (E_PS ≥ 0 and "
           "WpsSlo > 0). ATLAS's WpsOff grows with E (as backscatter from the accordion shower would), the simulated "
           "intercept does not. In the end-cap the "
           "slope is the one at E_PS = 0 (the file's quadratic term vanishes there). "
           "Photons: the clusters reconstructed as unconverted (photon_unconv) or converted (photon_conv).")  # fmt: skip
    v.results["front_energy"] = {"points": points, "material_probes": probes}
    _plot(v, points)


def samples(cfg) -> list:
    """No report samples: the section simulates its own clusters."""
    return []
