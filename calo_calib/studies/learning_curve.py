"""Learning curve versus training-set size: is a network data-, step- or capacity-limited?

    python -m calo_calib.studies.learning_curve particle=electron                # default data, 4 sizes
    python -m calo_calib.studies.learning_curve particle=electron sizes=[5000,20000] steps=2000 loss=pull_mse

(``experiments/learning_curve.py`` is the same command.) The study's own options are
``conf/learning_curve.yaml`` (``sizes``, ``steps``, ``out``); every other argument is a run override.

Trains the same network (any run overrides) on the first N selected training clusters for each N in
``sizes`` (default: 1/8, 1/4, 1/2 and all of the training split), every time for the same number of
optimiser ``steps`` (default: what ``trainer.epochs`` epochs of the full split take), so that only
the amount of distinct data changes. The test σ_rel of each is written with the BDT's, when one was
trained on the same test data, to ``<out>/learning_curve.{json,png}`` (default ``out`` =
``runs/learning_curve/<particle>/<time>``).

Reading it: σ_rel still falling at the largest N -> data-limited (simulate more, ``scale=``);
flat in N while each run's own curve (``plots/learning_curve.png``) still falls at its end ->
step-limited (train longer); flat in both -> capacity- or input-limited (a larger model, other inputs).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from omegaconf import DictConfig

from calo_calib.io.atomic import write_text_atomic
from calo_calib.plotting.style import label, save_png, use_style
from calo_calib.provenance import git_commit, machine_info
from calo_calib.studies.cli import as_list, parse_command_line, study_errors


def study(own: DictConfig, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Train at each size of a composed ``conf/learning_curve.yaml`` with the run ``overrides``; write the report.

    Returns the report: per size ``n_train``, ``epochs``, ``steps`` and the test σ_rel (fraction).
    """
    from calo_calib.calibration import run_calibration_class
    from calo_calib.config import compose_run_config
    from calo_calib.formatting import jsonable
    from calo_calib.pipeline import resolve_splits, train_and_evaluate

    overrides = list(overrides)
    base = compose_run_config(["compare_to=auto", *overrides])
    if not run_calibration_class(base).is_network:
        raise SystemExit(f"learning_curve: model={base.model.name} is not a network")
    splits = resolve_splits(base)
    probe = _n_train(base, splits)
    sizes = [int(s) for s in as_list(own.sizes)] if own.sizes is not None else [probe // 8, probe // 4, probe // 2, probe]
    batch = int(base.data.batch_size)
    steps = int(own.steps) if own.steps is not None else math.ceil(probe / batch) * int(base.trainer.epochs)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(str(own.out or Path(os.environ.get("CALO_CALIB_RUNS", "runs")) / "learning_curve" / str(base.particle.name) / stamp))
    records = []
    for n in sizes:
        steps_per_epoch = max(1, math.ceil(min(n, probe) / batch))
        epochs = max(1, math.ceil(steps / steps_per_epoch))
        cfg = compose_run_config([
            "compare_to=auto", *overrides, f"data.max_train_clusters={n}", f"trainer.epochs={epochs}",
            f"trainer.patience={epochs}",  # the same step budget for every size: no early stop
        ])  # fmt: skip
        metrics = train_and_evaluate(cfg, out / f"n{n}")
        inc = metrics["inclusive"]
        name = str(cfg.model.name)
        records.append({
            "n_train": metrics["run"]["training"]["n_train"], "epochs": epochs, "steps": epochs * steps_per_epoch,
            "sigma_rel": inc[name]["sigma_rel"], "sigma_rel_err": inc[name]["sigma_rel_err"],
            "sigma_rel_bdt": inc.get("bdt", {}).get("sigma_rel"), "sigma_rel_oracle": inc["oracle"]["sigma_rel"],
            "learning_curve": metrics["run"]["training"].get("learning_curve"),
        })  # fmt: skip
        print(f"n_train {records[-1]['n_train']}: sigma_rel {100 * records[-1]['sigma_rel']:.3f} %", flush=True)
    report = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), **machine_info(), "commit": git_commit(),
        "particle": str(base.particle.name), "model": str(base.model.name), "loss": str(base.loss.name),
        "overrides": overrides, "records": records,
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "learning_curve.json", json.dumps(jsonable(report), indent=2))
    _plot(report, out / "learning_curve.png")
    print(f"wrote {out}/learning_curve.json and .png")
    return report


def _n_train(cfg: DictConfig, splits: dict[str, Any]) -> int:
    from calo_calib.calibration import make_dataset

    max_train = cfg.data.max_train_clusters
    return len(make_dataset(cfg, splits["train"], max_clusters=int(max_train) if max_train else None, training=True))


def _plot(report: dict, png: Path) -> None:
    use_style()
    fig, ax = plt.subplots(figsize=(8, 6))
    rec = report["records"]
    n = [r["n_train"] for r in rec]
    ax.errorbar(n, [100 * r["sigma_rel"] for r in rec], yerr=[100 * r["sigma_rel_err"] for r in rec],
                marker="o", color="tab:red", label=report["model"], capsize=2)  # fmt: skip
    for key, style, name in (("sigma_rel_bdt", "-", "BDT (all data)"), ("sigma_rel_oracle", "--", "oracle")):
        values = [r[key] for r in rec if r.get(key) is not None]
        if values:
            ax.axhline(100 * values[-1], color="tab:blue" if key.endswith("bdt") else "black", linestyle=style, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("training clusters")
    ax.set_ylabel(r"$\sigma_\mathrm{rel}$ (test) [%]")
    ax.legend(frameon=False)
    label(ax, f"{report['particle']}, same optimiser steps")
    save_png(fig, png)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line (module docstring): own options composed by Hydra, the rest run overrides."""
    cfg, overrides = parse_command_line("learning_curve", __doc__, argv, pass_through=True, list_keys=("sizes",))
    with study_errors("learning_curve", "conf/run.yaml"):
        return study(cfg, overrides)


if __name__ == "__main__":
    main()
