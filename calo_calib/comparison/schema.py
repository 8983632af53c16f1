"""What the comparison reads from a run's ``metrics.json``: the check, the parser, the parsed run.

Every source (run directories, W&B) goes through :func:`run_from_metrics`, which checks the file
with :func:`validate_metrics` and returns a :class:`RunResult`. A file that cannot be used raises
:class:`MetricsError` naming the file and the key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calo_calib.formatting import as_float

METRICS_FILE = "metrics.json"

BINNED_TABLES: dict[str, tuple[str, ...]] = {
    "vs_e": ("truth_e",),
    "vs_abs_eta": ("abs_eta",),
    "vs_mu": ("mu",),
    "vs_e_abs_eta": ("truth_e", "abs_eta"),
}
"""Binned tables read from metrics.json: ``{table: binning variables}``; each row has ``<var>_lo/_hi``."""

TABLES: tuple[str, ...] = ("inclusive", *BINNED_TABLES)
"""Values of the ``table`` column."""

VARIABLES: dict[str, str] = {"truth_e": "E_true [GeV]", "abs_eta": "|η|", "mu": "⟨μ⟩"}
"""Binning variables and their names in tables (with units)."""


@dataclass
class RunResult:
    """One finished run: where it is, what it was and its metrics.

    ``sweep``, ``job``, ``overrides`` and ``created`` are set by the loaders
    (:mod:`calo_calib.comparison.loading`).
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
        return as_float(inc["sigma_rel"]), as_float(inc["sigma_rel_err"])


def sigma_vs(run: RunResult, table: str = "vs_e", method: str | None = None) -> dict[str, np.ndarray]:
    """σ_rel of one method versus a binned variable: ``{"lo", "hi", "sigma_rel", "err"}`` arrays.

    Args:
        table: ``vs_e`` (true energy, GeV), ``vs_abs_eta`` or ``vs_mu``.
    """
    rows = run.metrics[table]
    var = {"vs_e": "truth_e", "vs_abs_eta": "abs_eta", "vs_mu": "mu"}[table]
    name = method or run.model
    return {
        "lo": np.array([as_float(r[f"{var}_lo"]) for r in rows]),
        "hi": np.array([as_float(r[f"{var}_hi"]) for r in rows]),
        "sigma_rel": np.array([as_float(r[name]["sigma_rel"]) for r in rows]),
        "err": np.array([as_float(r[name]["sigma_rel_err"]) for r in rows]),
    }


class MetricsError(ValueError):
    """A metrics.json cannot be used; the message names the file and the key."""


def _num(value: Any, where: str) -> float:
    """A metrics value as float (null: a NaN, written as null by write_metrics); else MetricsError."""
    if value is None:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetricsError(f"{where}: expected a number or null, got {value!r}")
    return float(value)


def _key(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise MetricsError(f"{where}: expected an object, got {type(mapping).__name__}")
    if key not in mapping:
        raise MetricsError(f"{where}: missing key {key!r}")
    return mapping[key]


def _check_method_stats(stats: Any, where: str) -> None:
    for key in ("sigma_rel", "sigma_rel_err"):
        _num(_key(stats, key, where), f"{where}.{key}")


def validate_metrics(metrics: Any, source: str) -> None:
    """Check that a metrics.json has what the comparison reads; raise :class:`MetricsError` naming
    ``source`` and the missing/invalid key (e.g. ``.../metrics.json: vs_e[3].bdt: missing key 'sigma_rel'``)."""
    run = _key(metrics, "run", source)
    for key in ("model", "loss", "particle"):
        if not isinstance(_key(run, key, f"{source}: run"), str):
            raise MetricsError(f"{source}: run.{key} must be a string, got {run[key]!r}")
    inclusive = _key(metrics, "inclusive", source)
    _key(inclusive, run["model"], f"{source}: inclusive")
    for method, stats in inclusive.items():
        _check_method_stats(stats, f"{source}: inclusive.{method}")
    for table, variables in BINNED_TABLES.items():
        rows = _key(metrics, table, source)
        if not isinstance(rows, list):
            raise MetricsError(f"{source}: {table} must be a list of bins, got {type(rows).__name__}")
        for i, row in enumerate(rows):
            where = f"{source}: {table}[{i}]"
            for var in variables:
                for side in ("lo", "hi"):
                    _num(_key(row, f"{var}_{side}", where), f"{where}.{var}_{side}")
            _num(_key(row, "n", where), f"{where}.n")
            for method in inclusive:
                _check_method_stats(_key(row, method, where), f"{where}.{method}")


def run_from_metrics(
    metrics: Any,
    run_dir: str | os.PathLike[str],
    *,
    source: str | None = None,
    sweep: str = "",
    job: str = "",
    overrides: Mapping[str, str] | None = None,
    created: float = 0.0,
) -> RunResult:
    """A :class:`RunResult` from a parsed metrics.json (the parser every source goes through).

    Raises:
        MetricsError: if a key the comparison needs is missing or not a number (message names
            ``source``, default ``<run_dir>/metrics.json``, and the key).
    """
    run_dir = Path(run_dir)
    validate_metrics(metrics, source or str(run_dir / METRICS_FILE))
    meta = metrics["run"]
    return RunResult(
        run_dir, meta["particle"], meta["model"], meta["loss"], dict(metrics),
        sweep=sweep, job=job or run_dir.name, overrides=dict(overrides or {}), created=created,
    )  # fmt: skip


def read_metrics_file(path: str | os.PathLike[str]) -> Any:
    """Parse one metrics.json; :class:`MetricsError` (naming the file) if it is missing or not JSON."""
    path = Path(path)
    if not path.is_file():
        hint = (
            " (config.yaml present: the job started but did not finish)"
            if (path.parent / "config.yaml").exists()
            else ""
        )
        raise MetricsError(f"no {path.name}{hint}")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise MetricsError(f"cannot read {path}: {err}") from None
    except json.JSONDecodeError as err:
        raise MetricsError(f"invalid JSON in {path}: {err}") from None
