"""Simulate nominal and every data-like detector variant with the same seed; tabulate the shifts.

Usage::

    python -m calo_calib.studies.detector_variants particle=electron n_clusters=5000 out=/tmp/variants
    python -m calo_calib.studies.detector_variants out=/tmp/v gun.spectrum=fixed gun.e_min=50 variants=[material_up,shower_width]

(``python experiments/detector_variants.py ...`` is the same command.) The study's options are
``conf/detector_variants.yaml``: ``out`` (required) is the output directory and ``variants`` a list
(``[a,b]``, or ``a,b`` as before; default: every ``conf/detector/*.yaml`` except nominal); every other
argument is a Hydra override of ``conf/simulate.yaml`` (``particle``, ``n_clusters``, ``seed``, ``mu``,
``gun.*``, ...) applied to nominal and to each variant alike (``detector=`` is set by the study).

Writes to ``out``: ``detector_variants.json`` (per-variant measured properties, shifts vs nominal
with standard errors, and the provenance), ``detector_variants.md`` (the tables) and two PNGs:
``detector_variants_shifts.png`` (the main shifts per variant) and ``detector_variants_response.png``
(response distributions). Quantities are defined in :mod:`calo_calib.validation.detector_shifts`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from omegaconf import DictConfig
from tqdm import tqdm

from calo_calib.config import group_options
from calo_calib.io.atomic import write_json_atomic, write_text_atomic
from calo_calib.provenance import git_commit
from calo_calib.simulation import compose_config, simulate_table
from calo_calib.simulation.material import ConfigError
from calo_calib.studies.cli import as_list, parse_command_line, study_errors
from calo_calib.validation.detector_shifts import middle_layer_shape, sample_summary
from calo_calib.validation.metrics import bootstrap_error, median_response, sigma_rel

N_BOOTSTRAP = 200
CHUNK = 950  # clusters per chunk: below the simulator's 1000-particle batch, so a chunk is one batch
PAIR_KEYS = ("truth_e", "truth_eta", "truth_phi")
E_WEIGHTED = ("r_phi", "frac_outside_3x3")  # paired differences averaged with weight E_true

# Per-cluster quantities compared pair by pair (name -> function of the table's columns).
PER_CLUSTER = ("response", "ps_over_true", "lost_upstream_over_true", "frac_l1", "frac_l2", "frac_l3", "r_phi",
               "frac_outside_3x3")  # fmt: skip


def resolve_variants(variants: str | Sequence[str] | None) -> list[str]:
    """The variant names to simulate: the given ones (checked), or every ``conf/detector/*.yaml`` but nominal."""
    available = [name for name in group_options("detector") if name != "nominal"]
    names = as_list(variants) if variants is not None else available
    unknown = [v for v in names if v not in available]
    if unknown:
        raise ConfigError(f"variants: unknown {unknown}; available: {available}")
    return names


def check_overrides(overrides: Sequence[str]) -> list[str]:
    """The simulate overrides, checked: ``key=value`` each, and no ``detector=`` (set per detector)."""
    for arg in overrides:
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r}: expected key=value (e.g. out=/tmp/variants particle=electron)")
        if arg.split("=", 1)[0].lstrip("+~") == "detector":
            raise ConfigError("detector= is set by the script for nominal and each variant; use variants=[a,b]")
    return list(overrides)


def simulate_chunks(cfg: DictConfig, n: int, seed: int) -> pa.Table:
    """``n`` clusters in chunks of :data:`CHUNK`, chunk k seeded by ``SeedSequence(seed).spawn(.)[k]``.

    Every detector starts each chunk from the same random state and draws its particles (gun)
    first, so nominal and a variant simulate the same particles: clusters can be paired by their
    truth kinematics, which removes the particle-to-particle spread from the comparison.
    """
    seeds = np.random.SeedSequence(seed).spawn(math.ceil(n / CHUNK))
    return pa.concat_tables(simulate_table(cfg, min(CHUNK, n - k * CHUNK), s) for k, s in enumerate(seeds))


def per_cluster(table: pa.Table) -> dict[str, np.ndarray]:
    """The per-cluster quantities of :data:`PER_CLUSTER`, each (n,)."""
    col = {
        name: table.column(name).to_numpy().astype(np.float64)
        for name in table.column_names
        if not name.startswith("cell_") and name != "particle"
    }
    out = {
        "response": col["cluster_e"] / col["truth_e"],
        "ps_over_true": col["cluster_e_ps"] / col["truth_e"],
        "lost_upstream_over_true": col["truth_e_lost_upstream"] / col["truth_e"],
        **middle_layer_shape(table),
    }
    for name in ("l1", "l2", "l3"):
        out[f"frac_{name}"] = col[f"cluster_e_{name}"] / col["cluster_e"]
    return out


def pair_index(nominal: pa.Table, variant: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (i_nominal, i_variant) of the clusters of the same generated particle."""
    keys = [tuple(row) for row in zip(*(nominal.column(k).to_pylist() for k in PAIR_KEYS))]
    where = {k: i for i, k in enumerate(keys)}
    pairs = [
        (where[k], j) for j, k in enumerate(zip(*(variant.column(k).to_pylist() for k in PAIR_KEYS))) if k in where
    ]
    if not pairs:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    i, j = np.array(pairs).T
    return i, j


def shift_row(nom_t: pa.Table, var_t: pa.Table, nom: dict, var: dict) -> dict[str, Any]:
    """Shifts of one variant versus nominal with standard errors, from the paired clusters.

    Per-cluster quantities: the mean of the paired differences (x 100: in %) and its standard error;
    the lateral shapes (:data:`E_WEIGHTED`) use the E_true-weighted mean.
    sigma_rel and the median response: variant / nominal and variant - nominal, bootstrap errors
    over the pairs. Noise: the ratio of the negative-cell rms (many cells: no error quoted).
    """
    i, j = pair_index(nom_t, var_t)
    a, b = per_cluster(nom_t), per_cluster(var_t)
    row: dict[str, Any] = {"n_paired": int(i.size)}
    e_true = nom_t.column("truth_e").to_numpy().astype(np.float64)[i]
    for key in PER_CLUSTER:
        d = b[key][j] - a[key][i]
        # Lateral shapes of soft clusters are mostly noise: weight them by E_true (same in a pair).
        w = e_true if key in E_WEIGHTED else np.ones_like(d)
        ok = np.isfinite(d)
        d, w = d[ok], w[ok]
        mean = float(np.sum(w * d) / np.sum(w)) if d.size else float("nan")
        err = float(np.sqrt(np.sum(w**2 * (d - mean) ** 2)) / np.sum(w)) if d.size > 1 else float("nan")
        row[key] = {"value": 100 * mean, "err": 100 * err}
    ra, rb = a["response"][i], b["response"][j]
    pairs = np.stack([ra, rb], axis=1)

    def ratio_sigma(x: np.ndarray) -> float:
        return sigma_rel(x[:, 1]) / sigma_rel(x[:, 0])

    def diff_median(x: np.ndarray) -> float:
        return median_response(x[:, 1]) - median_response(x[:, 0])

    row["sigma_rel"] = {"value": ratio_sigma(pairs), "err": bootstrap_error(ratio_sigma, pairs, N_BOOTSTRAP, 0)}
    row["median_response"] = {
        "value": 100 * diff_median(pairs),
        "err": 100 * bootstrap_error(diff_median, pairs, N_BOOTSTRAP, 0),
    }
    for layer in ("l1", "l2"):
        key = f"noise_rms_{layer}"
        row[key] = {"value": var[key] / nom[key], "err": float("nan")}
    return row


# (key, heading, how): "abs%" = difference in %, "ratio" = variant / nominal.
TABLE_COLUMNS = (
    ("response", "Δ mean E/E_true [%]", "abs%"),
    ("median_response", "Δ median E/E_true [%]", "abs%"),
    ("sigma_rel", "σ_rel: variant / nominal", "ratio"),
    ("ps_over_true", "Δ E_PS/E_true [%]", "abs%"),
    ("lost_upstream_over_true", "Δ E_lost,up/E_true [%] (truth)", "abs%"),
    ("frac_l1", "Δ f_L1 [%]", "abs%"),
    ("frac_l2", "Δ f_L2 [%]", "abs%"),
    ("frac_l3", "Δ f_L3 [%]", "abs%"),
    ("r_phi", "Δ R_phi [%] (E-weighted)", "abs%"),
    ("frac_outside_3x3", "Δ L2 fraction outside 3x3 [%] (E-weighted)", "abs%"),
    ("noise_rms_l2", "L2 noise rms: variant / nominal", "ratio"),
    ("noise_rms_l1", "L1 noise rms: variant / nominal", "ratio"),
)


def _fmt(cell: dict[str, float], how: str) -> str:
    """``value ± err`` (signed for differences, plain for ratios)."""
    value = f"{cell['value']:.3f}" if how == "ratio" else f"{cell['value']:+.2f}"
    if not np.isfinite(cell["err"]):
        return value
    return f"{value} ± {cell['err']:.3f}" if how == "ratio" else f"{value} ± {cell['err']:.2f}"


def markdown(result: dict[str, Any]) -> str:
    """The shift table and the absolute-values table as markdown."""
    lines = [
        "# Data-like detector variants: shifts versus nominal",
        "",
        f"Sample: `{' '.join(result['overrides']) or '(simulate.yaml defaults)'}`, {result['n_clusters']} clusters per "
        f"detector, seed {result['seed']} (same for all), commit `{result['commit']}`. Shifts are means of "
        "differences between clusters of the same generated particle (paired by truth E, η, φ; `n_paired`), with "
        "statistical standard errors (bootstrap over the pairs for the median and σ_rel). Definitions: "
        '`calo_calib/validation/detector_shifts.py`; variants: `docs/simulation.md`, "Data-like detector variants".',
        "",
        "| variant | n_paired | " + " | ".join(h for _, h, _ in TABLE_COLUMNS) + " |",
        "|---|---|" + "---|" * len(TABLE_COLUMNS),
    ]
    for name, row in result["shifts"].items():
        cells = " | ".join(_fmt(row[k], how) for k, _, how in TABLE_COLUMNS)
        lines.append(f"| {name} | {row['n_paired']} | {cells} |")
    keys = [
        "mean_response", "median_response", "sigma_rel", "ps_over_true", "lost_upstream_over_true",
        "frac_ps", "frac_l1", "frac_l2", "frac_l3", "r_phi", "frac_outside_3x3", "noise_rms_ps", "noise_rms_l1",
        "noise_rms_l2", "noise_rms_l3", "mean_cell_noise", "mean_n_cells",
    ]  # fmt: skip
    lines += ["", "## Measured values", "", "| detector | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, summary in result["summaries"].items():
        lines.append(f"| {name} | " + " | ".join(f"{summary[k]:.4g}" for k in keys) + " |")
    lines += [
        "",
        "Noise rms: rms of the negative cell energies per layer [GeV] (signals are >= 0); mean_cell_noise: the "
        "clustering noise σ_tot at the reference <mu> [GeV]; lost_upstream_over_true is simulation truth.",
        "",
    ]
    return "\n".join(lines)


def plot_shifts(result: dict[str, Any], path: Path) -> None:
    """Horizontal bars of the main shifts, one panel per quantity, variants on the y axis."""
    import matplotlib.pyplot as plt

    from calo_calib.plotting.style import label, save_png, use_style

    use_style()
    panels = [
        ("response", "Δ mean E$_{cluster}$/E$_{true}$ [%]", 0.0),
        ("sigma_rel", "σ$_{rel}$ variant / nominal", 1.0),
        ("ps_over_true", "Δ E$_{PS}$/E$_{true}$ [%]", 0.0),
        ("frac_l3", "Δ back-layer fraction [%]", 0.0),
        ("frac_outside_3x3", "Δ L2 energy fraction outside 3×3 [%] (E-weighted)", 0.0),
        ("noise_rms_l2", "L2 noise rms variant / nominal", 1.0),
    ]
    names = list(result["shifts"])
    y = np.arange(len(names))
    fig, axes = plt.subplots(2, 3, figsize=(16, 9), sharey=True)
    for ax, (key, xlabel, ref) in zip(axes.ravel(), panels):
        vals = np.array([result["shifts"][n][key]["value"] for n in names])
        errs = np.array([result["shifts"][n][key]["err"] for n in names])
        ax.barh(y, vals - ref, left=ref, xerr=np.where(np.isfinite(errs), errs, 0.0), color="tab:blue", alpha=0.7)
        ax.axvline(ref, color="black", lw=1)
        span = np.concatenate([vals - np.nan_to_num(errs), vals + np.nan_to_num(errs), [ref]])
        lo, hi = float(np.min(span)), float(np.max(span))
        pad = 0.12 * (hi - lo) if hi > lo else 0.01
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_xlabel(xlabel, fontsize=13)
        ax.set_yticks(y, names)
        ax.tick_params(labelsize=12)
    label(axes[0, 0], "")
    axes[0, 2].set_title(result["title"], loc="right", fontsize=12)
    fig.tight_layout()
    save_png(fig, path)


def plot_responses(result: dict[str, Any], responses: dict[str, np.ndarray], path: Path) -> None:
    """E_cluster/E_true of each variant against nominal, one panel per variant (the peak region)."""
    import matplotlib.pyplot as plt

    from calo_calib.plotting.style import label, save_png, use_style

    use_style()
    names = [n for n in responses if n != "nominal"]
    lo, hi = np.percentile(responses["nominal"], [3.0, 99.0])
    bins = np.linspace(lo, hi, 45)
    ncol = 3
    nrow = max(1, math.ceil(len(names) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(16, 4.8 * nrow), sharex=True, squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(names):
            ax.set_visible(False)
            continue
        ax.hist(responses["nominal"], bins=bins, histtype="step", density=True, color="black", lw=2, label="nominal")
        ax.hist(responses[names[k]], bins=bins, histtype="step", density=True, color="tab:red", lw=1.6, label=names[k])
        ax.set_xlabel("E$_{cluster}$ / E$_{true}$", fontsize=13)
        ax.set_ylabel("normalised clusters / bin", fontsize=12)
        ax.legend(fontsize=11, loc="upper left")
    label(axes[0, 0], "")
    axes[0, ncol - 1].set_title(result["title"], loc="right", fontsize=12)
    fig.tight_layout()
    save_png(fig, path)


def run(out: Path, variants: Sequence[str], overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Simulate nominal and ``variants`` with the simulate ``overrides``, measure, write into ``out``.

    Returns the JSON-ready result (also written): ``shifts`` and ``summaries`` per detector, provenance.
    """
    variants, overrides = resolve_variants(variants), check_overrides(overrides)
    configs = {name: compose_config([f"detector={name}", *overrides]) for name in ["nominal", *variants]}
    ref = configs["nominal"]
    n, seed = int(ref.n_clusters), int(ref.seed)
    tables, summaries, responses = {}, {}, {}
    t0 = time.perf_counter()
    for name, cfg in tqdm(configs.items(), desc="detectors", unit="det"):
        tables[name] = simulate_chunks(cfg, n, seed)
        summaries[name] = sample_summary(tables[name])
        responses[name] = per_cluster(tables[name])["response"]
    nom = summaries["nominal"]
    result: dict[str, Any] = {
        "commit": git_commit(),
        "overrides": overrides,
        "particle": str(ref.particle.name),
        "n_clusters": n,
        "seed": seed,
        "seconds": round(time.perf_counter() - t0, 1),
        "title": f"{ref.particle.name}, {n} clusters/detector",
        "shifts": {name: shift_row(tables["nominal"], tables[name], nom, summaries[name]) for name in variants},
        "summaries": summaries,
        "variant_config": {name: _changed(configs[name].detector, ref.detector) for name in variants},
    }
    write_json_atomic(out / "detector_variants.json", result)
    write_text_atomic(out / "detector_variants.md", markdown(result))
    plot_shifts(result, out / "detector_variants_shifts.png")
    plot_responses(result, responses, out / "detector_variants_response.png")
    print(f"wrote {out}/detector_variants.{{json,md}} and 2 PNGs in {result['seconds']} s")
    return result


def _changed(det: DictConfig, nominal: DictConfig) -> dict[str, Any]:
    """The detector keys (dotted) whose value differs from nominal: what the variant changes."""
    from omegaconf import OmegaConf

    def flat(node, prefix=""):
        items = {}
        for key, value in (node or {}).items():
            path = f"{prefix}{key}"
            items.update(flat(value, f"{path}.") if isinstance(value, dict) else {path: value})
        return items

    a, b = flat(OmegaConf.to_container(det)), flat(OmegaConf.to_container(nominal))
    return {k: v for k, v in a.items() if b.get(k) != v}


def study(cfg: DictConfig, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Run the study for a composed ``conf/detector_variants.yaml`` and the simulate ``overrides``."""
    from omegaconf import OmegaConf

    if OmegaConf.is_missing(cfg, "out") or not cfg.out:
        raise ConfigError("out=<directory> is required")
    return run(Path(str(cfg.out)), cfg.variants, overrides)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line (module docstring): own options composed by Hydra, the rest simulate overrides."""
    cfg, overrides = parse_command_line("detector_variants", __doc__, argv, pass_through=True, list_keys=("variants",))
    with study_errors("detector_variants", "conf/simulate.yaml"):
        return study(cfg, overrides)


if __name__ == "__main__":
    main()
