"""Experiment tracking: Weights & Biases, offline by default; the run directory stays the source of truth.

Every run writes its own plain files (resolved config, ``history.json``, ``metrics.json``,
predictions, PNGs). W&B mirrors them: per-epoch scalars, the final binned σ_rel tables and plots,
the config and tags, grouped by sweep name. Offline is the default because ``wandb.init`` without
an API key either raises (no TTY) or blocks at a login prompt (TTY); online is used only when
``logger.mode=online`` is configured, and then a missing API key is a clear error at start.

Offline runs are read back (tests, notebooks) with :func:`read_offline_run`, which uses
``wandb leet inspect --json`` (wandb 0.31 writes no config/summary JSON for offline runs).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MODES = ("offline", "online", "disabled")


class Tracker:
    """Logs to a W&B run, or does nothing when disabled (``mode=disabled`` or not rank 0)."""

    def __init__(self, run: Any | None) -> None:
        self._run = run

    @property
    def active(self) -> bool:
        return self._run is not None

    @property
    def run_dir(self) -> Path | None:
        """Directory of the W&B run files (``.../wandb/offline-run-*``), if any."""
        return Path(self._run.dir).parent if self._run is not None else None

    def log_scalars(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Log a row of scalars (e.g. one epoch's losses, learning rate and throughput)."""
        if self._run is not None:
            self._run.log({k: v for k, v in values.items() if _is_number(v)}, step=step)

    def log_table(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Log a list of flat records (e.g. σ_rel per energy bin) as a W&B table."""
        if self._run is None or not rows:
            return
        import wandb

        columns = list(rows[0].keys())
        data = [[_plain(row.get(c)) for c in columns] for row in rows]
        self._run.log({name: wandb.Table(columns=columns, data=data)})

    def log_images(self, images: Mapping[str, str | os.PathLike[str]]) -> None:
        """Log PNG files under the given keys."""
        if self._run is None or not images:
            return
        import wandb

        self._run.log({k: wandb.Image(str(p)) for k, p in images.items()})

    def save_file(self, path: str | os.PathLike[str]) -> None:
        """Attach a finished file of the run directory (e.g. ``metrics.json``) to the W&B run.

        Saved under its own name (``base_path`` is its directory) with ``policy="now"``: uploaded at
        once online, at ``wandb sync`` offline. Only for final files: a later change is not
        re-uploaded. :func:`calo_calib.comparison.loading.load_wandb` downloads ``metrics.json`` back this way.
        """
        if self._run is None:
            return
        path = Path(path)
        if not path.is_file():
            log.warning("W&B: not saving %s: no such file", path)
            return
        self._run.save(str(path), base_path=str(path.parent), policy="now")

    def set_summary(self, values: Mapping[str, Any]) -> None:
        """Final numbers of the run (inclusive σ_rel per method, best epoch, ...)."""
        if self._run is not None:
            for k, v in values.items():
                self._run.summary[k] = _plain(v)

    def finish(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None


def open_tracker(
    mode: str,
    run_dir: str | os.PathLike[str],
    config: Mapping[str, Any],
    project: str = "calo_calib",
    entity: str | None = None,
    name: str | None = None,
    group: str | None = None,
    tags: Sequence[str] = (),
    enabled: bool = True,
) -> Tracker:
    """Start tracking a run; returns a no-op :class:`Tracker` when ``mode=disabled`` or ``enabled`` is False.

    Args:
        mode: ``offline`` (default in config: files under ``<run_dir>/wandb``), ``online`` (needs an
            API key: ``WANDB_API_KEY`` or ``wandb login``), or ``disabled``.
        run_dir: the calo_calib run directory; W&B files go to ``<run_dir>/wandb``.
        config: the resolved run configuration (plain containers).
        group: the sweep name, so runs of one sweep are grouped.
        enabled: False on non-zero ranks of a distributed job.
    """
    if mode not in MODES:
        raise ValueError(f"logger.mode={mode!r} is unknown; choose one of {', '.join(MODES)}")
    if mode == "disabled" or not enabled:
        return Tracker(None)
    if mode == "online" and not has_api_key():
        raise RuntimeError(
            "logger.mode=online but no W&B API key is configured (set WANDB_API_KEY or run `wandb login`); "
            "use logger.mode=offline to log locally and `wandb sync` later."
        )
    import wandb

    wandb_dir = Path(run_dir)
    wandb_dir.mkdir(parents=True, exist_ok=True)
    # wandb refuses to start offline runs when WANDB_MODE says otherwise; the config decides here.
    run = wandb.init(
        project=project,
        entity=entity,
        name=name,
        group=group,
        tags=list(tags),
        config=dict(config),
        dir=str(wandb_dir),
        mode=mode,
        settings=wandb.Settings(console="off", silent=True, x_disable_stats=True),
    )
    return Tracker(run)


def has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _plain(v: Any) -> Any:
    """numpy scalars -> Python; NaN stays a float (W&B tables accept it)."""
    if hasattr(v, "item") and callable(v.item):
        return v.item()
    return v


# --- read back -------------------------------------------------------------------------------


def find_offline_runs(root: str | os.PathLike[str]) -> list[Path]:
    """All ``offline-run-*`` directories below ``root`` (e.g. a run directory or a sweep directory)."""
    return sorted(p for p in Path(root).rglob("offline-run-*") if p.is_dir())


def _wandb_cli() -> list[str]:
    exe = Path(sys.executable).with_name("wandb")
    return [str(exe)] if exe.exists() else [shutil.which("wandb") or "wandb"]


def read_offline_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an offline W&B run back: ``{"summary": {...}, "config": {...}, "history": [rows]}``.

    Args:
        path: an ``offline-run-*`` directory (or a ``.wandb`` file).

    Uses ``wandb leet inspect --summary --json`` (config + latest values) and
    ``wandb leet inspect --json`` (every record; history rows have ``"type": "history"``).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no W&B run at {path}")
    cli = _wandb_cli()
    summary_out = subprocess.run(
        [*cli, "leet", "inspect", "--summary", "--json", str(path)], capture_output=True, text=True, check=True
    ).stdout
    summary = json.loads(summary_out)
    records_out = subprocess.run(
        [*cli, "leet", "inspect", "--json", str(path)], capture_output=True, text=True, check=True
    ).stdout
    history = []
    for line in records_out.splitlines():
        line = line.strip()
        if not line:
            continue
        rec = json.loads(line)
        if rec.get("type") == "history":
            history.append(rec)
    return {"summary": summary, "history": history}
