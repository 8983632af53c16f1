"""Check family: the cell and cluster noise.

Samples: the resolution points (their worker summaries keep the cells of the first clusters and the
cluster noise √Σσ²_cell). The ``cell_noise`` column is compared with the config's formula
σ_elec ⊕ σ_pu(η=0)·cosh|η|·√(⟨μ⟩/μ_ref), or with σ_elec ⊕ the particle model's measured conditions
(:func:`expected_noise`; OK if the median ratio per layer and ⟨μ⟩ is within :data:`TOLERANCE` of 1); the cluster noise with the ATLAS N(a) [S12] and the pile-up
term [S13] (INFO: different objects).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from calo_calib.validation import targets as T
from calo_calib.validation.common import DEV, INFO, LAYER_LABELS, OK, PAL, Row

SECTION = "Noise"
TOLERANCE = 0.05  # on the median cell-noise ratio: the column should follow the formula exactly

NoiseModel = Callable[[int, np.ndarray, float], np.ndarray]


def expected_noise(det: Mapping, conditions=None) -> NoiseModel:
    """σ_tot(layer, η, ⟨μ⟩) [GeV] of the config ``det`` (barrel/end-cap split at ``accordion.barrel_end``).

    ``conditions``: the particle model's measured :class:`~calo_calib.simulation.noise_conditions.NoiseConditions`,
    which then give the pile-up part instead of the table σ_pu(η=0)·cosh|η|.
    """
    ro = det["readout"]
    barrel_end = float(det["accordion"]["barrel_end"])
    sig_b, sig_e, sig_pu = (
        np.asarray(ro[k], float) for k in ("sigma_elec_barrel", "sigma_elec_endcap", "sigma_pu_eta0")
    )
    mu_ref = float(ro["mu_ref_noise"])

    def expected(layer, eta, mu):
        a = np.abs(eta)
        el = np.where(a < barrel_end, sig_b[layer], sig_e[layer])
        if conditions is None:
            pu = sig_pu[layer] * np.cosh(a) * np.sqrt(max(mu, 0.0) / mu_ref)
        else:  # the cluster's region is that of its point; cells of one point share it
            flat = np.atleast_1d(a).ravel()
            region = np.full(1, bool(np.median(flat) >= barrel_end))
            pu = conditions.sigma_pu(layer, flat[None, :], region, np.full(1, float(mu)))[0].reshape(np.shape(a))
        return np.sqrt(el**2 + pu**2)

    return expected


def measured_conditions(v):
    """The measured noise conditions of the validation's electron configuration, or None when its
    clustering uses the table (the gaussian model, or ``conditions.source=table``)."""
    from calo_calib.simulation import compose_config
    from calo_calib.simulation.generator import Simulator

    return Simulator(compose_config(["particle=electron", *list(v.cfg.sim_overrides or [])])).noise_conditions


def cell_ratios(pts: Mapping[tuple, dict], mu_cfgs: Mapping[tuple, float],
                expected: NoiseModel) -> tuple[dict[tuple, list], list[tuple]]:  # fmt: skip
    """Per (⟨μ⟩, layer): the cell_noise / expectation ratios of the kept cells of every point, and per
    (point, layer) (mu, eta, layer, median cell σ, expected σ at the point's |η|) for the plot.

    ``pts``: {(mu, eta, E): data with ``_cells``}; ``mu_cfgs``: {(mu, eta, E): the simulation's
    ``pileup.mu_reference``}; layers with < 5 kept cells are skipped.
    """
    ratios: dict[tuple, list] = {}
    meas_pts = []
    for key, d in pts.items():
        mu, eta, _ = key
        c = d["_cells"]
        mu_cfg = mu_cfgs[key]
        for layer in range(4):
            m = c["cell_layer"] == layer
            if m.sum() < 5:
                continue
            ex = expected(layer, c["cell_eta"][m].astype(float), mu_cfg)
            rr = c["cell_noise"][m].astype(float) / ex
            ratios.setdefault((mu, layer), []).append(rr)
            meas_pts.append((mu, eta, layer, float(np.median(c["cell_noise"][m])), float(expected(layer, eta, mu_cfg))))
    return ratios, meas_pts


def cell_rows(ratios: Mapping[tuple, list], measured: bool = False) -> list[Row]:
    """One row per (⟨μ⟩, layer) of :func:`cell_ratios`: OK if the median ratio is within :data:`TOLERANCE` of 1.

    ``measured``: the expectation's pile-up part is the measured conditions table, not the card's formula.
    """
    pu = "σ_pu,conditions(η)" if measured else "σ_pu,η=0·cosh|η|"
    out = []
    for (mu, layer), rr in sorted(ratios.items()):
        rr = np.concatenate(rr)
        med = float(np.median(rr))
        spread = np.percentile(rr, [5, 95])
        out.append(Row(
            SECTION,
            f"cell noise σ / config expectation, {LAYER_LABELS[layer]}, mu={mu:g}",
            f"median {med:.3f} (5-95%: {spread[0]:.2f}-{spread[1]:.2f})",
            f"1 (σ_elec ⊕ {pu}·√(μ/μ_ref))",
            "[E] card §4.2 values in conf/detector",
            OK if abs(med - 1) <= TOLERANCE else DEV,
            "checks the cell_noise column against the config formula (barrel/end-cap split at accordion.barrel_end)",
        ))  # fmt: skip
    return out


def cluster_rows(pts: Mapping[tuple, dict]) -> list[Row]:
    """Cluster noise of the 50 GeV points against N(a) at ⟨μ⟩ = 0 and, at ⟨μ⟩ > 0, its pile-up part
    √(σ²(μ) − σ²(0)) against [S13] (INFO)."""
    out = []
    for (mu, eta, e), d in sorted(pts.items()):
        if e != 50.0:
            continue
        cn = float(np.median(d["cluster_noise"]))
        if mu == 0.0:
            t = float(T.mc_noise_term(eta))
            out.append(Row(SECTION, f"cluster noise √Σσ²_cell, e− 50 GeV abs(eta)={eta:g}, mu=0", f"{1e3 * cn:.0f} MeV",
                           f"N(a) = {1e3 * t:.0f} MeV", "[S12] mcNoiseTerm", INFO,
                           f"ratio {cn / t:.2f}; not the same object (ATLAS: fitted noise term of 3×7 clusters)"))  # fmt: skip
            continue
        d0 = pts.get((0.0, eta, e))
        if d0 is None:
            continue
        c0 = float(np.median(d0["cluster_noise"]))
        pu = math.sqrt(max(cn**2 - c0**2, 0.0))
        t = float(T.pileup_noise_run2(e / math.cosh(eta), mu))
        out.append(Row(SECTION, f"cluster pile-up noise √(σ²(μ={mu:g})−σ²(μ=0)), e− 50 GeV abs(eta)={eta:g}",
                       f"{1e3 * pu:.0f} MeV", f"{1e3 * t:.0f} MeV", "[S13] √μ·(60+40 ln(E_T/10)/ln5) MeV", INFO,
                       f"ratio {pu / t:.2f}; the resolution rows at μ={mu:g} test its effect"))  # fmt: skip
    return out


def _plot(v, meas_pts: list[tuple], expected: NoiseModel) -> None:
    fig, axes = v.plt.subplots(1, 2, figsize=(16, 6.5), sharey=True)
    for ax, mu in zip(axes, sorted({m[0] for m in meas_pts})):
        g = np.linspace(0, 2.47, 300)
        for layer in range(4):
            sel = sorted([m for m in meas_pts if m[0] == mu and m[2] == layer], key=lambda m: m[1])
            ax.plot([m[1] for m in sel], [1e3 * m[3] for m in sel], "o", color=PAL[layer], ms=8,
                    label=f"sim {LAYER_LABELS[layer]}")  # fmt: skip
            gg = g[g < 1.8] if layer == 0 else g  # no presampler beyond |eta| = 1.8
            ax.plot(gg, 1e3 * expected(layer, gg, mu), "-", color=PAL[layer], lw=1.2)
        ax.set_xlabel(r"$|\eta|$ of the cells")
        ax.set_yscale("log")
        ax.legend(fontsize=10, title="points: median cell σ; lines: config", title_fontsize=10)
        v.label(ax, rf"$\langle\mu\rangle$ = {mu:g}")
    axes[0].set_ylabel(r"Cell noise $\sigma_{tot}$ [MeV]")
    v.fig(SECTION, "noise.png", fig)


def run(v) -> None:
    """Add the section's rows and figure to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    conditions = measured_conditions(v)
    expected = expected_noise(v.det, conditions)
    pts = v.res_points()
    mu_cfgs = {
        (mu, eta, e): float(v.sim_cfgs[f"res/electron/mu{mu:g}/eta{eta:g}/E{e:g}"]["pileup"]["mu_reference"])
        for (mu, eta, e) in pts
    }
    ratios, meas_pts = cell_ratios(pts, mu_cfgs, expected)
    v.rows.extend(cell_rows(ratios, measured=conditions is not None))
    if meas_pts:
        _plot(v, meas_pts, expected)
    v.rows.extend(cluster_rows(pts))
