"""Read runs back for the comparison: run directories (Hydra multiruns, ``runs/``) and W&B runs.

:func:`load_runs` is the one reader of run directories (the notebooks, the CLI and the after-sweep
callbacks use it): a run directory is found by its ``metrics.json``, ``config.yaml`` or ``.hydra/``;
unfinished runs (``status.json`` not ``completed``, :mod:`calo_calib.run_status`) are skipped with
the reason; every file goes through :func:`calo_calib.comparison.schema.run_from_metrics`. Run
directories that cannot be read (no metrics.json, bad JSON, missing keys) are returned as
:class:`Unreadable` (path, reason), never dropped silently. :func:`load_wandb` reads the
metrics.json attached to W&B runs through the same parser.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from calo_calib.comparison.schema import METRICS_FILE, MetricsError, RunResult, read_metrics_file, run_from_metrics

log = logging.getLogger(__name__)


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


# --- run directories -------------------------------------------------------------------------------
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


def newest_sweep(sweeps_root: str | os.PathLike[str]) -> Path | None:
    """The most recent Hydra multirun directory below ``sweeps_root`` (by its multirun.yaml's mtime), or None."""
    root = Path(sweeps_root)
    if not root.is_dir():
        return None
    found = sorted(root.rglob("multirun.yaml"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None


# --- W&B (online only) -----------------------------------------------------------------------------


def _timestamp(value: Any) -> float:
    """A W&B ``created_at`` (ISO 8601, maybe with a trailing Z) as POSIX seconds; 0 if unparsable."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def wandb_online() -> tuple[bool, str]:
    """Whether the W&B public API can be used: ``(ok, why not)``; needs WANDB_MODE online and an API key."""
    from calo_calib.tracking import has_api_key

    mode = os.environ.get("WANDB_MODE", "online").lower()
    if mode in ("offline", "disabled", "dryrun"):
        return False, f"WANDB_MODE={mode}"
    if not has_api_key():
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
