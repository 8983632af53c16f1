"""The feature-importance study's evaluation sample in memory and the network's predictions on it.

:func:`load_sample` reads the run's test clusters through its own loader (features, selection,
normalisation) into :class:`Sample`; :func:`predict_corrections` applies a network to (perturbed)
batches. Method: :mod:`calo_calib.studies.importance`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

Batch = dict[str, torch.Tensor]
PathLike = str | os.PathLike[str]


@dataclass
class Sample:
    """The evaluation clusters in memory, as the loader's batches (CPU tensors).

    ``batches``: dicts with cells (B, L, F_cell), valid (B, L), cluster (B, F_cluster), pair (B, L, 7),
    cluster_e (B,) [GeV], row_id (B,), ... (``calo_calib.data.loader``). ``truth_e`` [GeV] and
    ``abs_eta`` are (N,) arrays in the order of the batches' rows (N clusters in all).
    """

    batches: list[Batch]
    truth_e: np.ndarray
    abs_eta: np.ndarray
    cell_features: list[str]
    cluster_features: list[str]

    @property
    def n_clusters(self) -> int:
        return int(self.truth_e.size)

    @property
    def cluster_e(self) -> np.ndarray:
        """(N,) raw cluster energy [GeV]."""
        return torch.cat([b["cluster_e"] for b in self.batches]).double().numpy()

    @property
    def n_cells(self) -> int:
        """Valid cells of all clusters."""
        return int(sum(int(b["valid"].sum()) for b in self.batches))


def load_sample(
    calibration: Any,
    paths: PathLike | Sequence[PathLike],
    max_clusters: int | None = None,
    batch_size: int | None = None,
) -> Sample:
    """Read the first ``max_clusters`` selected clusters of ``paths`` with the run's features and selection.

    Args:
        calibration: a :class:`calo_calib.calibration.NetworkRunCalibration` (``.cfg``, ``.model``).
        paths: dataset directories / Parquet files (the run's test split usually).
        max_clusters: None = all selected clusters.
        batch_size: clusters per batch (None: the run's ``data.eval_batch_size``). ``gnn_edge`` holds
            O(B·L²) pair features per batch: smaller batches bound its memory.

    Raises:
        TypeError: for a calibration without a network (the BDT: use :func:`~calo_calib.studies.importance_bdt.bdt_gain_importance`).
        ValueError: if no cluster is selected, or a row_id has no truth (a loader bug).
    """
    from calo_calib.calibration import cell_and_cluster_features, make_dataset

    if not isinstance(getattr(calibration, "model", None), torch.nn.Module):
        raise TypeError(
            f"permutation importance needs a network calibration (transformer, gnn_edge); got {type(calibration).__name__}"
        )
    cfg = calibration.cfg
    dataset = make_dataset(cfg, paths, max_clusters=max_clusters, batch_size=batch_size)
    batches = list(dataset.batches(0))
    if not batches:
        raise ValueError(f"no selected cluster in {paths}: nothing to evaluate")
    row_id = torch.cat([b["row_id"] for b in batches]).numpy()
    table = dataset.scalar_table(["truth_e", "cluster_eta"])
    ids = table.column("row_id").to_numpy()
    order = np.argsort(ids, kind="stable")
    pos = np.searchsorted(ids, row_id, sorter=order)
    if np.any(pos >= ids.size) or np.any(ids[order[np.minimum(pos, ids.size - 1)]] != row_id):
        raise ValueError(f"{paths}: batches hold row_ids missing from the scalar table (loader inconsistency)")
    idx = order[pos]
    cells, clusters = cell_and_cluster_features(cfg)
    return Sample(
        batches=batches,
        truth_e=table.column("truth_e").to_numpy().astype(np.float64)[idx],
        abs_eta=np.abs(table.column("cluster_eta").to_numpy().astype(np.float64))[idx],
        cell_features=cells,
        cluster_features=clusters,
    )


def predict_corrections(
    model: torch.nn.Module, batches: Sequence[Batch], device: str | torch.device = "cpu"
) -> np.ndarray:
    """The network's correction E_reco / cluster_e for every row of ``batches``, (N,) float64, in order
    (the training code's inference, :func:`calo_calib.training.inference.predict`, in fp32)."""
    from calo_calib.training.distributed import DistEnv
    from calo_calib.training.inference import predict

    if not batches:
        return np.empty(0)
    env = DistEnv(0, 0, 1, torch.device(device))
    return predict(model.to(env.device), batches, env, precision="fp32")["correction"].astype(np.float64)
