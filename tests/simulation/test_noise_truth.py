"""The diagnostic noise truth (``simulate_table(..., noise_truth=True)``): the pile-up and electronic noise
inside each cluster, for the information-content study's pile-up-free oracle. It must close the cluster's
energy bookkeeping and leave every stored column unchanged."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from calo_calib.io.schema import COLUMN_BY_NAME
from calo_calib.simulation import compose_config, simulate_table
from calo_calib.simulation.api import NOISE_TRUTH_COLUMNS


def _digest(table, names) -> str:
    h = hashlib.sha256()
    for name in names:
        for chunk in table[name].chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    h.update(buf.to_pybytes())
    return h.hexdigest()


@pytest.mark.parametrize("model", ["particles", "gaussian"])
def test_pileup_and_noise_close_the_cluster_sum_and_change_no_stored_byte(model):
    # Noise and pile-up on, sampling fluctuations and modulation off: E_L1 + E_L2 + E_L3 of the cluster is
    # exactly its deposited signal plus the pile-up and noise of its accordion cells.
    cfg = compose_config(["particle=electron", f"detector.readout.pileup.model={model}", "mu=60",
                          "detector.sampling.enabled=false", "detector.readout.phi_modulation=false"])  # fmt: skip
    plain = simulate_table(cfg, 300, 31)
    table = simulate_table(cfg, 300, 31, noise_truth=True)
    assert table.column_names[: plain.num_columns] == plain.column_names
    assert table.column_names[plain.num_columns :] == list(NOISE_TRUTH_COLUMNS)
    assert not set(NOISE_TRUTH_COLUMNS) & set(COLUMN_BY_NAME)  # never part of the stored format
    assert _digest(table, plain.column_names) == _digest(plain, plain.column_names)

    d = {c: table[c].to_numpy(zero_copy_only=False).astype(np.float64) for c in table.column_names if not c.startswith("cell_") and c != "particle"}
    e_acc = d["cluster_e_l1"] + d["cluster_e_l2"] + d["cluster_e_l3"]
    pu, noise = d["truth_e_pileup_cluster"], d["truth_e_noise_cluster"]
    np.testing.assert_allclose(e_acc, d["truth_e_dep_cluster"] + pu + noise, rtol=2e-6, atol=2e-5)
    assert np.std(pu) > 0.05 and np.std(noise) > 0.05  # both present and of the size of the cells' sigma
    assert abs(np.median(pu)) < 0.5 * np.std(pu)  # baseline-subtracted: centred


def test_noise_truth_is_zero_without_noise():
    cfg = compose_config(["particle=photon_unconv", "detector.readout.noise=false"])
    table = simulate_table(cfg, 100, 3, noise_truth=True)
    for name in NOISE_TRUTH_COLUMNS:
        assert np.all(table[name].to_numpy() == 0.0)
