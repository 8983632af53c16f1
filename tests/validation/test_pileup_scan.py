"""Electron sigma_rel vs <mu> against the [S13] pile-up term (calo_calib/validation/pileup_scan.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calo_calib.validation import pileup_scan as PS


def test_expectation():
    # [S13] at E_T = 40 GeV, mu = 80: sqrt(80) (60 + 40 ln4/ln5) MeV
    pu = math.sqrt(80) * (60 + 40 * math.log(4) / math.log(5)) * 1e-3
    assert float(PS.expected(0.02, 40.0, 80.0)) == pytest.approx(math.hypot(0.02, pu / 40.0))
    assert float(PS.expected(0.02, 40.0, 0.0)) == pytest.approx(0.02)
    assert PS.implied_pileup(math.hypot(0.02, pu / 40.0), 0.02, 40.0) == pytest.approx(pu)
    assert np.isnan(PS.implied_pileup(0.01, 0.02, 40.0))


def test_pileup_scan_tiny(tmp_path):
    from calo_calib.validate import compose_validate_config
    from calo_calib.validation.report import Validation
    from calo_calib.validation.sections import generate_inline

    cfg = compose_validate_config(
        ["quick=true", "bootstrap=10", "pileup_scan.e_t=[20]", "pileup_scan.mus=[0,40]", "quick_sizes.n_pu_scan=120",
         "shower_shapes.enabled=false"]
    )  # fmt: skip
    samples = PS.samples(cfg)
    assert [s.key for s in samples] == ["puscan/electron/et20/mu0", "puscan/electron/et20/mu40"]
    data, cfgs = generate_inline(samples, int(cfg.seed))
    r = PS.responses(data["puscan/electron/et20/mu40"])
    assert set(r) == set(PS.METHODS) and all(np.all(np.isfinite(x)) for x in r.values())
    v = Validation(cfg, data, cfgs, tmp_path)
    PS.run(v)
    rows = [x for x in v.rows if x.section == PS.SECTION]
    assert len(rows) == 3  # raw, linear, oracle at mu = 40
    assert {x.verdict for x in rows if "raw" in x.quantity} == {"INFO"}
    pts = v.results["pileup_scan"]["20"]
    assert [p["mu"] for p in pts] == [0.0, 40.0]
    assert all(np.isfinite(p["oracle"]) and p["oracle"] < p["raw"] for p in pts)
    assert (tmp_path / "pileup_scan_electron.png").stat().st_size > 10_000
