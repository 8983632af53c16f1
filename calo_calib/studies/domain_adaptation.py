"""Domain-adversarial training against detector variants: does it make an MC-trained calibration transfer?

    python -m calo_calib.studies.domain_adaptation particle=electron variants=[material_up,shower_width]
    python -m calo_calib.studies.domain_adaptation particle=electron variants=[material_up] n_train=2000 n_test=2000 \\
        trainer.epochs=3 data.train=/scratch/e_train data.val=/scratch/e_val data.test=/scratch/e_test

(``python experiments/domain_adaptation.py ...`` is the same command.) The study's own options are
``conf/domain_adaptation.yaml`` (``variants``, ``n_train``, ``n_test``, ``data_root``, ``out``, ``bdt``).

For one particle and a list of detector variants (``conf/detector/<variant>.yaml``: material_up,
material_local, shower_depth, shower_width, constant_term, noise_pileup):

1. makes the data-like samples with :mod:`calo_calib.simulation.default_data` and ``overrides=[detector=<variant>]``
   under ``data_root/<variant>`` (default ``$CALO_CALIB_DATA/variants``; ``n_train`` unlabelled
   training and ``n_test`` labelled test clusters, default 10000 / 5000; complete splits are reused).
   Their seed is the make_data seed + :data:`VARIANT_SEED_OFFSET`, so they are other events than the
   default MC, not the same events through another detector;
2. trains the BDT baseline on the same MC (``bdt=false`` skips it), the network without the adversary
   once (``adversary=none``) and with it once per variant (``adversary=grl data.unlabelled=<variant>/train``),
   all with the same seed and the same MC data;
3. evaluates every calibration on the MC test split and on each variant's labelled test split (its labels
   are used only there), and writes ``domain_adaptation.{json,md}`` and ``domain_adaptation.png`` into
   ``out`` (default ``$CALO_CALIB_RUNS/domain_adaptation/<particle>-<time>``): per variant, MC σ_rel,
   data-like σ_rel and response shift without and with the adversary, the cost in MC resolution, and
   the network's gain over the BDT on MC and on the data-like sample (how much of the MC gain survives).

Every other ``key=value`` argument is a run override (``model=gnn_edge``, ``trainer.epochs=...``, ``adversary.lambda_max=...``);
``bdt.<key>=<value>`` sets ``model.<key>`` of the BDT baseline only (``bdt.num_boost_round=100``).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from calo_calib.studies.cli import as_list, parse_command_line, study_errors

VARIANT_SEED_OFFSET = 7919
"""Added to the make_data seed for every variant sample (independent events from the MC ones)."""


def make_variant_data(variant: str, particle: str, root: Path, n_train: int, n_test: int) -> dict[str, Path]:
    """The variant's train (used unlabelled) and test splits, generated once (:mod:`calo_calib.simulation.default_data`)."""
    from calo_calib.config import make_data_config
    from calo_calib.simulation.default_data import make_default_data, split_dir

    cfg = make_data_config()
    cfg.root = str(root / variant)
    cfg.particles = [particle]
    cfg.splits = {"train": n_train, "test": n_test}  # no validation split: nothing is fitted to its labels
    cfg.seed = int(cfg.seed) + VARIANT_SEED_OFFSET
    cfg.overrides = [f"detector={variant}"]
    make_default_data(cfg)
    return {s: split_dir(cfg.root, particle, s) for s in ("train", "test")}


def gain_over_bdt(sigma: float, sigma_err: float, sigma_bdt: float, sigma_bdt_err: float) -> tuple[float, float]:
    """(1 − σ/σ_BDT, its error): the relative resolution gain over the BDT on the same clusters.

    The error adds the two bootstrap errors in quadrature; both are measured on the same clusters and
    positively correlated, so this overestimates the error of the gain.
    """
    if not (sigma_bdt > 0 and math.isfinite(sigma)):
        return math.nan, math.nan
    ratio = sigma / sigma_bdt
    return 1.0 - ratio, ratio * math.hypot(sigma_err / sigma, sigma_bdt_err / sigma_bdt) if sigma > 0 else math.nan


