"""Learning curves of a network run: validation σ_rel versus training clusters seen, and a verdict.

``history.json`` (written by :func:`calo_calib.training.loop.fit`) has one record per epoch with
``clusters_seen`` (training clusters of all completed epochs) and ``val_sigma_rel`` (σ_rel of
E_reco/E_true on the validation split, the figure of merit, not the loss). The curve says whether a
run was still learning when it stopped (step-limited: train longer), had flattened (then more data or
capacity, which :mod:`calo_calib.studies.learning_curve` separates by varying the training-set size), or
overfitted (the validation σ_rel rose while the training loss fell).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from calo_calib.plotting.style import label, save_png, use_style

STILL_LEARNING = 0.005
"""Relative σ_rel improvement over the last ~20 % of the clusters seen above which a run is called
step-limited (0.5 %: about the statistical error of σ_rel on the 10k validation clusters)."""


CURVE_KEYS = ("clusters_seen", "val_sigma_rel")
"""What every epoch record of ``history.json`` must hold for the learning curve."""


def curve(history: Sequence[Mapping[str, Any]], source: str | os.PathLike[str] = "history") -> tuple[np.ndarray, np.ndarray]:
    """(clusters seen (k,), validation σ_rel (k,)) of the epochs with finite values of both.

    Raises:
        KeyError: an epoch record lacks a key of :data:`CURVE_KEYS` (a history saved by an older
            version); the message names the key, the epoch and ``source`` (e.g. the history file).
    """
    for i, h in enumerate(history):
        missing = [key for key in CURVE_KEYS if key not in h]
        if missing:
            raise KeyError(f"{source}: epoch {h.get('epoch', i)} records no {', '.join(missing)} "
                           "(saved by an older version): no learning curve")  # fmt: skip
    x = np.array([float(h["clusters_seen"]) for h in history])
    y = np.array([float(h["val_sigma_rel"]) for h in history])
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def verdict(history: Sequence[Mapping[str, Any]], source: str | os.PathLike[str] = "history") -> dict[str, Any]:
    """What limited the run, from its learning curve.

    Returns ``{"verdict", "best_val_sigma_rel", "last_val_sigma_rel", "recent_gain"}``, where
    ``recent_gain`` is the relative σ_rel improvement from the epoch at ~80 % of the clusters seen to
    the best of the later epochs, and ``verdict`` one of ``step-limited`` (gain > :data:`STILL_LEARNING`),
    ``converged`` (flat: more data or capacity would be the next lever), ``overfitting`` (the last
    epoch is worse than the best by more than STILL_LEARNING) or ``too few epochs`` (< 3 points).
    """
    x, y = curve(history, source)
    if len(x) < 3:
        return {"verdict": "too few epochs", "best_val_sigma_rel": float(np.min(y)) if len(y) else math.nan,
                "last_val_sigma_rel": float(y[-1]) if len(y) else math.nan, "recent_gain": math.nan}  # fmt: skip
    ref = int(np.searchsorted(x, 0.8 * x[-1], side="right")) - 1
    ref = min(max(ref, 0), len(x) - 2)
    gain = float((y[ref] - np.min(y[ref + 1 :])) / y[ref])
    best, last = float(np.min(y)), float(y[-1])
    if last > best * (1 + STILL_LEARNING) and int(np.argmin(y)) < len(y) - 1:
        name = "overfitting"
    elif gain > STILL_LEARNING:
        name = "step-limited"
    else:
        name = "converged"
    return {"verdict": name, "best_val_sigma_rel": best, "last_val_sigma_rel": last, "recent_gain": gain}


def plot_learning_curve(
    history: Sequence[Mapping[str, Any]], out_png: str | os.PathLike[str], title: str = "",
    source: str | os.PathLike[str] = "history",
) -> Path | None:
    """Validation σ_rel [%] versus training clusters seen (log x); None when nothing was recorded.

    ``source`` names the history in errors (:func:`curve`)."""
    x, y = curve(history, source)
    if len(x) == 0:
        return None
    use_style()
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.plot(x, 100 * y, marker="o", color="tab:red", label="validation")
    best = int(np.argmin(y))
    ax.plot(x[best], 100 * y[best], marker="*", markersize=14, color="black", linestyle="none", label="best epoch")
    ax.set_xscale("log")
    ax.set_xlabel("training clusters seen")
    ax.set_ylabel(r"$\sigma_\mathrm{rel}$ (validation) [%]")
    v = verdict(history, source)
    ax.legend(title=f"{v['verdict']}", loc="upper right", frameon=False)
    label(ax, title)
    return save_png(fig, out_png)
