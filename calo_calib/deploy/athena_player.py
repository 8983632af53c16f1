"""A contract player: what athena's SaltModel and egammaTransformerCalibTool::getEnergy do with an ONNX file.

This is NOT athena: it restates, in Python with onnxruntime, the steps of the C++ code (files and
commits in :data:`calo_calib.deploy.athena_spec.MIRRORED_FILES`) that decide whether a file loads
and what energy it gives, so that an exported file can be checked against them without an athena
release:

:class:`SaltModelPlayer` (SaltModel's constructor and ``runInference``)
    reads the custom metadata ``gnn_config`` as JSON (missing or not JSON: an error); resolves the
    version from ``onnx_model_version`` ("v0".."v2"; any other value is an error), or v0 when only
    an ``outputs`` key is present, else an error; resolves the model name (v0: the first key of
    ``outputs`` in nlohmann's sorted order; v1+: the part of every output name before its first
    ``_``, one name for all outputs, else an error); feeds every graph input by name from the
    caller's map as float32 (a graph input the caller does not provide is an error, as
    ``std::map::at``); returns rank-0 float outputs as floats, rank-1 float outputs as vectors, in
    a map sorted by name (``std::map``), and rejects any other rank or type.
:class:`TransformerCalibPlayer` (the tool's ``initialize`` and ``getEnergy``)
    opens ``<folder>/<model file of the particle>``, runs the dummy evaluation of
    ``setupTransformerModel`` (zeros: cluster [1, F], cells [1, 7]), computes the 11/15 cluster
    and 7 cell features from a cluster's cells in MeV/mm exactly as ``getEnergy`` does (float
    cells, double layer sums, ratios 0 only for an exactly-0 denominator, Δφ by
    ``fmod(Δφ + 3π, 2π) - π``), takes the first element of the first vector output of the sorted
    map, and returns correction × ΣE_cells(L0..L3) [MeV] (the cluster energy if the correction is
    exactly 0, ``useClusterIf0``).

What it cannot prove: the C++ side itself (ONNX Runtime version and build, ``Ort::Session`` options
other than one intra-op thread, the xAOD accessors that fill the cells, the layer recalibration and
cell recovery applied to data, the egammaMVAFunctions computing the conversion quantities).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from calo_calib.deploy import athena_spec as spec


class AthenaContractError(RuntimeError):
    """What would make the athena C++ code throw (or fail to initialise) on this file."""


@dataclass(frozen=True)
class SaltOutput:
    """One output node as SaltModel sees it: its key in the result maps, its graph name, type, rank."""

    name: str
    name_in_model: str
    elem_type: str  # onnxruntime's type string, e.g. "tensor(float)"
    rank: int


class SaltModelPlayer:
    """SaltModel(path) and runInference(inputs): see the module docstring."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # SaltModel: SetIntraOpNumThreads(1), ORT_ENABLE_EXTENDED
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        custom = self.session.get_modelmeta().custom_metadata_map
        if spec.GNN_CONFIG_KEY not in custom:
            raise AthenaContractError(f"{self.path}: no custom metadata {spec.GNN_CONFIG_KEY!r} (SaltModel parses it as JSON)")
        try:
            self.metadata = json.loads(custom[spec.GNN_CONFIG_KEY])
        except json.JSONDecodeError as err:
            raise AthenaContractError(f"{self.path}: metadata {spec.GNN_CONFIG_KEY!r} is not JSON: {err}") from None
        if "onnx_model_version" in self.metadata:
            self.version = self.metadata["onnx_model_version"]
            if self.version not in spec.SALT_VERSIONS:
                raise AthenaContractError(f"{self.path}: Unknown Onnx model version {self.version!r} (valid: {list(spec.SALT_VERSIONS)})")
        elif "outputs" in self.metadata:
            self.version = "v0"
        else:
            raise AthenaContractError(f"{self.path}: Onnx model version not found in metadata (no 'onnx_model_version' nor 'outputs')")
        raw = [(o.name, o.type, len(o.shape)) for o in self.session.get_outputs()]
        self.model_name = self._model_name([n for n, _, _ in raw])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.outputs = [
            SaltOutput(self._key(n), n, t, r) for n, t, r in raw
        ]

    def _model_name(self, output_names: list[str]) -> str:
        if self.version == "v0":
            return sorted(self.metadata["outputs"])[0]  # nlohmann::json objects iterate in key order
        names = set()
        for n in output_names:
            if "_" not in n:
                return "UnknownModelName"
            names.add(n[: n.index("_")])
        if len(names) != 1:
            raise AthenaContractError(f"{self.path}: SaltModel: model names are not consistent between outputs {output_names}")
        return names.pop()

    def _key(self, name: str) -> str:
        """SaltModelOutput.name: the graph name (v1+), or ``<model>_<name>`` (v0, unless UnknownModelName)."""
        if self.version != "v0" or self.model_name == "UnknownModelName":
            return name
        return f"{self.model_name}_{name}"

    def run(self, inputs: Mapping[str, tuple[np.ndarray, tuple[int, ...]]]) -> tuple[dict[str, float], dict[str, list[int]], dict[str, list[float]]]:
        """runInference: ``inputs`` maps input name -> (flat values, shape); returns (singleFloat, vecChar, vecFloat)."""
        feed = {}
        for name in self.input_names:
            if name not in inputs:
                raise AthenaContractError(f"{self.path}: graph input {name!r} is not one the tool provides ({sorted(inputs)})")
            values, shape = inputs[name]
            feed[name] = np.asarray(values, dtype=np.float32).reshape(shape)  # CreateTensor<float>
        results = self.session.run([o.name_in_model for o in self.outputs], feed)
        single: dict[str, float] = {}
        vec_char: dict[str, list[int]] = {}
        vec_float: dict[str, list[float]] = {}
        for node, value in zip(self.outputs, results):
            value = np.asarray(value)
            if value.dtype == np.float32:
                if value.ndim == 0:
                    single[node.name] = float(value)
                elif value.ndim == 1:
                    vec_float[node.name] = value.tolist()
                else:
                    raise AthenaContractError(f"{self.path}: output {node.name_in_model!r} has rank {value.ndim}: Unsupported tensor shape for FLOAT type")
            elif value.dtype == np.int8 and value.ndim == 1:
                vec_char[node.name] = value.tolist()
            else:
                raise AthenaContractError(f"{self.path}: output {node.name_in_model!r} ({value.dtype}, rank {value.ndim}): Unsupported tensor type")
        # std::map: iteration (and so the tool's begin()) in name order
        return dict(sorted(single.items())), dict(sorted(vec_char.items())), dict(sorted(vec_float.items()))


