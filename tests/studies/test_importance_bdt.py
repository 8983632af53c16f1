"""XGBoost gain table of the importance study (calo_calib/studies/importance_bdt.py) on a fake BDT."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from calo_calib.studies.importance_bdt import bdt_gain_importance


class _Booster:
    def __init__(self, scores):
        self.scores = scores

    def get_score(self, importance_type):  # noqa: ANN001, ANN201
        assert importance_type == "total_gain"
        return self.scores


def test_gain_summed_over_boosters_and_sorted():
    bdt = SimpleNamespace(
        boosters={"a": _Booster({"e_l2": 3.0, "f1": 1.0}), "b": _Booster({"e_l2": 1.0})},  # f1 = the booster's 2nd input
        booster_inputs={"a": ["e_l1", "eta"], "b": ["e_l2"]},
    )
    rows = bdt_gain_importance(bdt)
    assert [r["name"] for r in rows] == ["e_l2", "eta"]
    assert rows[0]["total_gain"] == 4.0 and rows[0]["n_boosters"] == 2 and rows[0]["fraction"] == 0.8
    assert rows[1] == {"name": "eta", "total_gain": 1.0, "fraction": 0.2, "n_boosters": 1}
    with pytest.raises(ValueError, match="no trained booster"):
        bdt_gain_importance(SimpleNamespace(boosters={}))
