"""Per-cell model inputs: the registry :data:`CELL_FEATURES`, computed on the flattened cells of a batch.

Every cell column is a 1-D array of length N (all cells of all clusters, cluster after cluster) and
``seg`` (N,) gives the cluster index of each cell. The defaults (:data:`DEFAULT_CELL_FEATURES`) are
the 7 per-cell inputs of the athena ``egammaTransformerCalibTool``. Units: GeV, mm, rad.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from calo_calib.data.feature_math import LOG_E_FLOOR, check_feature_names, safe_ratio, wrap_phi

# Layer indices 0 presampler, 1 strips, 2 middle, 3 back; 4 (TileGap3) is accepted for users' data
# although the simulation never produces it. The loader rejects cell_layer values outside [0, N_LAYERS).
N_LAYERS = 5

CellFn = Callable[[Mapping[str, np.ndarray], np.ndarray, int, Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class CellFeature:
    """A per-cell feature: the cell and cluster columns it reads, its unit, and how it is computed.

    ``fn(cells, seg, n_clusters, clusters)`` returns an (N,) array for the N flattened cells.
    """

    name: str
    cell_columns: tuple[str, ...]
    cluster_columns: tuple[str, ...]
    unit: str
    doc: str
    fn: CellFn


def _e_frac_layer(
    cells: Mapping[str, np.ndarray], seg: np.ndarray, n_clusters: int, clusters: Mapping[str, np.ndarray]
) -> np.ndarray:
    # E_layer of each cell's (cluster, layer) group via one bincount over the key cluster*N_LAYERS+layer.
    e = cells["cell_e"].astype(np.float64)
    key = seg.astype(np.int64) * N_LAYERS + cells["cell_layer"].astype(np.int64)
    e_layer = np.bincount(key, weights=e, minlength=n_clusters * N_LAYERS)[key]
    return safe_ratio(e, e_layer)


def _col(name: str) -> CellFn:
    return lambda cells, seg, n, clusters: cells[name]


def _log_e(cells, seg, n, clusters):  # noqa: ANN001, ANN202
    return np.log(np.maximum(cells["cell_e"].astype(np.float64), LOG_E_FLOOR))


def _e_over_noise(cells, seg, n, clusters):  # noqa: ANN001, ANN202
    # A non-positive noise sigma is unphysical (missing value); 0 rather than inf (same guard as ratios).
    noise = cells["cell_noise"].astype(np.float64)
    ok = noise > 0
    return np.where(ok, cells["cell_e"] / np.where(ok, noise, 1.0), 0.0)


CELL_FEATURES: dict[str, CellFeature] = {
    f.name: f
    for f in (
        CellFeature(
            "e_frac_layer",
            ("cell_e", "cell_layer"),
            (),
            "",
            "E_cell / E_layer, E_layer = sum of the cluster's cell energies in the cell's layer (0 if |E_layer| < 1e-6 GeV)",
            _e_frac_layer,
        ),
        CellFeature(
            "deta",
            ("cell_eta",),
            ("cluster_eta",),
            "",
            "cell_eta - cluster_eta",
            lambda c, seg, n, cl: c["cell_eta"] - cl["cluster_eta"][seg],
        ),
        CellFeature(
            "dphi",
            ("cell_phi",),
            ("cluster_phi",),
            "rad",
            "cell_phi - cluster_phi wrapped to (-pi, pi]",
            lambda c, seg, n, cl: wrap_phi(c["cell_phi"].astype(np.float64) - cl["cluster_phi"][seg]),
        ),
        CellFeature("x", ("cell_x",), (), "mm", "cell-centre x", _col("cell_x")),
        CellFeature("y", ("cell_y",), (), "mm", "cell-centre y", _col("cell_y")),
        CellFeature("z", ("cell_z",), (), "mm", "cell-centre z", _col("cell_z")),
        CellFeature(
            "layer", ("cell_layer",), (), "", "layer index 0 presampler .. 3 back, as float", _col("cell_layer")
        ),
        CellFeature("e", ("cell_e",), (), "GeV", "cell energy (EM scale, noise included)", _col("cell_e")),
        CellFeature("log_e", ("cell_e",), (), "log GeV", "log(max(E_cell, 1e-3 GeV))", _log_e),
        CellFeature("eta", ("cell_eta",), (), "", "cell-centre eta", _col("cell_eta")),
        CellFeature("phi", ("cell_phi",), (), "rad", "cell-centre phi", _col("cell_phi")),
        CellFeature("noise", ("cell_noise",), (), "GeV", "total noise sigma of the cell", _col("cell_noise")),
        CellFeature(
            "e_over_noise", ("cell_e", "cell_noise"), (), "", "E_cell / noise sigma (0 if sigma <= 0)", _e_over_noise
        ),
    )
}

DEFAULT_CELL_FEATURES: list[str] = ["e_frac_layer", "deta", "dphi", "x", "y", "z", "layer"]
"""The athena egammaTransformerCalibTool per-cell inputs."""


PAIR_COLUMNS: tuple[str, ...] = ("cell_eta", "cell_phi", "cell_x", "cell_y", "cell_z", "cell_layer", "cell_e")
"""Raw per-cell quantities of the ``pair`` tensor (B, L, 7), in this order: eta, phi [rad], x, y, z [mm], layer, E [GeV]."""


def check_cell_features(names: Sequence[str]) -> None:
    """Raise ValueError naming any unknown/duplicate cell feature (and listing the valid names)."""
    check_feature_names(names, CELL_FEATURES, "cell")


def compute_cell_features(
    names: Sequence[str],
    cells: Mapping[str, np.ndarray],
    seg: np.ndarray,
    n_clusters: int,
    clusters: Mapping[str, np.ndarray],
) -> np.ndarray:
    """Per-cell features of flattened cells.

    Args:
        names: cell feature names (see :data:`CELL_FEATURES`).
        cells: cell column name -> (N,) array, the cells of all clusters one cluster after another.
        seg: (N,) int, index in [0, n_clusters) of each cell's cluster.
        n_clusters: B, the number of clusters.
        clusters: scalar column name -> (B,) array.

    Returns:
        float32 (N, F) with F = len(names), in the order of ``names``.
    """
    out = np.empty((len(seg), len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        out[:, j] = CELL_FEATURES[name].fn(cells, seg, n_clusters, clusters)
    return out


def compute_pair(cells: Mapping[str, np.ndarray]) -> np.ndarray:
    """The raw pairwise quantities (N, 7) float32 in :data:`PAIR_COLUMNS` order."""
    n = len(cells["cell_e"])
    out = np.empty((n, len(PAIR_COLUMNS)), dtype=np.float32)
    for j, name in enumerate(PAIR_COLUMNS):
        out[:, j] = cells[name]
    return out
