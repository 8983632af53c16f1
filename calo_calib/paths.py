"""Locations of repository resources needed at run time.

The only resource outside the package is the Hydra config directory ``conf/`` at the repository root.
It is found relative to this file, which works for the editable install the project uses
(``pip install -e .``, ``make install``). Set ``CALO_CALIB_CONF_DIR`` to use another config directory
(e.g. with a non-editable install).

Entry points use it as ``@hydra.main(config_path=str(CONF_DIR), config_name=..., version_base=None)``.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR: Path = Path(__file__).resolve().parent
"""Absolute path of the installed ``calo_calib`` package."""

REPO_ROOT: Path = PACKAGE_DIR.parent
"""Absolute path of the repository root (meaningful for an editable install)."""

CONF_DIR: Path = Path(os.environ.get("CALO_CALIB_CONF_DIR", REPO_ROOT / "conf")).resolve()
"""Absolute path of the Hydra config directory (``<repo>/conf`` unless ``CALO_CALIB_CONF_DIR`` is set)."""


def conf_dir() -> Path:
    """Return :data:`CONF_DIR`, raising a helpful error if it does not exist.

    Raises:
        FileNotFoundError: if the directory is missing (typically a non-editable install).
    """
    if not CONF_DIR.is_dir():
        raise FileNotFoundError(
            f"calo_calib config directory not found: {CONF_DIR}. Install the repository editable "
            "(`make install` or `pip install -e .`) or set CALO_CALIB_CONF_DIR to a copy of conf/."
        )
    return CONF_DIR
