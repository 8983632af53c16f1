"""XGBoost total-gain importance of a BDT calibration (the feature-importance study's BDT table).

Gain is a training-time quantity, not comparable with the networks' permutation importance
(:mod:`calo_calib.studies.importance`).
"""

from __future__ import annotations

from typing import Any


def bdt_gain_importance(bdt: Any) -> list[dict[str, Any]]:
    """XGBoost total-gain importance of a :class:`calo_calib.models.bdt.BDTModel`, summed over its boosters.

    Returns:
        One dict per input, sorted by decreasing gain: ``name``, ``total_gain`` (sum over the
        boosters' splits on it), ``fraction`` (of the summed gain of all inputs), ``n_boosters``
        (boosters that split on it at least once). Gain is a training-time quantity (loss reduction
        of the splits), not a test-set resolution change: not comparable with the network numbers.

    Raises:
        ValueError: if the BDT has no trained booster.
    """
    boosters = getattr(bdt, "boosters", None)
    if not boosters:
        raise ValueError("bdt_gain_importance: the BDT has no trained booster")
    gain: dict[str, float] = {}
    used: dict[str, int] = {}
    for name, booster in boosters.items():
        inputs = list(bdt.booster_inputs[name])
        for key, value in booster.get_score(importance_type="total_gain").items():
            # feature names are stored with the boosters; f<i> only if a booster was saved without them
            feat = inputs[int(key[1:])] if key not in inputs and key.startswith("f") and key[1:].isdigit() else key
            gain[feat] = gain.get(feat, 0.0) + float(value)
            used[feat] = used.get(feat, 0) + 1
    total = sum(gain.values())
    rows = [{"name": f, "total_gain": g, "fraction": g / total if total > 0 else float("nan"), "n_boosters": used[f]}
            for f, g in gain.items()]  # fmt: skip
    return sorted(rows, key=lambda r: -r["total_gain"])
