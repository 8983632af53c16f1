"""Validation section: the upstream lever arm and the strip widths (a toy cascade; a diagnosis).

The simulation develops each shower from its start with the accordion's Molière radius at every
depth, the X0 in front of the calorimeter included. In ATLAS those X0 (solenoid and cryostat, then
the passive layer behind the presampler) are spread over tens of centimetres of radius, so a shower
particle that leaves them at an angle θ lands θ·L away at the strips: the "lever arm", the one
candidate left for the narrow w_s,tot (1.3–1.4 strips against ≈ 2) once cross-talk and the depth
integration were refuted.

Toy [E]: a simple electromagnetic cascade of an electron of energy ``e`` through the upstream X0 at
|η| = ``abs_eta``, in steps of ``step`` X0: bremsstrahlung from the complete-screening Bethe–Heitler
spectrum (photons along their parent, plus an angle m_e/E), pair production with probability 7/9 per
X0 and the Bethe–Heitler energy sharing, ionisation loss ``de_dx0`` per X0, and the projected multiple
scattering angle θ² = (E_s/p)² Δt / 2 per step (E_s = 21.2 MeV). e± below 5 MeV stop; photons below
20 MeV are not made (Compton dominates there; see :func:`cascade`), so their own spread is left out. Only the η (z) projection is tracked: the
solenoid's field bends in φ, so it does not move a particle in η.

Every step moves each particle by θ × its path length twice: in the ATLAS-like geometry (the
material spread over the configured radii, with the empty gaps between them and up to the accordion
front) and in the simulation's implicit geometry (the same X0 at the accordion's length per X0, no
gaps). Both see the same cascade, so their difference is the lever arm alone. Each particle reaching
the accordion is weighted by the energy its own GFlash shower leaves in the strips (or in the middle
layer), from the median GFlash profile of its energy (photons start 9/7 X0 later). The rows give the
strip-energy-weighted mean square offset (strip²) within the w_s,tot window (±10 strips), its
difference between the geometries (what the lever arm adds to w_s,tot²), and the middle-layer energy
fraction displaced by more than one middle cell. The radii are [R] (ATLAS barrel: cryostat warm wall
≈ 1.15 m, solenoid ≈ 1.23–1.28 m, cold wall ≈ 1.4 m, presampler 1.41–1.45 m, accordion from 1.50 m);
the X0 are the simulation's own. Nothing here changes the simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calo_calib.simulation.upstream import sample_pair_fraction
from calo_calib.validation.common import INFO

SECTION = "The upstream lever arm and the strip widths (toy cascade; diagnosis)"
SEED_OFFSET = 9900
E_S = 21.2  # MeV, multiple-scattering scale energy
M_E = 0.511  # MeV
ACCORDION_X0_MM = 21.37  # mm per X0 of the barrel accordion, thick lead (card §1.4a [S3])
STRIP_DETA = 0.025 / 8
MIDDLE_DETA = 0.025
W_S_TOT_HALF = 10  # strips: w_s,tot is computed over 20 strips


@dataclass(frozen=True)
class Region:
    """Upstream material: ``x0`` radiation lengths spread uniformly over radii ``r_lo``–``r_hi`` [mm]."""

    r_lo: float
    r_hi: float
    x0: float


def sample_brem_y(n: int, y_min: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photon energy fractions y = k/E from the complete-screening spectrum (1/y)(4/3 − 4/3 y + y²), y > ``y_min``.

    Proposal ∝ 1/y (log-uniform), accepted with (4/3 − 4/3 y + y²)/(4/3) ≥ 3/4 · ... (efficiency ≥ 0.5).
    """
    out = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        u = rng.random(todo.size)
        y = y_min[todo] ** (1.0 - u)  # log-uniform on (y_min, 1)
        acc = rng.random(todo.size) * (4.0 / 3.0) < (4.0 / 3.0 - 4.0 / 3.0 * y + y * y)
        out[todo[acc]] = y[acc]
        todo = todo[~acc]
    return out


