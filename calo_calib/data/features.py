"""Model input features: per-cell and per-cluster registries, computed vectorised from Parquet columns.

Cell features are computed on the *flattened* cells of a batch of clusters: every cell column is a
1-D array of length N (all cells of all clusters, cluster after cluster) and ``seg`` (N,) gives the
cluster index of each cell. Cluster features are computed from the cluster scalar columns, arrays of
length B. Units: GeV, mm, rad (see ``docs/data_format.md``).

The defaults follow the athena ``egammaTransformerCalibTool``: 7 per-cell features
(:data:`DEFAULT_CELL_FEATURES`) and 11 cluster features (15 for converted photons, see
:func:`default_cluster_features`). ``truth_*`` columns are never features: no registry entry reads one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Layer indices 0 presampler, 1 strips, 2 middle, 3 back; 4 (TileGap3) is accepted for users' data
# although the simulation never produces it. The loader rejects cell_layer values outside [0, N_LAYERS).
N_LAYERS = 5

# Below this |denominator| (GeV) an energy ratio is set to 0 instead of dividing. Energies are sums of
# noisy cells and can be ~0 or negative; a ratio to ~0 would be an arbitrarily large, meaningless
# input. 1 keV is far below any physical layer energy (single-cell noise is ~10-100 MeV), so the guard
# only fires for empty layers (exactly 0) or pathological cancellations.
EPS_E = 1e-6

# Floor (GeV) under the cell energy before the log in "log_e": cell energies include noise and can be
# negative, so log(E) is undefined for them; every cell below 1 MeV (noise-dominated, far below the
# ~50 MeV noise of a cell) maps to log(1e-3) = -6.9.
LOG_E_FLOOR = 1e-3

CellFn = Callable[[Mapping[str, np.ndarray], np.ndarray, int, Mapping[str, np.ndarray]], np.ndarray]
ClusterFn = Callable[[Mapping[str, np.ndarray]], np.ndarray]


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


@dataclass(frozen=True)
class ClusterFeature:
    """A per-cluster feature: the scalar columns it reads, its unit, and ``fn(clusters) -> (B,)``."""

    name: str
    columns: tuple[str, ...]
    unit: str
    doc: str
    fn: ClusterFn


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """Wrap angle differences [rad] to (-pi, pi] (computed in float64)."""
    d = np.asarray(dphi, dtype=np.float64)
    return d - 2.0 * np.pi * np.ceil((d - np.pi) / (2.0 * np.pi))


def safe_ratio(num: np.ndarray, den: np.ndarray, eps: float = EPS_E) -> np.ndarray:
    """``num / den`` with 0 where ``|den| < eps`` (see :data:`EPS_E` for why 0)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    ok = np.abs(den) >= eps
    return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


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


def _c(name: str) -> ClusterFn:
    return lambda cl: cl[name]


_ACC = ("cluster_e_l1", "cluster_e_l2", "cluster_e_l3")


def _e_acc(cl: Mapping[str, np.ndarray]) -> np.ndarray:
    """Accordion energy E_L1 + E_L2 + E_L3 [GeV]."""
    return cl["cluster_e_l1"].astype(np.float64) + cl["cluster_e_l2"] + cl["cluster_e_l3"]


