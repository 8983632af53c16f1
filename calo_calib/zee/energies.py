"""Per-cluster energies of a Z -> ee sample under a calibration: raw, a trained run, or an exported model.

A calibration only predicts the clusters its selection keeps (e.g. a run trained with
``data.exclude_crack=true`` skips the crack); the others get NaN and their events drop out of that
method's mass spectrum.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calo_calib.zee.sample import ZeeSample

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


@dataclass
class ClusterEnergies:
    """``energy`` (n_clusters,) [GeV], indexed by row_id, NaN where not predicted; ``sigma``
    (n_clusters,) predicted relative resolution or None when the calibration has no uncertainty."""

    method: str
    energy: np.ndarray
    sigma: np.ndarray | None


class EnergyMethod:
    """One method of the candle: the raw cluster energy (``source`` None or "raw") or a calibration
    (a run directory or an exported ``.onnx`` file / BDT directory:
    :func:`calo_calib.calibration.load_calibration`), applied to samples."""

    def __init__(self, source: PathLike | None, device: str = "cpu") -> None:
        self.source = None if source in (None, "", "raw") else Path(source)
        self.calibration = None
        if self.source is None:
            self.method = "raw"
            return
        if not self.source.exists():
            raise FileNotFoundError(f"calibration={self.source} does not exist")
        from calo_calib.calibration import load_calibration

        self.calibration = load_calibration(self.source, device=device)
        self.method, particle = self.calibration.name, self.calibration.particle
        if particle != "electron":
            raise ValueError(
                f"calibration={self.source} was trained for {particle}; the Z candle needs an electron calibration"
            )

    def energies(self, sample: ZeeSample) -> ClusterEnergies:
        """Calibrated energies of every cluster of ``sample``."""
        cluster_e = sample.clusters["cluster_e"].astype(np.float64)
        if self.calibration is None:
            return ClusterEnergies("raw", cluster_e, None)
        n = cluster_e.shape[0]
        pred, _ = self.calibration.apply(sample.clusters_dir, with_truth=False)  # truth: for diagnostics only
        row_id, corr, sigma = np.asarray(pred.row_id, np.int64), pred.correction, pred.sigma
        if row_id.size and (row_id.min() < 0 or row_id.max() >= n):
            raise ValueError(f"{self.source}: predicted row_id outside the {n} clusters of {sample.clusters_dir}")
        energy = np.full(n, np.nan)
        energy[row_id] = np.asarray(corr, np.float64) * cluster_e[row_id]
        sig = None
        if sigma is not None:
            sig = np.full(n, np.nan)
            sig[row_id] = np.asarray(sigma, np.float64)
        log.info("%s: %d of %d clusters of %s calibrated", self.method, row_id.size, n, sample.path)
        return ClusterEnergies(self.method, energy, sig)