def brem_rate(y_min: np.ndarray) -> np.ndarray:
    """Photons per X0 with y > ``y_min``: ∫ (1/y)(4/3 − 4/3 y + y²) dy from y_min to 1."""
    return 4.0 / 3.0 * np.log(1.0 / y_min) - 4.0 / 3.0 * (1.0 - y_min) + 0.5 * (1.0 - y_min**2)


def cascade(e_mev: float, regions: list[Region], abs_eta: float, r_front: float, rng: np.random.Generator,
            step: float = 0.02, e_cut: float = 5.0, de_dx0: float = 38.8, primary_photon: bool = False,
            gamma_cut: float = 20.0) -> dict[str, np.ndarray]:  # fmt: skip
    """The cascade of one electron (or photon) through ``regions``; the particles that reach the accordion
    front ``r_front`` [mm]. ``de_dx0``: ionisation loss per X0 [MeV] (aluminium: 1.615 MeV cm²/g × 24.01 g/cm²).
    e± stop below ``e_cut`` [MeV]; photons below ``gamma_cut`` [MeV] are not made: below ≈ 20 MeV Compton
    scattering, not pair production, dominates in aluminium [R: NIST XCOM], and the high-energy pair
    probability 7/9 per X0 would overstate the pairs there. Those photons carry ≲ 1 % of the energy.

    Returns (k,) arrays: ``e`` [MeV], ``photon`` (bool), ``z_atlas`` and ``z_compact`` [mm]: the η-direction
    offset from the primary's line in the ATLAS-like and in the compact (simulation-like) geometry.
    """
    cosh = float(np.cosh(abs_eta))
    e = np.array([e_mev])
    photon = np.array([bool(primary_photon)])
    theta = np.zeros(1)
    za = np.zeros(1)
    zc = np.zeros(1)
    for j, reg in enumerate(regions):
        n_steps = max(1, int(round(reg.x0 / step)))
        dt = reg.x0 / n_steps
        dl_atlas = (reg.r_hi - reg.r_lo) * cosh / n_steps  # path per step, mm
        dl_compact = dt * ACCORDION_X0_MM
        for _ in range(n_steps):
            charged = ~photon
            # bremsstrahlung (charged, above the cut)
            y_min = np.minimum(gamma_cut / np.maximum(e, gamma_cut * 1.0001), 0.999)
            p_brem = np.where(charged, brem_rate(y_min) * dt, 0.0)
            emit = rng.random(e.size) < p_brem  # dt small: at most one photon per step
            new = []
            if emit.any():
                idx = np.flatnonzero(emit)
                k = sample_brem_y(idx.size, y_min[idx], rng) * e[idx]
                e[idx] -= k
                ang = rng.standard_normal(idx.size) * M_E / np.maximum(e[idx] + k, M_E)
                new.append((k, np.ones(idx.size, bool), theta[idx] + ang, za[idx], zc[idx]))
            # pair production (photons)
            conv = photon & (rng.random(e.size) < 7.0 / 9.0 * dt)
            if conv.any():
                idx = np.flatnonzero(conv)
                x = sample_pair_fraction(idx.size, rng)
                e_pos = (1.0 - x) * e[idx]
                e[idx] = x * e[idx]
                photon[idx] = False
                new.append((e_pos, np.zeros(idx.size, bool), theta[idx].copy(), za[idx].copy(), zc[idx].copy()))
            for ne, nph, nth, nza, nzc in new:
                e, photon = np.concatenate([e, ne]), np.concatenate([photon, nph])
                theta, za, zc = np.concatenate([theta, nth]), np.concatenate([za, nza]), np.concatenate([zc, nzc])
            charged = ~photon
            # ionisation and multiple scattering (charged)
            e = np.where(charged, e - de_dx0 * dt, e)
            theta = theta + np.where(charged, rng.standard_normal(e.size) * E_S / np.maximum(e, 1.0) * np.sqrt(dt / 2), 0.0)
            alive = e > np.where(photon, gamma_cut, e_cut)  # e± range out; no photon below gamma_cut
            e, photon, theta, za, zc = e[alive], photon[alive], theta[alive], za[alive], zc[alive]
            za = za + theta * dl_atlas
            zc = zc + theta * dl_compact
        # free flight to the next region (or to the accordion front) in the ATLAS-like geometry only
        r_next = regions[j + 1].r_lo if j + 1 < len(regions) else r_front
        za = za + theta * (r_next - reg.r_hi) * cosh
    return {"e": e, "photon": photon, "z_atlas": za, "z_compact": zc}


