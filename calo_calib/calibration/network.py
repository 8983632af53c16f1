"""A trained network run (transformer, gnn_edge): weights and normalisation from ``checkpoints/best.pt``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import torch
from omegaconf import DictConfig

from calo_calib.calibration.protocol import PathLike, Prediction
from calo_calib.calibration.run import RunCalibration
from calo_calib.calibration.run_config import build_run_network, cell_and_cluster_features, predicts_sigma
from calo_calib.data.loader import ClusterDataset


class NetworkRunCalibration(RunCalibration):
    """A transformer / gnn_edge run; ``model`` is the network (eval mode) on ``device``."""

    kind: ClassVar[str] = "network"
    is_network: ClassVar[bool] = True

    def __init__(self, run_dir: PathLike, cfg: DictConfig, *, checkpoint: str = "best.pt", device: str = "cpu") -> None:
        super().__init__(run_dir, cfg, device=device)
        from calo_calib.training import checkpoint as ckpt

        path = self.run_dir / "checkpoints" / checkpoint
        if not path.exists():
            raise FileNotFoundError(f"no trained network in {self.run_dir}: {path} is missing")
        payload = ckpt.load(path, "cpu")
        cells, clusters = cell_and_cluster_features(cfg)
        self.model = build_run_network(cfg, len(cells), len(clusters), None)
        self.model.load_state_dict(payload["model"])
        self.model.eval()
        self.device = torch.device(device)
        self.model.to(self.device)

    @property
    def has_sigma(self) -> bool:
        return predicts_sigma(self.cfg)

    def iter_predictions(self, clusters: ClusterDataset) -> Iterator[Prediction]:
        """One prediction per loader batch, in fp32 (:func:`calo_calib.training.inference.predict`)."""
        from calo_calib.training.distributed import DistEnv
        from calo_calib.training.inference import predict

        env = DistEnv(0, 0, 1, self.device)
        for batch in clusters.batches(0):
            out = predict(self.model, [batch], env, precision="fp32")
            yield Prediction(out["row_id"], out["correction"], out.get("sigma"),
                             batch["cluster_e"].numpy(), batch["target"].numpy())  # fmt: skip
