"""The one interface every calibration implements: ``calibration.predict(clusters) -> Prediction``.

Implementations (:func:`calo_calib.calibration.load_calibration` picks the right one for a path):

* a trained run directory: :class:`~calo_calib.calibration.network.NetworkRunCalibration`
  (transformer, gnn_edge: ``checkpoints/best.pt``) and
  :class:`~calo_calib.calibration.bdt.BDTRunCalibration` (``bdt/``);
* an exported file: :class:`~calo_calib.calibration.exported.ExportedOnnxCalibration` (an ``.onnx``
  graph of ``calo_calib.export``, batched or per-cluster) and
  :class:`~calo_calib.calibration.exported.ExportedBDTCalibration` (an exported BDT directory,
  XGBoost JSON).

A calibration reads clusters with its own features and selection (:meth:`Calibration.dataset`: those
of the run config, or those stored in the export), so it is always applied to the inputs it was
trained on; ``predict`` must be given a dataset made by the same calibration's ``dataset``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np

from calo_calib.data.loader import ClusterDataset

PathLike = str | os.PathLike[str]


@dataclass
class Prediction:
    """Per-cluster output of a calibration, N = the selected clusters, all arrays (N,) in dataset order.

    ``row_id`` int64: the cluster's row in the input files (as in ``predictions.parquet``);
    ``correction`` = E_reco / cluster_e (dimensionless; float32 for networks, PyTorch or ONNX, float64
    for the BDT); ``sigma`` or None: the predicted relative resolution σ(E) / E_reco of each cluster
    (dimensionless; ≈ the resolution of E_reco / E_true), only for networks trained with
    ``loss=gaussian_nll``. ``cluster_e`` [GeV] and ``target`` = truth_e / cluster_e (NaN without
    truth) come with every prediction of :meth:`Calibration.iter_predictions`.
    """

    row_id: np.ndarray
    correction: np.ndarray
    sigma: np.ndarray | None = None
    cluster_e: np.ndarray | None = None
    target: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.row_id)

    @classmethod
    def concatenate(cls, parts: Sequence[Prediction]) -> Prediction:
        """The parts one after the other; an optional field is kept only if every part has it."""
        if not parts:
            return cls(np.empty(0, np.int64), np.empty(0, np.float32))
        if len(parts) == 1:
            return parts[0]
        values = {}
        for f in fields(cls):
            arrays = [getattr(p, f.name) for p in parts]
            values[f.name] = np.concatenate(arrays) if all(a is not None for a in arrays) else None
        return cls(**values)


class Calibration(ABC):
    """A calibration: predicts the multiplicative energy correction of clusters.

    Subclasses implement :attr:`name`, :attr:`particle`, :attr:`has_sigma`, :meth:`dataset` and
    :meth:`iter_predictions`; :meth:`predict` and :meth:`apply` are built on them.
    """

    @property
    @abstractmethod
    def name(self) -> str:
        """The model's name (``transformer``, ``gnn_edge``, ``bdt``, ``bdt_shapes``, ...)."""

    @property
    @abstractmethod
    def particle(self) -> str:
        """The particle type it calibrates (``electron``, ``photon_unconv``, ``photon_conv``)."""

    @property
    @abstractmethod
    def has_sigma(self) -> bool:
        """Whether its predictions carry the per-cluster ``sigma``."""

    @abstractmethod
    def dataset(
        self, paths: PathLike | Sequence[PathLike], *, batch_size: int | None = None, with_truth: bool = True,
        nonfinite: str | None = None, out_of_range: str | None = None,
    ) -> ClusterDataset:  # fmt: skip
        """The clusters of ``paths`` with this calibration's features and selection.

        ``batch_size`` None: the calibration's own (the run's ``data.eval_batch_size``, 1024 for an
        export); ``with_truth=False`` reads no truth (the target is NaN); ``nonfinite`` (``error`` |
        ``drop``) and ``out_of_range`` (``error`` | ``drop`` | ``allow``) override, when given, how
        bad values are handled (by default as trained or exported).
        """

    @abstractmethod
    def iter_predictions(self, clusters: ClusterDataset) -> Iterator[Prediction]:
        """The predictions of every selected cluster of ``clusters`` (made by :meth:`dataset`), in
        chunks (one loader batch, or a block of clusters), each with ``cluster_e`` and ``target``."""

    def predict(self, clusters: ClusterDataset) -> Prediction:
        """The corrections (and ``sigma``) of every selected cluster of ``clusters``."""
        return Prediction.concatenate(list(self.iter_predictions(clusters)))

    def apply(self, paths: PathLike | Sequence[PathLike], **dataset_options) -> tuple[Prediction, ClusterDataset]:
        """Read ``paths`` (:meth:`dataset`, with ``dataset_options``) and predict them; returns the
        prediction and the dataset (its ``scalar_table`` gives the truth and the selection counts)."""
        clusters = self.dataset(paths, **dataset_options)
        return self.predict(clusters), clusters
