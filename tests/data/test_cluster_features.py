"""Per-cluster features and presets (calo_calib/data/cluster_features.py): known answers."""

import numpy as np
import pytest

from calo_calib.data.cluster_features import (
    BDT_EXTRA_CLUSTER,
    compute_cluster_features,
    default_cluster_features,
    resolve_cluster_features,
)


def test_ratios_presets_and_errors():
    cl = {
        "cluster_e": np.array([10.0, 4.0]),
        "cluster_e_l1": np.array([2.0, 1.0]),
        "cluster_e_l2": np.array([4.0, 0.0]),
    }
    assert compute_cluster_features(["cluster_e", "r12"], cl).tolist() == [[10.0, 0.5], [4.0, 0.0]]
    assert len(default_cluster_features("electron")) == 11 and len(default_cluster_features("photon_conv")) == 15
    assert (
        resolve_cluster_features("athena+bdt", "electron") == default_cluster_features("electron") + BDT_EXTRA_CLUSTER
    )
    assert resolve_cluster_features(("mu",), "electron") == ["mu"]
    with pytest.raises(ValueError, match="is not a preset"):
        resolve_cluster_features("bdt", "electron")
    with pytest.raises(ValueError, match="is computed from the cells"):
        compute_cluster_features(["r_eta"], cl)
