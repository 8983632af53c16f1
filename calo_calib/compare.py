"""Compare sweeps: many runs -> one long table of binned σ_rel, a ranking, plots.

    python -m calo_calib.compare runs/sweeps/calib/20261123-101500 [more dirs ...] [--out DIR]
    python -m calo_calib.compare --wandb my-team/calo_calib --group calib      # online only

Sources are directories holding run directories (a Hydra multirun directory, ``runs/``, one run
directory) or a W&B project/group. Every run is read from its ``metrics.json`` (see
:func:`calo_calib.pipeline.evaluate_run`) into one **long table**: a list of flat records, one per
(run, table, bin, method), with the columns of :data:`COLUMNS`. σ_rel is a fraction (0.02 = 2 %),
energies are in GeV. :func:`to_arrow` turns it into a pyarrow Table.

The ratio to the BDT of each record is σ_rel(method) / σ_rel(BDT) in the same bin, with the BDT
taken, in this order, from

1. the run's own joined ``bdt`` method (a network run that found a BDT run on the same test data);
2. a BDT run of the same particle and the same test-data fingerprint among the loaded runs
   (``loss=mse`` preferred, then the newest): the reference of a BDT run is itself (ratio 1 ± 0).

Its error assumes independent σ_rel's, as ``comparison_to_bdt`` in metrics.json (conservative:
both are measured on the same clusters). Run directories that cannot be read (no metrics.json, bad
JSON, missing keys) are returned as :class:`Unreadable` (path, reason), never dropped silently.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import re
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calo_calib.analysis import RunResult
from calo_calib.evaluation.report import compare as compare_metrics
from calo_calib.io.atomic import write_text_atomic

if TYPE_CHECKING:
    import pyarrow as pa
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

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

COLUMNS: dict[str, str] = {
    "sweep": "sweep of the run: <sweep_name>/<timestamp> of a Hydra multirun, else the loaded directory's name or the W&B group",
    "run_dir": "run directory (W&B: the directory metrics.json was downloaded to)",
    "job": "Hydra job directory name <num>_<override_dirname> (W&B: the run name)",
    "overrides": "the job's Hydra overrides that differ between the runs of its sweep, 'key=value,...' (sorted)",
    "config": "configuration label, unique per particle: <model>-<loss> plus the other varying overrides",
    "particle": "electron | photon_unconv | photon_conv",
    "model": "the run's model (transformer | gnn_edge | bdt)",
    "loss": "the run's loss (mse | huber)",
    "test_fingerprint": "fingerprint of the test data (equal: same test clusters)",
    "table": "inclusive | vs_e | vs_abs_eta | vs_mu | vs_e_abs_eta",
    "truth_e_lo": "lower edge of the true-energy bin [GeV] (NaN if not binned in E)",
    "truth_e_hi": "upper edge of the true-energy bin [GeV]",
    "abs_eta_lo": "lower edge of the |η| bin (NaN if not binned in |η|)",
    "abs_eta_hi": "upper edge of the |η| bin",
    "mu_lo": "lower edge of the ⟨μ⟩ bin (NaN if not binned in ⟨μ⟩)",
    "mu_hi": "upper edge of the ⟨μ⟩ bin",
    "n": "test clusters in the bin",
    "low_count": "the bin has fewer clusters than evaluation.min_count: its σ_rel is NaN",
    "method": "raw | oracle | bdt | the run's model",
    "is_model": "method is the run's own model (the row that ranks the configuration)",
    "sigma_rel": "IQR(E_reco/E_true) / (1.349 mean): a fraction, 0.02 = 2 %",
    "sigma_rel_err": "bootstrap error of sigma_rel (fraction)",
    "median": "median E_reco/E_true",
    "median_err": "bootstrap error of the median",
    "ratio_to_bdt": "sigma_rel / sigma_rel(BDT) in the same bin (< 1: better than the BDT)",
    "ratio_to_bdt_err": "error of the ratio (independent errors: conservative)",
    "bdt_reference": "where the BDT came from: joined (same run), self (this is the reference BDT run), the BDT run's directory, or empty (none)",
}
"""Columns of the long table, in order, with their meaning and units."""

_FLOAT_COLUMNS = {
    c for c in COLUMNS if c.endswith(("_lo", "_hi", "_err")) or c in ("sigma_rel", "median", "ratio_to_bdt")
}
_NAN = float("nan")


# --- reading runs ----------------------------------------------------------------------------------


class MetricsError(ValueError):
    """A metrics.json cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Unreadable:
    """A run directory (or source) that could not be read, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class LoadResult:
    """Runs read from one or more sources, and the run directories that could not be read."""

    runs: list[RunResult] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)

    def extend(self, other: LoadResult) -> None:
        self.runs.extend(other.runs)
        self.unreadable.extend(other.unreadable)


def _num(value: Any, where: str) -> float:
    """A metrics value as float (null: a NaN, written as null by write_metrics)."""
    if value is None:
        return _NAN
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


def _is_run_dir(path: Path) -> bool:
    # config.yaml / .hydra without metrics.json: a job that failed or is still running (reported).
    return (path / METRICS_FILE).is_file() or (path / "config.yaml").is_file() or (path / ".hydra").is_dir()


def find_run_dirs(root: str | os.PathLike[str]) -> list[Path]:
    """Run directories at or below ``root``: those with metrics.json, config.yaml or ``.hydra/``.

    Does not descend into a run directory (its ``.hydra``, ``wandb`` and ``bdt`` folders hold
    config files too) nor into hidden or ``wandb`` folders. Sorted by path.
    """
    root = Path(root)
    if _is_run_dir(root):
        return [root]
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if here != root and _is_run_dir(here):
            found.append(here)
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "wandb")
    return sorted(found)


def _sweep_dir(run_dir: Path, root: Path) -> Path | None:
    """The Hydra multirun directory (with multirun.yaml) holding ``run_dir``, searched up to ``root``'s parent."""
    stop = root.parent
    for anc in run_dir.parents:
        if (anc / "multirun.yaml").is_file():
            return anc
        if anc == stop or anc == anc.parent:
            return None
    return None


