"""The one place that decides which :class:`~calo_calib.calibration.protocol.Calibration` a path or a
config is: a run directory (by its ``model.kind``) or an exported file (by what it is)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from calo_calib.calibration.bdt import BDTRunCalibration
from calo_calib.calibration.exported import ExportedBDTCalibration, ExportedOnnxCalibration, ModelFileError
from calo_calib.calibration.network import NetworkRunCalibration
from calo_calib.calibration.protocol import Calibration, PathLike
from calo_calib.calibration.run import RunCalibration
from calo_calib.calibration.run_config import load_run_config

RUN_CALIBRATIONS: dict[str, type[RunCalibration]] = {cls.kind: cls for cls in (NetworkRunCalibration, BDTRunCalibration)}
"""``model.kind`` -> the class of a run trained with it."""


def run_calibration_class(cfg: DictConfig) -> type[RunCalibration]:
    """The class of the runs of ``cfg.model.kind`` (the only reading of ``model.kind`` outside the config);
    its class attributes say what the model can do before anything is trained.

    Raises:
        ValueError: ``model.kind`` is none of :data:`RUN_CALIBRATIONS`.
    """
    kind = cfg.model.kind
    if kind not in RUN_CALIBRATIONS:
        raise ValueError(f"model.kind={kind!r}: expected {' or '.join(RUN_CALIBRATIONS)}")
    return RUN_CALIBRATIONS[kind]


def load_run(run_dir: PathLike, cfg: DictConfig | None = None, device: str = "cpu") -> RunCalibration:
    """The calibration trained in ``run_dir`` (``cfg``: its config, by default ``<run_dir>/config.yaml``)."""
    cfg = load_run_config(run_dir) if cfg is None else cfg
    return run_calibration_class(cfg)(run_dir, cfg, device=device)


def load_exported(path: PathLike, device: str = "cpu", threads: int = 0) -> ExportedOnnxCalibration | ExportedBDTCalibration:
    """An exported calibration: an ``.onnx`` file or an exported BDT directory (``device``: ``cpu`` |
    ``cuda`` | ``auto`` for ONNX; ``threads``: onnxruntime or XGBoost threads, 0 = all cores).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ModelFileError: it is neither an ONNX export nor an exported BDT.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model {p} does not exist")
    if p.is_dir():
        return ExportedBDTCalibration(p, threads=threads)
    if p.suffix != ".onnx":
        raise ModelFileError(f"model {p}: expected an .onnx file or an exported BDT directory")
    return ExportedOnnxCalibration(p, device=device, threads=threads)


def is_exported(path: PathLike) -> bool:
    """Whether ``path`` is an exported file (an ``.onnx`` file or a directory with ``calibration.json``)
    rather than a run directory."""
    p = Path(path)
    return p.is_file() or (p / "calibration.json").exists()


def load_calibration(path: PathLike, device: str = "cpu", threads: int = 0) -> Calibration:
    """The calibration at ``path``: a run directory (network or BDT, from its saved config) or an
    exported file (:func:`load_exported`); ``threads`` applies to an exported file only.

    Raises:
        FileNotFoundError: ``path`` is neither (a directory without ``config.yaml``, or nothing).
    """
    if is_exported(path):
        return load_exported(path, device=device, threads=threads)
    return load_run(path, device=device)
