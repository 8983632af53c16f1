"""Read many run directories back for comparison (what the notebooks import).

A run directory is found by its ``metrics.json``; everything here reads the run's own files, so it
works offline and without W&B.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class RunResult:
    """One finished run: where it is, what it was and its metrics.

    The last four fields are filled by :mod:`calo_calib.compare` (sweeps); :func:`find_runs` leaves
    them at their defaults.
    """

    run_dir: Path
    particle: str
    model: str
    loss: str
    metrics: dict[str, Any]
    sweep: str = ""
    """Sweep the run belongs to (``<sweep_name>/<timestamp>`` of a Hydra multirun), or a source label."""
    job: str = ""
    """Hydra job directory name (``<num>_<override_dirname>``) or W&B run name."""
    overrides: dict[str, str] = field(default_factory=dict)
    """The job's Hydra overrides, ``{key: value}`` (from ``.hydra/overrides.yaml``)."""
    created: float = 0.0
    """When the metrics were written (POSIX seconds): picks the newest of equivalent BDT references."""

    @property
    def label(self) -> str:
        return f"{self.model}-{self.loss}"

    @property
    def test_fingerprint(self) -> str | None:
        """Fingerprint of the test data (runs with equal fingerprints were evaluated on the same clusters)."""
        return (self.metrics.get("run") or {}).get("test_fingerprint")

    def sigma_rel(self, method: str | None = None) -> tuple[float, float]:
        """Inclusive σ_rel and its bootstrap error for ``method`` (default: the run's model)."""
        inc = self.metrics["inclusive"][method or self.model]
        return _num(inc["sigma_rel"]), _num(inc["sigma_rel_err"])


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def find_runs(root: str | os.PathLike[str] = "runs") -> list[RunResult]:
    """Every finished run below ``root`` (directories with a ``metrics.json``), oldest first."""
    results = []
    for path in sorted(Path(root).rglob("metrics.json"), key=lambda p: p.stat().st_mtime):
        metrics = json.loads(path.read_text())
        run = metrics.get("run") or {}
        if not run:
            continue
        results.append(RunResult(path.parent, run["particle"], run["model"], run["loss"], metrics))
    return results


def inclusive_table(runs: Sequence[RunResult]) -> str:
    """Markdown table: per run, inclusive σ_rel (%) of raw, the model, the oracle, and the ratio to the BDT."""
    lines = [
        "| particle | model | σ_rel raw (%) | σ_rel model (%) | σ_rel oracle (%) | model / BDT | run |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        raw, model, oracle = (r.sigma_rel(m) for m in ("raw", None, "oracle"))
        comp = (r.metrics.get("comparison_to_bdt") or {}).get("inclusive") or {}
        ratio = f"{_num(comp.get('ratio')):.3f} ± {_num(comp.get('ratio_err')):.3f}" if comp else "–"
        lines.append(
            f"| {r.particle} | {r.label} | {100 * raw[0]:.2f} | {100 * model[0]:.2f} ± {100 * model[1]:.2f} | "
            f"{100 * oracle[0]:.2f} | {ratio} | {r.run_dir} |"
        )
    return "\n".join(lines) + "\n"


def sigma_vs(run: RunResult, table: str = "vs_e", method: str | None = None) -> dict[str, np.ndarray]:
    """σ_rel of one method versus a binned variable: ``{"lo", "hi", "sigma_rel", "err"}`` arrays.

    Args:
        table: ``vs_e`` (true energy, GeV), ``vs_abs_eta`` or ``vs_mu``.
    """
    rows = run.metrics[table]
    var = {"vs_e": "truth_e", "vs_abs_eta": "abs_eta", "vs_mu": "mu"}[table]
    name = method or run.model
    return {
        "lo": np.array([_num(r[f"{var}_lo"]) for r in rows]),
        "hi": np.array([_num(r[f"{var}_hi"]) for r in rows]),
        "sigma_rel": np.array([_num(r[name]["sigma_rel"]) for r in rows]),
        "err": np.array([_num(r[name]["sigma_rel_err"]) for r in rows]),
    }
