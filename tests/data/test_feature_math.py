"""Guards shared by the feature registries (calo_calib/data/feature_math.py): known answers."""

import numpy as np
import pytest

from calo_calib.data.feature_math import EPS_E, check_feature_names, safe_ratio, wrap_phi


def test_safe_ratio_wrap_phi_and_name_checks():
    assert safe_ratio(np.array([1.0, 2.0, 3.0]), np.array([0.0, EPS_E / 2, 2.0])).tolist() == [0.0, 0.0, 1.5]
    assert wrap_phi(np.array([1.5 * np.pi, -np.pi, 0.25])) == pytest.approx([-0.5 * np.pi, np.pi, 0.25])
    check_feature_names(["a"], {"a": 1}, "cell")
    with pytest.raises(ValueError, match=r"duplicate cell feature\(s\) \['a'\]"):
        check_feature_names(["a", "a"], {"a": 1}, "cell")