CLUSTER_FEATURES: dict[str, ClusterFeature] = {
    f.name: f
    for f in (
        ClusterFeature("cluster_e", ("cluster_e",), "GeV", "raw cluster energy (sum of its cells)", _c("cluster_e")),
        ClusterFeature("e_ps", ("cluster_e_ps",), "GeV", "presampler energy E_L0", _c("cluster_e_ps")),
        ClusterFeature("e_l1", ("cluster_e_l1",), "GeV", "strip-layer energy E_L1", _c("cluster_e_l1")),
        ClusterFeature("e_l2", ("cluster_e_l2",), "GeV", "middle-layer energy E_L2", _c("cluster_e_l2")),
        ClusterFeature("e_l3", ("cluster_e_l3",), "GeV", "back-layer energy E_L3", _c("cluster_e_l3")),
        ClusterFeature(
            "e_tg3", ("cluster_e_tg3",), "GeV", "TileGap3 energy (0 in the simulation)", _c("cluster_e_tg3")
        ),
        ClusterFeature("cluster_eta", ("cluster_eta",), "", "cluster eta", _c("cluster_eta")),
        ClusterFeature("cluster_phi", ("cluster_phi",), "rad", "cluster phi", _c("cluster_phi")),
        ClusterFeature(
            "r12",
            ("cluster_e_l1", "cluster_e_l2"),
            "",
            "E_L1 / E_L2 (0 if |E_L2| < 1e-6 GeV)",
            lambda cl: safe_ratio(cl["cluster_e_l1"], cl["cluster_e_l2"]),
        ),
        ClusterFeature(
            "f0_acc",
            ("cluster_e_ps", *_ACC),
            "",
            "E_L0 / (E_L1+E_L2+E_L3) (0 if |den| < 1e-6 GeV)",
            lambda cl: safe_ratio(cl["cluster_e_ps"], _e_acc(cl)),
        ),
        ClusterFeature(
            "f_tg3",
            ("cluster_e_tg3", *_ACC),
            "",
            "E_TG3 / (E_L1+E_L2+E_L3) (0 if |den| < 1e-6 GeV)",
            lambda cl: safe_ratio(cl["cluster_e_tg3"], _e_acc(cl)),
        ),
        ClusterFeature("conv_r", ("conv_r",), "mm", "reconstructed conversion radius (799 if none)", _c("conv_r")),
        ClusterFeature(
            "conv_et_over_pt", ("conv_et_over_pt",), "", "E_acc / (cosh(eta) pT_conv)", _c("conv_et_over_pt")
        ),
        ClusterFeature("conv_pt_ratio", ("conv_pt_ratio",), "", "max(pT1, pT2) / (pT1 + pT2)", _c("conv_pt_ratio")),
        ClusterFeature(
            "conversion_type", ("conversion_type",), "", "conversion type 0..5 as float", _c("conversion_type")
        ),
        ClusterFeature(
            "log_cluster_e",
            ("cluster_e",),
            "log GeV",
            "log(max(cluster_e, 1e-3 GeV))",
            lambda cl: np.log(np.maximum(cl["cluster_e"].astype(np.float64), LOG_E_FLOOR)),
        ),
        ClusterFeature("mu", ("mu",), "", "<mu> of the event", _c("mu")),
        # The BDT's own inputs (egammaMVACalib, calo_calib.data.high_level), so that a network can be
        # given what the baseline is given. eta_mod_calo / phi_mod_calo place the shower inside the
        # middle cell and the accordion absorber period: the response modulations they correct
        # (card §4.5) are periodic in eta and phi at a scale a network cannot resolve from the raw
        # cluster_eta / cluster_phi.
        ClusterFeature("abs_eta", ("cluster_eta",), "", "|cluster eta|", lambda cl: np.abs(cl["cluster_eta"].astype(np.float64))),
        ClusterFeature(
            "eta_mod_calo",
            ("cluster_eta",),
            "",
            "|eta| - 0.025 floor(|eta|/0.025): position inside the middle-layer cell (etaModCalo)",
            lambda cl: _hl().eta_cell_position(cl["cluster_eta"])[0],
        ),
        ClusterFeature(
            "phi_mod_calo",
            ("cluster_eta", "cluster_phi"),
            "rad",
            "fmod(phi + 2 pi, pi/512 barrel | pi/384 end-cap): position in the accordion period (phiModCalo)",
            lambda cl: _hl().phi_mod_calo(cl["cluster_phi"], np.abs(cl["cluster_eta"])),
        ),
        ClusterFeature(
            "shower_depth",
            ("cluster_eta", "cluster_e_ps", *_ACC),
            "X0",
            "sum_i X_i E_i / sum_i E_i over PS..L3 (egammaMVAFunctions calibHitsShowerDepth)",
            lambda cl: _shower_depth(cl),
        ),
        ClusterFeature(
            "log_e_t_acc",
            ("cluster_eta", *_ACC),
            "log GeV",
            "log(max(E_acc / cosh(eta), 1e-3 GeV)): the raw E_T of the BDT binning",
            lambda cl: np.log(np.maximum(_e_acc(cl) / np.cosh(cl["cluster_eta"].astype(np.float64)), LOG_E_FLOOR)),
        ),
    )
}


