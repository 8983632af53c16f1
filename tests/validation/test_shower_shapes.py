"""Shower-shape validation section (calo_calib/validation/shower_shapes.py): estimators, targets, quick run."""

from __future__ import annotations

import numpy as np
import pytest

from calo_calib.validation import shower_shapes as SS


def test_half_sample_mode_known_distributions():
    rng = np.random.default_rng(1)
    assert abs(SS.half_sample_mode(rng.normal(0.5, 0.1, 20000)) - 0.5) < 0.02
    # Gamma(k=3, theta=1): mode (k-1) theta = 2 (median 2.67, mean 3)
    assert abs(SS.half_sample_mode(rng.gamma(3.0, 1.0, 40000)) - 2.0) < 0.25
    # a narrow peak at 0.95 with a 30% low tail (R_eta-like): the median is pulled down, the mode is not
    x = np.concatenate([rng.normal(0.95, 0.005, 7000), rng.uniform(0.6, 0.95, 3000)])
    assert abs(SS.half_sample_mode(x) - 0.95) < 0.004
    assert np.median(x) < 0.948 and np.mean(x) < 0.92
    # degenerate inputs
    assert SS.half_sample_mode(np.ones(100)) == 1.0
    assert SS.half_sample_mode([1.0, 2.0]) == 1.5
    assert SS.half_sample_mode([0.0, 1.0, 1.1]) == pytest.approx(1.05)
    assert np.isnan(SS.half_sample_mode([]))
    assert SS.half_sample_mode([np.nan, 3.0, np.inf]) == 3.0


def test_core_width_and_bands():
    rng = np.random.default_rng(2)
    assert SS.core_width(rng.normal(0, 0.02, 50000)) == pytest.approx(0.02, rel=0.03)
    t = SS.target("r_eta")
    assert t.band("electron") == pytest.approx((0.935, 0.945))
    assert t.width_band() == pytest.approx((0.00375, 0.0125))
    assert SS.target("w_s_tot").band("photon_conv") == pytest.approx((1.8, 2.2))
    assert SS.target("f_side").band("electron") == pytest.approx((0.08, 0.30))
    assert SS.in_band(0.95, 0.003, (0.935, 0.945)) and not SS.in_band(0.96, 0.003, (0.935, 0.945))
    # every table row is encoded, with a source tag on the section
    assert {t.name for t in SS.TARGETS} == {
        "r_eta",
        "r_phi",
        "w_eta2",
        "w_s_tot",
        "w_s3",
        "f_side",
        "e_ratio",
        "delta_e",
        "f1",
        "f3",
    }
    # tight photon cuts: loose end passes more than the tight end
    sh = {"r_eta": np.array([0.925, 0.95]), "w_eta2": np.array([0.0112, 0.010])}
    assert SS.tight_pass(sh, "photon_unconv", "loose").tolist() == [True, True]
    assert SS.tight_pass(sh, "photon_unconv", "tight").tolist() == [False, True]


@pytest.fixture(scope="module")
def quick_validation(tmp_path_factory):
    from calo_calib.validate import compose_validate_config
    from calo_calib.validation.report import Validation, build_samples
    from calo_calib.validation.sections import generate_inline

    out = tmp_path_factory.mktemp("shapes")
    cfg = compose_validate_config(
        ["quick=true", "bootstrap=10", "shower_shapes.particles=[photon_unconv]", "shower_shapes.mus=[0,40]",
         "quick_sizes.n_shapes=150", "pileup_scan.enabled=false"]
    )  # fmt: skip
    keys = [s.key for s in build_samples(cfg)]  # the report's sample list carries the section's samples
    assert "shapes/photon_unconv/mu0" in keys and "shapes/photon_unconv/mu40" in keys
    assert not any(k.startswith("puscan/") for k in keys)
    data, cfgs = generate_inline(SS.samples(cfg), int(cfg.seed))
    v = Validation(cfg, data, cfgs, out)
    SS.run(v)
    return v, out


def test_shower_shape_section_quick(quick_validation):
    v, out = quick_validation
    d = v.data["shapes/photon_unconv/mu40"]
    assert d["shape_w_eta2"].shape == d["truth_e"].shape and SS.L2_NOISE_KEY in d
    rows = [r for r in v.rows if r.section == SS.SECTION]
    names = {r.quantity.split(" ")[0] for r in rows}
    assert {t.name for t in SS.TARGETS} <= names
    assert all(r.verdict in ("OK", "DEVIATION", "INFO") for r in rows)
    assert any(r.quantity.startswith("tight photon efficiency") for r in rows)
    mu_rows = [r for r in v.rows if r.section == SS.SECTION_MU]
    assert any("mean shift mu=40" in r.quantity for r in mu_rows)
    res = v.results["shower_shapes"]["photon_unconv"]["variables"]
    assert np.isfinite(res["w_eta2"]["peak"]) and res["w_eta2"]["peak"] > 0
    for png in ("shower_shapes_photon_unconv.png", "shower_shapes_vs_mu.png"):
        assert (out / png).stat().st_size > 10_000, png
    v.write_readme(
        {"date": "now", "git": "x", "n_clusters": 1, "wall_s": 1.0, "workers": 1, "quick": True, "sizes": {}}
    )
    readme = (out / "README.md").read_text()
    assert SS.SECTION in readme and "(shower_shapes_photon_unconv.png)" in readme
