"""The two ONNX conventions of an exported network, as thin torch wrappers around the trained model.

* **per-cluster** (one cluster per call; for athena's ``egammaTransformerCalibTool`` see
  :mod:`calo_calib.deploy.athena_graph`):
  ``cluster`` float32 [1, F_cluster], ``cells`` float32 [n_cells, F_cell]
  (+ ``cell_pair`` float32 [n_cells, 7] for the edge-feature network) -> ``correction`` float32 [1];
* **batched** (high-throughput inference): ``cells`` [B, L, F_cell], ``valid`` bool [B, L] (True = a
  real cell; padded cells may hold anything), ``cluster`` [B, F_cluster] (+ ``pair`` [B, L, 7])
  -> ``correction`` [B].

Features are raw (GeV, mm, rad, as in ``docs/data_format.md``): the normalisation is part of the graph.
The correction multiplies the raw cluster energy: E_calib = correction × E_cluster.

A network with an uncertainty head (``loss=gaussian_nll``) gets a second output ``sigma`` of the
same shape: the predicted relative resolution σ(E) / E_calib (dimensionless,
:func:`calo_calib.models.common.relative_sigma`), so σ(E) = sigma × E_calib.
"""

from __future__ import annotations

import torch
from torch import nn

from calo_calib.models.common import NetworkOutput, as_output, relative_sigma

N_PAIR_INPUTS = 7  # raw η, φ [rad], x, y, z [mm], layer, E [GeV] per cell (edge-feature network only)


def has_sigma(model: nn.Module) -> bool:
    """Whether the network has the per-cluster uncertainty head (its graphs get a ``sigma`` output)."""
    return bool(getattr(model, "predict_sigma", False))


def output_names(model: nn.Module) -> list[str]:
    """The graph outputs: ``correction`` (and ``sigma`` for a network with the uncertainty head)."""
    return ["correction", "sigma"] if has_sigma(model) else ["correction"]


def graph_outputs(out: torch.Tensor | NetworkOutput) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The graph's output(s) from the network's return value: correction, or (correction, relative σ)."""
    o = as_output(out)
    if o.log_sigma is None:
        return o.correction
    return o.correction, relative_sigma(o.correction, o.log_sigma)


def needs_pair(model: nn.Module) -> bool:
    """Whether the network reads the raw per-cell ``pair`` quantities (the edge-feature variant)."""
    from calo_calib.models.gnn_edge import EdgeTransformer

    return isinstance(model, EdgeTransformer)


class PerClusterGraph(nn.Module):
    """One cluster per call: ``cluster`` [1, F_cluster], ``cells`` [n, F_cell] (, ``cell_pair`` [n, 7]) -> [1] (, sigma [1])."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.with_pair = needs_pair(model)

    def forward(self, cluster: torch.Tensor, cells: torch.Tensor, cell_pair: torch.Tensor | None = None):
        cells_b = cells.unsqueeze(0)  # (1, n, F_cell)
        valid = torch.ones(cells_b.shape[:2], dtype=torch.bool, device=cells.device)  # every cell is real
        pair = cell_pair.unsqueeze(0) if cell_pair is not None else None
        return graph_outputs(self.model(cells_b, valid, cluster, pair))


class BatchedGraph(nn.Module):
    """Padded batches: ``cells`` [B, L, F_cell], ``valid`` [B, L], ``cluster`` [B, F_cluster] (, ``pair`` [B, L, 7]) -> [B] (, sigma [B])."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.with_pair = needs_pair(model)

    def forward(self, cells: torch.Tensor, valid: torch.Tensor, cluster: torch.Tensor, pair: torch.Tensor | None = None):
        return graph_outputs(self.model(cells, valid, cluster, pair))
