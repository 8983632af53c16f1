"""Common plot style, experiment-style labels and atomic PNG saving.

The look follows mplhep's ATLAS style, but the label says ``calo_calib Simulation``: this is not
an ATLAS result and must never be labelled as one.
"""

from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

EXPERIMENT = "calo_calib"
"""Bold experiment name shown in plot labels."""

DPI = 150
"""Resolution of saved PNG files."""


def use_style() -> None:
    """Apply mplhep's ATLAS style globally (falling back gracefully if unavailable).

    Tries ``mplhep.style.use("ATLAS")``, then the style dictionary ``mplhep.style.ATLAS``; if neither
    works with the installed mplhep, warns and keeps matplotlib's current style.
    """
    try:
        import mplhep

        mplhep.style.use("ATLAS")
        return
    except Exception as first_error:  # any failure means "try the next option"
        try:
            import mplhep

            plt.style.use(mplhep.style.ATLAS)
            return
        except Exception:
            warnings.warn(
                f"mplhep ATLAS style unavailable ({first_error!r}); using matplotlib's style",
                stacklevel=2,
            )


def label(ax: Axes, text: str = "") -> None:
    """Write the experiment-style label ``calo_calib Simulation`` on ``ax``.

    Args:
        ax: the axes to label.
        text: extra text shown at the top right (e.g. ``"electrons, <mu> = 51"``); may be empty.
    """
    try:
        import mplhep

        # rlabel is always given explicitly so that mplhep adds no "(13 TeV)"-like default.
        mplhep.label.exp_label(exp=EXPERIMENT, llabel="Simulation", rlabel=text, ax=ax)
    except Exception:  # mplhep API changed or missing: plain matplotlib label
        ax.text(
            0.0, 1.01, f"{EXPERIMENT} Simulation", transform=ax.transAxes, ha="left", va="bottom", fontweight="bold"
        )
        if text:
            ax.text(1.0, 1.01, text, transform=ax.transAxes, ha="right", va="bottom")


def save_png(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as a PNG at ``path`` atomically (dpi :data:`DPI`), creating parent directories,
    and close it (also when saving fails: studies write dozens of figures, pyplot keeps every open one).

    The figure is written to a temporary file in the same directory and renamed over ``path``, so
    ``path`` is never left half-written.

    Returns:
        The output path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        fig.savefig(tmp, dpi=DPI, format="png", bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path
