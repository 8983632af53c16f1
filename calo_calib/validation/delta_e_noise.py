"""Validation section: how much of the ΔE shift with ⟨μ⟩ is the noise bias of the observable (a diagnosis).

ΔE = E2max − E_min (athena ``egammaStripsShape::setEmax2`` / ``setEmin``): the second local maximum
of the strip profile, other than the hottest strip, minus the lowest strip between the two. athena
applies no noise threshold to either, so on a single-peaked shower E2max is an upward noise
fluctuation in the tail and ΔE grows with the strip noise, whatever the shower does.

Toy: ``n`` clusters per particle are simulated at ⟨μ⟩ = 0 (E_T and |η| as the shower-shape samples);
Gaussian noise of σ_add = σ_pu(⟨μ⟩_high) per cell (the clustering's own measured pile-up σ, the
noise-conditions table of the particle model) is added to the strip cells only, and ΔE is recomputed
on the same clusters. The mean shift of the toy is compared with the shift measured between the
⟨μ⟩ = 0 and ⟨μ⟩_high shower-shape samples. Same showers, only the strip noise changes: a toy shift
equal to the measured one says the measured shift is the observable's noise bias. The Gaussian toy
lacks the pile-up's skew and its correlation between cells. INFO rows.
"""

from __future__ import annotations

import numpy as np

from calo_calib.validation.common import INFO

SECTION = "ΔE and the strip noise (diagnosis)"
SEED_OFFSET = 8000


def toy_shift(overrides: list[str], n: int, mu_high: float, seed: int) -> dict:
    """ΔE mean [GeV] of ``n`` clusters simulated with ``overrides`` (a ⟨μ⟩ = 0 shower-shape sample) as
    simulated and with the strips' σ_pu(``mu_high``) added.

    Returns ``{"mean0", "mean_toy", "shift", "err", "sigma_strip"}`` [GeV]: the two means, their paired
    difference and its standard error, and the median σ added to a strip.
    """
    import pyarrow as pa

    from calo_calib.data.shower_shapes import shower_shapes_from_table
    from calo_calib.data.shower_shapes_middle import BARREL_END
    from calo_calib.simulation import compose_config, simulate_table
    from calo_calib.simulation.generator import Simulator

    cfg = compose_config(list(overrides))
    table = simulate_table(cfg, n, seed)
    cond = Simulator(cfg).noise_conditions
    e = table["cell_e"].combine_chunks()
    flat_e = e.flatten().to_numpy().astype(np.float64)
    eta = np.abs(table["cell_eta"].combine_chunks().flatten().to_numpy().astype(np.float64))
    layer = table["cell_layer"].combine_chunks().flatten().to_numpy()
    endcap = eta >= BARREL_END
    strips = layer == 1
    sigma = cond.sigma_pu(1, eta[:, None], endcap, np.full(eta.size, float(mu_high)))[:, 0]
    rng = np.random.default_rng(seed + 1)
    noisy = flat_e + np.where(strips, sigma * rng.standard_normal(flat_e.size), 0.0)
    table_toy = table.set_column(
        table.schema.get_field_index("cell_e"), "cell_e", pa.ListArray.from_arrays(e.offsets, pa.array(noisy))
    )
    d0 = shower_shapes_from_table(table)["delta_e"]
    d1 = shower_shapes_from_table(table_toy)["delta_e"]
    diff = d1 - d0
    return {"mean0": float(d0.mean()), "mean_toy": float(d1.mean()), "shift": float(diff.mean()),
            "err": float(diff.std(ddof=1) / np.sqrt(diff.size)), "sigma_strip": float(np.median(sigma[strips]))}  # fmt: skip


def run(v) -> None:
    """Add the toy's rows next to the measured ΔE shifts of the shower-shape section."""
    sec = v.cfg.get("shower_shapes", {})
    if not sec.get("enabled", True) or not v.cfg.get("delta_e_noise", {}).get("enabled", True):
        return
    from calo_calib.validation import shower_shapes as ss

    by_key = {smp.key: smp for smp in ss.samples(v.cfg)}
    mlist = ss.mus(sec)
    mu_low, mu_high = mlist[0], mlist[-1]
    n = 300 if v.cfg.quick else int(v.cfg.delta_e_noise.get("n", 4000))
    out = {}
    for k, particle in enumerate(sec.get("particles", ss.PARTICLES)):
        lo, hi = ss.sample_key(particle, mu_low), ss.sample_key(particle, mu_high)
        if mu_low != 0 or lo not in by_key:
            continue
        r = toy_shift(by_key[lo].overrides, n, mu_high, int(v.cfg.seed) + SEED_OFFSET + k)
        meas = None
        if lo in v.data and hi in v.data:
            meas = float(ss.shapes_of(v.data[hi])["delta_e"].mean() - ss.shapes_of(v.data[lo])["delta_e"].mean())
        out[particle] = {**r, "measured_shift": meas}
        v.row(
            SECTION, f"ΔE mean shift from strip noise alone, ⟨μ⟩ = 0 → σ_pu(⟨μ⟩ = {mu_high:g}), {particle}",
            f"{1000 * r['shift']:.1f} ± {1000 * r['err']:.1f} MeV",
            f"measured shift ⟨μ⟩ = 0 → {mu_high:g}: " + (f"{1000 * meas:.1f} MeV" if meas is not None else "see the section above"),
            "toy: Gaussian σ_pu added to the strip cells of the same ⟨μ⟩ = 0 clusters", INFO,
            f"median strip σ_pu added {1000 * r['sigma_strip']:.0f} MeV; ΔE mean {1000 * r['mean0']:.1f} → "
            f"{1000 * r['mean_toy']:.1f} MeV on {n} clusters",
        )  # fmt: skip
    v.results["delta_e_noise"] = out


def samples(cfg) -> list:
    """No report samples: the toy simulates its own ⟨μ⟩ = 0 clusters."""
    return []
