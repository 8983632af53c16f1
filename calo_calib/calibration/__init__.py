"""Calibrations: one interface (:class:`Calibration`, ``predict(clusters) -> Prediction``) for a
trained network or BDT run and for the ONNX and XGBoost files exported from them.

* :mod:`~calo_calib.calibration.protocol`: :class:`Calibration`, :class:`Prediction` (shapes, units);
* :mod:`~calo_calib.calibration.run_config`: what a run's config says (features, dataset, network);
* :mod:`~calo_calib.calibration.run`, :mod:`~calo_calib.calibration.network`,
  :mod:`~calo_calib.calibration.bdt`: a trained run's calibration (:class:`RunCalibration`);
* :mod:`~calo_calib.calibration.exported`: an exported file's calibration;
* :mod:`~calo_calib.calibration.loading`: :func:`load_calibration` (a run directory or an exported
  file) and :func:`run_calibration_class` (the class of a ``model.kind``): the one dispatch point.
"""

from calo_calib.calibration.bdt import BDTRunCalibration
from calo_calib.calibration.exported import ExportedBDTCalibration, ExportedOnnxCalibration, ModelFileError
from calo_calib.calibration.loading import (
    RUN_CALIBRATIONS,
    load_calibration,
    load_exported,
    load_run,
    run_calibration_class,
)
from calo_calib.calibration.network import NetworkRunCalibration
from calo_calib.calibration.protocol import Calibration, Prediction
from calo_calib.calibration.run import RunCalibration
from calo_calib.calibration.run_config import (
    build_run_network,
    cell_and_cluster_features,
    load_run_config,
    loader_workers,
    make_dataset,
    predicts_sigma,
)

__all__ = [
    "RUN_CALIBRATIONS", "BDTRunCalibration", "Calibration", "ExportedBDTCalibration", "ExportedOnnxCalibration",
    "ModelFileError", "NetworkRunCalibration", "Prediction", "RunCalibration", "build_run_network",
    "cell_and_cluster_features", "load_calibration", "load_exported", "load_run", "load_run_config",
    "loader_workers", "make_dataset", "predicts_sigma", "run_calibration_class",
]  # fmt: skip
