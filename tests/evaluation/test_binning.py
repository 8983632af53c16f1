"""Bin assignment edge cases and binned resolution tables."""

import numpy as np
import pyarrow as pa
import pytest

from calo_calib.evaluation import binning as B


def test_card_edges():
    assert B.ABS_ETA_EDGES == (0, 0.05, 0.65, 0.8, 1.0, 1.2, 1.37, 1.52, 1.55, 1.74, 1.82, 2.0, 2.2, 2.47)
    for edges in (B.ABS_ETA_EDGES, B.ABS_ETA_COARSE_EDGES, B.ENERGY_EDGES, B.ET_EDGES, B.MU_EDGES):
        assert np.all(np.diff(edges) > 0)
    # the coarse binning keeps the crack as its own bin and covers the same range
    assert (1.37, 1.52) in zip(B.ABS_ETA_COARSE_EDGES[:-1], B.ABS_ETA_COARSE_EDGES[1:])
    assert B.ABS_ETA_COARSE_EDGES[-1] == B.ABS_ETA_EDGES[-1] == 2.47
    assert B.ENERGY_EDGES[0] == 5 and B.ENERGY_EDGES[-1] == 500


def test_values_on_edges_go_to_the_upper_bin_except_the_last_edge():
    edges = [0.0, 1.0, 2.0, 5.0]
    values = np.array([0.0, 1.0, 2.0, 5.0, 0.999, 4.999999])
    assert B.assign_bins(values, edges).tolist() == [0, 1, 2, 2, 0, 2]


def test_out_of_range_and_nan_get_minus_one():
    edges = [0.0, 1.0, 2.0]
    values = np.array([-1e-9, 2.0 + 1e-9, np.nan, -np.inf, np.inf, 1.5])
    assert B.assign_bins(values, edges).tolist() == [-1, -1, -1, -1, -1, 1]
    assert B.assign_bins(np.array([]), edges).tolist() == []


def test_card_eta_edges_exactly():
    e = np.array(B.ABS_ETA_EDGES)
    idx = B.assign_bins(e, e)
    assert idx.tolist() == list(range(len(e) - 1)) + [len(e) - 2]  # 2.47 is in the last, closed bin


@pytest.mark.parametrize("edges", [[1.0], [0.0, 0.0, 1.0], [2.0, 1.0], [0.0, np.nan]])
def test_bad_edges_are_rejected(edges):
    with pytest.raises(ValueError, match="increasing"):
        B.assign_bins(np.array([0.5]), edges)


def _table(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    truth = np.exp(rng.uniform(np.log(5), np.log(500), n))
    eta = rng.uniform(-2.47, 2.47, n)
    wide = truth * rng.normal(1.0, 0.05, n)
    return {
        "truth_e": truth,
        "cluster_e": wide,
        "cluster_eta": eta,
        "mu": rng.normal(51, 10, n),
        "e_raw": wide,
        "e_good": truth * rng.normal(1.0, 0.01, n),
    }


def test_derived_columns():
    t = {"truth_e": np.array([100.0, 100.0]), "cluster_eta": np.array([-1.0, 0.0])}
    assert B.get_column(t, "abs_eta").tolist() == [1.0, 0.0]
    assert B.get_column(t, "e_t_true") == pytest.approx([100 / np.cosh(1.0), 100.0])
    with pytest.raises(KeyError, match="nonexistent"):
        B.get_column(t, "nonexistent")


def test_binned_table_counts_and_structure():
    t = _table()
    rows = B.binned_table(
        t, ["raw", "e_good"], {"abs_eta": B.ABS_ETA_COARSE_EDGES, "truth_e": B.ENERGY_EDGES}, n_boot=20
    )
    assert len(rows) == (len(B.ABS_ETA_COARSE_EDGES) - 1) * (len(B.ENERGY_EDGES) - 1)
    # first variable varies slowest
    assert [r["abs_eta_bin"] for r in rows[:9]] == [0] * 8 + [1]
    assert [r["truth_e_bin"] for r in rows[:9]] == list(range(8)) + [0]
    assert sum(r["n"] for r in rows) == len(t["truth_e"])  # every cluster is inside both ranges
    # the counts are those of the bin ranges, recomputed here by masks
    abs_eta = np.abs(t["cluster_eta"])
    for r in rows[::7]:
        mask = (abs_eta >= r["abs_eta_lo"]) & (abs_eta < r["abs_eta_hi"]) & (t["truth_e"] >= r["truth_e_lo"])
        mask &= (t["truth_e"] < r["truth_e_hi"]) if r["truth_e_hi"] < 500 else (t["truth_e"] <= 500)
        assert r["n"] == int(mask.sum())
    for r in rows:
        assert set(r) >= {"n", "low_count", "raw", "good", "abs_eta_lo", "abs_eta_hi", "truth_e_lo", "truth_e_hi"}
        if not r["low_count"]:
            assert r["good"]["sigma_rel"] < r["raw"]["sigma_rel"]
            assert r["good"]["sigma_rel_err"] > 0 and np.isfinite(r["raw"]["median_err"])


def test_out_of_range_clusters_are_not_counted_and_empty_bins_are_kept():
    t = _table(2000)
    t["mu"][:50] = 250.0  # above the last <mu> edge
    t["mu"][50:60] = np.nan
    rows = B.binned_table(t, ["raw"], {"mu": B.MU_EDGES}, n_boot=10)
    assert sum(r["n"] for r in rows) == 2000 - 60
    last = rows[-1]  # 100-200: empty with mu ~ N(51, 10)
    assert last["n"] == 0 and last["low_count"] and np.isnan(last["raw"]["sigma_rel"])


def test_min_count_flags_and_blanks_sparse_bins():
    t = _table(1000)
    rows = B.binned_table(t, ["raw"], {"truth_e": B.ENERGY_EDGES}, n_boot=10, min_count=130)
    ns = np.array([r["n"] for r in rows])
    assert (ns < 130).any() and (ns >= 130).any()  # log-uniform E: the 60-80 GeV bin has ~60 clusters
    for r in rows:
        assert r["low_count"] == (r["n"] < 130)
        assert np.isnan(r["raw"]["sigma_rel"]) == (r["n"] < 130)


def test_binned_table_accepts_a_pyarrow_table_and_rejects_nan_predictions():
    t = _table(500)
    rows_dict = B.binned_table(t, ["raw"], {"truth_e": B.ENERGY_EDGES}, n_boot=10, min_count=10)
    rows_pa = B.binned_table(pa.table(t), ["raw"], {"truth_e": B.ENERGY_EDGES}, n_boot=10, min_count=10)
    assert rows_dict == rows_pa
    t["e_raw"][[1, 2]] = np.nan
    with pytest.raises(ValueError, match=r"e_raw / truth_e: 2 of 500"):
        B.binned_table(t, ["raw"], {"truth_e": B.ENERGY_EDGES}, n_boot=10)
    with pytest.raises(KeyError, match="e_bdt"):
        B.binned_table(t, ["bdt"], {"truth_e": B.ENERGY_EDGES}, n_boot=10)
    with pytest.raises(ValueError, match="one or two"):
        B.binned_table(t, ["good"], {"truth_e": B.ENERGY_EDGES, "mu": B.MU_EDGES, "abs_eta": B.ABS_ETA_EDGES})
