"""Exported calibrations: an ONNX graph or an exported BDT directory, behind :class:`Calibration`.

``calo_calib.calibration.load_exported(path)`` accepts an ONNX file written by ``calo_calib.export`` (a batched graph; a
per-cluster graph also works, one cluster per call) or an exported BDT directory (XGBoost JSON).
Both read clusters with the features and selection stored at export, so inference applies exactly
the calibration that was trained. ``python -m calo_calib.predict`` runs them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calo_calib.calibration.protocol import Calibration, PathLike, Prediction
from calo_calib.data.loader import ClusterDataset

DEFAULT_BATCH_SIZE = 1024
"""Clusters per batch of an exported calibration's :meth:`~Calibration.dataset` (``batch_size=None``)."""


class ModelFileError(ValueError):
    """The model file or the input data do not fit together (the message says what and where)."""


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _read_onnx_metadata(path: Path) -> dict[str, str]:
    """The metadata of an ONNX file; a file that is not an ONNX model (text, truncated, empty) is a
    :class:`ModelFileError` naming it, not a protobuf traceback."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as err:
        raise ModelFileError(
            f"{path} is not a valid ONNX model (truncated or not an ONNX file: {_first_line(err)})"
        ) from None
    if not model.HasField("graph") or not model.graph.node:
        raise ModelFileError(
            f"{path} is not a valid ONNX model (it holds no graph: empty, truncated or not an ONNX file)"
        )
    return {p.key: p.value for p in model.metadata_props}


def _exported_dataset(
    paths: PathLike | Sequence[PathLike], cells: list[str], clusters: list[str], selection: dict[str, Any],
    batch_size: int | None, with_truth: bool, nonfinite: str | None, out_of_range: str | None,
) -> ClusterDataset:  # fmt: skip
    """The clusters of ``paths`` with an export's features and ``selection`` (``nonfinite``: ``error`` |
    ``drop`` and ``out_of_range``: ``error`` | ``drop`` | ``allow`` override the exported handling)."""
    return ClusterDataset(
        paths, cells, clusters, batch_size=batch_size or DEFAULT_BATCH_SIZE,
        exclude_crack=bool(selection["exclude_crack"]), nonfinite=nonfinite or str(selection["nonfinite"]),
        min_cluster_et=float(selection["min_cluster_et"]), with_truth=with_truth,
        out_of_range=out_of_range or str(selection.get("out_of_range", "error")),
    )  # fmt: skip


class ExportedOnnxCalibration(Calibration):
    """An exported network (``calo_calib.export``) run by onnxruntime.

    Args:
        path: ``<model>_<particle>_batched.onnx`` (or the per-cluster file).
        device: ``cpu`` | ``cuda`` | ``auto``.
        threads: onnxruntime intra-op threads (0 = all cores).
    """

    def __init__(self, path: PathLike, device: str = "cpu", threads: int = 0) -> None:
        from calo_calib.deploy.runtime import make_session

        self.path = Path(path)
        meta = _read_onnx_metadata(self.path)
        needed = ("convention", "cell_features", "cluster_features", "selection", "particle", "model")
        missing = [k for k in needed if k not in meta]
        if missing:
            raise ModelFileError(f"{self.path} is not a calo_calib export: metadata lacks {missing}")
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
                raise ModelFileError(
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
                raise ModelFileError(f"{self.path}: input {name!r} takes {last} features but the metadata lists {n}")

    @property
    def name(self) -> str:
        return self.metadata["model"]

    @property
    def particle(self) -> str:
        return self.metadata["particle"]

    def dataset(
        self, paths: PathLike | Sequence[PathLike], *, batch_size: int | None = None, with_truth: bool = True,
        nonfinite: str | None = None, out_of_range: str | None = None,
    ) -> ClusterDataset:  # fmt: skip
        return _exported_dataset(paths, self.cell_features, self.cluster_features, self.selection, batch_size,
                                 with_truth, nonfinite, out_of_range)  # fmt: skip

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

    def iter_predictions(self, clusters: ClusterDataset) -> Iterator[Prediction]:
        """One prediction per loader batch (with ``sigma`` if the graph has it)."""
        for batch in clusters.batches(0):
            out = self.predict_batch_outputs(batch)
            yield Prediction(batch["row_id"].numpy(), out["correction"], out.get("sigma"),
                             batch["cluster_e"].numpy(), batch["target"].numpy())  # fmt: skip


class ExportedBDTCalibration(Calibration):
    """An exported BDT (``bdt_<particle>/`` with ``calibration.json``) run by XGBoost; ``bdt`` is its
    :class:`~calo_calib.models.bdt.BDTModel`."""

    def __init__(self, path: PathLike, threads: int = 0) -> None:
        from calo_calib.models.bdt import BDTModel

        self.path = Path(path)
        info_path = self.path / "calibration.json"
        if not info_path.exists():
            raise ModelFileError(f"{self.path} is not an exported BDT: {info_path} is missing")
        self.metadata = json.loads(info_path.read_text())
        self.selection = self.metadata["selection"]
        self.bdt = BDTModel.load(self.path, nthread=threads or None)

    @property
    def name(self) -> str:
        return str(self.metadata.get("model", self.path.stem))

    @property
    def particle(self) -> str:
        return self.metadata["particle"]

    @property
    def has_sigma(self) -> bool:
        return False

    @property
    def features(self) -> str:
        """The BDT's input set (``atlas`` | ``atlas+shapes``), from its manifest."""
        return self.bdt.features

    def dataset(
        self, paths: PathLike | Sequence[PathLike], *, batch_size: int | None = None, with_truth: bool = True,
        nonfinite: str | None = None, out_of_range: str | None = None,
    ) -> ClusterDataset:  # fmt: skip
        from calo_calib.data.features import DEFAULT_CELL_FEATURES, default_cluster_features

        return _exported_dataset(paths, DEFAULT_CELL_FEATURES, default_cluster_features(self.particle), self.selection,
                                 batch_size, with_truth, nonfinite, out_of_range)  # fmt: skip

    def iter_predictions(self, clusters: ClusterDataset) -> Iterator[Prediction]:
        """Per block of clusters (:data:`~calo_calib.calibration.bdt.BDT_CHUNK`); the inputs (shower
        shapes included for ``atlas+shapes``) are computed once for the whole dataset."""
        from calo_calib.calibration.bdt import bdt_predictions

        return bdt_predictions(self.bdt, clusters)
