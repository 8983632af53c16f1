"""Per-cluster model inputs: the registry :data:`CLUSTER_FEATURES`, the cell shower shapes, the presets.

Cluster features are computed from the cluster scalar columns, arrays of length B; the shower
shapes (:data:`SHAPE_CLUSTER_FEATURES`) from the batch's flattened cells. The defaults follow the
athena ``egammaTransformerCalibTool``: 11 cluster features (15 for converted photons, see
:func:`default_cluster_features`). ``truth_*`` columns are never features: no registry entry reads one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from calo_calib.data.feature_math import LOG_E_FLOOR, check_feature_names, safe_ratio

ClusterFn = Callable[[Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class ClusterFeature:
    """A per-cluster feature: the scalar columns it reads, its unit, and ``fn(clusters) -> (B,)``."""

    name: str
    columns: tuple[str, ...]
    unit: str
    doc: str
    fn: ClusterFn


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
        ClusterFeature(
            "abs_eta", ("cluster_eta",), "", "|cluster eta|", lambda cl: np.abs(cl["cluster_eta"].astype(np.float64))
        ),
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


def check_cluster_features(names: Sequence[str]) -> None:
    """Raise ValueError naming any unknown/duplicate cluster feature (and listing the valid names)."""
    check_feature_names(names, {**CLUSTER_FEATURES, **dict.fromkeys(SHAPE_CLUSTER_FEATURES)}, "cluster")


def compute_cluster_features(
    names: Sequence[str],
    clusters: Mapping[str, np.ndarray],
    cells: Mapping[str, np.ndarray] | None = None,
    seg: np.ndarray | None = None,
) -> np.ndarray:
    """Cluster features (B, F) float32.

    ``clusters`` maps scalar column name -> (B,) array. Cell-derived features
    (:data:`SHAPE_CLUSTER_FEATURES`) also need the batch's flattened ``cells`` (N,) and ``seg`` (N,)
    (as for :func:`~calo_calib.data.cell_features.compute_cell_features`); the shapes are computed once for all of them.
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
