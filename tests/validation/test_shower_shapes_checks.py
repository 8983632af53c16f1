"""Shower-shape checks on hand-made shape arrays: peaks in the band are OK, shifted ones DEVIATIONs."""

from __future__ import annotations

import numpy as np

from calo_calib.validation import shower_shapes as SS
from calo_calib.validation import shower_shapes_checks as SC
from calo_calib.validation.common import DEV, INFO, OK


def _shapes(particle: str, n: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    """Every target variable Gaussian around the middle of its band, σ in its core-width range (or tiny)."""
    rng = np.random.default_rng(seed)
    out = {}
    for t in SS.TARGETS:
        lo, hi = t.band(particle)
        sigma = 0.5 * sum(t.width) if t.width else 1e-4 * max(abs(hi), 1e-3)
        out[t.name] = 0.5 * (lo + hi) + sigma * rng.normal(size=n)
    return out


def test_particle_rows_ok_then_deviation():
    sh = _shapes("electron")
    variables, rows = SC.particle_rows("electron", sh, 10, np.random.default_rng(1))
    assert len(rows) == len(SS.TARGETS) + 2  # + the r_eta and w_eta2 core widths
    assert {r.verdict for r in rows} == {OK} and variables["w_eta2"]["verdict"] == OK
    sh["r_eta"] = sh["r_eta"] - 0.05
    sh["w_eta2"] = sh["w_eta2"] * 3.0  # peak out of band, width 3x too
    _, rows = SC.particle_rows("electron", sh, 10, np.random.default_rng(1))
    bad = {r.quantity for r in rows if r.verdict == DEV}
    assert bad == {"r_eta peak, electron", "w_eta2 peak, electron", "w_eta2 core width (σ68), electron"}


def test_tails_and_tight_efficiency():
    sh = _shapes("photon_unconv", n=1000)
    res, rows = SC.tail_rows("photon_unconv", sh)
    assert [r.verdict for r in rows] == [INFO, INFO] and res["r_phi_frac_below_0p9"] == 0.0
    eff, row = SC.tight_row("photon_unconv", sh, 1000)
    assert eff["loosest"] > 0.99 and row.verdict == DEV  # (nearly) every photon passes: above the 80-95 % range
    sh["f_side"][:100] = 0.9  # 10 % fail the F_side cut
    eff, row = SC.tight_row("photon_unconv", sh, 1000)
    assert 0.89 < eff["loosest"] <= 0.9 and row.verdict == OK and "f_side 90%" in row.comment


def _point(mu: float, mean: float, width: float) -> dict:
    return {"mu": mu, "peak": mean, "peak_err": 1e-4, "mean": mean, "mean_err": 1e-4, "core_width": width,
            "core_width_err": 1e-4, "l2_noise_over_e2": 0.0}  # fmt: skip


def test_mu_rows():
    rows = SC.mu_rows("electron", "r_eta", [_point(0.0, 0.94, 0.007), _point(80.0, 0.942, 0.008)])
    assert [r.verdict for r in rows] == [OK, OK] and rows[0].quantity == "r_eta mean shift mu=80 − mu=0, electron"
    rows = SC.mu_rows("electron", "r_eta", [_point(0.0, 0.94, 0.007), _point(80.0, 0.92, 0.02)])
    assert [r.verdict for r in rows] == [DEV, DEV]
    rows = SC.mu_rows("electron", "delta_e", [_point(0.0, 0.02, 0.01), _point(80.0, 0.021, 0.02)])
    assert [r.verdict for r in rows] == [OK, INFO]
