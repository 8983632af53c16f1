"""A trained calibration as one object: load it from its run directory, apply it to a dataset.

The training pipeline, the pile-up study and (later) export use the same loader, so a model is
always applied with the features, selection and normalisation it was trained with. A run
directory holds ``config.yaml`` (the resolved run config) and either ``checkpoints/best.pt``
(networks) or ``bdt/`` (the XGBoost baseline).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from calo_calib.data.features import resolve_cluster_features
from calo_calib.data.loader import ClusterDataset

PathLike = str | os.PathLike[str]


def cell_and_cluster_features(cfg: DictConfig) -> tuple[list[str], list[str]]:
    """The run's cell and cluster feature names (``data.cluster_features: auto`` resolved per particle)."""
    cells = [str(f) for f in cfg.data.cell_features]
    spec = cfg.data.cluster_features
    spec = spec if spec is None or isinstance(spec, str) else list(spec)
    return cells, resolve_cluster_features(spec, str(cfg.particle.name))


def loader_workers(cfg: DictConfig) -> int:
    """Worker processes assembling batches (``data.workers``): ``auto`` = 0 when training on the CPU
    (its cores are busy with the model), else up to 8, leaving half of the cores to the main process."""
    value = cfg.data.get("workers", 0)
    if value == "auto":
        device = str(cfg.get("trainer", {}).get("device", "auto"))
        on_gpu = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        return min(8, (os.cpu_count() or 1) // 2) if on_gpu else 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"data.workers must be auto or an integer >= 0, got {value!r}")
    return value


def make_dataset(
    cfg: DictConfig,
    paths: PathLike | Sequence[PathLike],
    *,
    shuffle: bool = False,
    batch_size: int | None = None,
    max_clusters: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    training: bool = False,
    with_truth: bool = True,
) -> ClusterDataset:
    """A :class:`ClusterDataset` with the run's features and selection.

    ``training=True`` (training and validation splits) adds the truth-level target cut
    ``data.max_train_target``; test and inference data never get it. ``with_truth=False`` reads no
    truth at all (unlabelled data-like clusters of the domain adaptation; the target is NaN), and
    then never applies the truth cut.
    """
    max_target = cfg.data.get("max_train_target") if training and with_truth else None
    cells, clusters = cell_and_cluster_features(cfg)
    if batch_size is None:  # evaluation: any size works, so round up to split evenly over the ranks
        batch_size = -(-int(cfg.data.eval_batch_size) // world_size) * world_size
    return ClusterDataset(
        paths,
        cell_features=cells,
        cluster_features=clusters,
        batch_size=int(batch_size),
        shuffle=shuffle,
        seed=int(cfg.seed),
        exclude_crack=bool(cfg.data.exclude_crack),
        nonfinite=str(cfg.data.nonfinite),
        buffer_clusters=int(cfg.data.buffer_clusters),
        max_clusters=max_clusters,
        rank=rank,
        world_size=world_size,
        min_cluster_et=float(cfg.data.get("min_cluster_et") or 0.0),
        max_target=float(max_target) if max_target else None,
        pad_multiple=int(cfg.data.get("pad_multiple") or 1),
        with_truth=with_truth,
        workers=loader_workers(cfg),
        out_of_range=str(cfg.data.get("out_of_range") or "error"),
        option_prefix="data.",
    )


def predicts_sigma(cfg: DictConfig) -> bool:
    """Whether the run's network has the uncertainty head: the loss decides (``loss=gaussian_nll``)."""
    from calo_calib.training.losses import SIGMA_LOSSES

    return str(cfg.loss.name) in SIGMA_LOSSES


def build_run_network(cfg: DictConfig, n_cell_features: int, n_cluster_features: int, norm: dict[str, Any] | None) -> torch.nn.Module:
    """The run's network: :func:`calo_calib.models.build_network` of ``cfg.model.net``.

    A loss that needs a per-cluster σ (``gaussian_nll``) adds ``predict_sigma=True``; otherwise the
    network is built exactly as the model config says (so existing checkpoints load unchanged).
    """
    from calo_calib.models import build_network

    extra = {"predict_sigma": True} if predicts_sigma(cfg) else {}
    return build_network(cfg.model.net, n_cell_features, n_cluster_features, norm, **extra)


@dataclass
class Prediction:
    """Per-cluster output of a calibration.

    ``row_id`` (N,); ``correction`` (N,) = E_reco / cluster_e; ``sigma`` (N,) or None: the predicted
    relative resolution σ(E) / E_reco of each cluster (dimensionless; ≈ the resolution of
    E_reco / E_true), present only for networks trained with ``loss=gaussian_nll``.
    """

    row_id: np.ndarray
    correction: np.ndarray
    sigma: np.ndarray | None = None


class Calibration:
    """A trained calibration loaded from a run directory."""

    def __init__(self, run_dir: PathLike, cfg: DictConfig) -> None:
        self.run_dir = Path(run_dir)
        self.cfg = cfg

    @property
    def name(self) -> str:
        return str(self.cfg.model.name)

    @property
    def particle(self) -> str:
        return str(self.cfg.particle.name)

    def predict(self, paths: PathLike | Sequence[PathLike]) -> tuple[Prediction, ClusterDataset]:
        """Apply the calibration to every selected cluster of a dataset; returns the prediction and the dataset."""
        raise NotImplementedError


class NetworkCalibration(Calibration):
    """A transformer / gnn_edge calibration: weights and normalisation from ``checkpoints/best.pt``."""

    def __init__(self, run_dir: PathLike, cfg: DictConfig, checkpoint: str = "best.pt", device: str = "cpu") -> None:
        super().__init__(run_dir, cfg)
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

    def predict(self, paths: PathLike | Sequence[PathLike]) -> tuple[Prediction, ClusterDataset]:
        from calo_calib.training.distributed import DistEnv
        from calo_calib.training.loop import predict

        dataset = make_dataset(self.cfg, paths)
        env = DistEnv(0, 0, 1, self.device)
        out = predict(self.model, dataset.batches(0), env, precision="fp32")
        return Prediction(out["row_id"], out["correction"], out.get("sigma")), dataset


class BDTRunCalibration(Calibration):
    """The XGBoost baseline saved under ``<run_dir>/bdt``."""

    def __init__(self, run_dir: PathLike, cfg: DictConfig) -> None:
        super().__init__(run_dir, cfg)
        from calo_calib.models.bdt import BDTCalibration

        self.bdt = BDTCalibration.load(self.run_dir / "bdt")

    def predict(self, paths: PathLike | Sequence[PathLike]) -> tuple[Prediction, ClusterDataset]:
        """Corrections of the dataset's clusters, with the inputs the saved model was trained on
        (``features`` of its manifest: ``atlas`` or ``atlas+shapes``)."""
        dataset = make_dataset(self.cfg, paths)
        feats = self.bdt.dataset_inputs(dataset)
        corr = self.bdt.predict_correction(feats)
        return Prediction(feats["row_id"], corr), dataset


def load_run_config(run_dir: PathLike) -> DictConfig:
    """The resolved configuration a run was made with (``<run_dir>/config.yaml``)."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a calo_calib run directory: {path} is missing")
    return OmegaConf.load(path)


def load_calibration(run_dir: PathLike, device: str = "cpu") -> Calibration:
    """Load the calibration trained in ``run_dir`` (network or BDT, from its saved config)."""
    cfg = load_run_config(run_dir)
    if cfg.model.kind == "bdt":
        return BDTRunCalibration(run_dir, cfg)
    return NetworkCalibration(run_dir, cfg, device=device)
