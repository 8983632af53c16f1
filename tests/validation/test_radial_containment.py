"""Radial containment section (calo_calib/validation/radial_containment.py): the integral, verdicts."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from omegaconf import OmegaConf

from calo_calib.simulation import compose_config, shower
from calo_calib.validation import radial_containment as R


def _media():
    return shower.accordion_media(compose_config([]).detector.accordion)


def test_containment_is_a_cumulative_and_scales_with_the_width():
    rng = np.random.default_rng(0)
    c = R.containment(_media(), 0, 40.0, [0.01, 0.5, 1.0, 2.0, 3.5, 50.0], rng, n=300)
    assert np.all(np.diff(c) > 0) and c[0] < 0.02 and c[-1] > 0.999
    # Widening both radii by 2 at fixed R_M is the same as asking at half the radius.
    wide = R.containment(_media(), 0, 40.0, [2.0], np.random.default_rng(0), width_scale=2.0, n=300)
    narrow = R.containment(_media(), 0, 40.0, [1.0], np.random.default_rng(0), n=300)
    assert wide[0] == pytest.approx(narrow[0], abs=1e-9)


def test_profile_r_eta_of_a_point_like_and_a_broad_shower():
    media = _media()
    depth, cell = (5.0, 23.0), (42.0, 41.3)
    r_nominal = R.profile_r_eta(media, 0, 40.0, depth, cell, np.random.default_rng(1), n=300)
    r_thin = R.profile_r_eta(media, 0, 40.0, depth, cell, np.random.default_rng(1), width_scale=0.05, n=300)
    r_wide = R.profile_r_eta(media, 0, 40.0, depth, cell, np.random.default_rng(1), width_scale=2.0, n=300)
    assert r_thin > 0.999 and r_wide < r_nominal < r_thin and 0.9 < r_nominal < 0.99


def _run(overrides: list[str]) -> tuple[list, dict]:
    rows: list = []
    v = SimpleNamespace(cfg=OmegaConf.create({"seed": 3, "sim_overrides": overrides}), results={},
                        row=lambda *a: rows.append(a), note=lambda *a: None)  # fmt: skip
    R.run(v)
    return rows, v.results["radial_containment"]


def test_nominal_profile_meets_the_pdg_containment_and_a_wider_one_fails():
    from calo_calib.validation.report import DEV, INFO, OK

    rows, res = _run([])
    verdicts = {r[1]: r[5] for r in rows}
    assert len(verdicts) == 7 and list(verdicts.values()).count(OK) == 6 and list(verdicts.values()).count(INFO) == 1
    inside = res["media"]["thick-lead barrel"]["energies"][40.0]
    assert 0.88 < inside["inside_1rm"] < inside["inside_2rm"] < inside["inside_3.5rm"] < 1.0
    assert res["profile_r_eta"]["depth_x0"][0] > 5.0 and res["profile_r_eta"]["cell_mm"][0] == pytest.approx(42.0, abs=0.5)
    # 50 % wider showers (a data-like variant's knob pushed far) hold 85 % inside R_M: deviations.
    rows, _ = _run(["+detector.shower.width_scale=1.5"])
    assert [r[5] for r in rows if "inside 1 R_M" in r[1]] == [DEV] * 3