_OVERRIDE_SPLIT = re.compile(r",(?=[\w.+~-]+=)")


def read_overrides(run_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The job's Hydra overrides ``{key: value}``: ``.hydra/overrides.yaml``, else parsed from a
    ``<num>_<k=v,...>`` job directory name; ``{}`` if neither. Leading ``+``/``~`` are dropped from keys."""
    run_dir = Path(run_dir)
    items: list[str] = []
    path = run_dir / ".hydra" / "overrides.yaml"
    if path.is_file():
        import yaml

        try:
            loaded = yaml.safe_load(path.read_text())
            items = [str(x) for x in loaded] if isinstance(loaded, list) else []
        except (OSError, yaml.YAMLError) as err:
            log.warning("%s: unreadable (%s); job overrides taken from the directory name", path, err)
    if not items:
        m = re.match(r"^\d+_(.+=.*)$", run_dir.name)
        items = _OVERRIDE_SPLIT.split(m.group(1)) if m else []
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if sep:
            out[key.lstrip("+~")] = value
    return out


def read_run(run_dir: str | os.PathLike[str], *, sweep: str = "", job: str = "") -> RunResult:
    """Read one run directory (metrics.json and the job's Hydra overrides).

    Raises:
        MetricsError: no metrics.json, invalid JSON or a missing key (the message says which), or an
            unfinished run (its ``status.json`` is not ``completed``: skipped, with the reason).
    """
    from calo_calib.run_status import unfinished_reason

    run_dir = Path(run_dir)
    unfinished = unfinished_reason(run_dir)
    if unfinished:  # crashed, killed or still running: its metrics (if any) are not final
        raise MetricsError(f"skipped: {unfinished}")
    metrics = read_metrics_file(run_dir / METRICS_FILE)
    created = (run_dir / METRICS_FILE).stat().st_mtime
    return run_from_metrics(metrics, run_dir, sweep=sweep, job=job, overrides=read_overrides(run_dir), created=created)


def load_runs(dirs: Iterable[str | os.PathLike[str]]) -> LoadResult:
    """Read every run directory at or below each of ``dirs`` (multirun directories, ``runs/``, run directories).

    Returns:
        :class:`LoadResult`: the readable runs (each run once, in path order; ``sweep``, ``job``,
        ``overrides`` set) and, for each run directory or source that could not be read, its path
        and the reason. Never raises for a bad run directory.
    """
    result = LoadResult()
    seen: set[Path] = set()
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            result.unreadable.append(
                Unreadable(str(root), "does not exist" if not root.exists() else "not a directory")
            )
            continue
        run_dirs = find_run_dirs(root)
        if not run_dirs:
            result.unreadable.append(
                Unreadable(str(root), "no run directories below it (none with metrics.json, config.yaml or .hydra/)")
            )
        for run_dir in run_dirs:
            key = run_dir.resolve()
            if key in seen:
                continue
            seen.add(key)
            sweep_dir = _sweep_dir(run_dir, root)
            if sweep_dir is not None:
                sweep, job = f"{sweep_dir.parent.name}/{sweep_dir.name}", run_dir.relative_to(sweep_dir).as_posix()
            else:
                sweep, job = (root.name if root != run_dir else run_dir.parent.name), run_dir.name
            try:
                result.runs.append(read_run(run_dir, sweep=sweep, job=job))
            except MetricsError as err:
                result.unreadable.append(Unreadable(str(run_dir), str(err)))
            except OSError as err:  # e.g. permissions, a file vanishing mid-read: this run only
                result.unreadable.append(Unreadable(str(run_dir), f"cannot read: {err}"))
    return result


def _timestamp(value: Any) -> float:
    """A W&B ``created_at`` (ISO 8601, maybe with a trailing Z) as POSIX seconds; 0 if unparsable."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def wandb_online() -> tuple[bool, str]:
    """Whether the W&B public API can be used: ``(ok, why not)``; needs WANDB_MODE online and an API key."""
    from calo_calib.tracking import _has_api_key

    mode = os.environ.get("WANDB_MODE", "online").lower()
    if mode in ("offline", "disabled", "dryrun"):
        return False, f"WANDB_MODE={mode}"
    if not _has_api_key():
        return False, "no W&B API key (set WANDB_API_KEY or run `wandb login`)"
    return True, ""


def load_wandb(
    path: str,
    group: str | None = None,
    *,
    api: Any | None = None,
    download_dir: str | os.PathLike[str] | None = None,
) -> LoadResult:
    """Read the runs of a W&B project (optionally one group, i.e. one sweep) through the public API.

    Each run's ``metrics.json`` (attached by :meth:`calo_calib.tracking.Tracker.save_file`) is
    downloaded to ``<download_dir>/<run id>/`` and goes through the same parser as run directories
    (:func:`run_from_metrics`). Used only when online (:func:`wandb_online`); not tested against the
    W&B server here (no network): the unit test passes a fake ``api`` with the same interface
    (``api.runs(path, filters=...)`` -> runs with ``id``, ``name``, ``created_at``,
    ``file(name).download(root=..., replace=True)``).

    Args:
        path: ``entity/project``.
        group: W&B group (``logger.group``, the sweep name by default); None: every run of the project.
        api: a ``wandb.Api()``-like object (default: a new ``wandb.Api()``).
        download_dir: where to put the files (default: a new temporary directory).

    Returns:
        :class:`LoadResult`; a run without (valid) metrics.json, or a failed query, is reported
        as ``wandb:<path>/<run id>`` with the reason.
    """
    source = f"wandb:{path}" + (f" group={group}" if group else "")
    if api is None:
        import wandb

        api = wandb.Api()
    root = Path(download_dir) if download_dir is not None else Path(tempfile.mkdtemp(prefix="calo_calib_wandb_"))
    try:
        wandb_runs = list(api.runs(path, filters={"group": group} if group else {}))
    except Exception as err:  # the API raises assorted network/auth errors: report the source, don't crash
        return LoadResult([], [Unreadable(source, f"W&B query failed: {err}")])
    result = LoadResult()
    if not wandb_runs:
        result.unreadable.append(Unreadable(source, "no runs"))
    for wr in wandb_runs:
        where = f"wandb:{path}/{wr.id}"
        dest = root / str(wr.id)
        try:
            wr.file(METRICS_FILE).download(root=str(dest), replace=True).close()
        except Exception as err:  # missing file (IndexError, CommError...) or network: this run only
            result.unreadable.append(Unreadable(where, f"cannot download {METRICS_FILE}: {err!r}"))
            continue
        try:
            metrics = read_metrics_file(dest / METRICS_FILE)
            result.runs.append(
                run_from_metrics(
                    metrics,
                    dest,
                    source=f"{where}/{METRICS_FILE}",
                    sweep=group or path,
                    job=str(getattr(wr, "name", "") or wr.id),
                    created=_timestamp(getattr(wr, "created_at", "")),
                )  # fmt: skip
            )
        except MetricsError as err:
            result.unreadable.append(Unreadable(where, str(err)))
    return result


def newest_sweep(sweeps_root: str | os.PathLike[str]) -> Path | None:
    """The most recent Hydra multirun directory below ``sweeps_root`` (by its multirun.yaml's mtime), or None."""
    root = Path(sweeps_root)
    if not root.is_dir():
        return None
    found = sorted(root.rglob("multirun.yaml"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None


# --- the long table ------------------------------------------------------------------------------


def _varying_overrides(runs: Sequence[RunResult]) -> dict[int, dict[str, str]]:
    """Per run (by id): the overrides whose values differ between the runs of its sweep."""
    by_sweep: dict[str, list[RunResult]] = defaultdict(list)
    for r in runs:
        by_sweep[r.sweep].append(r)
    out: dict[int, dict[str, str]] = {}
    for members in by_sweep.values():
        keys = {k for r in members for k in r.overrides}
        varying = {k for k in keys if len({r.overrides.get(k) for r in members}) > 1}
        for r in members:
            out[id(r)] = {k: r.overrides[k] for k in sorted(varying) if k in r.overrides}
    return out


def _config_labels(runs: Sequence[RunResult], varying: Mapping[int, Mapping[str, str]]) -> dict[int, str]:
    """``<model>-<loss>`` plus the other varying overrides; disambiguated (sweep, then job) within a particle."""
    base = {}
    for r in runs:
        extra = [f"{k}={v}" for k, v in varying[id(r)].items() if k not in ("model", "loss", "particle")]
        base[id(r)] = " ".join([r.label, *extra])
    labels = dict(base)
    for suffix in (lambda r: f" ({r.sweep})", lambda r: f" ({r.sweep}/{r.job})", lambda r: f" ({r.run_dir})"):
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for r in runs:
            counts[(r.particle, labels[id(r)])] += 1
        clashes = [r for r in runs if counts[(r.particle, labels[id(r)])] > 1]
        if not clashes:
            break
        for r in clashes:
            labels[id(r)] = base[id(r)] + suffix(r)
    return labels


def _bdt_references(runs: Sequence[RunResult], reference_loss: str) -> dict[tuple[str, str], RunResult]:
    """(particle, test fingerprint) -> the BDT run used as reference: ``reference_loss`` first, then newest."""
    groups: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
    for r in runs:
        if r.model == "bdt" and r.test_fingerprint:
            groups[(r.particle, r.test_fingerprint)].append(r)
    return {k: min(v, key=lambda r: (r.loss != reference_loss, -r.created, str(r.run_dir))) for k, v in groups.items()}


def _reference_for(run: RunResult, refs: Mapping[tuple[str, str], RunResult]) -> tuple[Mapping[str, Any], str] | None:
    """(metrics holding the reference ``bdt`` method, label for bdt_reference), or None."""
    if run.model != "bdt" and "bdt" in run.metrics["inclusive"]:
        return run.metrics, "joined"
    ref = refs.get((run.particle, run.test_fingerprint or ""))
    if ref is None:
        return None
    return ref.metrics, ("self" if ref is run else str(ref.run_dir))


def _ratios(run: RunResult, method: str, ref: tuple[Mapping[str, Any], str] | None) -> dict[str, Any] | None:
    """report.compare of ``method`` against the reference BDT: inclusive and per-bin ratio rows."""
    if ref is None:
        return None
    ref_metrics, label = ref
    try:
        out = compare_metrics(run.metrics, ref_metrics, method, "bdt")
    except (KeyError, ValueError) as err:
        log.warning("%s: no ratio to the BDT (%s) for %s: %s", run.run_dir, label, method, err)
        return None
    if ref_metrics is run.metrics and method == "bdt":
        # The reference divided by itself: exactly 1, with no error (fully correlated).
        for row in [out["inclusive"], *(r for t in BINNED_TABLES for r in out.get(t, []))]:
            if math.isfinite(row["ratio"]):
                row["ratio"], row["ratio_err"] = 1.0, 0.0
    return out


def build_table(runs: Sequence[RunResult], reference_loss: str = "mse") -> list[dict[str, Any]]:
    """The long table: one record per (run, table, bin, method), with the keys of :data:`COLUMNS`.

    Args:
        runs: runs from :func:`load_runs` / :func:`load_wandb`.
        reference_loss: when several BDT runs share a particle and test data, the reference is the
            one with this loss (then the newest).

    Returns:
        Records in run order, then ``inclusive, vs_e, vs_abs_eta, vs_mu, vs_e_abs_eta``, then bin,
        then method. σ_rel and its error are fractions; NaN marks empty/low-count bins and
        missing ratios. Edges of variables a table is not binned in are NaN.
    """
    varying = _varying_overrides(runs)
    labels = _config_labels(runs, varying)
    refs = _bdt_references(runs, reference_loss)
    records: list[dict[str, Any]] = []
    for run in runs:
        ref = _reference_for(run, refs)
        common = {
            "sweep": run.sweep,
            "run_dir": str(run.run_dir),
            "job": run.job,
            "overrides": ",".join(f"{k}={v}" for k, v in varying[id(run)].items()),
            "config": labels[id(run)],
            "particle": run.particle,
            "model": run.model,
            "loss": run.loss,
            "test_fingerprint": run.test_fingerprint or "",
        }
        methods = list(run.metrics["inclusive"])
        ratios = {m: _ratios(run, m, ref) for m in methods}
        ref_label = ref[1] if ref else ""
        for m in methods:
            stats, comp = run.metrics["inclusive"][m], ratios[m]
            records.append(_record(common, "inclusive", {}, stats, m, run.model, comp and comp["inclusive"], ref_label))
            records[-1].update(n=int(stats.get("n") or 0), low_count=False)
        for table, variables in BINNED_TABLES.items():
            for i, row in enumerate(run.metrics[table]):
                edges = {f"{v}_{s}": row[f"{v}_{s}"] for v in variables for s in ("lo", "hi")}
                for m in methods:
                    comp_rows = (ratios[m] or {}).get(table)
                    rec = _record(
                        common, table, edges, row[m], m, run.model, comp_rows[i] if comp_rows else None, ref_label
                    )
                    rec.update(n=int(row.get("n") or 0), low_count=bool(row.get("low_count", False)))
                    records.append(rec)
    return records


def _float(x: Any) -> float:
    return _NAN if x is None else float(x)


def _record(
    common: Mapping[str, Any], table: str, edges: Mapping[str, Any], stats: Mapping[str, Any], method: str,
    model: str, ratio: Mapping[str, Any] | None, ref_label: str,
) -> dict[str, Any]:  # fmt: skip
    rec: dict[str, Any] = dict.fromkeys(COLUMNS)
    rec.update(common)
    for v in VARIABLES:
        for s in ("lo", "hi"):
            rec[f"{v}_{s}"] = _float(edges.get(f"{v}_{s}"))
    rec.update(
        table=table,
        method=method,
        is_model=method == model,
        sigma_rel=_float(stats.get("sigma_rel")),
        sigma_rel_err=_float(stats.get("sigma_rel_err")),
        median=_float(stats.get("median")),
        median_err=_float(stats.get("median_err")),
        ratio_to_bdt=_float(ratio["ratio"]) if ratio else _NAN,
        ratio_to_bdt_err=_float(ratio["ratio_err"]) if ratio else _NAN,
        bdt_reference=ref_label if ratio else "",
    )
    return rec


def to_arrow(records: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The long table as a pyarrow Table (columns of :data:`COLUMNS`; NaN floats stay NaN)."""
    import pyarrow as pa

    types = {c: pa.float64() for c in _FLOAT_COLUMNS} | {
        "n": pa.int64(),
        "low_count": pa.bool_(),
        "is_model": pa.bool_(),
    }
    schema = pa.schema([(c, types.get(c, pa.string())) for c in COLUMNS])
    return pa.Table.from_pylist([{c: r[c] for c in COLUMNS} for r in records], schema=schema)


def particles(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Particles present in the long table, sorted."""
    return sorted({r["particle"] for r in records})


# --- ranking ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A quantity to rank and plot: ``column`` of the long table, how to sort it, how to show it."""

    column: str
    axis_label: str
    scale: float
    unit: str

    def badness(self, value: float) -> float:
        """Sort key (smaller is better): σ_rel itself; for the median response, its distance to 1."""
        return abs(value - 1.0) if self.column == "median" else value


METRICS: dict[str, Metric] = {
    "sigma_rel": Metric("sigma_rel", r"$\sigma_\mathrm{rel}$ [%]", 100.0, "%"),
    "median": Metric("median", r"median $E_\mathrm{reco}/E_\mathrm{true}$", 1.0, ""),
}
"""``--metric`` choices: σ_rel (smaller is better) or the median response (closer to 1 is better)."""


def _finite(x: float) -> bool:
    return isinstance(x, float) and math.isfinite(x)


def _model_rows(records: Iterable[Mapping[str, Any]], particle: str, table: str) -> list[Mapping[str, Any]]:
    return [r for r in records if r["particle"] == particle and r["table"] == table and r["is_model"]]


def rank_runs(records: Sequence[Mapping[str, Any]], particle: str, metric: str = "sigma_rel") -> list[dict[str, Any]]:
    """The runs of ``particle`` ranked by their model's inclusive ``metric`` (best first; NaN last).

    Returns:
        One dict per run: ``rank`` (1 = best), ``config``, ``sweep``, ``run_dir``, ``model``,
        ``loss``, ``value``, ``err`` (the metric, a fraction for σ_rel), ``ratio_to_bdt``,
        ``ratio_to_bdt_err``, ``bdt_reference``, ``test_fingerprint``.
    """
    m = METRICS[metric]
    rows = _model_rows(records, particle, "inclusive")
    rows = sorted(
        rows,
        key=lambda r: (not _finite(r[m.column]), m.badness(r[m.column]) if _finite(r[m.column]) else 0, r["config"]),
    )
    return [
        {
            "rank": i + 1,
            **{
                k: r[k]
                for k in (
                    "config",
                    "sweep",
                    "run_dir",
                    "model",
                    "loss",
                    "ratio_to_bdt",
                    "ratio_to_bdt_err",
                    "bdt_reference",
                    "test_fingerprint",
                )
            },
            "value": r[m.column],
            "err": r[f"{m.column}_err"],
        }
        for i, r in enumerate(rows)
    ]


def best_per_bin(
    records: Sequence[Mapping[str, Any]], particle: str, metric: str = "sigma_rel", table: str = "vs_e_abs_eta"
) -> list[dict[str, Any]]:
    """The best configuration of ``particle`` in each bin of ``table`` (default: the (E, |η|) grid).

    Bins where no configuration has a finite value (empty / low count) are left out.

    Returns:
        One dict per bin, in the table's bin order: the bin edges (``truth_e_lo`` ... as in the long
        table), ``best`` (config label), ``value``, ``err``, ``ratio_to_bdt``, ``ratio_to_bdt_err``,
        ``runner_up`` (label or ""), ``runner_up_value``, ``margin`` ((runner-up - best) in units of
        the two errors added in quadrature, NaN without a runner-up) and ``n_configs`` (configs
        with a finite value there).
    """
    m = METRICS[metric]
    edge_keys = [f"{v}_{s}" for v in BINNED_TABLES[table] for s in ("lo", "hi")]
    bins: dict[tuple[float, ...], list[Mapping[str, Any]]] = {}
    for r in _model_rows(records, particle, table):
        bins.setdefault(tuple(r[k] for k in edge_keys), []).append(r)
    out = []
    for edges, rows in bins.items():
        ok = sorted((r for r in rows if _finite(r[m.column])), key=lambda r: (m.badness(r[m.column]), r["config"]))
        if not ok:
            continue
        best, second = ok[0], (ok[1] if len(ok) > 1 else None)
        margin = _NAN
        if second is not None:
            err = math.hypot(best[f"{m.column}_err"], second[f"{m.column}_err"])
            margin = (m.badness(second[m.column]) - m.badness(best[m.column])) / err if err > 0 else _NAN
        out.append(
            {
                **dict(zip(edge_keys, edges)),
                "best": best["config"],
                "value": best[m.column],
                "err": best[f"{m.column}_err"],
                "ratio_to_bdt": best["ratio_to_bdt"],
                "ratio_to_bdt_err": best["ratio_to_bdt_err"],
                "runner_up": second["config"] if second else "",
                "runner_up_value": second[m.column] if second else _NAN,
                "margin": margin,
                "n_configs": len(ok),
            }
        )
    return out


def _fmt(value: float, err: float, scale: float = 1.0, digits: int = 2) -> str:
    if not _finite(value):
        return "–"
    v = f"{scale * value:.{digits}f}"
    return f"{v} ± {scale * err:.{digits}f}" if _finite(err) else v


def _edges_text(lo: float, hi: float) -> str:
    return f"{lo:g}–{hi:g}"


def _metric_text(metric: str) -> tuple[str, int]:
    """Column title and decimals of a metric in the markdown tables."""
    return ("σ_rel [%]", 2) if metric == "sigma_rel" else ("median E_reco/E_true", 4)


def ranking_markdown(records: Sequence[Mapping[str, Any]], particle: str, metric: str = "sigma_rel") -> str:
    """Markdown: the runs of ``particle`` ranked by inclusive ``metric`` (σ_rel in %), with the ratio
    to the BDT ± error and where the BDT came from; a note if they used different test datasets."""
    m, (name, digits) = METRICS[metric], _metric_text(metric)
    show_ratio = metric == "sigma_rel"  # the ratio to the BDT is a ratio of σ_rel's
    ranking = rank_runs(records, particle, metric)
    lines = [f"## {particle}: {len(ranking)} runs ranked by inclusive {name}", ""]
    fingerprints = {r["test_fingerprint"] for r in ranking}
    if len(fingerprints) > 1:
        lines += [
            f"Note: these runs used {len(fingerprints)} different test datasets: their values are not measured on the same clusters.",
            "",
        ]
    head = (
        ["rank", "configuration", "sweep", name]
        + (["σ_rel / σ_rel(BDT)", "BDT reference"] if show_ratio else [])
        + ["run"]
    )
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in ranking:
        cells = [str(r["rank"]), r["config"], r["sweep"], _fmt(r["value"], r["err"], m.scale, digits)]
        if show_ratio:
            cells += [_fmt(r["ratio_to_bdt"], r["ratio_to_bdt_err"], 1.0, 3), _ref_text(r["bdt_reference"])]
        lines.append("| " + " | ".join(cells + [r["run_dir"]]) + " |")
    return "\n".join(lines) + "\n"


def best_per_bin_markdown(records: Sequence[Mapping[str, Any]], particle: str, metric: str = "sigma_rel") -> str:
    """Markdown: the best configuration of ``particle`` in each (E_true, |η|) bin (see :func:`best_per_bin`)."""
    m, (name, digits) = METRICS[metric], _metric_text(metric)
    show_ratio = metric == "sigma_rel"
    best = best_per_bin(records, particle, metric)
    lines = [f"### {particle}: best configuration per (E_true, |η|) bin", ""]
    if not best:
        return "\n".join(lines + ["No (E_true, |η|) bin has enough test clusters for a value."]) + "\n"
    head = (
        [r"\|η\|", "E_true [GeV]", "best", name]
        + (["σ_rel / σ_rel(BDT)"] if show_ratio else [])
        + ["runner-up", "margin [σ]", "configs"]
    )
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for b in best:
        cells = [_edges_text(b["abs_eta_lo"], b["abs_eta_hi"]), _edges_text(b["truth_e_lo"], b["truth_e_hi"]), b["best"],
                 _fmt(b["value"], b["err"], m.scale, digits)]  # fmt: skip
        if show_ratio:
            cells.append(_fmt(b["ratio_to_bdt"], b["ratio_to_bdt_err"], 1.0, 3))
        cells += [b["runner_up"] or "–", f"{b['margin']:.1f}" if _finite(b["margin"]) else "–", str(b["n_configs"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report_markdown(
    records: Sequence[Mapping[str, Any]],
    unreadable: Sequence[Unreadable] = (),
    metric: str = "sigma_rel",
    particle: str | None = None,
) -> str:
    """Markdown report: per particle (or only ``particle``), :func:`ranking_markdown` and
    :func:`best_per_bin_markdown`; then the run directories that could not be read, with the reason."""
    parts = []
    for p in [particle] if particle else particles(records):
        parts += [ranking_markdown(records, p, metric), best_per_bin_markdown(records, p, metric)]
    if unreadable:
        parts.append(
            "\n".join([f"## Not read ({len(unreadable)})", ""] + [f"- {u.path}: {u.reason}" for u in unreadable]) + "\n"
        )
    return "\n".join(parts)


def _ref_text(ref: str) -> str:
    return ref if ref in ("", "joined", "self") else f"run {Path(ref).name}"


# --- plots -----------------------------------------------------------------------------------------

_AXES = {
    "vs_e": ("truth_e", r"$E_\mathrm{true}$ [GeV]", True),
    "vs_abs_eta": ("abs_eta", r"$|\eta|$", False),
    "vs_mu": ("mu", r"$\langle\mu\rangle$", False),
}
"""Plotted tables: (binning variable, x label with units, log x)."""

_PARTICLE_TEXT = {"electron": "electrons", "photon_unconv": "unconverted photons", "photon_conv": "converted photons"}
_MARKERS = {"bdt": "s", "transformer": "o", "gnn_edge": "^"}


def _colours(configs: Sequence[str]) -> dict[str, Any]:
    """One colour per configuration (sorted labels), the same in every plot of a particle."""
    import matplotlib.pyplot as plt

    palette = plt.get_cmap("tab10" if len(configs) <= 10 else "tab20").colors
    return {c: palette[i % len(palette)] for i, c in enumerate(sorted(configs))}


def _x_positions(lo: list[float], hi: list[float], i: int, k: int, log_x: bool) -> list[float]:
    """Points of config ``i`` of ``k`` spread across the bin (so error bars don't overlap)."""
    frac = 0.5 + (i - (k - 1) / 2) * (0.6 / k)
    if log_x:
        return [math.exp(math.log(a) + frac * (math.log(b) - math.log(a))) for a, b in zip(lo, hi)]
    return [a + frac * (b - a) for a, b in zip(lo, hi)]


def plot_vs(
    records: Sequence[Mapping[str, Any]], particle: str, table: str = "vs_e", metric: str = "sigma_rel"
) -> Figure:
    """``metric`` of every run's model versus E_true (log x), |η| or ⟨μ⟩, one series per configuration.

    For σ_rel a lower panel shows σ_rel / σ_rel(BDT) with its error (1: as good as the BDT).
    Points are placed inside their bin, shifted per configuration; NaN (low-count) bins are not drawn.
    """
    import matplotlib.pyplot as plt

    from calo_calib.plotting.style import label, use_style

    use_style()
    var, xlabel, log_x = _AXES[table]
    m = METRICS[metric]
    with_ratio = metric == "sigma_rel"
    if with_ratio:
        fig, (ax, rax) = plt.subplots(
            2, 1, sharex=True, figsize=(8, 7.5), gridspec_kw={"height_ratios": [3, 1.3], "hspace": 0.06}
        )
    else:
        fig, ax = plt.subplots(figsize=(8, 6))
        rax = None
    series: dict[str, list[Mapping[str, Any]]] = {}
    for r in _model_rows(records, particle, table):
        series.setdefault(r["config"], []).append(r)
    colours = _colours(list({r["config"] for r in _model_rows(records, particle, "inclusive")} | set(series)))
    for i, (config, rows) in enumerate(sorted(series.items())):
        lo, hi = [r[f"{var}_lo"] for r in rows], [r[f"{var}_hi"] for r in rows]
        x = _x_positions(lo, hi, i, len(series), log_x)
        style = {"marker": _MARKERS.get(rows[0]["model"], "D"), "ls": "--" if rows[0]["loss"] == "huber" else "-",
                 "mfc": "none" if rows[0]["loss"] == "huber" else None, "capsize": 2, "label": config, "color": colours[config]}  # fmt: skip
        ax.errorbar(
            x, [m.scale * r[m.column] for r in rows], yerr=[m.scale * r[f"{m.column}_err"] for r in rows], **style
        )
        if rax is not None:
            style.update(label=None)
            rax.errorbar(x, [r["ratio_to_bdt"] for r in rows], yerr=[r["ratio_to_bdt_err"] for r in rows], **style)
    ax.set_ylabel(m.axis_label)
    if metric == "sigma_rel":
        ax.set_ylim(bottom=0)
    else:
        ax.axhline(1.0, color="grey", lw=1, ls=":")
    ax.legend(fontsize="small", title=f"{len(series)} configurations", title_fontsize="small")
    label(ax, _PARTICLE_TEXT.get(particle, particle))
    bottom = rax if rax is not None else ax
    if rax is not None:
        rax.axhline(1.0, color="grey", lw=1, ls=":")
        rax.set_ylim(bottom=0)  # a ratio of two widths: large error bars must not suggest negative values
        rax.set_ylabel(r"$\sigma_\mathrm{rel} / \sigma_\mathrm{rel}^\mathrm{BDT}$", fontsize="small")
    if log_x:
        bottom.set_xscale("log")
    bottom.set_xlabel(xlabel)
    return fig


def plot_best_per_bin(records: Sequence[Mapping[str, Any]], particle: str, metric: str = "sigma_rel") -> Figure:
    """Grid of E_true bins (x) × |η| bins (y): colour = best configuration, text = its σ_rel / σ_rel(BDT)
    (or the metric for ``median``). Bins without a value are blank."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from calo_calib.plotting.style import label, use_style

    use_style()
    best = best_per_bin(records, particle, metric)
    rows = _model_rows(records, particle, "vs_e_abs_eta")
    e_bins = sorted({(r["truth_e_lo"], r["truth_e_hi"]) for r in rows})
    eta_bins = sorted({(r["abs_eta_lo"], r["abs_eta_hi"]) for r in rows})
    configs = sorted({b["best"] for b in best})
    by_config = _colours(list({r["config"] for r in _model_rows(records, particle, "inclusive")}))
    colours = [by_config[c] for c in configs]
    grid = [[math.nan] * len(e_bins) for _ in eta_bins]
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(e_bins) + 2), max(5, 0.6 * len(eta_bins) + 2)))
    for b in best:
        ix, iy = e_bins.index((b["truth_e_lo"], b["truth_e_hi"])), eta_bins.index((b["abs_eta_lo"], b["abs_eta_hi"]))
        grid[iy][ix] = configs.index(b["best"])
        text = (
            f"{b['ratio_to_bdt']:.2f}"
            if metric == "sigma_rel" and _finite(b["ratio_to_bdt"])
            else _fmt(b["value"], _NAN, METRICS[metric].scale, 2)
        )
        ax.text(ix, iy, text, ha="center", va="center", fontsize="x-small")
    if configs:
        ax.imshow(grid, origin="lower", aspect="auto", cmap=ListedColormap(colours),
                  vmin=-0.5, vmax=len(configs) - 0.5, alpha=0.7)  # fmt: skip
    ax.set_xticks(range(len(e_bins)), [_edges_text(*e) for e in e_bins], rotation=45, ha="right", fontsize="small")
    ax.set_yticks(range(len(eta_bins)), [_edges_text(*e) for e in eta_bins], fontsize="small")
    if not best:
        ax.text(0.5, 0.5, "no bin with enough test clusters", transform=ax.transAxes, ha="center", va="center")
    ax.tick_params(which="minor", length=0)  # categorical axes: minor ticks would mean nothing
    ax.set_xlim(-0.5, len(e_bins) - 0.5)
    ax.set_ylim(-0.5, len(eta_bins) - 0.5)
    ax.set_xlabel(r"$E_\mathrm{true}$ [GeV]")
    ax.set_ylabel(r"$|\eta|$")
    handles = [Patch(color=colours[i], alpha=0.7, label=c) for i, c in enumerate(configs)]
    what = (
        r"$\sigma_\mathrm{rel}/\sigma_\mathrm{rel}^\mathrm{BDT}$"
        if metric == "sigma_rel"
        else METRICS[metric].axis_label
    )
    ax.legend(handles=handles, title=f"best configuration (text: {what})", fontsize="x-small", title_fontsize="x-small",
              loc="upper left", bbox_to_anchor=(1.01, 1.0))  # fmt: skip
    label(ax, _PARTICLE_TEXT.get(particle, particle))
    return fig


# --- outputs ---------------------------------------------------------------------------------------


def _csv_cell(value: Any) -> Any:
    # Empty cell for NaN: what spreadsheets and pandas.read_csv read as missing.
    return "" if isinstance(value, float) and math.isnan(value) else value


def write_csv(records: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """The long table as CSV (header = :data:`COLUMNS`; NaN as an empty cell), written atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in records:
        writer.writerow([_csv_cell(r[c]) for c in COLUMNS])
    return write_text_atomic(path, buf.getvalue())


def write_outputs(
    records: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike[str],
    unreadable: Sequence[Unreadable] = (),
    metric: str = "sigma_rel",
) -> list[Path]:
    """Write ``comparison.csv`` (long table), ``comparison.md`` (report) and per particle the PNGs
    ``<particle>_<metric>_<table>.png`` (vs_e, vs_abs_eta, vs_mu) and ``<particle>_best_e_abs_eta.png``."""

    from calo_calib.plotting.style import save_png

    out = Path(out_dir)
    written = [
        write_csv(records, out / "comparison.csv"),
        write_text_atomic(out / "comparison.md", report_markdown(records, unreadable, metric)),
    ]
    for p in particles(records):
        for table in _AXES:
            fig = plot_vs(records, p, table, metric)
            written.append(save_png(fig, out / f"{p}_{metric}_{table}.png"))
        fig = plot_best_per_bin(records, p, metric)
        written.append(save_png(fig, out / f"{p}_best_e_abs_eta.png"))
    return written


# --- command line ----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m calo_calib.compare",
        description="Compare the runs of one or more sweeps: ranking by σ_rel, ratio to the BDT, plots, CSV.",
    )
    p.add_argument("dirs", nargs="*", type=Path, help="multirun directories, runs/, or run directories")
    p.add_argument("--wandb", metavar="ENTITY/PROJECT", help="also read the runs of this W&B project (online only)")
    p.add_argument("--group", help="W&B group (sweep name) to read with --wandb")
    p.add_argument(
        "--out", type=Path, help="output directory (default: <first existing dir>/comparison, else ./comparison)"
    )
    p.add_argument("--particle", help="only this particle (electron | photon_unconv | photon_conv)")
    p.add_argument(
        "--metric", choices=sorted(METRICS), default="sigma_rel", help="rank and plot by this (default: sigma_rel)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: exit status 0 if at least one run was read (unreadable ones are listed on stderr), else 1."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.dirs and not args.wandb:
        parser.error("give at least one directory or --wandb ENTITY/PROJECT")
    if args.group and not args.wandb:
        parser.error("--group needs --wandb ENTITY/PROJECT")
    # Default next to the first directory that exists (never create a missing one just for outputs).
    existing = [d for d in args.dirs if d.is_dir()]
    out_dir = args.out or ((existing[0] / "comparison") if existing else Path("comparison"))

    loaded = load_runs(args.dirs)
    if args.wandb:
        online, why = wandb_online()
        if online:
            loaded.extend(load_wandb(args.wandb, args.group, download_dir=out_dir / "wandb"))
        else:
            loaded.unreadable.append(Unreadable(f"wandb:{args.wandb}", f"W&B is not online ({why})"))
    for u in loaded.unreadable:
        print(f"not read: {u}", file=sys.stderr)
    sources = [str(d) for d in args.dirs] + ([f"wandb:{args.wandb}"] if args.wandb else [])
    if not loaded.runs:
        print(f"calo_calib.compare: error: no run could be read from {', '.join(sources)}", file=sys.stderr)
        return 1
    runs = [r for r in loaded.runs if not args.particle or r.particle == args.particle]
    if not runs:
        found = sorted({r.particle for r in loaded.runs})
        print(f"calo_calib.compare: error: no {args.particle} run among the {len(loaded.runs)} runs read "
              f"(particles: {', '.join(found)})", file=sys.stderr)  # fmt: skip
        return 1
    records = build_table(runs)
    print(f"{len(runs)} runs read from {', '.join(sources)}; {len(loaded.unreadable)} not read\n")
    print(report_markdown(records, loaded.unreadable, args.metric))
    written = write_outputs(records, out_dir, loaded.unreadable, args.metric)
    print(f"wrote {len(written)} files to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
