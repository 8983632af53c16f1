"""Exported calibrations behind one interface: ``predictor.predict(dataset) -> corrections``.

``load_predictor(path)`` accepts an ONNX file written by ``calo_calib.export`` (a batched graph; a
per-cluster graph also works, one cluster per call) or an exported BDT directory (XGBoost JSON).
Both read clusters with the features and selection stored at export, so inference applies exactly
the calibration that was trained.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from calo_calib.data.loader import ClusterDataset


class PredictorError(ValueError):
    """The model file or the input data do not fit together (the message says what and where)."""


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _read_onnx_metadata(path: Path) -> dict[str, str]:
    """The metadata of an ONNX file; a file that is not an ONNX model (text, truncated, empty) is a
    :class:`PredictorError` naming it, not a protobuf traceback."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as err:
        raise PredictorError(
            f"{path} is not a valid ONNX model (truncated or not an ONNX file: {_first_line(err)})"
        ) from None
    if not model.HasField("graph") or not model.graph.node:
        raise PredictorError(
            f"{path} is not a valid ONNX model (it holds no graph: empty, truncated or not an ONNX file)"
        )
    return {p.key: p.value for p in model.metadata_props}


class OnnxPredictor:
    """An exported network run by onnxruntime.

    Args:
        path: ``<model>_<particle>_batched.onnx`` (or the per-cluster file).
        device: ``cpu`` | ``cuda`` | ``auto``.
        threads: onnxruntime intra-op threads (0 = all cores).
    """

    def __init__(self, path: str | os.PathLike[str], device: str = "cpu", threads: int = 0) -> None:
        from calo_calib.deploy.runtime import make_session

        self.path = Path(path)
        meta = _read_onnx_metadata(self.path)
        needed = ("convention", "cell_features", "cluster_features", "selection", "particle", "model")
        missing = [k for k in needed if k not in meta]
        if missing:
            raise PredictorError(f"{self.path} is not a calo_calib export: metadata lacks {missing}")
        self.metadata = meta
        self.convention = meta["convention"]
        self.cell_features = json.loads(meta["cell_features"])
        self.cluster_features = json.loads(meta["cluster_features"])
        self.with_pair = bool(json.loads(meta.get("pair_inputs", "[]")))
        self.selection = json.loads(meta["selection"])
        try:
            self.session = make_session(self.path, device=device, threads=threads)
        except Exception as err:  # onnxruntime's own exception types (InvalidProtobuf, Fail, ...)
            if type(err).__module__.startswith("onnxruntime"):
                raise PredictorError(
                    f"{self.path} is not a valid ONNX model: onnxruntime cannot load it ({_first_line(err)})"
                ) from None
            raise
        self._check_graph_inputs()

    def _check_graph_inputs(self) -> None:
        """The graph's feature dimensions must match the feature lists of its metadata."""
        shapes = {i.name: i.shape for i in self.session.get_inputs()}
        expect = {"cells": len(self.cell_features), "cluster": len(self.cluster_features)}
        for name, n in expect.items():
            last = shapes.get(name, [None])[-1]
            if isinstance(last, int) and last != n:
                raise PredictorError(f"{self.path}: input {name!r} takes {last} features but the metadata lists {n}")

    @property
    def particle(self) -> str:
        return self.metadata["particle"]

    def dataset(
        self, paths: Any, batch_size: int = 1024, with_truth: bool = True, nonfinite: str | None = None,
        out_of_range: str | None = None,
    ) -> ClusterDataset:
        """The clusters of ``paths`` with this model's features and selection (``nonfinite``: ``error`` |
        ``drop`` and ``out_of_range``: ``error`` | ``drop`` | ``allow`` override the exported handling)."""
        return ClusterDataset(
            paths, self.cell_features, self.cluster_features, batch_size=batch_size,
            exclude_crack=bool(self.selection["exclude_crack"]), nonfinite=nonfinite or str(self.selection["nonfinite"]),
            min_cluster_et=float(self.selection["min_cluster_et"]), with_truth=with_truth,
            out_of_range=out_of_range or str(self.selection.get("out_of_range", "error")),
        )  # fmt: skip

    @property
    def has_sigma(self) -> bool:
        """Whether the graph has the per-cluster uncertainty output ``sigma`` (σ(E)/E_calib)."""
        return "sigma" in [o.name for o in self.session.get_outputs()]

    def predict_batch(self, batch: dict[str, Any]) -> np.ndarray:
        """Corrections (B,) for one loader batch."""
        return self.predict_batch_outputs(batch)["correction"]

    def predict_batch_outputs(self, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        """Every graph output for one loader batch: ``correction`` (B,), and ``sigma`` (B,) if present."""
        from calo_calib.deploy.runtime import run_outputs

        cells, valid, cluster = batch["cells"].numpy(), batch["valid"].numpy(), batch["cluster"].numpy()
        pair = batch["pair"].numpy() if self.with_pair else None
        if self.convention == "batched":
            feeds = {"cells": cells, "valid": valid, "cluster": cluster}
            if pair is not None:
                feeds["pair"] = pair
            return run_outputs(self.session, feeds)
        names = [o.name for o in self.session.get_outputs()]
        out = {name: np.empty(cells.shape[0], dtype=np.float32) for name in names}
        for i, n in enumerate(valid.sum(1)):  # per-cluster graph: the reconstruction convention
            feeds = {"cluster": cluster[i : i + 1], "cells": cells[i, :n]}
            if pair is not None:
                feeds["cell_pair"] = pair[i, :n]
            for name, value in run_outputs(self.session, feeds).items():
                out[name][i] = np.asarray(value).reshape(-1)[0]
        return out

    def iter_predictions(self, dataset: ClusterDataset) -> Iterator[dict[str, np.ndarray]]:
        """Per batch: {row_id, cluster_e, correction, target} arrays (+ ``sigma`` if the graph has it)."""
        for batch in dataset.batches(0):
            yield {
                "row_id": batch["row_id"].numpy(),
                "cluster_e": batch["cluster_e"].numpy(),
                **self.predict_batch_outputs(batch),
                "target": batch["target"].numpy(),
            }


class BDTPredictor:
    """An exported BDT (``bdt_<particle>/`` with ``calibration.json``) run by XGBoost."""

    def __init__(self, path: str | os.PathLike[str], threads: int = 0) -> None:
        from calo_calib.models.bdt import BDTCalibration

        self.path = Path(path)
        info_path = self.path / "calibration.json"
        if not info_path.exists():
            raise PredictorError(f"{self.path} is not an exported BDT: {info_path} is missing")
        self.metadata = json.loads(info_path.read_text())
        self.selection = self.metadata["selection"]
        self.bdt = BDTCalibration.load(self.path, nthread=threads or None)

    @property
    def particle(self) -> str:
        return self.metadata["particle"]

    def dataset(
        self, paths: Any, batch_size: int = 1024, with_truth: bool = True, nonfinite: str | None = None,
        out_of_range: str | None = None,
    ) -> ClusterDataset:
        from calo_calib.data.features import DEFAULT_CELL_FEATURES, default_cluster_features

        return ClusterDataset(
            paths, DEFAULT_CELL_FEATURES, default_cluster_features(self.particle), batch_size=batch_size,
            exclude_crack=bool(self.selection["exclude_crack"]), nonfinite=nonfinite or str(self.selection["nonfinite"]),
            min_cluster_et=float(self.selection["min_cluster_et"]), with_truth=with_truth,
            out_of_range=out_of_range or str(self.selection.get("out_of_range", "error")),
        )  # fmt: skip

    @property
    def features(self) -> str:
        """The BDT's input set (``atlas`` | ``atlas+shapes``), from its manifest."""
        return self.bdt.features

    def iter_predictions(self, dataset: ClusterDataset, chunk: int = 65536) -> Iterator[dict[str, np.ndarray]]:
        """Per chunk of clusters: {row_id, cluster_e, correction, target}; the inputs (shower shapes
        included for ``atlas+shapes``) are computed once for the whole dataset."""
        feats = self.bdt.dataset_inputs(dataset, truth=dataset.with_truth)
        n = len(feats["cluster_e"])
        for start in range(0, n, chunk):
            f = {k: v[start : start + chunk] for k, v in feats.items()}
            e = f["cluster_e"]
            truth = f["truth_e"] / e if dataset.with_truth else np.full(len(e), np.nan)
            yield {"row_id": f["row_id"], "cluster_e": e, "correction": self.bdt.predict_correction(f), "target": truth}


def load_predictor(path: str | os.PathLike[str], device: str = "cpu", threads: int = 0) -> OnnxPredictor | BDTPredictor:
    """An exported calibration: an ``.onnx`` file or an exported BDT directory."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model {p} does not exist")
    if p.is_dir():
        return BDTPredictor(p, threads=threads)
    if p.suffix != ".onnx":
        raise PredictorError(f"model {p}: expected an .onnx file or an exported BDT directory")
    return OnnxPredictor(p, device=device, threads=threads)