@dataclass
class AtlasCluster:
    """A cluster as the tool reads it from xAOD, in ATLAS units.

    Cells (n,): ``cell_e`` float32 [MeV], ``cell_eta``, ``cell_phi`` float32 [rad], ``cell_x/y/z``
    float32 [mm], ``cell_layer`` int (0..3, TileGap3 = 4). ``eta``, ``phi``: the cluster's (double).
    ``e``: clus.e() [MeV] (returned when the correction is exactly 0). Converted photons also carry
    ``conv`` = (convR [mm], convEtOverPt, convPtRatio, conversionType), the egammaMVAFunctions values.
    """

    cell_e: np.ndarray
    cell_eta: np.ndarray
    cell_phi: np.ndarray
    cell_x: np.ndarray
    cell_y: np.ndarray
    cell_z: np.ndarray
    cell_layer: np.ndarray
    eta: float
    phi: float
    e: float
    conv: tuple[float, float, float, float] | None = None


class TransformerCalibPlayer:
    """egammaTransformerCalibTool with ``folder``, ``ParticleType`` and the default model file properties."""

    def __init__(self, folder: str | os.PathLike[str], particle: str, model_file: str | None = None) -> None:
        self.particle = particle
        self.n_cluster = spec.n_cluster_features(particle)
        self.n_cell = len(spec.CELL_FEATURES)
        path = Path(folder) / (model_file or spec.MODEL_FILE_PROPERTY[particle][1])
        if not path.exists():
            raise AthenaContractError(f"PathResolverFindCalibFile: {path} not found")
        self.model = SaltModelPlayer(path)
        # setupTransformerModel's dummy evaluation: the graph must accept zeros, one cell
        self.model.run({spec.CLUSTER_INPUT: (np.zeros(self.n_cluster), (1, self.n_cluster)),
                        spec.CELL_INPUT: (np.zeros(self.n_cell), (1, self.n_cell))})  # fmt: skip

    def features(self, c: AtlasCluster) -> tuple[np.ndarray, np.ndarray, float]:
        """(cluster features float32 [F], cell features float32 [n, 7], ΣE_cells(L0..L3) [MeV] double), as getEnergy."""
        e = np.asarray(c.cell_e, dtype=np.float32).astype(np.float64)  # cell->e() is float; sums in double
        layer = np.asarray(c.cell_layer, dtype=np.int64)
        sums = [float(e[layer == k].sum()) for k in range(5)]  # L0, L1, L2, L3, TileGap3
        total = sums[0] + sums[1] + sums[2] + sums[3]  # TileGap3 is not in the sum
        acc = sums[1] + sums[2] + sums[3]
        cl = [total, *sums, c.eta, c.phi,
              sums[1] / sums[2] if sums[2] != 0 else 0.0,
              sums[0] / acc if acc != 0 else 0.0,
              sums[4] / acc if acc != 0 else 0.0]  # fmt: skip
        if self.particle == "photon_conv":
            cl += list(c.conv) if c.conv is not None else [0.0] * 4
        deta = (np.asarray(c.cell_eta, np.float32).astype(np.float64) - c.eta).astype(np.float32)
        dphi = (np.asarray(c.cell_phi, np.float32).astype(np.float64) - c.phi).astype(np.float32).astype(np.float64)
        dphi = (np.fmod(dphi + 3.0 * math.pi, 2.0 * math.pi) - math.pi).astype(np.float32)
        den = np.asarray(sums)[layer]
        frac = np.where(den != 0, e / np.where(den != 0, den, 1.0), 0.0).astype(np.float32)
        cells = np.stack([frac, deta, dphi, np.asarray(c.cell_x, np.float32), np.asarray(c.cell_y, np.float32),
                          np.asarray(c.cell_z, np.float32), layer.astype(np.float32)], axis=1)  # fmt: skip
        return np.asarray(cl, dtype=np.float32), cells, total

    def outputs(self, c: AtlasCluster) -> tuple[dict[str, list[float]], float]:
        """(the vector-float output map of runInference, ΣE_cells(L0..L3) [MeV]) for one cluster with cells."""
        cl, cells, total = self.features(c)
        _, _, vec_float = self.model.run({spec.CLUSTER_INPUT: (cl, (1, len(cl))), spec.CELL_INPUT: (cells, cells.shape)})
        return vec_float, total

    def get_energy(self, c: AtlasCluster) -> float:
        """The calibrated energy [MeV] (float32 arithmetic as the tool); 0 for a cluster without cells."""
        if len(c.cell_e) == 0:
            return 0.0
        vec_float, total = self.outputs(c)
        score = np.float32(0.0)
        first = next(iter(vec_float.values()), [])  # out_vf.begin()->second: the first name in order
        if first:
            score = np.float32(first[0])
        if score == 0:
            return float(c.e)  # useClusterIf0 (default true)
        return float(score * np.float32(total))