def _row(variant: str, base: dict[str, Any], adapted: dict[str, Any], name: str, bdt: dict[str, Any] | None) -> dict[str, Any]:
    b, a = base["shift"][name], adapted["data_like"]["shift"][name]
    mc_b, mc_a = b["sigma_rel_mc"], a["sigma_rel_mc"]
    row = {
        "variant": variant,
        "sigma_rel_mc": {"none": mc_b, "grl": mc_a},
        "sigma_rel_mc_err": {"none": b["sigma_rel_mc_err"], "grl": a["sigma_rel_mc_err"]},
        "mc_cost": mc_a / mc_b - 1 if mc_b > 0 else math.nan,  # relative change of the MC resolution
        "sigma_rel_data": {"none": b["sigma_rel_data"], "grl": a["sigma_rel_data"]},
        "sigma_rel_data_err": {"none": b["sigma_rel_data_err"], "grl": a["sigma_rel_data_err"]},
        "response_shift": {"none": b["response_shift"], "grl": a["response_shift"]},
        "response_shift_err": {"none": b["response_shift_err"], "grl": a["response_shift_err"]},
        "final_disc_acc": adapted["run"]["training"].get("adversary", {}).get("final_disc_acc"),
    }
    if bdt is not None:
        t = bdt["shift"]["bdt"]
        row["bdt"] = {k: t[k] for k in ("sigma_rel_mc", "sigma_rel_mc_err", "sigma_rel_data", "sigma_rel_data_err",
                                        "response_shift", "response_shift_err")}  # fmt: skip
        gains = {
            "mc_none": gain_over_bdt(mc_b, b["sigma_rel_mc_err"], t["sigma_rel_mc"], t["sigma_rel_mc_err"]),
            "data_none": gain_over_bdt(b["sigma_rel_data"], b["sigma_rel_data_err"], t["sigma_rel_data"], t["sigma_rel_data_err"]),
            "data_grl": gain_over_bdt(a["sigma_rel_data"], a["sigma_rel_data_err"], t["sigma_rel_data"], t["sigma_rel_data_err"]),
        }
        row["gain_over_bdt"] = {k: v[0] for k, v in gains.items()}
        row["gain_over_bdt_err"] = {k: v[1] for k, v in gains.items()}
    return row


