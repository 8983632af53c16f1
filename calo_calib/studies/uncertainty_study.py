"""Per-cluster uncertainty study: pulls and coverage per (E, |η|) bin of a ``loss=gaussian_nll`` network.

    python -m calo_calib.studies.uncertainty_study run_dir=runs/electron/transformer-gaussian_nll/20261123-101500
    python -m calo_calib.studies.uncertainty_study particle=electron model=transformer trainer.epochs=12   # trains first
    python -m calo_calib.studies.uncertainty_study run_dir=<dir> data=/path/test     # on another labelled test set

(``python experiments/uncertainty_study.py ...`` is the same command.) The study's own options are
``conf/uncertainty_study.yaml`` (``run_dir``, ``data``, ``out``). With ``run_dir=`` the run's
calibration is applied to its test split (or to ``data=<dataset dir>``); otherwise a network is
trained with ``loss=gaussian_nll`` through :func:`calo_calib.pipeline.train_and_evaluate` (every other
argument is a run override; run directory under ``$CALO_CALIB_RUNS/uncertainty_study/<time>``).
Writes into ``out=`` (default ``<run_dir>/uncertainty_study``):
``uncertainty.json`` and ``uncertainty.md`` (pull mean, std, IQR/1.349, ±1σ/±2σ coverage with
binomial errors, median predicted σ next to the measured σ_rel, inclusive and per (|η|, E_true) bin),
``plots/pulls.png``, ``plots/coverage_vs_e.png``, ``plots/sigma_pred_vs_e.png``. Definitions:
:mod:`calo_calib.evaluation.uncertainty`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from calo_calib.studies.cli import parse_command_line, study_errors


def study(run_dir: Path, data: str | None, out: Path) -> dict[str, Any]:
    """Apply the run's calibration to ``data`` (default: its test split) and write the pull/coverage report."""
    from calo_calib.calibration import load_run
    from calo_calib.evaluation import predictions as P
    from calo_calib.evaluation import uncertainty as U

    calib = load_run(run_dir)
    cfg = calib.cfg
    test = cfg.data.get("test")
    if data:
        paths = [data]
    elif test:
        paths = [str(test)] if isinstance(test, str) else [str(p) for p in test]
    else:  # the default dataset's test split
        paths = [str(Path(str(cfg.data.root)) / calib.particle / "test")]
    prediction, dataset = calib.apply(paths)
    if prediction.sigma is None:
        raise SystemExit(f"uncertainty_study: error: {run_dir} was trained with loss={cfg.loss.name}: no per-cluster sigma "
                         "(train with loss=gaussian_nll)")  # fmt: skip
    table = P.build_predictions(
        dataset.scalar_table(list(P.TRUTH_COLUMNS)), prediction.row_id, prediction.correction, calib.name
    )
    table = U.add_sigma_column(table, prediction.row_id, prediction.sigma)
    report, pngs = U.write_uncertainty(table, calib.name, out, min_count=int(cfg.evaluation.min_count))
    inc = report["inclusive"]
    print(f"{calib.name} {calib.particle}: {inc['n']} clusters from {', '.join(paths)}; pull mean {inc['mean']:.3f}, "
          f"std {inc['std']:.3f}, IQR/1.349 {inc['robust_std']:.3f}; coverage ±1σ {100 * inc['coverage_1sigma']:.1f}% "
          f"(68.3), ±2σ {100 * inc['coverage_2sigma']:.1f}% (95.4)")  # fmt: skip
    print(f"written: {out / 'uncertainty.md'}, {out / 'uncertainty.json'}, " + ", ".join(str(p) for p in pngs))
    return report


def run_study(cfg: DictConfig, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """For a composed ``conf/uncertainty_study.yaml``: the given run, or train one with the run ``overrides``."""
    if cfg.run_dir:
        if overrides:
            raise SystemExit(
                f"uncertainty_study: error: with run_dir= the run's own config is used; unexpected {list(overrides)}"
            )
        run_dir = Path(str(cfg.run_dir))
    else:
        from calo_calib.config import compose_run_config
        from calo_calib.pipeline import train_and_evaluate

        run_cfg = compose_run_config(["loss=gaussian_nll", *overrides])
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = (
            Path(os.environ.get("CALO_CALIB_RUNS", "runs"))
            / "uncertainty_study"
            / f"{run_cfg.particle.name}-{run_cfg.model.name}-{stamp}"
        )
        train_and_evaluate(run_cfg, run_dir)
    return study(run_dir, str(cfg.data) if cfg.data else None, Path(str(cfg.out or run_dir / "uncertainty_study")))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line (module docstring); returns the uncertainty report."""
    cfg, overrides = parse_command_line("uncertainty_study", __doc__, argv, pass_through=True)
    with study_errors("uncertainty_study", "conf/run.yaml"):
        return run_study(cfg, overrides)


if __name__ == "__main__":
    main()
