"""Longitudinal checks on hand-made layer energies: PS fraction, GFlash fractions, depth and ordering."""

from __future__ import annotations

import numpy as np
from omegaconf import OmegaConf

from calo_calib.physics.observables import layer_depths
from calo_calib.validation import longitudinal as LO
from calo_calib.validation import targets as T
from calo_calib.validation.common import DEV, OK


def _sample(layers, n: int = 20, eta: float = 0.5, e: float = 50.0) -> dict:
    L = np.tile(np.asarray(layers, float), (n, 1))
    return {"cluster_eta": np.full(n, eta), "truth_e": np.full(n, e), "cluster_e": L.sum(1),
            **{c: L[:, k] for k, c in enumerate(("cluster_e_ps", "cluster_e_l1", "cluster_e_l2", "cluster_e_l3"))}}  # fmt: skip


def test_ps_fraction_rows():
    rows = LO.ps_fraction_rows({"electron": _sample([3, 20, 70, 7]), "photon": _sample([20, 20, 55, 5]), "x": None})
    assert [r.verdict for r in rows] == [OK, DEV] and rows[0].simulated == "3.0%"
    assert LO.ps_fraction_rows({"electron": _sample([3, 20, 70, 7], n=9)}) == []  # < 10 clusters


def test_depth_and_ordering_rows():
    deep, shallow = _sample([1, 20, 70, 9], eta=0.1), _sample([1, 40, 58, 1], eta=0.1)
    xs = layer_depths(0.1)
    rows = LO.depth_rows({(0.0, 0.1, 10.0): shallow, (0.0, 0.1, 100.0): deep})
    assert len(rows) == 1 and rows[0].verdict == OK and xs[1] < float(rows[0].simulated.split(" / ")[0]) < xs[3]
    rows = LO.depth_rows({(0.0, 0.1, 10.0): deep, (0.0, 0.1, 100.0): shallow})
    assert rows[0].verdict == DEV and "NOT monotonic" in rows[0].comment
    assert LO.depth_rows({(0.0, 0.1, 10.0): deep}) == []  # one energy: no trend
    rows = LO.ordering_rows(_sample([1, 30, 64, 5]), _sample([1, 20, 69, 10]))
    assert [r.verdict for r in rows] == [OK, DEV, DEV]  # barrel: photon deeper; no clusters elsewhere (NaN)
    assert LO.ordering_rows(_sample([1, 20, 69, 10]), _sample([1, 30, 64, 5]))[0].verdict == DEV


def test_gflash_rows():
    from calo_calib.simulation import compose_config

    det = OmegaConf.to_container(compose_config([]).detector, resolve=True)
    gf = T.gflash_layer_fractions(50.0, LO.layer_boundaries(det, 0.1), 0.0, T.GFLASH_MEDIUM_THICK)
    good = _sample([0.0, *(100 * gf)], eta=0.1)
    bad = _sample([0.0, *(100 * (gf + np.array([0.08, -0.08, 0.0])))], eta=0.1)
    rows = LO.gflash_rows({(0.0, 0.1, 50.0): good, (0.0, 0.1, 25.0): good, (0.0, 1.6, 50.0): good}, det)
    assert len(rows) == 1 and rows[0].verdict == OK and "max abs diff 0.000" in rows[0].comment  # 25 GeV, end-cap: none
    assert LO.gflash_rows({(0.0, 0.1, 50.0): bad}, det)[0].verdict == DEV
