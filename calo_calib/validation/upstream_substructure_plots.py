"""The upstream-substructure section's figure (:mod:`calo_calib.validation.upstream_substructure`): matplotlib only."""

from __future__ import annotations

import numpy as np

from calo_calib.validation import common
from calo_calib.validation.common import PAL
from calo_calib.validation.upstream_substructure import CARD_EFF, CARD_EFF_R, LN2, R_EDGES, SECTION, n_bh, n_pdg


def plot(v, res: dict) -> None:
    """One 2 × 3 figure: multiplicity, spectrum, radiated fraction, conversions, Δφ, showers per electron."""
    fig, axes = v.plt.subplots(2, 3, figsize=(21, 12))
    fig.subplots_adjust(wspace=0.28, hspace=0.3)
    (a1, a2, a3), (a4, a5, a6) = axes

    def dress(ax, xlabel: str, ylabel: str, tag: str, tag_loc: str, **legend) -> None:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=legend.pop("fontsize", 11), **legend)
        common.tag(ax, tag, loc=tag_loc)

    pts, ks = res["points"], res["k_min"]
    for j, e0 in enumerate(sorted({p["e"] for p in pts})):
        pp = [p for p in pts if p["e"] == e0]
        x = np.array([p["x_id"] for p in pp])
        for i, k in enumerate(ks):
            col = PAL[(2 * j + i) % len(PAL)]
            a1.errorbar(x, [p["n_mean"][i] for p in pp], yerr=[p["n_se"][i] for p in pp], fmt="os^v"[j % 4], mfc="none" if i else col, color=col, label=f"E = {e0:g} GeV, k > {k:g} GeV")  # fmt: skip
            a1.plot(x, [p["bh"][i] for p in pp], "-", color=col)
            a1.plot(x, [p["pdg"][i] for p in pp], "--", color=col)
    v.label(a1, "upstream substructure")
    dress(a1, r"inner-detector material $X_{ID}$ [$X_0$]", r"$\langle N_\gamma \rangle$ per electron", "brem multiplicity",
          "lower right", fontsize=10, title="line: Bethe–Heitler, dashed: PDG", title_fontsize=10)  # fmt: skip
    sp = res["spectrum"]
    e_ = np.asarray(sp["edges"])
    norm = sum(sp["obs"]) * np.diff(np.log(e_))
    a2.errorbar(np.sqrt(e_[1:] * e_[:-1]), np.asarray(sp["obs"]) / norm, yerr=np.sqrt(np.maximum(sp["obs"], 1)) / norm, fmt="o", color="k", label="simulated (sample_element_brem)")  # fmt: skip
    yy = np.geomspace(e_[0], 0.999, 300)
    a2.plot(yy, yy / -np.log1p(-yy) / (LN2 * float(n_bh(e_[0]))), "-", color=PAL[0], label=r"Bethe–Heitler $y/(-\ln(1-y))$")  # fmt: skip
    a2.plot(yy, (4 / 3 - 4 / 3 * yy + yy**2) / float(n_pdg(e_[0])), "--", color=PAL[1], label=r"PDG $4/3 - 4/3y + y^2$")  # fmt: skip
    a2.set_xscale("log")
    dress(a2, r"$y = k/E$", r"$(1/N)\, dN/d\ln y$", "brem spectrum, E = 50 GeV", "lower left")
    rf = list(res["radiated_fraction"].values())
    xs = np.array([d["t"] for d in rf])
    a3.errorbar(xs, [d["frac"] for d in rf], yerr=[d["se"] for d in rf], fmt="o", color="k", label="simulated")
    xx = np.linspace(0, max(1.5, xs.max() * 1.1), 100)
    a3.plot(xx, 1 - np.exp(-xx), "-", color=PAL[0], label=r"$1 - e^{-X/X_0}$ (PDG)")
    a3.set_ylim(0, 1)
    dress(a3, r"$X_{ID}$ [$X_0$]", r"$\langle E_{rad} \rangle / E_0$ in the inner detector", "radiated energy (ID)", "lower right")  # fmt: skip
    cv, re_ = res["conversions"], np.asarray(R_EDGES)
    a4.errorbar(0.5 * (re_[1:] + re_[:-1]), cv["eff"], yerr=cv["eff_err"], xerr=np.diff(re_) / 2, fmt="o", color="k", label="simulated, found / true")  # fmt: skip
    a4.plot([0, CARD_EFF_R[0], CARD_EFF_R[1]], [CARD_EFF[0], *CARD_EFF], "-", color=PAL[0], label="card §2.3 [E]")
    a4.plot(0.5 * (re_[1:] + re_[:-1]), cv["double"], "s", mfc="none", color=PAL[1], label="double-track share of found")  # fmt: skip
    a4.set_ylim(0, 1.05)
    dress(a4, r"true conversion radius $R$ [mm]", "fraction", "conversion reconstruction", "lower right", loc="lower left")  # fmt: skip
    dp, etm = res["dphi"], [d["et_mean"] for d in res["dphi"]]
    a5.plot(etm, [1000 * d["mean"] for d in dp], "o", color="k", label=r"simulated mean $|\Delta\phi|$")
    a5.plot(etm, [1000 * d["e_weighted"] for d in dp], "s", mfc="none", color=PAL[2], label="energy-weighted")
    a5.plot(etm, [1000 * d["median"] for d in dp], "^", color=PAL[3], label=r"median ($\propto 1/E_T$)")
    a5.fill_between(etm, [1000 * d["lo"] for d in dp], [1000 * d["hi"] for d in dp], color=PAL[0], alpha=0.25, label="field bounds (mean)")  # fmt: skip
    a5.set(xscale="log", yscale="log")
    dress(a5, r"electron $E_T$ [GeV]", r"$|\Delta\phi|$ photon – electron at R = 1.5 m [mrad]", "brem Δφ, |η| < 0.8", "lower left")  # fmt: skip
    a6.bar(
        np.arange(len(res["showers"]["hist"])),
        res["showers"]["hist"],
        color=PAL[0],
        label=r"electrons, $E_T$ 10–100 GeV, $|\eta| < 0.8$",
    )
    dress(a6, "separate photon showers per electron", "fraction of electrons", f"mean {res['showers']['mean']:.2f}", "lower right")  # fmt: skip
    v.fig(SECTION, "upstream_substructure.png", fig)
