"""Hydra callbacks that finish an experiment after its sweep: compare the runs, scan the pile-up.

Configured in ``conf/experiment/*.yaml`` under ``hydra.callbacks``; they run in the process that
launched the multirun, once every job has finished (Hydra does not call them when a job failed:
the sweep's error is reported instead, and ``python -m calo_calib.compare <sweep dir>`` can still
be run on what finished).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from calo_calib.config import config_file

log = logging.getLogger(__name__)


def finished_runs(sweep_dir: Path) -> dict[str, list[Path]]:
    """Run directories of a sweep that finished, grouped by particle, in path order.

    Read with :func:`calo_calib.comparison.loading.load_runs` (the comparison's own reader); job directories it
    cannot read (failed jobs) are logged with the reason and left out.
    """
    from calo_calib.comparison.loading import load_runs

    loaded = load_runs([sweep_dir])
    for bad in loaded.unreadable:
        log.warning("not in the pile-up scan: %s: %s", bad.path, bad.reason)
    groups: dict[str, list[Path]] = {}
    for run in loaded.runs:
        groups.setdefault(run.particle, []).append(Path(run.run_dir))
    return groups


class CompareAfterSweep(Callback):
    """``python -m calo_calib.compare <sweep dir>`` at the end of the sweep: ranking and plots in
    ``<sweep dir>/comparison``."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from calo_calib.comparison.cli import main as compare_main

        sweep_dir = Path(str(config.hydra.sweep.dir))
        log.info("comparing the runs of %s", sweep_dir)
        compare_main([str(sweep_dir), "--out", str(sweep_dir / "comparison")])


class PileupScanAfterSweep(Callback):
    """Evaluate every finished run of the sweep on test sets simulated at each ⟨μ⟩ of ``mus``
    (the pile-up study of :mod:`calo_calib.studies.pileup_study`), per particle, into ``<sweep dir>/pileup/<particle>``.

    Args:
        mus: ⟨μ⟩ values of the test sets.
        n_clusters: test clusters per ⟨μ⟩.
        overrides: further ``conf/pileup_study.yaml`` settings (n_boot, workers, device, ...).
    """

    def __init__(self, mus: list[float], n_clusters: int = 5000, **overrides: Any) -> None:
        self.mus = [float(m) for m in mus]
        self.n_clusters = int(n_clusters)
        self.overrides = overrides

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from calo_calib.studies.pileup_study import study

        sweep_dir = Path(str(config.hydra.sweep.dir))
        base = config_file("pileup_study")
        for particle, runs in finished_runs(sweep_dir).items():
            cfg = OmegaConf.merge(
                base,
                {"runs": [str(r) for r in runs], "mus": self.mus, "n_clusters": self.n_clusters,
                 "out": str(sweep_dir / "pileup" / particle), "progress": False},
                self.overrides,
            )  # fmt: skip
            log.info("pile-up scan of %d %s run(s) at <mu> = %s", len(runs), particle, self.mus)
            study(cfg)
