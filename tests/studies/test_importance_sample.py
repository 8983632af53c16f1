"""The importance study's in-memory sample (calo_calib/studies/importance_sample.py) on hand-made batches."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from calo_calib.studies.importance_sample import Sample, load_sample, predict_corrections


def test_sample_properties():
    b = [{"cluster_e": torch.tensor([10.0, 20.0]), "valid": torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)},
         {"cluster_e": torch.tensor([5.0]), "valid": torch.tensor([[1, 1, 1]], dtype=torch.bool)}]  # fmt: skip
    s = Sample(b, truth_e=np.array([11.0, 19.0, 5.5]), abs_eta=np.zeros(3), cell_features=["x"], cluster_features=[])
    assert s.n_clusters == 3 and s.n_cells == 6
    assert s.cluster_e.dtype == np.float64 and s.cluster_e.tolist() == [10.0, 20.0, 5.0]


def test_network_required_and_no_batches():
    with pytest.raises(TypeError, match="needs a network calibration"):
        load_sample(SimpleNamespace(cfg=None, model=None), "/nonexistent")
    assert predict_corrections(torch.nn.Identity(), []).size == 0
