"""The shower-shape sections' figures (:mod:`calo_calib.validation.shower_shapes`): matplotlib only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from calo_calib.validation.common import PAL
from calo_calib.validation.shower_shapes import (
    MU_VARIABLES,
    SECTION,
    SECTION_MU,
    TARGETS,
    core_width,
    half_sample_mode,
    sample_key,
    shapes_of,
    target,
)


def plot_particle(v, particle: str, sh: Mapping[str, np.ndarray], pr: dict, mu_t: float, c) -> None:
    """Histograms of every target variable of one particle with its band, peak and tight-cut range."""
    plt = v.plt
    fig, axes = plt.subplots(3, 4, figsize=(28, 18))
    fig.subplots_adjust(wspace=0.32, hspace=0.3, top=0.9)
    axes = axes.ravel()
    for ax, t in zip(axes, TARGETS):
        x = sh[t.name] * t.f
        lo, hi = t.hist[0] * t.f, t.hist[1] * t.f
        xc = np.clip(x, lo, hi)  # over/underflow in the edge bins
        ax.hist(xc, bins=50, range=(lo, hi), histtype="step", lw=2, color=PAL[0],
                weights=np.full(x.size, 1.0 / max(x.size, 1)), label="simulation")  # fmt: skip
        b = t.band(particle)
        if b is not None:
            ax.axvspan(b[0] * t.f, b[1] * t.f, color="green", alpha=0.18, label="target peak band")
            p0, p1 = t.peak[particle]
            if p1 > p0:
                ax.axvspan(p0 * t.f, p1 * t.f, color="green", alpha=0.18)
            else:
                ax.axvline(p0 * t.f, color="green", lw=1.5)
        pk = pr["variables"][t.name]["peak"] * t.f
        ax.axvline(pk, color=PAL[3], ls="-", lw=1.5, label=f"peak (HSM) {pk:.4g}")
        if particle in t.cuts:
            _, a, bb = t.cuts[particle]
            for thr in sorted({a, bb}):
                ax.axvline(thr * t.f, color="k", ls="--", lw=1)
            ax.plot([], [], "k--", lw=1, label="tight cut range")
        ax.set_xlabel(t.axis_label())
        ax.set_ylabel("Fraction of clusters / bin")
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.35)
        verdict = pr["variables"][t.name]["verdict"]
        ax.legend(fontsize=9, loc="upper left", title=verdict, title_fontsize=10)
    for ax in axes[len(TARGETS) :]:
        ax.set_visible(False)
    v.label(axes[0], particle)
    fig.suptitle(
        rf"{particle}: $E_T$ {float(c.get('et_min', 20)):g}-{float(c.get('et_max', 50)):g} GeV, $|\eta|$ < "
        rf"{float(c.get('abs_eta_max', 0.8)):g}, $\langle\mu\rangle$ = {mu_t:g}, {sh['r_eta'].size} clusters; "
        "green: physics_cells.md §2 peak ± tolerance; dashed: tight-photon cut range; values outside the axis in the edge bins",
        fontsize=16,
        y=0.95,
    )
    v.fig(SECTION, f"shower_shapes_{particle}.png", fig)


def plot_mu(v, particles: Sequence[str], mlist: Sequence[float]) -> None:
    """R_η, w_η2 and ΔE histograms per ⟨μ⟩, one row per particle."""
    plt = v.plt
    fig, axes = plt.subplots(len(particles), len(MU_VARIABLES), figsize=(8.5 * len(MU_VARIABLES), 6.5 * len(particles)),
                             squeeze=False)  # fmt: skip
    fig.subplots_adjust(wspace=0.3, hspace=0.3, top=0.9)
    for i, particle in enumerate(particles):
        for j, name in enumerate(MU_VARIABLES):
            t = target(name)
            ax = axes[i, j]
            lo, hi = t.hist[0] * t.f, t.hist[1] * t.f
            for k, m in enumerate(mlist):
                x = shapes_of(v.data[sample_key(particle, m)])[name] * t.f
                ax.hist(np.clip(x, lo, hi), bins=50, range=(lo, hi), histtype="step", lw=2, color=PAL[k % len(PAL)],
                        weights=np.full(x.size, 1.0 / max(x.size, 1)),
                        label=rf"$\langle\mu\rangle$={m:g}: peak {half_sample_mode(x):.4g}, $\sigma_{{68}}$ {core_width(x):.3g}")  # fmt: skip
            b = t.band(particle)
            if b is not None:
                ax.axvspan(b[0] * t.f, b[1] * t.f, color="green", alpha=0.15, label="target peak band")
            ax.set_xlabel(t.axis_label())
            ax.set_ylabel("Fraction of clusters / bin")
            ax.set_xlim(lo, hi)
            ax.set_ylim(0, ax.get_ylim()[1] * 1.4)
            ax.legend(fontsize=9, loc="upper left", title=particle, title_fontsize=10)
    v.label(axes[0, 0], "")
    fig.suptitle(r"Shower shapes vs $\langle\mu\rangle$ ($E_T$ 20-50 GeV, $|\eta|<0.8$); green: physics_cells.md §2 peak ± tolerance",
                 fontsize=16, y=0.96)  # fmt: skip
    v.fig(SECTION_MU, "shower_shapes_vs_mu.png", fig)
