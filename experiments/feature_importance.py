#!/usr/bin/env python
"""Feature importance of a trained network calibration: permutation importance and layer ablation.

    python experiments/feature_importance.py run=runs/electron/transformer-pull_huber/20261123-101500
    python experiments/feature_importance.py run=<dir> test=/path/test max_clusters=50000 repeats=5 out=/tmp/imp
    python experiments/feature_importance.py run=<dir> bdt=auto      # + XGBoost gain of the run's reference BDT

Arguments (``key=value``): ``run`` (required; a transformer or gnn_edge run directory), ``test``
(dataset dir or .parquet; default the run's test split), ``max_clusters`` (first N selected test
clusters, default 20000), ``batch_size`` (clusters per forward pass, default the run's
``data.eval_batch_size``; lower it for ``gnn_edge`` on a small machine), ``repeats`` (permutations per input, default 3), ``seed`` (default the run's
seed), ``n_boot`` (paired-bootstrap resamples, default 50), ``device`` (cpu | cuda | auto, default
auto), ``bdt`` (a model=bdt run directory, ``auto`` = the run's reference BDT from its metrics.json,
or ``none``, default), ``out`` (default ``<run>/importance``), ``progress`` (true | false).

A ``run`` that is itself a BDT run gets only the XGBoost gain table. Writes ``importance.json``,
``importance.md``, ``plots/importance_bars.png``, ``plots/importance_heatmap.png`` (and
``plots/bdt_gain.png``). Method and caveats: :mod:`calo_calib.studies.importance`, ``docs/studies.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

KEYS = ("run", "test", "max_clusters", "batch_size", "repeats", "seed", "n_boot", "device", "bdt", "out", "progress")


def parse(argv: list[str]) -> dict[str, str]:
    """``key=value`` arguments -> dict; unknown keys, missing ``=`` or a missing ``run`` raise SystemExit."""
    out: dict[str, str] = {}
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not eq or key not in KEYS:
            raise SystemExit(
                f"feature_importance: error: bad argument {arg!r}; expected key=value with key in {list(KEYS)}"
            )
        out[key] = value
    if not out.get("run"):
        raise SystemExit("feature_importance: error: run=<trained run directory> is required")
    return out


def _int(args: dict[str, str], key: str, default: int | None, minimum: int) -> int | None:
    value = args.get(key)
    if value is None or value in ("", "null", "none"):
        return default
    try:
        n = int(value)
    except ValueError:
        raise SystemExit(f"feature_importance: error: {key}={value!r} is not an integer") from None
    if n < minimum:
        raise SystemExit(f"feature_importance: error: {key}={n} must be >= {minimum}")
    return n


def resolve_test_paths(cfg: Any, test: str | None) -> list[str]:
    """``test=`` if given, else the run's explicit ``data.test``, else its default dataset's test split."""
    if test:
        paths = [test]
    elif cfg.data.get("test"):
        value = cfg.data.test
        paths = [str(value)] if isinstance(value, str) else [str(p) for p in value]
    else:
        paths = [str(Path(str(cfg.data.root)) / str(cfg.particle.name) / "test")]
    for p in paths:
        if not Path(p).exists():
            raise SystemExit(f"feature_importance: error: test data {p} does not exist (give test=<dataset dir>)")
    return paths


def bdt_rows(run_dir: Path, bdt: str | None) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The XGBoost gain rows of the BDT run ``bdt`` (``auto``: the run's reference BDT) and its directory."""
    from calo_calib.models.bdt import BDTCalibration
    from calo_calib.studies.importance import bdt_gain_importance

    if not bdt or bdt in ("none", "null"):
        return None, None
    if bdt == "auto":
        metrics = run_dir / "metrics.json"
        ref = json.loads(metrics.read_text()).get("run", {}).get("reference_bdt_run") if metrics.exists() else None
        if not ref:
            print(f"feature_importance: no reference BDT run recorded in {metrics}: no BDT gain table")
            return None, None
        bdt = ref
    path = Path(bdt) / "bdt"
    if not path.is_dir():
        raise SystemExit(f"feature_importance: error: {bdt} is not a BDT run directory ({path} is missing)")
    return bdt_gain_importance(BDTCalibration.load(path)), str(bdt)


def main(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    import torch

    from calo_calib.calibration import load_calibration, load_run_config
    from calo_calib.studies import importance as I
    from calo_calib.studies.importance_report import write_importance

    run_dir = Path(args["run"])
    out = Path(args.get("out") or run_dir / "importance")
    progress = args.get("progress", "true").lower() not in ("false", "0", "no")
    cfg = load_run_config(run_dir)
    title = f"{cfg.particle.name}, {cfg.model.name}"
    if cfg.model.kind == "bdt":  # no network to perturb: the gain table only
        gain, _ = bdt_rows(run_dir, str(run_dir))
        result = {"run_dir": str(run_dir), "model": "bdt", "bdt_gain": gain}
        from calo_calib.evaluation.report import write_metrics

        write_metrics(result, out / "importance.json")
        from calo_calib.studies.importance_report import plot_bdt_gain

        png = plot_bdt_gain(gain, out / "plots" / "bdt_gain.png", title)
        print(f"BDT run: XGBoost gain only; written {out / 'importance.json'}, {png}")
        return result
    device = args.get("device", "auto")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    calib = load_calibration(run_dir, device=device)
    paths = resolve_test_paths(cfg, args.get("test"))
    sample = I.load_sample(
        calib, paths, max_clusters=_int(args, "max_clusters", 20000, 1), batch_size=_int(args, "batch_size", None, 1)
    )
    gain, bdt_dir = bdt_rows(run_dir, args.get("bdt"))
    result = I.feature_importance(
        calib.model,
        sample,
        repeats=_int(args, "repeats", 3, 1),
        seed=_int(args, "seed", int(cfg.seed), 0),
        n_boot=_int(args, "n_boot", 50, 0),
        min_count=int(cfg.evaluation.min_count),
        device=device,
        progress=progress,
    )
    result = {"run_dir": str(run_dir), "model": str(cfg.model.name), "particle": str(cfg.particle.name),
              "test": paths, "bdt_run": bdt_dir, **result}  # fmt: skip
    written = write_importance(result, out, gain, title)
    print(f"{title}: {sample.n_clusters} clusters, nominal sigma_rel {100 * result['nominal']['sigma_rel']:.3f}%")
    ranked = sorted(result["inputs"], key=lambda e: -e["importance"] if e["importance"] == e["importance"] else 1e9)
    for e in ranked[:8]:
        print(f"  {e['label']:<28} {100 * e['importance']:+7.2f} % (± {100 * e['err_stat']:.2f} stat)")
    print("written: " + ", ".join(str(p) for p in written.values()))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
