"""η-modulation check on hand-made profiles: the [S6] shape is OK, a flat response a DEVIATION."""

from __future__ import annotations

import numpy as np

from calo_calib.validation import modulation as MO
from calo_calib.validation import targets as T
from calo_calib.validation.common import DEV, OK

W = T.L2_CELL_DETA
EDGES = np.linspace(0, W, 11)


def _measure(y, u):
    return MO.measure(y, u, EDGES, 20, np.random.default_rng(0))


def test_amplitude_fit_recovers_the_target():
    u = np.linspace(0, W, 2000, endpoint=False)
    noise = 1e-4 * np.random.default_rng(2).normal(size=u.size)
    res = {"response": _measure(T.eta_modulation(u) + noise, u), "containment": _measure(1.0 + noise, u)}
    t_amp = T.eta_modulation_peak_to_edge()
    assert abs(res["response"]["amplitude"] / t_amp - 1) < 0.05
    assert abs(res["response"]["u_peak"] - 1.4737 / 109.44) < 1e-3
    assert abs(res["containment"]["amplitude"]) < 0.1 * t_amp
    rows = MO.rows(res)
    assert [r.verdict for r in rows] == [OK, DEV]
    assert rows[0].quantity.startswith("peak-to-edge of E_cluster/E_true") and "ratio 1.0" in rows[0].comment
    # twice the target is still inside the factor-2 band, 2.5 times is not
    res["response"]["amplitude"] = 2.0 * t_amp
    res["containment"]["amplitude"] = 2.5 * t_amp
    assert [r.verdict for r in MO.rows(res)] == [OK, DEV]


def test_amp_fit_needs_four_bins():
    cc = np.array([0.1, 0.2, 0.3])
    amp, up, p = MO.amp_fit(cc, np.ones(3), np.full(3, 0.01), W)
    assert np.isnan(amp) and np.isnan(up) and np.all(np.isnan(p))
