"""Provenance of results: which commit (and whether tracked code was modified) produced them."""

from __future__ import annotations

import subprocess

from calo_calib.paths import REPO_ROOT


def git_commit() -> str:
    """Short commit hash of the checkout, with ``+dirty`` when tracked files are modified.

    Untracked files (e.g. a results file being written) do not count as dirty: only changes
    to tracked code can make a result differ from what the commit would give.
    Returns ``"uncommitted"`` outside a git checkout.
    """
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "uncommitted"
    if not sha:
        return "uncommitted"
    return sha + ("+dirty" if dirty else "")


def machine_info() -> dict[str, str]:
    """Host, CPU model, core count and GPU (``none`` without CUDA): the machine a benchmark ran on."""
    import os
    import platform
    from pathlib import Path

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"host": platform.node(), "cpu": cpu, "nproc": str(os.cpu_count()), "gpu": gpu}
