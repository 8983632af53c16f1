"""Model input features: per-cell and per-cluster registries, and the Parquet columns they need.

Cell features (:mod:`calo_calib.data.cell_features`) are computed on the *flattened* cells of a batch
of clusters: every cell column is a 1-D array of length N (all cells of all clusters, cluster after
cluster) and ``seg`` (N,) gives the cluster index of each cell. Cluster features
(:mod:`calo_calib.data.cluster_features`) are computed from the cluster scalar columns, arrays of
length B. Units: GeV, mm, rad (see ``docs/data_format.md``). Shared guards (ratio, log floor, phi
wrap): :mod:`calo_calib.data.feature_math`.

The defaults follow the athena ``egammaTransformerCalibTool``: 7 per-cell features
(:data:`DEFAULT_CELL_FEATURES`) and 11 cluster features (15 for converted photons, see
:func:`default_cluster_features`). ``truth_*`` columns are never features: no registry entry reads one.

This module holds the columns the loader reads (:func:`required_columns`, :func:`scalar_columns`,
:func:`cell_columns`) and is the features' public interface: the names of the three modules above
are importable from here.
"""

from __future__ import annotations

from collections.abc import Sequence

from calo_calib.data.cell_features import (
    CELL_FEATURES,
    DEFAULT_CELL_FEATURES,
    N_LAYERS,
    PAIR_COLUMNS,
    CellFeature,
    CellFn,
    check_cell_features,
    compute_cell_features,
    compute_pair,
)
from calo_calib.data.cluster_features import (
    BDT_EXTRA_CLUSTER,
    CLUSTER_FEATURE_PRESETS,
    CLUSTER_FEATURES,
    PARTICLES,
    SHAPE_CLUSTER_FEATURES,
    ClusterFeature,
    ClusterFn,
    check_cluster_features,
    compute_cluster_features,
    default_cluster_features,
    resolve_cluster_features,
)
from calo_calib.data.feature_math import EPS_E, LOG_E_FLOOR, safe_ratio, wrap_phi

__all__ = [
    "ALWAYS_COLUMNS",
    "BDT_EXTRA_CLUSTER",
    "CELL_FEATURES",
    "CLUSTER_FEATURES",
    "CLUSTER_FEATURE_PRESETS",
    "DEFAULT_CELL_FEATURES",
    "EPS_E",
    "LOG_E_FLOOR",
    "N_LAYERS",
    "PAIR_COLUMNS",
    "PARTICLES",
    "SHAPE_CLUSTER_FEATURES",
    "CellFeature",
    "CellFn",
    "ClusterFeature",
    "ClusterFn",
    "cell_columns",
    "check_cell_features",
    "check_cluster_features",
    "compute_cell_features",
    "compute_cluster_features",
    "compute_pair",
    "default_cluster_features",
    "required_columns",
    "resolve_cluster_features",
    "safe_ratio",
    "scalar_columns",
    "wrap_phi",
]

ALWAYS_COLUMNS: tuple[str, ...] = ("cluster_e", "truth_e", "n_cells", "is_crack", "cluster_eta", "cluster_phi")
"""Scalar columns the loader always reads (target, selection, bookkeeping)."""


def _shapes():  # noqa: ANN202
    # Lazily: the shower-shape module needs the detector geometry, which scalar-only users never load.
    from calo_calib.data import shower_shapes

    return shower_shapes


def cell_columns(cell_features: Sequence[str], cluster_features: Sequence[str] = ()) -> list[str]:
    """The cell list columns needed for ``cell_features``, the ``pair`` tensor and any cell-derived
    cluster features (:data:`SHAPE_CLUSTER_FEATURES`), without duplicates."""
    check_cell_features(cell_features)
    cols = list(PAIR_COLUMNS)
    for name in cell_features:
        cols += [c for c in CELL_FEATURES[name].cell_columns if c not in cols]
    if any(n in SHAPE_CLUSTER_FEATURES for n in cluster_features):
        cols += [c for c in _shapes().shower_shape_cell_columns(with_noise=True) if c not in cols]
    return cols


def scalar_columns(cell_features: Sequence[str], cluster_features: Sequence[str]) -> list[str]:
    """The cluster scalar columns needed: :data:`ALWAYS_COLUMNS` + those of the features."""
    check_cell_features(cell_features)
    check_cluster_features(cluster_features)
    cols = list(ALWAYS_COLUMNS)
    for name in cell_features:
        cols += [c for c in CELL_FEATURES[name].cluster_columns if c not in cols]
    for name in cluster_features:
        needed = _shapes().CLUSTER_COLUMNS if name in SHAPE_CLUSTER_FEATURES else CLUSTER_FEATURES[name].columns
        cols += [c for c in needed if c not in cols]
    return cols


def required_columns(cell_features: Sequence[str], cluster_features: Sequence[str]) -> list[str]:
    """All Parquet columns needed: scalar columns (always incl. cluster_e, truth_e, n_cells, is_crack,
    cluster_eta, cluster_phi) followed by the needed cell_* list columns.

    Raises:
        ValueError: for an unknown feature name (the message lists the valid names).
    """
    return scalar_columns(cell_features, cluster_features) + cell_columns(cell_features, cluster_features)
