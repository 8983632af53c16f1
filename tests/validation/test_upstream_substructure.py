"""Brem/conversion substructure section (calo_calib/validation/upstream_substructure.py): expectations, quick run, broken inputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import integrate

from calo_calib.validation import upstream_substructure as U


def test_expectations():
    # PDG complete screening, thin target: (4/3) ln(1/u) - 5/6 for u -> 0; Bethe-Heitler E1 form against quadrature.
    assert float(U.n_pdg(1e-4)) == pytest.approx(4 / 3 * np.log(1e4) - 5 / 6, abs=2e-4)
    assert float(U.n_pdg(1.0)) == 0.0 and float(U.n_bh(1.0)) == 0.0
    quad = integrate.quad(lambda y: 1 / -np.log1p(-y), 0.01, 1, limit=200)[0] / np.log(2)
    assert float(U.n_bh(0.01)) == pytest.approx(quad, rel=1e-6)
    # docs/simulation.md table (Bethe-Heitler with the electron's own loss): 50 GeV, 1 X0: 7.10 (k > 0.1), 3.85 (k > 1).
    exp = U.expected_multiplicity(50.0, 1.0, [0.1, 1.0])
    np.testing.assert_allclose(exp["bh"], [7.10, 3.85], rtol=0.01)
    # PDG thin target: the table's (4/3) t ln(E/k_min) minus the 5/6 t of the exact complete-screening integral.
    np.testing.assert_allclose(exp["pdg_thin"], [8.29 - 5 / 6, 5.22 - 5 / 6], rtol=0.01)
    assert np.all(exp["pdg"] < exp["pdg_thin"])  # the loss lowers the count
    bh, pdg = U.spectrum_fractions([0.002, 0.1, 0.5, 1.0])
    assert bh.sum() == pytest.approx(1.0) and pdg.sum() == pytest.approx(1.0)
    assert bh[-1] < pdg[-1]  # Bethe-Heitler: fewer hard photons than the PDG spectrum
    np.testing.assert_allclose(U.card_efficiency([0.0, 300.0, 550.0, 800.0, 900.0]), [0.9, 0.9, 0.7, 0.5, 0.5])
    # Field up to the reference radius: 0.3 B (R - r)^2 / (2 pT R).
    r, pt = np.array([0.0, 500.0]), np.array([10.0, 40.0])
    np.testing.assert_allclose(U.field_dphi(r, pt, 1500.0, 1500.0, 2.0), 0.6 * (1.5 - r / 1000) ** 2 / (2 * pt * 1.5))


def test_budget_rule():
    # One electron at phi 0, merge 5 mrad: the hardest photon (2 mrad from the electron) merges; the
    # budget counts the hardest photons by rank, merged or not (docs/simulation.md, "Shower budget").
    ph = SimpleNamespace(electron=np.zeros(4, int), e=np.array([5.0, 4.0, 3.0, 2.0]),
                         phi_ref=np.array([0.002, 0.010, 0.020, 0.040]), separate=np.array([False, True, False, False]))  # fmt: skip
    assert U.budget_mismatches(ph, np.zeros(1), 2, 0.005) == 0
    ph.separate = np.array([False, True, True, False])
    assert U.budget_mismatches(ph, np.zeros(1), 2, 0.005) == 1
    assert U.budget_mismatches(ph, np.zeros(1), 3, 0.005) == 0
    ph.phi_ref = np.array([0.002, 0.010, 0.012, 0.040])  # the third lands 2 mrad from the second: merged
    assert U.budget_mismatches(ph, np.zeros(1), 3, 0.005) == 1


def _run(tmp_path, overrides=(), plot=False, monkeypatch=None):
    from calo_calib.simulation import compose_config
    from calo_calib.validate import compose_validate_config
    from calo_calib.validation.report import Validation

    if not plot:
        from calo_calib.validation import upstream_substructure_plots

        monkeypatch.setattr(upstream_substructure_plots, "plot", lambda v, res: None)
    cfg = compose_validate_config(["quick=true", "quick_sizes.n_upstream=300", *overrides])
    v = Validation(cfg, {}, {"x": compose_config(["particle=electron"])}, tmp_path)
    U.run(v)
    return {r.quantity: r for r in v.rows if r.section == U.SECTION}, v


def _verdicts(rows, start):
    return {q: r.verdict for q, r in rows.items() if q.startswith(start)}


def test_section_quick(tmp_path, monkeypatch):
    from calo_calib.validation.sections import MODULES, sizes

    assert "calo_calib.validation.upstream_substructure" in MODULES
    rows, v = _run(tmp_path, plot=True, monkeypatch=monkeypatch)
    assert sizes(v.cfg)["n_upstream"] == 300 and U.samples(v.cfg) == []
    assert {r.verdict for r in rows.values()} <= {"OK", "DEVIATION", "INFO"}
    assert all(r.source for r in rows.values())
    mult = _verdicts(rows, "brem photons per electron")
    assert len(mult) == 6 and set(mult.values()) == {"OK"}
    assert set(_verdicts(rows, "⟨E_radiated⟩").values()) == {"OK"}
    assert set(_verdicts(rows, "conversion reconstruction efficiency").values()) == {"OK"}
    assert set(_verdicts(rows, "separate photon showers").values()) == {"OK"}
    assert set(_verdicts(rows, "mean |Δφ|").values()) == {"INFO"}
    res = v.results["upstream_substructure"]
    assert res["showers"]["max"] <= 4 and res["showers"]["rule_mismatches"] == 0
    assert len(res["conversions"]["eff"]) == len(U.R_EDGES) - 1
    d = res["dphi"]
    assert len(d) == 3 and d[0]["mean"] > d[-1]["mean"]  # the field: softer electrons, wider photon spread
    assert (tmp_path / "upstream_substructure.png").stat().st_size > 10_000


def test_doubled_brem_rate_deviates(tmp_path, monkeypatch):
    """The propagation sees 2 × X_ID (twice the brem rate), the expectations the simulation's X_ID."""
    rows, _ = _run(tmp_path, ["upstream_substructure.stress_x_scale=2"], monkeypatch=monkeypatch)
    assert set(_verdicts(rows, "brem photons per electron").values()) == {"DEVIATION"}
    assert set(_verdicts(rows, "⟨E_radiated⟩").values()) == {"DEVIATION"}


def test_broken_brem_sampler_deviates(tmp_path, monkeypatch):
    """A simulation bug (the brem sampler radiating at twice the Bethe-Heitler rate) is caught."""
    from calo_calib.simulation import upstream

    orig = upstream.sample_element_brem
    monkeypatch.setattr(upstream, "sample_element_brem", lambda e, c, k_min, rng: orig(e, 2 * c, k_min, rng))
    rows, _ = _run(tmp_path, monkeypatch=monkeypatch)
    assert "DEVIATION" in _verdicts(rows, "brem photons per electron").values()
    assert "DEVIATION" in _verdicts(rows, "⟨E_radiated⟩").values()


def test_conversion_efficiency_off_card_deviates(tmp_path, monkeypatch):
    """A conversion model away from the card's 90 % → 50 % (here 60 % → 30 %) gives DEVIATIONs."""
    rows, _ = _run(tmp_path, ["sim_overrides=['detector.conversion.eff_values=[0.6,0.3]']"], monkeypatch=monkeypatch)
    assert set(_verdicts(rows, "conversion reconstruction efficiency").values()) == {"DEVIATION"}
    assert "DEVIATION" in _verdicts(rows, "converted fraction").values()
