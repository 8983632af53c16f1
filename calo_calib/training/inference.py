"""Forward passes of a network on loader batches: the device move, the precision, validation and prediction.

Shared by the training loop (:mod:`calo_calib.training.loop`) and by everything that runs a trained
network (:class:`~calo_calib.calibration.network.NetworkCalibration`, the importance study).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from calo_calib.evaluation.metrics import sigma_rel
from calo_calib.models.common import as_output, relative_sigma
from calo_calib.training.distributed import DistEnv
from calo_calib.training.losses import LossFn

Batch = dict[str, torch.Tensor]


def to_device(batch: Batch, device: torch.device) -> Batch:
    """The tensors of ``batch`` on ``device`` (non-blocking on CUDA; other values unchanged)."""
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) else v for k, v in batch.items()}


def forward(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """``model`` on the batch's cells, mask, cluster features and (for ``gnn_edge``) pair quantities."""
    return model(batch["cells"], batch["valid"], batch["cluster"], batch.get("pair"))


def autocast(env: DistEnv, precision: str):
    """bf16 autocast for ``precision`` bf16, or auto on CUDA; a disabled context (fp32) otherwise."""
    use_bf16 = precision == "bf16" or (precision == "auto" and env.device.type == "cuda")
    return torch.autocast(device_type=env.device.type, dtype=torch.bfloat16, enabled=use_bf16)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, batches: Iterable[Batch], loss_fn: LossFn, env: DistEnv, precision: str
) -> tuple[float, float]:
    """(cluster-weighted mean loss, σ_rel of E_reco/E_true) over ``batches``, across all ranks.

    E_reco/E_true = correction / target for every cluster (E_reco = correction · E_cluster and
    E_true = target · E_cluster), so the figure of merit comes from the same pass as the loss: what the
    learning curve of a run plots. σ_rel is NaN without clusters.
    """
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=env.device)
    ratios: list[np.ndarray] = []
    for batch in batches:
        batch = to_device(batch, env.device)
        with autocast(env, precision):
            pred = forward(model, batch)
        n = batch["target"].shape[0]
        total[0] += loss_fn(pred, batch["target"], batch).double() * n
        total[1] += n
        ratios.append((as_output(pred).correction.double() / batch["target"].double()).cpu().numpy())
    if env.distributed:
        torch.distributed.all_reduce(total)
        gathered: list[list[np.ndarray] | None] = [None] * env.world_size
        torch.distributed.all_gather_object(gathered, ratios)
        ratios = [r for part in gathered for r in (part or [])]
    ratio = np.concatenate(ratios) if ratios else np.empty(0)
    # A non-finite ratio (a diverging network) must not stop the epoch here: the loss reports it.
    return float(total[0] / total[1].clamp(min=1)), float(sigma_rel(ratio[np.isfinite(ratio)]))


def evaluate_loss(model: torch.nn.Module, batches: Iterable[Batch], loss_fn: LossFn, env: DistEnv, precision: str) -> float:
    """Cluster-weighted mean loss over ``batches`` (all-reduced across ranks)."""
    return evaluate(model, batches, loss_fn, env, precision)[0]


@torch.no_grad()
def predict(model: torch.nn.Module, batches: Iterable[Batch], env: DistEnv, precision: str = "fp32") -> dict[str, np.ndarray]:
    """Corrections for every cluster of ``batches``: {"row_id": (n,), "correction": (n,)}.

    A network with an uncertainty head adds ``"sigma"`` (n,): the predicted relative resolution
    σ / correction (:func:`~calo_calib.models.common.relative_sigma`), dimensionless.
    """
    model.eval()
    rows, corr, sigma = [], [], []
    for batch in batches:
        batch = to_device(batch, env.device)
        with autocast(env, precision):
            out = as_output(forward(model, batch))
        rows.append(batch["row_id"].cpu().numpy())
        corr.append(out.correction.float().cpu().numpy())
        if out.log_sigma is not None:
            sigma.append(relative_sigma(out.correction.float(), out.log_sigma.float()).cpu().numpy())
    result = {"row_id": np.concatenate(rows), "correction": np.concatenate(corr)}
    if sigma:
        result["sigma"] = np.concatenate(sigma)
    return result
