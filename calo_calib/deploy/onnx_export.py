"""Export a trained network to ONNX (per-cluster and batched graphs) with its metadata.

Uses the dynamo-based ``torch.onnx.export`` (the legacy exporter bakes traced sequence lengths into
attention reshapes). Example inputs have >= 2 clusters and >= 2 cells: an example dimension of
size 1 would be fixed to 1 in the graph; the parity check then proves 1-cell and 1-cluster inputs work.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx
import torch

from calo_calib.deploy.onnx_graphs import BatchedGraph, PerClusterGraph, output_names

OPSET = 18


def _save_with_metadata(program, path: Path, metadata: Mapping[str, str]) -> None:
    """Write the exported program to ``path`` atomically, with ``metadata`` as ONNX metadata_props."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    program.save(str(tmp))
    model = onnx.load(str(tmp))
    del model.metadata_props[:]
    for key, value in metadata.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = str(key), str(value)
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp))
    os.replace(tmp, path)


def _export(graph: torch.nn.Module, args: list[torch.Tensor], names: list[str], shapes: Mapping[str, Any], path: Path,
            metadata: Mapping[str, str], outputs: list[str] | None = None) -> Path:  # fmt: skip
    """Export ``graph`` (inputs ``names``; outputs ``outputs``, by default ``correction``, and ``sigma``
    for a network with the uncertainty head) with dynamic ``shapes`` and save it with ``metadata``."""
    with torch.no_grad():
        program = torch.onnx.export(
            graph, tuple(args), dynamo=True, input_names=names, output_names=outputs or output_names(graph.model),
            dynamic_shapes=dict(shapes), opset_version=OPSET, verbose=False,
        )  # fmt: skip
    _save_with_metadata(program, path, metadata)
    return path


def export_per_cluster(model: torch.nn.Module, example: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str]) -> Path:
    """The athena convention: ``cluster`` [1, F_cluster], ``cells`` [n_cells, F_cell] (, ``cell_pair`` [n_cells, 7]) -> ``correction`` [1].

    Args:
        example: one real batch (the loader's dict); its first cluster with >= 2 cells is the example.
    """
    graph = PerClusterGraph(model).eval()
    counts = example["valid"].sum(1)
    i = int(torch.nonzero(counts >= 2)[0, 0])
    n = int(counts[i])
    args = [example["cluster"][i : i + 1], example["cells"][i, :n]]
    names = ["cluster", "cells"]
    n_cells = torch.export.Dim("n_cells", min=1, max=65536)
    shapes: dict[str, dict[int, object] | None] = {"cluster": None, "cells": {0: n_cells}}
    if graph.with_pair:
        args.append(example["pair"][i, :n])
        names.append("cell_pair")
        shapes["cell_pair"] = {0: n_cells}
    return _export(graph, args, names, shapes, path, {**metadata, "convention": "per_cluster"})


def export_batched(model: torch.nn.Module, example: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str]) -> Path:
    """``cells`` [B, L, F_cell], ``valid`` bool [B, L], ``cluster`` [B, F_cluster] (, ``pair`` [B, L, 7]) -> ``correction`` [B]."""
    graph = BatchedGraph(model).eval()
    if example["cells"].shape[0] < 2 or example["cells"].shape[1] < 2:
        raise ValueError("export_batched: the example batch needs >= 2 clusters and >= 2 cells")
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    length = torch.export.Dim("n_cells", min=1, max=65536)
    args = [example["cells"], example["valid"], example["cluster"]]
    names = ["cells", "valid", "cluster"]
    shapes: dict[str, dict[int, object]] = {"cells": {0: batch, 1: length}, "valid": {0: batch, 1: length}, "cluster": {0: batch}}
    if graph.with_pair:
        args.append(example["pair"])
        names.append("pair")
        shapes["pair"] = {0: batch, 1: length}
    return _export(graph, args, names, shapes, path, {**metadata, "convention": "batched"})


def export_athena(model: torch.nn.Module, example: Mapping[str, torch.Tensor], particle: str, path: Path,
                  metadata: Mapping[str, str]) -> Path:  # fmt: skip
    """The athena ``egammaTransformerCalibTool`` file (:mod:`calo_calib.deploy.athena_graph`):
    ``cluster_features`` [1, F] (MeV), ``cell_features`` [n_cells, 7] -> ``<model>_correction`` [1]
    (, ``<model>_sigma`` [1]); ``metadata`` must hold ``gnn_config``.

    The caller has checked that the network's features are the tool's (same names, same order).
    """
    from calo_calib.deploy import athena_spec as spec
    from calo_calib.deploy.athena_graph import AthenaPerClusterGraph

    if spec.GNN_CONFIG_KEY not in metadata:
        raise ValueError(f"export_athena: metadata lacks {spec.GNN_CONFIG_KEY!r} (SaltModel cannot load the file without it)")
    graph = AthenaPerClusterGraph(model, particle).eval()
    counts = example["valid"].sum(1)
    i = int(torch.nonzero(counts >= 2)[0, 0])
    n = int(counts[i])
    # Example values only fix shapes: the graph has no data-dependent control flow.
    args = [example["cluster"][i : i + 1], example["cells"][i, :n]]
    names = [spec.CLUSTER_INPUT, spec.CELL_INPUT]
    n_cells = torch.export.Dim("n_cells", min=1, max=65536)
    shapes = {spec.CLUSTER_INPUT: None, spec.CELL_INPUT: {0: n_cells}}
    prefix = spec.salt_model_name(str(metadata.get("model", "calocalib")))
    outputs = [f"{prefix}_{o}" for o in output_names(model)]
    return _export(graph, args, names, shapes, path, {**metadata, "convention": "athena"}, outputs)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata_props of an ONNX file as a dict (JSON-valued entries are left as strings)."""
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def metadata_json(value: object) -> str:
    """Compact JSON for a metadata value (lists, dicts)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