def markdown(rows: list[dict[str, Any]], particle: str, model: str) -> str:
    """The study's tables (σ_rel, response shift and gain over the BDT, in %) as markdown."""
    def pct(x: float, err: float | None = None) -> str:
        if x is None or not math.isfinite(x):
            return "–"
        return f"{100 * x:.2f}" + (f" ± {100 * err:.2f}" if err is not None and math.isfinite(err) else "")

    lines = [
        f"# Domain adaptation: {model}, {particle}",
        "",
        "σ_rel = IQR / (1.349 mean) of E_reco/E_true in %; response shift = median(E_reco/E_true) on the data-like "
        "sample − on the MC test split, in %. none = trained on MC only; grl = with the domain adversary on the "
        "variant's unlabelled clusters. MC cost = σ_rel(MC, grl) / σ_rel(MC, none) − 1.",
        "",
        "| variant | σ_rel MC none | σ_rel MC grl | MC cost [%] | σ_rel data none | σ_rel data grl | shift none | shift grl | disc. acc. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        acc = r["final_disc_acc"]
        lines.append(
            f"| {r['variant']} | {pct(r['sigma_rel_mc']['none'], r['sigma_rel_mc_err']['none'])} | "
            f"{pct(r['sigma_rel_mc']['grl'], r['sigma_rel_mc_err']['grl'])} | {pct(r['mc_cost'])} | "
            f"{pct(r['sigma_rel_data']['none'], r['sigma_rel_data_err']['none'])} | "
            f"{pct(r['sigma_rel_data']['grl'], r['sigma_rel_data_err']['grl'])} | "
            f"{pct(r['response_shift']['none'], r['response_shift_err']['none'])} | "
            f"{pct(r['response_shift']['grl'], r['response_shift_err']['grl'])} | {'–' if acc is None else f'{acc:.2f}'} |"
        )
    with_bdt = [r for r in rows if "bdt" in r]
    if with_bdt:
        lines += [
            "",
            "## How much of the MC gain survives on the data-like samples",
            "",
            "Gain = 1 − σ_rel(network) / σ_rel(BDT) on the same clusters, in %; the BDT is trained on the same MC "
            "(no adversary). Errors add the two bootstrap errors in quadrature (an overestimate: the two are "
            "correlated). Surviving = gain on data-like / gain on MC.",
            "",
            "| variant | σ_rel BDT MC | σ_rel BDT data | BDT shift | gain MC | gain data none | gain data grl | surviving none | surviving grl |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in with_bdt:
            g, ge, t = r["gain_over_bdt"], r["gain_over_bdt_err"], r["bdt"]
            survive = {k: g[f"data_{k}"] / g["mc_none"] if g["mc_none"] > 0 else math.nan for k in ("none", "grl")}
            lines.append(
                f"| {r['variant']} | {pct(t['sigma_rel_mc'], t['sigma_rel_mc_err'])} | "
                f"{pct(t['sigma_rel_data'], t['sigma_rel_data_err'])} | {pct(t['response_shift'], t['response_shift_err'])} | "
                f"{pct(g['mc_none'], ge['mc_none'])} | {pct(g['data_none'], ge['data_none'])} | "
                f"{pct(g['data_grl'], ge['data_grl'])} | {pct(survive['none'])} | {pct(survive['grl'])} |"
            )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], particle: str, path: Path) -> Path:
    """Two panels per variant: |response shift| [%] and data-like σ_rel [%], without and with the adversary."""
    import matplotlib.pyplot as plt
    import numpy as np

    from calo_calib.plotting.style import label, save_png, use_style

    use_style()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.0))
    fig.subplots_adjust(wspace=0.35)
    x = np.arange(len(rows))
    for ax, key, ylab in ((axes[0], "response_shift", "response shift on data-like sample [%]"),
                          (axes[1], "sigma_rel_data", r"$\sigma_\mathrm{rel}$ on data-like sample [%]")):  # fmt: skip
        for k, (mode, color, marker) in enumerate((("none", "tab:blue", "o"), ("grl", "tab:red", "s"))):
            y = [100 * r[key][mode] for r in rows]
            err = [100 * r[f"{key}_err"][mode] for r in rows]
            ax.errorbar(x + (k - 0.5) * 0.15, y, yerr=err, linestyle="none", marker=marker, color=color,
                        label="MC only" if mode == "none" else "with domain adversary")  # fmt: skip
        if key == "sigma_rel_data":
            ax.plot(x, [100 * r["sigma_rel_mc"]["none"] for r in rows], linestyle="none", marker="_", markersize=20,
                    color="black", label=r"$\sigma_\mathrm{rel}$ on MC (MC only)")  # fmt: skip
        else:
            ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(x, [r["variant"] for r in rows], rotation=20)
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.set_xlabel("detector variant")
        ax.set_ylabel(ylab)
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi + 0.6 * (hi - lo))
        ax.legend(loc="upper right", fontsize=9)
        label(ax, particle)
    return save_png(fig, path)


