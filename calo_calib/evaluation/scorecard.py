"""How a calibration compares with the BDT, in the numbers the networks issue asks for.

From a run's ``metrics.json`` (its own methods: raw, the model, the oracle floor, and the BDT when
the run was compared with one, :func:`calo_calib.evaluation.report.compare`):

* the inclusive σ_rel and its ratio to the BDT's;
* the fraction of populated (E, |η|) bins in which the model is better / worse than the BDT by more
  than the ratio's error (bins with NaN, i.e. fewer than ``min_count`` test clusters, are not counted);
* the share of the BDT-to-oracle gap it closes, (σ_BDT − σ_model) / (σ_BDT − σ_oracle): 0 is the
  BDT, 1 the oracle (which knows the truth of the losses, so nobody reaches it), < 0 worse than the BDT;
* the linearity: the median E_reco/E_true per E bin, and its largest |median − 1| above
  :data:`LINEARITY_E_MIN` (the target is ±0.3 %: :data:`LINEARITY_TOLERANCE`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from calo_calib.formatting import as_float

LINEARITY_E_MIN = 20.0
"""GeV: bins whose lower E edge is at least this count for the linearity figure."""
LINEARITY_TOLERANCE = 0.003
"""Target |median(E_reco/E_true) − 1| above :data:`LINEARITY_E_MIN`."""


def bin_fractions(comparison: Mapping[str, Any], table: str = "vs_e_abs_eta") -> dict[str, Any]:
    """Fractions of populated bins of ``table`` where the ratio to the BDT is < 1 − err / > 1 + err
    (``below_one_count``: bins whose ratio is below 1 at all, errors aside)."""
    rows = [r for r in comparison.get(table, []) if math.isfinite(as_float(r.get("ratio"))) and math.isfinite(as_float(r.get("ratio_err")))]
    better = sum(1 for r in rows if as_float(r["ratio"]) + as_float(r["ratio_err"]) < 1.0)
    below_one = sum(1 for r in rows if as_float(r["ratio"]) < 1.0)  # the point estimate alone
    worse = sum(1 for r in rows if as_float(r["ratio"]) - as_float(r["ratio_err"]) > 1.0)
    n = len(rows)
    return {
        "n_bins": n,
        "better": better / n if n else math.nan,
        "worse": worse / n if n else math.nan,
        "better_count": better,
        "below_one_count": below_one,
        "worse_count": worse,
    }


def gap_closed(sigma_model: float, sigma_bdt: float, sigma_oracle: float) -> float:
    """(σ_BDT − σ_model) / (σ_BDT − σ_oracle); NaN if the BDT is not above the oracle."""
    gap = sigma_bdt - sigma_oracle
    return (sigma_bdt - sigma_model) / gap if gap > 0 else math.nan


def linearity(metrics: Mapping[str, Any], method: str, e_min: float = LINEARITY_E_MIN) -> dict[str, Any]:
    """Median response per E bin of ``method`` and the largest |median − 1| in bins with E_lo >= ``e_min``."""
    rows = []
    for row in metrics.get("vs_e", []):
        stats = row.get(method) or {}
        rows.append({"e_lo": as_float(row.get("truth_e_lo")), "e_hi": as_float(row.get("truth_e_hi")), "median": as_float(stats.get("median")),
                     "median_err": as_float(stats.get("median_err"))})  # fmt: skip
    above = [r for r in rows if r["e_lo"] >= e_min and math.isfinite(r["median"])]
    worst = max(above, key=lambda r: abs(r["median"] - 1.0), default=None)
    return {
        "bins": rows,
        "max_abs_deviation_above": abs(worst["median"] - 1.0) if worst else math.nan,
        "worst_bin": [worst["e_lo"], worst["e_hi"]] if worst else None,
        "e_min": e_min,
        "within_tolerance": bool(worst is not None and abs(worst["median"] - 1.0) <= LINEARITY_TOLERANCE),
    }


def scorecard(metrics: Mapping[str, Any], method: str) -> dict[str, Any]:
    """The comparison of ``method`` with the BDT (see the module docstring) from a run's metrics.

    Without a BDT comparison in ``metrics`` (the BDT run itself, or a run with ``compare_to=null``)
    the BDT-relative entries are None.
    """
    inc = metrics["inclusive"]
    comparison = metrics.get("comparison_to_bdt")
    out: dict[str, Any] = {
        "method": method,
        "sigma_rel": as_float(inc[method]["sigma_rel"]),
        "sigma_rel_err": as_float(inc[method]["sigma_rel_err"]),
        "sigma_rel_oracle": as_float(inc["oracle"]["sigma_rel"]) if "oracle" in inc else math.nan,
        "linearity": linearity(metrics, method),
        "ratio_to_bdt": None,
        "ratio_to_bdt_err": None,
        "bins_vs_bdt": None,
        "gap_closed": None,
    }
    if comparison:
        c = comparison["inclusive"]
        out.update(
            ratio_to_bdt=as_float(c["ratio"]),
            ratio_to_bdt_err=as_float(c["ratio_err"]),
            sigma_rel_bdt=as_float(c["sigma_rel_ref"]),
            bins_vs_bdt=bin_fractions(comparison),
            gap_closed=gap_closed(out["sigma_rel"], as_float(c["sigma_rel_ref"]), out["sigma_rel_oracle"]),
        )
    return out
