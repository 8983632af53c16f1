"""``<sweep dir>/launcher_results.json``: one record per job of a sweep, whatever the launcher."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from calo_calib.io.atomic import write_json_atomic

log = logging.getLogger(__name__)


def write_sweep_summary(sweep_dir: str | os.PathLike[str], rows: list[dict[str, Any]], launcher: str) -> Path:
    """Write the job records atomically and log how many jobs completed and which failed, with why.

    Each row has at least ``job`` (index), ``overrides``, ``status`` (COMPLETED | FAILED) and ``error``.
    """
    path = write_json_atomic(Path(sweep_dir) / "launcher_results.json", rows, default=str)
    failed = [r for r in rows if r["status"] != "COMPLETED"]
    log.info("%s launcher: %d of %d jobs completed%s; summary in %s", launcher, len(rows) - len(failed), len(rows),
             "; failed: " + "; ".join(f"#{r['job']} ({r['error']})" for r in failed) if failed else "", path)  # fmt: skip
    return path