def layer_weights(e_mev: np.ndarray, photon: np.ndarray, depth: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Energy [MeV] each particle's median GFlash shower leaves in the strips and in the middle layer.

    ``depth``: (accordion front, strip end, middle end) in X0 of accordion depth from its front. Photons
    start 9/7 X0 later (their mean free path); energies below 200 MeV use the 200 MeV profile ([E]: the
    parametrisation is not meant for softer showers).
    """
    from scipy.special import gammainc

    from calo_calib.validation.targets import gflash_mean_longitudinal

    out_s, out_m = np.empty(e_mev.size), np.empty(e_mev.size)
    for i, (e, ph) in enumerate(zip(e_mev, photon, strict=True)):
        a, b = gflash_mean_longitudinal(max(e, 200.0) / 1000.0)
        t0 = 9.0 / 7.0 if ph else 0.0
        c = [gammainc(a, b * max(d - depth[0] - t0, 0.0)) for d in depth]
        out_s[i], out_m[i] = e * c[1], e * (c[2] - c[1])  # c[0] = 0: nothing deposits before the front
    return out_s, out_m


def summarise(showers: list[dict], depth, r_strip: float, r_middle: float) -> dict[str, float]:
    """Per-shower weighted moments of the offsets, averaged over the showers (see the module docstring)."""
    pitch_s, cell_m = r_strip * STRIP_DETA, r_middle * MIDDLE_DETA  # mm transverse to a projective track
    m2a, m2c, fa, fc, f_up = [], [], [], [], []
    for s in showers:
        ws, wm = layer_weights(s["e"], s["photon"], depth)
        for key, m2 in (("z_atlas", m2a), ("z_compact", m2c)):
            u = s[key] / pitch_s
            inside = np.abs(u) <= W_S_TOT_HALF
            m2.append(float(np.sum(ws[inside] * u[inside] ** 2) / max(np.sum(ws[inside]), 1e-12)))
        for key, f in (("z_atlas", fa), ("z_compact", fc)):
            f.append(float(np.sum(wm[np.abs(s[key]) > cell_m]) / max(np.sum(wm), 1e-12)))
        f_up.append(float(np.sum(s["e"])))
    return {"m2_atlas": float(np.mean(m2a)), "m2_compact": float(np.mean(m2c)), "m2_err": float(np.std(np.subtract(m2a, m2c)) / np.sqrt(len(m2a))),
            "f_mid_atlas": float(np.mean(fa)), "f_mid_compact": float(np.mean(fc)), "e_front_mev": float(np.mean(f_up))}  # fmt: skip


def toy(c, det, seed: int) -> dict[str, float]:
    """Run :func:`cascade` for ``c.n`` electrons with the simulation's X0 at ``c.abs_eta`` and summarise."""
    from calo_calib.simulation.material import AccordionDepth, UpstreamMaterial

    abs_eta = float(c.get("abs_eta", 0.3))
    mat = UpstreamMaterial.from_config(det.material)
    x_id, x_ps, x_acc = (float(x[0]) for x in mat.at(np.array([abs_eta])))
    l1, l2, _ = (float(x[0]) for x in AccordionDepth.from_config(det.accordion).at(np.array([abs_eta])))
    r = c.get("radii_mm", {})
    regions = [Region(*[float(x) for x in r.get("cryostat_solenoid", [1150, 1400])], x_ps - x_id),
               Region(*[float(x) for x in r.get("ps_to_accordion", [1450, 1500])], x_acc - x_ps)]  # fmt: skip
    r_front = float(r.get("accordion_front", 1500))
    rng = np.random.default_rng(seed)
    e_mev = float(c.get("e", 40.0)) * 1000.0
    photon = str(c.get("primary", "electron")) == "photon"
    showers = [cascade(e_mev, regions, abs_eta, r_front, rng, float(c.get("step", 0.02)), primary_photon=photon)
               for _ in range(int(c.get("n", 200)))]  # fmt: skip
    depth = (0.0, l1 - x_acc, l2 - x_acc)
    out = summarise(showers, depth, float(r.get("strips", 1560)), float(r.get("middle", 1690)))
    from scipy.special import gammainc

    from calo_calib.validation.targets import gflash_mean_longitudinal

    a, b = gflash_mean_longitudinal(e_mev / 1000.0)
    t0 = 9.0 / 7.0 if photon else 0.0  # GFlash cross-check of the energy the cascade loses in the same X0
    out["e_front_gflash_mev"] = e_mev * (1.0 - float(gammainc(a, b * max(x_acc - x_id - t0, 0.0))))
    out.update(x_upstream=x_ps - x_id, x_passive=x_acc - x_ps, abs_eta=abs_eta, e=e_mev / 1000.0, n=len(showers),
               primary="photon" if photon else "electron")  # fmt: skip
    return out


def run(v) -> None:
    """Add the toy's rows to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    c = v.cfg.get("lever_arm", {})
    if not c.get("enabled", True):
        return
    from calo_calib.simulation import compose_config

    det = compose_config(["particle=electron", *list(v.cfg.get("sim_overrides") or [])]).detector
    out = []
    for k, (primary, e) in enumerate((p, float(e)) for p in c.get("primaries", ["electron", "photon"]) for e in c.get("energies", [10, 40])):
        cc = {**dict(c), "primary": primary, "e": e, "n": 20 if v.cfg.quick else int(c.get("n", 200))}
        out.append(_rows(v, toy(cc, det, int(v.cfg.seed) + SEED_OFFSET + k)))
    v.results["lever_arm"] = out


def _rows(v, r: dict) -> dict:
    where = f"{'γ' if r['primary'] == 'photon' else 'e−'}, {r['e']:g} GeV, |η| = {r['abs_eta']:g}"
    src = "toy cascade [E] over the simulation's X0; radii [R]"
    v.row(SECTION, f"strip-weighted mean square offset at the strips (strip²), {where}: ATLAS-like / compact geometry",
          f"{r['m2_atlas']:.3f} / {r['m2_compact']:.3f}", "w_s,tot ≈ 2 (ATLAS) against 1.2–1.4 simulated: 2.0–2.6 strip² missing in w_s,tot²",
          src, INFO, f"the lever arm adds {r['m2_atlas'] - r['m2_compact']:.3f} ± {r['m2_err']:.3f} strip² to w_s,tot²; "
          f"{r['x_upstream']:.2f} X0 before the presampler, {r['x_passive']:.2f} X0 behind it; {r['n']} showers")  # fmt: skip
    v.row(SECTION, f"middle-layer energy displaced by more than one middle cell, {where}: ATLAS-like / compact geometry",
          f"{r['f_mid_atlas'] * 100:.2f} % / {r['f_mid_compact'] * 100:.2f} %", "R_η: 3–4 % of the energy is missing at 2–3 cells",
          src, INFO, f"energy reaching the accordion {r['e_front_mev'] / 1000:.2f} GeV of {r['e']:g} "
          f"(GFlash median profile over the same X0: {r['e_front_gflash_mev'] / 1000:.2f} GeV)")  # fmt: skip
    return r


def samples(cfg) -> list:
    """No report samples: the toy tracks its own particles."""
    return []