def _hl():  # noqa: ANN202
    # Imported lazily: high_level imports physics.observables, which this registry does not need otherwise.
    from calo_calib.data import high_level

    return high_level


def _shower_depth(cl: Mapping[str, np.ndarray]) -> np.ndarray:
    from calo_calib.physics.observables import shower_depth

    layers = np.stack([cl[c].astype(np.float64) for c in ("cluster_e_ps", *_ACC)], axis=-1)
    return shower_depth(layers, np.abs(cl["cluster_eta"].astype(np.float64)))

_ATHENA_CLUSTER = [
    "cluster_e",
    "e_ps",
    "e_l1",
    "e_l2",
    "e_l3",
    "e_tg3",
    "cluster_eta",
    "cluster_phi",
    "r12",
    "f0_acc",
    "f_tg3",
]
_CONV_EXTRA = ["conv_r", "conv_et_over_pt", "conv_pt_ratio", "conversion_type"]
PARTICLES = ("electron", "photon_unconv", "photon_conv")

BDT_EXTRA_CLUSTER: list[str] = ["abs_eta", "eta_mod_calo", "phi_mod_calo", "shower_depth", "log_e_t_acc"]
"""The BDT inputs the athena list lacks (``cluster_features: athena+bdt``); cluster_eta, the layer
energies, R12 and f0 are in the athena list already."""

CLUSTER_FEATURE_PRESETS = ("auto", "athena", "athena+bdt", "athena+bdt+shapes")
"""Names accepted for ``data.cluster_features`` besides an explicit list: ``auto`` = ``athena``."""


def resolve_cluster_features(spec: str | Sequence[str] | None, particle: str) -> list[str]:
    """``data.cluster_features`` as a list of names: a preset of :data:`CLUSTER_FEATURE_PRESETS` or a list.

    ``auto``/``athena``/None: :func:`default_cluster_features`; ``athena+bdt``: those plus
    :data:`BDT_EXTRA_CLUSTER`; ``athena+bdt+shapes``: plus the cell shower shapes
    :data:`SHAPE_CLUSTER_FEATURES`. A list is returned as it is (checked by the loader).

    Raises:
        ValueError: an unknown preset name (the message lists the presets).
    """
    if spec is None or isinstance(spec, str):
        name = "auto" if spec is None else spec
        if name in ("auto", "athena"):
            return default_cluster_features(particle)
        if name == "athena+bdt":
            return default_cluster_features(particle) + BDT_EXTRA_CLUSTER
        if name == "athena+bdt+shapes":
            return default_cluster_features(particle) + BDT_EXTRA_CLUSTER + list(SHAPE_CLUSTER_FEATURES)
        raise ValueError(
            f"data.cluster_features={name!r} is not a preset ({list(CLUSTER_FEATURE_PRESETS)}) nor a list of names"
        )
    return [str(n) for n in spec]


def default_cluster_features(particle: str) -> list[str]:
    """The athena cluster inputs for ``particle``: 11 for electron / photon_unconv, 15 for photon_conv.

    Raises:
        ValueError: for an unknown particle (the message lists the valid ones).
    """
    if particle in ("electron", "photon_unconv"):
        return list(_ATHENA_CLUSTER)
    if particle == "photon_conv":
        return _ATHENA_CLUSTER + _CONV_EXTRA
    raise ValueError(f"unknown particle {particle!r}; valid particles: {list(PARTICLES)}")


PAIR_COLUMNS: tuple[str, ...] = ("cell_eta", "cell_phi", "cell_x", "cell_y", "cell_z", "cell_layer", "cell_e")
"""Raw per-cell quantities of the ``pair`` tensor (B, L, 7), in this order: eta, phi [rad], x, y, z [mm], layer, E [GeV]."""

ALWAYS_COLUMNS: tuple[str, ...] = ("cluster_e", "truth_e", "n_cells", "is_crack", "cluster_eta", "cluster_phi")
"""Scalar columns the loader always reads (target, selection, bookkeeping)."""


