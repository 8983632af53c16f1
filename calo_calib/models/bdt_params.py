"""What the BDT baseline (:mod:`calo_calib.models.bdt`) hands to XGBoost: the card's bin edges and
default parameters, the objective of each loss, the parameter dict and input matrix of one booster,
the training targets E_true/E_acc with their selection, and the atomic file writes of a saved model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from calo_calib.data.high_level import L2_DETA, bdt_input_names

FORMAT_VERSION = "calo_calib.bdt/1"
MANIFEST = "bdt.json"

# Card §5.1 [S10].
ETA_EDGES = (0.0, 0.05, 0.65, 0.8, 1.0, 1.2, 1.37, 1.52, 1.55, 1.74, 1.82, 2.0, 2.2, 2.47, 2.5)
ET_EDGES = (0.0, 10.0, 20.0, 40.0, 60.0, 80.0, 120.0, 500.0, 1000.0, 50000.0)  # GeV, raw E_T
CRACK_ET_EDGES = (0.0, 25.0, 50.0, 100.0, 500.0, 1000.0, 50000.0)  # GeV, crack bins
CRACK = (1.37, 1.52)  # |eta| range of the barrel/end-cap transition
F0_MAX_ABS_ETA = 1.8  # no presampler beyond: f0 dropped in rows starting at or above this |eta|
EDGE_ROW_MAX_WIDTH = 2 * L2_DETA  # rows at most 2 middle cells wide drop cell_index_calo
# Clusters with E_true/E_acc > 3 hold less than a third of the particle's energy in the accordion: a
# noise/pile-up cluster or a fragment of a shower whose bulk was lost (~0.5% of simulated electrons,
# E_true/E_acc up to several hundred). They are not predictable from the cluster, and with
# loss=mse a single one dominates a leaf and the validation RMSE, so early stopping keeps a handful
# of trees and the BDT ends up worse than the raw energy. ATLAS trains on truth-matched clusters with
# TMVA's default Huber loss, which is insensitive to them; here they are left out of the fit.
MAX_TRAIN_TARGET = 3.0

DEFAULT_PARAMS: dict[str, Any] = {
    "max_depth": 5,
    "eta": 0.1,
    "subsample": 0.8,
    "min_child_weight": 20,
    "tree_method": "hist",
}
OBJECTIVES = {"mse": ("reg:squarederror", "rmse"), "huber": ("reg:pseudohubererror", "mphe")}
EPS_E = 1e-6  # GeV; below this E_acc / cluster_e the cluster cannot be calibrated (see fit/predict)


def check_edges(name: str, edges: Sequence[float]) -> tuple[float, ...]:
    e = tuple(float(x) for x in edges)
    if len(e) < 2 or any(b <= a for a, b in zip(e[:-1], e[1:])):
        raise ValueError(f"{name} must be >= 2 strictly increasing values, got {list(edges)}")
    return e


def require(features: Mapping[str, np.ndarray], names: Sequence[str], what: str) -> None:
    for name in names:
        if name not in features:
            raise ValueError(f"BDT {what}: missing feature/column {name!r} (have {sorted(features)})")


def xgb_params(
    params: Mapping[str, Any], loss: str, huber_delta: float, nthread: int, base_score: float
) -> dict[str, Any]:
    """The XGBoost parameters of one booster: ``params`` with the objective and metric of ``loss``,
    the starting score, the pseudo-Huber slope (``loss='huber'``) and the thread count (if > 0)."""
    objective, metric = OBJECTIVES[loss]
    p = {**params, "objective": objective, "eval_metric": metric, "base_score": float(base_score)}
    if loss == "huber":
        p["huber_slope"] = huber_delta
    if nthread > 0:
        p["nthread"] = nthread
    return p


def matrix(features: Mapping[str, np.ndarray], names: Sequence[str], rows: np.ndarray) -> np.ndarray:
    """(len(rows), len(names)) float32 input matrix of the clusters ``rows``."""
    return np.column_stack([np.asarray(features[n], dtype=np.float32)[rows] for n in names])


def fit_targets(
    data: Mapping[str, np.ndarray], particle: str, features: str, max_train_target: float | None, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """(target E_true/E_acc, usable mask) of a train/val dict: E_acc > 0, finite, <= ``max_train_target``."""
    need = bdt_input_names(particle, binned=False, features=features) + ["e_acc", "truth_e"]
    require(data, need, what)
    e_acc = np.asarray(data["e_acc"], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.asarray(data["truth_e"], dtype=np.float64) / e_acc
    # E_acc <= 0 (a cluster of pure noise in the accordion) has no meaningful E_true/E_acc target.
    ok = (e_acc > EPS_E) & np.isfinite(y)
    if max_train_target is not None:
        ok &= y <= max_train_target
    return y, ok

