"""The lateral-widths section's figure (:mod:`calo_calib.validation.lateral`): matplotlib only."""

from __future__ import annotations

import numpy as np

from calo_calib.validation.common import PAL
from calo_calib.validation.lateral import SECTION, qweta2c_offset
from calo_calib.validation.lateral_checks import u_profile
from calo_calib.validation.shower_shapes import target


def plot(v, per: dict, res: dict, c) -> None:
    """R_η and w_η2 (raw, corrected) histograms and the median w_η2 per relative position u, per particle.

    ``per``: {particle: (sample, window shapes)}; ``res``: the section's results (peaks in the legends).
    """
    plt = v.plt
    fig, axes = plt.subplots(1, 3, figsize=(25, 7.5))
    fig.subplots_adjust(wspace=0.3, top=0.86, bottom=0.13)
    a1, a2, a3 = axes
    for k, (particle, (_, sh)) in enumerate(per.items()):
        col = PAL[k % len(PAL)]
        x = sh["r_eta"]
        wts = np.full(x.size, 1.0 / max(x.size, 1))
        a1.hist(np.clip(x, 0.85, 1.01), bins=64, range=(0.85, 1.01), histtype="step", lw=2, color=col, weights=wts,
                label=f"{particle}: peak {res[particle]['variables']['r_eta']['peak']:.4f}")  # fmt: skip
        b = target("r_eta").band(particle)
        a1.axvspan(b[0], b[1], color=col, alpha=0.15)
        for key, ls in (("w_eta2_raw", "--"), ("w_eta2", "-")):
            y = 1000 * sh[key]
            a2.hist(np.clip(y, 5, 16), bins=55, range=(5, 16), histtype="step", lw=2, ls=ls, color=col, weights=wts,
                    label=f"{particle} {'raw' if key == 'w_eta2_raw' else 'corrected'}: peak "
                    f"{1000 * res[particle]['variables'][key]['peak']:.2f}")  # fmt: skip
        # Raw w_eta2 versus the relative position in the cell (median per bin).
        uc, med, medc = u_profile(sh)
        a3.plot(uc, med, "o", color=col, label=f"{particle}: median raw")
        a3.plot(uc, medc, "s", color=col, mfc="none", label=f"{particle}: median corrected")
    b = target("w_eta2").band("electron")
    a2.axvspan(1000 * b[0], 1000 * b[1], color="green", alpha=0.15, label="target peak band")
    uu = np.linspace(0, 0.999, 400)
    first = next(iter(per.values()))[1]
    base = 1000 * float(np.nanmedian(first["w_eta2_raw"][np.abs(first["rel_pos"] - 0.5) < 0.05]))
    a3.plot(
        uu, base + 1000 * qweta2c_offset(0.4, uu), "k-", lw=1.5, label="median(u≈0.5) + egammaqweta2c P(u), |η|<0.8"
    )
    a1.set_xlabel(r"$R_\eta$ = E(3×7)/E(7×7), full middle window", fontsize=17)
    a1.set_ylabel("Fraction of clusters / bin")
    a1.legend(fontsize=10, loc="upper left", title="shaded: target peak ± tol.", title_fontsize=10)
    a1.set_ylim(0, a1.get_ylim()[1] * 1.3)
    a1.set_xlim(0.85, 1.01)
    a2.set_xlabel(r"$w_{\eta 2}$ (3×5) [$10^{-3}$ η units]", fontsize=17)
    a2.set_ylabel("Fraction of clusters / bin")
    a2.legend(fontsize=9, loc="upper right")
    a2.set_ylim(0, a2.get_ylim()[1] * 1.45)
    a3.set_xlabel("u: position of the cluster η in the hottest cell", fontsize=17)
    a3.set_ylabel(r"median $w_{\eta 2}$ per u bin [$10^{-3}$ η units]")
    a3.legend(fontsize=8, loc="upper center", ncol=2)
    a3.set_ylim(a3.get_ylim()[0], a3.get_ylim()[1] * 1.25)
    v.label(a1, "lateral widths")
    fig.suptitle(rf"R_η and w_η2 from the full 9×13 middle window: $E_T$ {float(c.get('et_min', 20)):g}-"
                 rf"{float(c.get('et_max', 50)):g} GeV, $|\eta|$ < {float(c.get('abs_eta_max', 0.8)):g}, "
                 rf"$\langle\mu\rangle$ = {float(c.get('mu', 40)):g}; targets physics_cells.md §2", fontsize=15, y=0.96)  # fmt: skip
    v.fig(SECTION, "lateral_widths.png", fig)
