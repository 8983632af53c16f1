"""The given-kinematics hook of the simulator stays out of the default gun path (and vice versa).

The gun path's output is checked bit for bit elsewhere only across versions by hand; here we check
that it never touches the hook, and that the hook never draws from the gun.
"""

from __future__ import annotations

import numpy as np
import pytest

from calo_calib.simulation import compose_config
from calo_calib.simulation.api import simulate_columns, simulate_given
from calo_calib.simulation.generator import GivenParticles, Simulator


@pytest.fixture
def calls(monkeypatch) -> dict[str, int]:
    """Counts calls of the gun and of the hook; both still run the real code (spies, not mocks)."""
    counts = {"gun": 0, "given": 0}
    gun, event = Simulator._gun, GivenParticles.event

    def gun_spy(self, n, rng):
        counts["gun"] += 1
        return gun(self, n, rng)

    def event_spy(self):
        counts["given"] += 1
        return event(self)

    monkeypatch.setattr(Simulator, "_gun", gun_spy)
    monkeypatch.setattr(GivenParticles, "event", event_spy)
    return counts


def test_default_path_uses_the_gun_only(calls):
    cfg = compose_config(["particle=electron"])
    cols, _ = simulate_columns(cfg, 60, 3)
    assert calls["gun"] >= 1 and calls["given"] == 0
    assert "input_index" not in cols  # the hook's bookkeeping column is not added to gun output
    assert cols["truth_e"].shape[0] == 60


def test_given_path_never_draws_from_the_gun(calls):
    cfg = compose_config(["particle=electron"])
    e, eta = np.array([40.0, 60.0, 80.0]), np.array([-1.9, 0.3, 2.2])
    cols, kept = simulate_given(cfg, e, eta, np.zeros(3), np.array([-1.0, 1.0, -1.0]), 5)
    assert calls["given"] >= 1 and calls["gun"] == 0
    np.testing.assert_allclose(cols["truth_e"], e[kept])
    np.testing.assert_allclose(cols["truth_eta"], eta[kept])
