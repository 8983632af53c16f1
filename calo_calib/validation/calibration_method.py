"""Validation section: the per-point linear fit against a global BDT at the resolution points (a diagnosis).

The resolution check ("Energy resolution vs the ATLAS MC model") calibrates each fixed-energy,
narrow-|η| sample with its own linear layer weights (fitted at that point's true energy). The ATLAS
MC model it is compared with comes from ATLAS's calibration, a BDT trained over a broad spectrum in
(|η|, E_T) bins. If the per-point fit were what makes electrons at |η| = 0.9–1.6 look better than the
model (0.57–0.75×), the repository's own ATLAS-like BDT (:class:`~calo_calib.models.bdt.BDTModel`,
the card's bins and inputs), trained on a broad sample and applied at the same points, would land
near the model. This section measures both on the same clusters.

Per ⟨μ⟩ of the configured points: ``n_train`` electrons, log-uniform in E over ``train.e_min``–
``train.e_max`` and uniform in |η| over ``train.abs_eta_min``–``train.abs_eta_max`` at that fixed ⟨μ⟩,
are split even/odd into training and early-stopping clusters. Per point: ``n_point`` clusters of the
resolution check's gun (fixed E, |η| ± 0.05); the linear fit is the check's own (:func:`~calo_calib.
validation.resolution.point`: fitted on the even, evaluated on the odd clusters), the BDT is
evaluated on the same odd clusters. INFO rows; nothing is tuned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from calo_calib.validation import targets as T
from calo_calib.validation.common import INFO, pct
from calo_calib.validation.metrics import bootstrap_error, sigma_rel

SECTION = "The per-point linear fit against a global BDT (diagnosis)"
SEED_OFFSET = 9800
HALF_WIDTH = 0.05  # |η| half-width of a resolution point, as the resolution check's samples
DEFAULT_POINTS = ((0.9, 50.0, 0.0), (1.2, 50.0, 0.0), (1.2, 100.0, 0.0), (1.6, 50.0, 0.0), (1.6, 100.0, 0.0),
                  (1.6, 500.0, 0.0), (1.2, 50.0, 32.0), (1.6, 100.0, 32.0))  # fmt: skip
"""The electron points flagged better than the model at 50–500 GeV (docs/validation, 2026-12-02)."""


def _table_arrays(table, particle: str) -> dict[str, np.ndarray]:
    """High-level BDT inputs plus the layer energies, ``cluster_e`` and ``truth_e`` of a simulated table, (N,) each."""
    from calo_calib.data.high_level import high_level_features
    from calo_calib.validation.common import LAYER_COLS

    feats = high_level_features(table, particle)
    for name in ("cluster_e", "truth_e", *LAYER_COLS):
        feats[name] = table.column(name).to_numpy()
    return feats


def train_bdt(overrides: Sequence[str], n: int, seed: int, nthread: int = 2):
    """A binned ATLAS-like :class:`~calo_calib.models.bdt.BDTModel` for electrons trained on ``n`` clusters
    simulated with ``overrides`` (even rows train, odd rows stop early)."""
    from calo_calib.models.bdt import BDTModel
    from calo_calib.simulation import compose_config, simulate_table

    d = _table_arrays(simulate_table(compose_config(list(overrides)), n, seed), "electron")
    idx = np.arange(d["truth_e"].size)
    train = {k: v[idx % 2 == 0] for k, v in d.items()}
    val = {k: v[idx % 2 == 1] for k, v in d.items()}
    model = BDTModel("electron", nthread=nthread)
    model.fit(train, val, progress=False)
    return model


def compare_point(model, d: Mapping[str, np.ndarray], nboot: int, rng: np.random.Generator) -> dict:
    """σ_rel of the per-point linear fit and of ``model`` on the odd clusters of one fixed-energy sample ``d``.

    Returns ``sigma_lin``, ``err_lin`` (as the resolution check), ``sigma_bdt``, ``err_bdt`` (E_reco =
    correction × cluster_e over E_true), ``median_bdt`` and ``n_eval``.
    """
    from calo_calib.validation.resolution import point

    lin = point(d, nboot, rng)
    odd = np.arange(d["truth_e"].size) % 2 == 1
    sub = {k: v[odd] for k, v in d.items()}
    ratio = model.predict_correction(sub) * sub["cluster_e"] / sub["truth_e"]
    ratio = ratio[np.isfinite(ratio)]
    return {"n_eval": int(odd.sum()), "sigma_lin": lin["sigma_lin"], "err_lin": lin["err_lin"],
            "sigma_bdt": sigma_rel(ratio), "err_bdt": bootstrap_error(sigma_rel, ratio, nboot, rng),
            "median_bdt": float(np.median(ratio))}  # fmt: skip


def _pm(x: float, err: float) -> str:
    return f"{pct(x)} ± {pct(err)}"


def training_overrides(c, mu: float, extra: Sequence[str]) -> list[str]:
    """Simulation overrides of the broad electron training sample at a fixed ⟨μ⟩ = ``mu``."""
    t = c.get("train", {})
    return [
        "particle=electron", "gun.spectrum=log_uniform", f"gun.e_min={float(t.get('e_min', 20)):g}",
        f"gun.e_max={float(t.get('e_max', 800)):g}", f"gun.abs_eta_min={float(t.get('abs_eta_min', 0.75)):g}",
        f"gun.abs_eta_max={float(t.get('abs_eta_max', 1.75)):g}", f"mu={mu:g}", "pileup.mu_rel_sigma=0", *extra,
    ]  # fmt: skip


def run(v) -> None:
    """Add one row per point to the :class:`~calo_calib.validation.report.Validation` ``v``."""
    c = v.cfg.get("calibration_method", {})
    if not c.get("enabled", True):
        return
    from calo_calib.simulation import compose_config, simulate_table
    from calo_calib.validation.samples import fixed_overrides

    points = [tuple(float(x) for x in p) for p in c.get("points", DEFAULT_POINTS)]
    if v.cfg.quick:  # one training sample and two points: the code path, not the numbers
        points = [p for p in points if p[2] == points[0][2]][:2]
    n_train = 3000 if v.cfg.quick else int(c.get("n_train", 60000))
    n_point = 300 if v.cfg.quick else int(c.get("n_point", 3000))
    nboot = max(2, min(int(v.nboot), int(c.get("bootstrap", 100))))
    extra = list(v.cfg.get("sim_overrides") or [])
    rng = np.random.default_rng(np.random.SeedSequence([int(v.cfg.seed), SEED_OFFSET]))
    out = []
    for k, mu in enumerate(sorted({p[2] for p in points})):
        model = train_bdt(training_overrides(c, mu, extra), n_train, int(v.cfg.seed) + SEED_OFFSET + k)
        for j, (eta, e, _) in enumerate(p for p in points if p[2] == mu):
            ov = fixed_overrides("electron", e, eta, HALF_WIDTH, mu) + extra
            d = _table_arrays(simulate_table(compose_config(ov), n_point, int(v.cfg.seed) + SEED_OFFSET + 100 * (k + 1) + j), "electron")
            r = compare_point(model, d, nboot, rng)
            r.update(eta=eta, e=e, mu=mu, model=float(T.resolution_model(e, eta, mu)))
            out.append(r)
            v.row(
                SECTION, f"σ_rel electron |η|={eta:g} E={e:g} GeV ⟨μ⟩={mu:g}: linear per point / global BDT",
                f"{_pm(r['sigma_lin'], r['err_lin'])} / {_pm(r['sigma_bdt'], r['err_bdt'])}",
                f"ATLAS MC model {pct(r['model'])}", "[S12] model (+ [S13] pile-up term at ⟨μ⟩ > 0); BDT: card §5.1", INFO,
                f"ratios to the model {r['sigma_lin'] / r['model']:.2f} / {r['sigma_bdt'] / r['model']:.2f}; BDT median "
                f"response {r['median_bdt']:.4f}; BDT trained on {n_train} electrons, {r['n_eval']} evaluated",
            )  # fmt: skip
    v.results["calibration_method"] = out


def samples(cfg) -> list:
    """No report samples: the section simulates its own training and point samples."""
    return []
