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
