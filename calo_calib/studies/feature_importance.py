"""Feature importance of a trained network calibration: permutation importance and layer ablation.

    python -m calo_calib.studies.feature_importance run=runs/electron/transformer-pull_huber/20261123-101500
    python -m calo_calib.studies.feature_importance run=<dir> test=/path/test max_clusters=50000 repeats=5 out=/tmp/imp
    python -m calo_calib.studies.feature_importance run=<dir> bdt=auto      # + XGBoost gain of the run's reference BDT

(``python experiments/feature_importance.py ...`` is the same command.) Arguments are Hydra overrides of
``conf/feature_importance.yaml`` (an unknown key is an error): ``run`` (required; a transformer or gnn_edge run directory), ``test``
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from calo_calib.studies.cli import parse_command_line, study_errors


def _int(cfg: DictConfig, key: str, default: int | None, minimum: int) -> int | None:
    """Option ``key`` as an integer >= ``minimum``; null (or ``none``) -> ``default``; else SystemExit naming it."""
    value = cfg.get(key)
    if value is None or str(value).lower() in ("", "null", "none"):
        return default
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        n = value if isinstance(value, int) else int(str(value))
    except ValueError:
        raise SystemExit(f"feature_importance: error: {key}={value!r} is not an integer") from None
    if n < minimum:
        raise SystemExit(f"feature_importance: error: {key}={n} must be >= {minimum}")
    return n


def resolve_test_paths(cfg: DictConfig, test: str | None) -> list[str]:
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
    from calo_calib.models.bdt import BDTModel
    from calo_calib.studies.importance_bdt import bdt_gain_importance

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
    return bdt_gain_importance(BDTModel.load(path)), str(bdt)


def study(args: DictConfig) -> dict[str, Any]:
    """Run the study for a composed ``conf/feature_importance.yaml``; returns the importance result.

    The result (also written as ``importance.json``) holds per input the relative σ_rel increase when
    it is permuted (``importance``, ``repeats``, ``err_stat``) and per layer the ablation's.
    """
    # ~60 lines: the BDT-only branch and the network branch share the run's config and outputs.
    if OmegaConf.is_missing(args, "run") or not args.run:
        raise SystemExit("feature_importance: error: run=<trained run directory> is required")
    import torch

    from calo_calib.calibration import load_run, load_run_config, run_calibration_class
    from calo_calib.studies.importance import feature_importance
    from calo_calib.studies.importance_report import write_importance
    from calo_calib.studies.importance_sample import load_sample

    run_dir = Path(str(args.run))
    out = Path(str(args.out or run_dir / "importance"))
    progress = str(args.progress).lower() not in ("false", "0", "no")
    cfg = load_run_config(run_dir)
    title = f"{cfg.particle.name}, {cfg.model.name}"
    if not run_calibration_class(cfg).is_network:  # no network to perturb: the gain table only
        gain, _ = bdt_rows(run_dir, str(run_dir))
        result = {"run_dir": str(run_dir), "model": "bdt", "bdt_gain": gain}
        from calo_calib.evaluation.report import write_metrics

        write_metrics(result, out / "importance.json")
        from calo_calib.studies.importance_report import plot_bdt_gain

        png = plot_bdt_gain(gain, out / "plots" / "bdt_gain.png", title)
        print(f"BDT run: XGBoost gain only; written {out / 'importance.json'}, {png}")
        return result
    device = str(args.device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    calib = load_run(run_dir, cfg, device=device)
    paths = resolve_test_paths(cfg, str(args.test) if args.test else None)
    sample = load_sample(
        calib, paths, max_clusters=_int(args, "max_clusters", 20000, 1), batch_size=_int(args, "batch_size", None, 1)
    )
    gain, bdt_dir = bdt_rows(run_dir, str(args.bdt) if args.bdt else None)
    result = feature_importance(
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


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line (module docstring); returns the importance result."""
    cfg, _ = parse_command_line("feature_importance", __doc__, argv, pass_through=False)
    with study_errors("feature_importance"):
        return study(cfg)


if __name__ == "__main__":
    main()
