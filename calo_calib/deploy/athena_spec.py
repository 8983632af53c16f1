"""The fixed contract of the athena C++ tools that load an exported calibration (names, order, units).

Read from the public athena repository (github.com/ATLAS-experiment/athena; never copied, only the
contract restated):

* ``Reconstruction/egamma/egammaTransformerCalib/Root/egammaTransformerCalibTool.cxx`` @ 0ae1b757
  (``initialize``, ``setupTransformerModel``, ``getEnergy``) and
  ``egammaTransformerCalib/egammaTransformerCalibTool.h`` @ 3f3ef203 (the properties);
* ``PhysicsAnalysis/JetTagging/FlavorTagInference/Root/SaltModel.cxx`` @ 28f530dc,
  ``FlavorTagInference/SaltModel.h`` @ 628ac7be (``SaltModelVersion`` <-> "v0".."v2"),
  ``Root/SaltModelOutput.cxx`` @ 7bbb05f4, ``Root/SaltModelGraphConfig.cxx`` @ 446634e2;
* ``Reconstruction/MVAUtils/util/convertXGBoostToRootTree.py`` @ 4e2990c6 and (rolandjansky/athena
  mirror) ``MVAUtils/Root/ForestXGBoost.cxx`` @ d7835dd8, ``MVAUtils/ForestXGBoost.h`` @ 9b1a77b0.

Everything a user of those tools cannot change is here, so that the exporter, the ONNX wrapper and
the contract player (:mod:`calo_calib.deploy.athena_player`) share one definition.
"""

from __future__ import annotations

ATHENA_REPOSITORY = "https://github.com/ATLAS-experiment/athena"
MIRRORED_FILES: dict[str, str] = {
    "Reconstruction/egamma/egammaTransformerCalib/Root/egammaTransformerCalibTool.cxx": "0ae1b757503a1202acd994f970f2e5a1a7705652",
    "Reconstruction/egamma/egammaTransformerCalib/egammaTransformerCalib/egammaTransformerCalibTool.h": "3f3ef20357f797b24900e6ecef3e3a0be1d6a9b2",
    "PhysicsAnalysis/JetTagging/FlavorTagInference/Root/SaltModel.cxx": "28f530dcbe11c45039276c6472fe6073aaea208a",
    "PhysicsAnalysis/JetTagging/FlavorTagInference/FlavorTagInference/SaltModel.h": "628ac7bea1bffcbdc332fd7cd9f089a4b85db55e",
    "PhysicsAnalysis/JetTagging/FlavorTagInference/Root/SaltModelOutput.cxx": "7bbb05f44167c5ecc767ef999c498ec45e6fb868",
    "PhysicsAnalysis/JetTagging/FlavorTagInference/Root/SaltModelGraphConfig.cxx": "446634e2e51904cc35c36ba1e98996302b743784",
    "Reconstruction/MVAUtils/util/convertXGBoostToRootTree.py": "4e2990c6f50f449a0e7ddc16f4f459b2e802e268",
    "Reconstruction/MVAUtils/Root/ForestXGBoost.cxx (rolandjansky/athena)": "d7835dd8f397ed77bd8f75737eeebf2106bb2f9e",
    "Reconstruction/MVAUtils/MVAUtils/ForestXGBoost.h (rolandjansky/athena)": "9b1a77b04a7b737e4631206a5672ebca37855cbd",
}
"""athena file -> the commit of the version read (the "revision" the contract mirrors)."""

# --- egammaTransformerCalibTool -----------------------------------------------------------------

CLUSTER_INPUT = "cluster_features"  # [1, F_cluster] float32, fed by name (SaltModel::runInference)
CELL_INPUT = "cell_features"  # [n_cells, 7] float32

