"""calo_calib: machine-learning energy calibration of electrons and photons.

Simulates (or loads) clusters of an ATLAS LAr-like sampling electromagnetic calorimeter, trains
calibration models (transformer, GNN, BDT baseline), compares their relative energy resolution and
exports them to ONNX. Configuration lives in the repository's ``conf/`` (see :mod:`calo_calib.paths`).
"""

__version__ = "0.1.0"