def _shapes():  # noqa: ANN202
    # Lazily: the shower-shape module needs the detector geometry, which scalar-only users never load.
    from calo_calib.data import shower_shapes

    return shower_shapes


SHAPE_CLUSTER_FEATURES: tuple[str, ...] = (
    "r_eta", "r_phi", "w_eta2", "w_s_tot", "w_s3", "f_side", "e_ratio", "delta_e", "f1", "f3",
    "n_cells_ps", "n_cells_l1", "n_cells_l2", "n_cells_l3",
    "w_eta_ps", "w_eta_l1", "w_eta_l2", "w_eta_l3", "w_phi_ps", "w_phi_l1", "w_phi_l2", "w_phi_l3",
    "e_max_frac", "neg_e_frac", "n_cells_below_2sigma", "e_below_2sigma",
)  # fmt: skip
"""Cluster features computed from the cluster's CELLS: the shower shapes of
:mod:`calo_calib.data.shower_shapes` (same names; checked equal to its ``SHOWER_SHAPE_NAMES`` in the
tests). A network given them (``cluster_features: athena+bdt+shapes``) starts from what ``bdt_shapes``
is given."""


def _check(names: Sequence[str], registry: Mapping[str, object], kind: str) -> None:
    if isinstance(names, str):
        raise ValueError(f"{kind} features must be a list of names, got the string {names!r}")
    unknown = [n for n in names if n not in registry]
    if unknown:
        hint = " (truth_* columns are never model inputs)" if any(str(n).startswith("truth_") for n in unknown) else ""
        raise ValueError(f"unknown {kind} feature(s) {unknown}{hint}; valid {kind} features: {sorted(registry)}")
    dup = sorted({n for n in names if list(names).count(n) > 1})
    if dup:
        raise ValueError(f"duplicate {kind} feature(s) {dup}")


def check_cell_features(names: Sequence[str]) -> None:
    """Raise ValueError naming any unknown/duplicate cell feature (and listing the valid names)."""
    _check(names, CELL_FEATURES, "cell")


def check_cluster_features(names: Sequence[str]) -> None:
    """Raise ValueError naming any unknown/duplicate cluster feature (and listing the valid names)."""
    _check(names, {**CLUSTER_FEATURES, **dict.fromkeys(SHAPE_CLUSTER_FEATURES)}, "cluster")


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


def compute_cluster_features(
    names: Sequence[str],
    clusters: Mapping[str, np.ndarray],
    cells: Mapping[str, np.ndarray] | None = None,
    seg: np.ndarray | None = None,
) -> np.ndarray:
    """Cluster features (B, F) float32.

    ``clusters`` maps scalar column name -> (B,) array. Cell-derived features
    (:data:`SHAPE_CLUSTER_FEATURES`) also need the batch's flattened ``cells`` (N,) and ``seg`` (N,)
    (as for :func:`compute_cell_features`); the shapes are computed once for all of them.
    """
    n = len(clusters["cluster_e"]) if "cluster_e" in clusters else len(next(iter(clusters.values())))
    out = np.empty((n, len(names)), dtype=np.float32)
    shapes: dict[str, np.ndarray] | None = None
    for j, name in enumerate(names):
        if name in SHAPE_CLUSTER_FEATURES:
            if shapes is None:
                if cells is None or seg is None:
                    raise ValueError(f"cluster feature {name!r} is computed from the cells: pass cells and seg")
                shapes = _shapes().shower_shapes(cells, seg, n, clusters)
            out[:, j] = shapes[name]
        else:
            out[:, j] = CLUSTER_FEATURES[name].fn(clusters)
    return out


def compute_pair(cells: Mapping[str, np.ndarray]) -> np.ndarray:
    """The raw pairwise quantities (N, 7) float32 in :data:`PAIR_COLUMNS` order."""
    n = len(cells["cell_e"])
    out = np.empty((n, len(PAIR_COLUMNS)), dtype=np.float32)
    for j, name in enumerate(PAIR_COLUMNS):
        out[:, j] = cells[name]
    return out
