"""Validation section: how far strip-to-strip cross-talk moves the strip shower shapes (a diagnosis).

The simulation has no cross-talk between strips; ATLAS's is a few to 8 % [R] (physics_cells.md §1f)
and was added to its MC digitisation. It is the named candidate for the narrow w_s,tot (1.3–1.4
strips against ≈ 2) and the high E_ratio (0.977 against 0.90–0.95). Toy: ``n`` clusters per particle
are simulated as the shower-shape sample at ⟨μ⟩ = ``shower_shapes.mu_target``; each strip cell then
gives a fraction c of its energy to each η neighbour in the same φ row (energy-conserving, nearest
neighbours only; a neighbour outside the stored cells receives it and it is lost to the cluster),
E'_i = (1 − 2c) E_i + c (E_{i−1} + E_{i+1}), and the shapes are recomputed on the same clusters for
c = 0 and the values of ``crosstalk``. The cross-talk acts on the whole cell energy (signal, pile-up
and noise alike), a simplification. Barrel strips only (|η| < 0.8 here: one η pitch, 0.025/8).

For a profile P_i, nearest-neighbour cross-talk adds 2c to Σ P_i (i − i_max)² / Σ P_i (strip²), so
w_s,tot² grows by ≈ 2c: at c = 0.08 a 1.3-strip width becomes 1.36. INFO rows; nothing is tuned.
"""

from __future__ import annotations

import numpy as np

from calo_calib.validation.common import INFO

SECTION = "Strip cross-talk and the strip shower shapes (diagnosis)"
SHAPES = ("w_s_tot", "w_s3", "e_ratio", "f_side")
SEED_OFFSET = 9500
BARREL_STRIP_PITCH = 0.025 / 8  # η pitch of the barrel strips (card §1.1)


def apply_crosstalk(e: np.ndarray, eta: np.ndarray, phi: np.ndarray, layer: np.ndarray, seg: np.ndarray,
                    c: float, pitch: float = BARREL_STRIP_PITCH) -> np.ndarray:  # fmt: skip
    """Cell energies after nearest-neighbour cross-talk ``c`` between strips (layer 1) along η.

    Args:
        e, eta, phi, layer, seg: (N,) flat cell energy [GeV], position, layer and cluster index.
        c: fraction of a strip's energy given to each η neighbour in the same φ row.
        pitch: strip η pitch (the strips of every cluster are assumed to share it).
    Returns:
        (N,) energies; non-strip cells unchanged. A strip without a stored neighbour on one side
        loses ``c`` of its energy there.
    """
    from calo_calib.simulation.geometry import LAYER_L1, N_PHI

    out = np.array(e, dtype=np.float64, copy=True)
    idx = np.flatnonzero(layer == LAYER_L1)
    if idx.size == 0 or c == 0:
        return out
    ie = np.rint(eta[idx] / pitch).astype(np.int64)
    ip = np.rint(phi[idx] / (2 * np.pi / N_PHI[LAYER_L1])).astype(np.int64)
    s = seg[idx]
    o = np.lexsort((ie, ip, s))
    j, ie, ip, s = idx[o], ie[o], ip[o], s[o]
    neighbours = (s[1:] == s[:-1]) & (ip[1:] == ip[:-1]) & (ie[1:] - ie[:-1] == 1)
    src = out[j]
    new = (1.0 - 2.0 * c) * src
    new[1:] += np.where(neighbours, c * src[:-1], 0.0)  # from the η-lower neighbour
    new[:-1] += np.where(neighbours, c * src[1:], 0.0)  # from the η-upper neighbour
    out[j] = new
    return out


def toy(overrides: list[str], n: int, values: list[float], seed: int) -> dict[float, dict[str, dict[str, float]]]:
    """{c: {shape: {"mean", "median", "peak"}}} of ``n`` clusters simulated with ``overrides`` at each cross-talk c."""
    import pyarrow as pa

    from calo_calib.data.shower_shapes import shower_shapes_from_table
    from calo_calib.simulation import compose_config, simulate_table
    from calo_calib.validation.shower_shapes import half_sample_mode

    table = simulate_table(compose_config(list(overrides)), n, seed)
    col = table["cell_e"].combine_chunks()
    flat = {k: table[k].combine_chunks().flatten().to_numpy() for k in ("cell_e", "cell_eta", "cell_phi", "cell_layer")}
    seg = np.repeat(np.arange(len(col)), np.diff(col.offsets.to_numpy()))
    out = {}
    for c in [0.0, *values]:
        e = apply_crosstalk(flat["cell_e"].astype(np.float64), flat["cell_eta"].astype(np.float64),
                            flat["cell_phi"].astype(np.float64), flat["cell_layer"], seg, float(c))  # fmt: skip
        t = table.set_column(table.schema.get_field_index("cell_e"), "cell_e", pa.ListArray.from_arrays(col.offsets, pa.array(e)))
        sh = shower_shapes_from_table(t)
        out[float(c)] = {k: {"mean": float(np.mean(sh[k])), "median": float(np.median(sh[k])),
                             "peak": float(half_sample_mode(sh[k]))} for k in SHAPES}  # fmt: skip
    return out


def run(v) -> None:
    """Add the toy's rows (one per particle and shape) to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    sec = v.cfg.get("shower_shapes", {})
    c = v.cfg.get("strip_crosstalk", {})
    if not sec.get("enabled", True) or not c.get("enabled", True):
        return
    from calo_calib.validation import shower_shapes as ss

    mu = float(sec.get("mu_target", 40))
    by_key = {smp.key: smp for smp in ss.samples(v.cfg)}
    n = 300 if v.cfg.quick else int(c.get("n", 2000))
    values = [float(x) for x in c.get("crosstalk", [0.04, 0.08])]
    out = {}
    for k, particle in enumerate(c.get("particles", ["electron", "photon_unconv"])):
        key = ss.sample_key(particle, mu)
        if key not in by_key:
            continue
        r = toy(by_key[key].overrides, n, values, int(v.cfg.seed) + SEED_OFFSET + k)
        out[particle] = r
        for name in SHAPES:
            v.row(
                SECTION, f"{name} mean, {particle}, ⟨μ⟩ = {mu:g}: cross-talk c = " + " / ".join(f"{x:g}" for x in r),
                " / ".join(f"{r[x][name]['mean']:.3f}" for x in r),
                "ATLAS strip cross-talk a few to 8 % [R] (physics_cells.md §1f)",
                "toy: nearest-neighbour η cross-talk on the same clusters", INFO,
                "medians " + " / ".join(f"{r[x][name]['median']:.3f}" for x in r)
                + "; peaks " + " / ".join(f"{r[x][name]['peak']:.3f}" for x in r) + f"; {n} clusters",
            )  # fmt: skip
    v.results["strip_crosstalk"] = out


def samples(cfg) -> list:
    """No report samples: the toy simulates its own clusters."""
    return []
