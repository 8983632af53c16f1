"""A trained BDT run (the XGBoost baseline saved under ``<run_dir>/bdt``), and the BDT prediction
shared with the exported BDT (:class:`~calo_calib.calibration.exported.ExportedBDTCalibration`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from omegaconf import DictConfig

from calo_calib.calibration.protocol import PathLike, Prediction
from calo_calib.calibration.run import RunCalibration
from calo_calib.data.loader import ClusterDataset

if TYPE_CHECKING:
    from calo_calib.models.bdt import BDTModel

BDT_CHUNK = 65536
"""Clusters per prediction of :meth:`~calo_calib.calibration.protocol.Calibration.iter_predictions` of a BDT."""


def bdt_predictions(bdt: BDTModel, clusters: ClusterDataset, chunk: int | None = BDT_CHUNK) -> Iterator[Prediction]:
    """Per block of ``chunk`` clusters (None: all at once) the BDT's corrections; the inputs the saved
    model was trained on (``features`` of its manifest: ``atlas`` or ``atlas+shapes``, shower shapes
    included) are computed once for the whole dataset (:meth:`~calo_calib.models.bdt.BDTModel.dataset_inputs`)."""
    feats = bdt.dataset_inputs(clusters, truth=clusters.with_truth)
    n = len(feats["cluster_e"])
    step = chunk or max(n, 1)
    for start in range(0, n, step):
        f = {k: v[start : start + step] for k, v in feats.items()}
        e = f["cluster_e"]
        target = f["truth_e"] / e if clusters.with_truth else np.full(len(e), np.nan)
        yield Prediction(f["row_id"], bdt.predict_correction(f), None, e, target)


class BDTRunCalibration(RunCalibration):
    """A BDT run: ``bdt`` is the :class:`~calo_calib.models.bdt.BDTModel` loaded from ``<run_dir>/bdt``."""

    kind: ClassVar[str] = "bdt"
    is_network: ClassVar[bool] = False

    def __init__(self, run_dir: PathLike, cfg: DictConfig, *, device: str = "cpu") -> None:
        super().__init__(run_dir, cfg, device=device)  # XGBoost predicts on the CPU whatever the device
        from calo_calib.models.bdt import BDTModel

        self.bdt = BDTModel.load(self.run_dir / "bdt")

    @classmethod
    def config_error(cls, cfg: DictConfig, adversary: str) -> str | None:
        from calo_calib.training.losses import PULL_LOSSES, SIGMA_LOSSES

        loss, model = str(cfg.loss.name), str(cfg.model.name)
        if loss in PULL_LOSSES:
            return (f"loss={loss} scales network residuals by the expected resolution; the BDT is trained per "
                    f"(|eta|, E_T) bin already: use loss=mse or huber with model={model}")  # fmt: skip
        if loss in SIGMA_LOSSES:
            return f"loss={loss} predicts a per-cluster σ with a network head: use model=transformer or gnn_edge, not model={model}"
        if adversary != "none":
            return f"adversary={adversary} trains a discriminator on a network's representation: not available for model={model}"
        return None

    @property
    def has_sigma(self) -> bool:
        return False

    def iter_predictions(self, clusters: ClusterDataset) -> Iterator[Prediction]:
        return bdt_predictions(self.bdt, clusters)

    def predict(self, clusters: ClusterDataset) -> Prediction:
        """Every cluster's correction in one XGBoost call per booster."""
        return Prediction.concatenate(list(bdt_predictions(self.bdt, clusters, chunk=None)))
