"""The athena-flavour per-cluster graph: what ``egammaTransformerCalibTool`` feeds in, the project's network inside.

Inputs (ATLAS units, the tool's feature definitions, :mod:`calo_calib.deploy.athena_spec`):
``cluster_features`` float32 [1, F] (F = 11, 15 for converted photons; energies in MeV) and
``cell_features`` float32 [n_cells, 7] (E/E_layer, Δη, Δφ, x, y, z [mm], layer). Outputs
``<model>_correction`` float32 [1] (and ``<model>_sigma`` [1] for the uncertainty head), rank 1 as
SaltModel requires; E_calib [MeV] = correction × ΣE_cells(L0..L3) [MeV].

Inside the graph, before the network (whose normalisation is in its own buffers):

* MeV -> GeV for the six energy features (the network was trained on GeV);
* the project's zero-denominator rule for the ratios: the tool sets a ratio to 0 only when its
  denominator is exactly 0, the project when |denominator| < 1 keV (:data:`calo_calib.data.features.EPS_E`);
  the graph zeroes E_L1/E_L2, f0, f_TG3 and E/E_layer where the denominator (recomputed from the
  cluster's layer energies, which are the tool's layer sums) is below 1 keV. Both rules agree on
  every cluster with no layer sum in (0, 1 keV);
* for the edge-feature network, the raw per-cell η, φ, E it needs are rebuilt from what the tool
  gives: η = Δη + η_cluster, φ = Δφ + φ_cluster (the network uses only differences), E =
  (E/E_layer) × E_layer. A cell in a layer whose sum is exactly 0 gets E = 0 (the tool passes
  E/E_layer = 0 there).
"""

from __future__ import annotations

import torch
from torch import nn

from calo_calib.data.features import EPS_E
from calo_calib.deploy import athena_spec as spec
from calo_calib.deploy.onnx_graphs import graph_outputs, needs_pair


class AthenaPerClusterGraph(nn.Module):
    """``cluster_features`` [1, F] (MeV), ``cell_features`` [n, 7] -> correction [1] (, sigma [1])."""

    def __init__(self, model: nn.Module, particle: str) -> None:
        super().__init__()
        self.model = model
        self.with_pair = needs_pair(model)
        names = spec.cluster_features(particle)
        scale = [1.0 / spec.MEV_PER_GEV if n in spec.ENERGY_CLUSTER_FEATURES else 1.0 for n in names]
        self.register_buffer("to_project_units", torch.tensor(scale, dtype=torch.float32), persistent=False)
        self.i = {n: k for k, n in enumerate(names)}

    def forward(self, cluster_features: torch.Tensor, cell_features: torch.Tensor):
        cl = cluster_features * self.to_project_units  # (1, F), energies now GeV
        i = self.i
        layer_e = cl[:, [i["e_ps"], i["e_l1"], i["e_l2"], i["e_l3"], i["e_tg3"]]]  # (1, 5) GeV, layer 0..4
        e_acc = cl[:, i["e_l1"]] + cl[:, i["e_l2"]] + cl[:, i["e_l3"]]
        zero = torch.zeros_like(e_acc)
        r12 = torch.where(cl[:, i["e_l2"]].abs() < EPS_E, zero, cl[:, i["r12"]])
        f0 = torch.where(e_acc.abs() < EPS_E, zero, cl[:, i["f0_acc"]])
        ftg3 = torch.where(e_acc.abs() < EPS_E, zero, cl[:, i["f_tg3"]])
        cl = torch.cat([cl[:, : i["r12"]], r12[:, None], f0[:, None], ftg3[:, None], cl[:, i["f_tg3"] + 1 :]], dim=1)

        frac, deta, dphi, x, y, z, layer = cell_features.unbind(-1)  # each (n,)
        idx = torch.clamp(torch.round(layer), 0, spec.TILEGAP3_LAYER).to(torch.int64)
        e_layer = layer_e[0][idx]  # (n,) GeV: the sum of the cell's layer
        frac_p = torch.where(e_layer.abs() < EPS_E, torch.zeros_like(frac), frac)
        cells = torch.stack([frac_p, deta, dphi, x, y, z, layer], dim=-1).unsqueeze(0)  # (1, n, 7)
        valid = torch.ones(cells.shape[:2], dtype=torch.bool, device=cells.device)
        pair = None
        if self.with_pair:
            eta = deta + cl[0, i["cluster_eta"]]
            phi = dphi + cl[0, i["cluster_phi"]]
            pair = torch.stack([eta, phi, x, y, z, layer, frac * e_layer], dim=-1).unsqueeze(0)
        return graph_outputs(self.model(cells, valid, cl, pair))