CLUSTER_FEATURES: tuple[str, ...] = (
    "cluster_e", "e_ps", "e_l1", "e_l2", "e_l3", "e_tg3", "cluster_eta", "cluster_phi", "r12", "f0_acc", "f_tg3",
)  # fmt: skip
"""The tool's 11 cluster features in its order, named as in :data:`calo_calib.data.features.CLUSTER_FEATURES`:
ΣE_cells(L0..L3), E_L0..E_L3, E_TileGap3 [MeV], η, φ of the cluster, E_L1/E_L2, E_L0/(E_L1+E_L2+E_L3),
E_TG3/(E_L1+E_L2+E_L3) (each ratio 0 when its denominator is exactly 0)."""
CONV_FEATURES: tuple[str, ...] = ("conv_r", "conv_et_over_pt", "conv_pt_ratio", "conversion_type")
"""Appended for converted photons (15 in all): convR [mm] (799 unless pT_conv > 3 GeV), convEtOverPt
(clipped to [0, 2]), convPtRatio (1 unless two Si tracks), conversionType (as float)."""
CELL_FEATURES: tuple[str, ...] = ("e_frac_layer", "deta", "dphi", "x", "y", "z", "layer")
"""The tool's 7 cell features: E/E_layer (0 when E_layer is exactly 0), Δη, Δφ wrapped to [-π, π),
x, y, z [mm], layer index 0..3 and TileGap3 = 4 (as float)."""

ENERGY_CLUSTER_FEATURES: tuple[str, ...] = ("cluster_e", "e_ps", "e_l1", "e_l2", "e_l3", "e_tg3")
"""Cluster features the tool passes in MeV (the project trains on GeV)."""
MEV_PER_GEV = 1000.0

TILEGAP3_LAYER = 4

PARTICLE_TYPES: dict[str, int] = {"electron": 0, "photon_unconv": 1, "photon_conv": 2}
"""Project particle -> the tool's ``ParticleType`` property (xAOD::EgammaParameters::EgammaType:
electron 0, unconvertedPhoton 1, convertedPhoton 2; forwardelectron 3 reuses the electron model)."""

MODEL_FILE_PROPERTY: dict[str, tuple[str, str]] = {
    "electron": ("ElectronModelFile", "electron_model_calibration.onnx"),
    "photon_unconv": ("UnconvertedPhotonModelFile", "unconverted_photon_model_calibration.onnx"),
    "photon_conv": ("ConvertedPhotonModelFile", "converted_photon_model_calibration.onnx"),
}
"""Project particle -> (the tool's property naming the file inside ``folder``, its default value).
The athena export writes the default name, so a folder of the three files needs no file property."""


def n_cluster_features(particle: str) -> int:
    """The tool's ``m_num_cluster_features`` for ``particle``: 11, or 15 for converted photons."""
    return len(cluster_features(particle))


def cluster_features(particle: str) -> list[str]:
    """The tool's cluster features for ``particle`` (project feature names, the tool's order).

    Raises:
        ValueError: a particle the tool has no model for.
    """
    if particle not in PARTICLE_TYPES:
        raise ValueError(f"no egammaTransformerCalibTool model for particle {particle!r}; valid: {list(PARTICLE_TYPES)}")
    return list(CLUSTER_FEATURES) + (list(CONV_FEATURES) if particle == "photon_conv" else [])


# --- SaltModel ----------------------------------------------------------------------------------

GNN_CONFIG_KEY = "gnn_config"  # custom metadata key parsed as JSON by SaltModel's constructor
SALT_VERSIONS = ("v0", "v1", "v2")  # NLOHMANN_JSON_SERIALIZE_ENUM(SaltModelVersion, ...)
EXPORT_SALT_VERSION = "v1"
"""v1: outputs are ``<model name>_<output>``, the model name being the part before the FIRST ``_``
(SaltModel::determineModelName), the same for every output."""


def salt_model_name(model: str) -> str:
    """The SaltModel model name of an exported network: its name without ``_`` (``gnn_edge`` -> ``gnnedge``),
    since SaltModel cuts the output name at the first underscore."""
    return model.replace("_", "")


# --- MVAUtils -----------------------------------------------------------------------------------

MVAUTILS_TREE_TITLE = "creator=xgboost"  # BDT(TTree*) picks ForestXGBoost from the title
MVAUTILS_TREE_NAME = "xgboost"  # convertXGBoostToRootTree.py's default tree name
