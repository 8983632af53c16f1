"""A run directory's completion marker, ``status.json``: written first as ``running``, last as ``completed``.

``calo_calib.pipeline.train_and_evaluate`` writes ``{"state": "running"}`` when the run starts,
``{"state": "failed", "error": ...}`` when it ends in an exception, and ``{"state": "completed"}``
as the very last file of the run (after metrics, summary and plots). A directory whose marker is
not ``completed`` is a crashed, killed or still running run: :mod:`calo_calib.comparison.loading` skips it with
the reason and :mod:`calo_calib.export` refuses it, and so is a directory without a marker: every
run writes one first, so a directory without it is not a finished run of this version.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from calo_calib.io.atomic import write_text_atomic

STATUS_FILE = "status.json"
COMPLETED = "completed"


def write_status(run_dir: str | os.PathLike[str], state: str, **extra: Any) -> None:
    """Write ``<run_dir>/status.json`` atomically: ``state``, the time (UTC), the process id and ``extra``."""
    payload = {"state": state, "updated_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
               "pid": os.getpid(), **extra}  # fmt: skip
    write_text_atomic(Path(run_dir) / STATUS_FILE, json.dumps(payload, indent=2, default=str))


def read_status(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The marker's content; None without one."""
    path = Path(run_dir) / STATUS_FILE
    if not path.is_file():
        return None
    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"state": "unreadable"}
    return out if isinstance(out, dict) else {"state": "unreadable"}


def unfinished_reason(run_dir: str | os.PathLike[str]) -> str | None:
    """Why ``run_dir`` is not a finished run (from its marker, or the lack of one), or None if it is."""
    status = read_status(run_dir)
    if status is None:
        return f"not a finished run: no {STATUS_FILE} (every run writes it when it starts and marks it completed last)"
    if status.get("state") == COMPLETED:
        return None
    state = status.get("state")
    why = {"running": "still running, or crashed/killed before it finished",
           "failed": f"failed: {status.get('error', '?')}"}.get(str(state), f"state {state!r}")  # fmt: skip
    return f"unfinished run ({STATUS_FILE}: {why}; updated {status.get('updated_utc', '?')})"