def _split_overrides(all_overrides: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """(run overrides of every run, ``adversary.*`` of the adapted runs, ``model.*`` of the BDT baseline)."""
    # adversary.* settings go to the adapted runs only (the baseline's adversary=none has no such keys)
    adversary = [o for o in all_overrides if o.startswith("adversary.")]
    common = [o for o in all_overrides if not o.startswith(("adversary", "bdt."))]
    # bdt.<key>=<value> goes to the BDT baseline only, as model.<key>=<value>
    bdt_only = ["model." + o.removeprefix("bdt.") for o in all_overrides if o.startswith("bdt.")]
    return common, adversary, bdt_only


def study(cfg: DictConfig, all_overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Run the study (module docstring) for a composed ``conf/domain_adaptation.yaml`` and run overrides.

    Every configuration is composed (and a bad override rejected) before any sample is made or
    model trained. Returns the payload written to ``domain_adaptation.json``.
    """
    # ~70 lines: one linear recipe (compose, make samples, train 2 + len(variants) runs, report), kept in one piece.
    from calo_calib.calibration import load_run
    from calo_calib.config import compose_run_config
    from calo_calib.evaluation.report import write_metrics
    from calo_calib.io.atomic import write_text_atomic
    from calo_calib.pipeline import evaluate_data_like, train_and_evaluate

    all_overrides = list(all_overrides)
    overrides, adversary_overrides, bdt_only = _split_overrides(all_overrides)
    variants = as_list(cfg.variants)
    base_cfg = compose_run_config([*overrides, "adversary=grl", *adversary_overrides])  # fails early on a bad override
    particle, model = str(base_cfg.particle.name), str(base_cfg.model.name)
    data_root = Path(str(cfg.data_root or Path(os.environ.get("CALO_CALIB_DATA", "data")) / "variants"))
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(
        str(cfg.out or Path(os.environ.get("CALO_CALIB_RUNS", "runs")) / "domain_adaptation" / f"{particle}-{stamp}")
    )
    n_train, n_test = int(cfg.n_train), int(cfg.n_test)

    if not isinstance(cfg.bdt, bool):
        raise SystemExit(f"domain_adaptation: error: bdt={cfg.bdt}: expected true or false")
    bdt_cfg = None
    if cfg.bdt:  # composed here so that a bad bdt.<key> fails before any sample is made
        bdt_overrides = [o for o in overrides if not o.startswith(("model", "loss", "trainer", "data.batch_size"))]
        bdt_cfg = compose_run_config([*bdt_overrides, "model=bdt", "adversary=none", *bdt_only])

    samples = {v: make_variant_data(v, particle, data_root, n_train, n_test) for v in variants}

    bdt_eval: dict[str, Any] = {}
    if bdt_cfg is not None:
        # Trained first: the networks' runs below find it as their BDT reference (same test split).
        print(f"training the BDT baseline on MC -> {out / 'bdt'}", flush=True)
        bdt_mc = train_and_evaluate(bdt_cfg, out / "bdt")
        bdt = load_run(out / "bdt")
        bdt_eval = {v: evaluate_data_like(bdt.cfg, bdt, [s["test"]], out / "bdt", bdt_mc, stem=f"predictions_{v}")
                    for v, s in samples.items()}  # fmt: skip

    print(f"training {model} on MC only -> {out / 'none'}", flush=True)
    mc_metrics = train_and_evaluate(compose_run_config([*overrides, "adversary=none"]), out / "none")
    baseline = load_run(out / "none")
    base_eval = {v: evaluate_data_like(baseline.cfg, baseline, [s["test"]], out / "none", mc_metrics, stem=f"predictions_{v}")
                 for v, s in samples.items()}  # fmt: skip

    rows, runs = [], {"none": str(out / "none")}
    if bdt_eval:
        runs["bdt"] = str(out / "bdt")
    for variant, sample in samples.items():
        run_dir = out / f"grl_{variant}"
        print(f"training {model} with the domain adversary on {variant} -> {run_dir}", flush=True)
        run_cfg = compose_run_config([*overrides, "adversary=grl", *adversary_overrides,
                                      f"data.unlabelled={sample['train']}", f"data.unlabelled_test={sample['test']}"])  # fmt: skip
        adapted = train_and_evaluate(run_cfg, run_dir)
        rows.append(_row(variant, base_eval[variant], adapted, model, bdt_eval.get(variant)))
        runs[f"grl_{variant}"] = str(run_dir)

    payload = {"particle": particle, "model": model, "overrides": all_overrides, "runs": runs, "rows": rows,
               "variants": {v: {k: str(p) for k, p in s.items()} for v, s in samples.items()}}  # fmt: skip
    write_metrics(payload, out / "domain_adaptation.json")
    text = markdown(rows, particle, model)
    write_text_atomic(out / "domain_adaptation.md", text)
    png = plot(rows, particle, out / "domain_adaptation.png")
    print(text)
    print(f"written: {out / 'domain_adaptation.md'}, {out / 'domain_adaptation.json'}, {png}")
    return payload


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line (module docstring): own options composed by Hydra, the rest run overrides."""
    cfg, overrides = parse_command_line("domain_adaptation", __doc__, argv, pass_through=True, list_keys=("variants",))
    with study_errors("domain_adaptation", "conf/run.yaml"):
        return study(cfg, overrides)


if __name__ == "__main__":
    main()
