"""Data pipeline: model input features, streaming length-bucketed batches, normalisation statistics."""

from calo_calib.data.features import (
    CELL_FEATURES,
    CLUSTER_FEATURES,
    DEFAULT_CELL_FEATURES,
    PAIR_COLUMNS,
    default_cluster_features,
    required_columns,
)
from calo_calib.data.loader import ClusterDataset
from calo_calib.data.normalization import NormStats, compute_norm_stats

__all__ = [
    "CELL_FEATURES",
    "CLUSTER_FEATURES",
    "DEFAULT_CELL_FEATURES",
    "PAIR_COLUMNS",
    "ClusterDataset",
    "NormStats",
    "compute_norm_stats",
    "default_cluster_features",
    "required_columns",
]
