"""MVAUtils trees through real ROOT (calo_calib.deploy.mvautils_root): std::vector branches written
with PyROOT and bound in C++ as MVAUtils::BDT binds them (athena MVAUtils/Root/ForestXGBoost.cxx
@ d7835dd8: SetBranchAddress of std::vector<int>*, <float>*, <bool>*)."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from calo_calib.deploy import mvautils, mvautils_root

pytestmark = pytest.mark.skipif(not mvautils_root.available(), reason="ROOT (the `root` extra) is not installed")


@pytest.fixture(scope="module")
def booster_and_inputs() -> tuple[xgb.Booster, np.ndarray]:
    """A small regression forest with missing values in training (so default_left varies)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 5)).astype(np.float32)
    y = 1.0 + 0.1 * x[:, 0] + 0.05 * np.tanh(x[:, 1] * x[:, 2]) + 0.01 * rng.normal(size=len(x))
    x[rng.random(len(x)) < 0.15, 3] = np.nan
    params = {"max_depth": 6, "eta": 0.2, "base_score": 1.0, "nthread": 1}
    return xgb.train(params, xgb.DMatrix(x, y), num_boost_round=40), x


def test_vector_branches_load_in_cpp_and_equal_xgboost(tmp_path, booster_and_inputs):
    import uproot

    booster, x = booster_and_inputs
    trees = mvautils.preorder_trees(booster)
    path = mvautils.write_tree_file(tmp_path / "bdt.root", trees)
    with uproot.open(path) as f:
        tree = f["xgboost"]
        assert tree.title == "creator=xgboost" and tree.num_entries == 40
        assert {b.name: b.typename for b in tree.branches} == {
            "vars": "std::vector<int32_t>", "values": "std::vector<float>", "default_left": "std::vector<bool>"}  # fmt: skip
    back = mvautils.read_tree_file(path)
    assert all(np.array_equal(a.vars, b.vars) and np.array_equal(a.values, b.values)
               and np.array_equal(a.default_left, b.default_left) for a, b in zip(trees, back))  # fmt: skip
    assert any(not d for t in trees for v, d in zip(t.vars, t.default_left) if v >= 0)  # both NaN directions occur

    forest = mvautils_root.RootForest(path)
    assert forest.n_trees == 40
    probe = x[:1500].copy()
    probe[::4, 0] = np.nan
    ref = booster.predict(xgb.DMatrix(probe))
    got = forest.responses(probe) + mvautils.base_score(booster)
    assert np.max(np.abs(got - ref) / np.abs(ref)) < 1e-5
    # The C++ walk and the Python walk are the same function of the same arrays.
    np.testing.assert_allclose(got, mvautils.MVAUtilsForest(back).responses(probe) + 1.0, rtol=1e-6)
    # One leaf moved by 0.01 is seen (the comparison can fail).
    bent = [mvautils.PreorderTree(t.vars, t.values.copy(), t.default_left) for t in trees]
    leaf = int(np.flatnonzero(bent[0].vars < 0)[0])
    bent[0].values[leaf] += 0.01
    mvautils.write_tree_file(tmp_path / "bent.root", bent)
    moved = np.abs(mvautils_root.RootForest(tmp_path / "bent.root").responses(probe) + 1.0 - ref)
    assert 0 < np.count_nonzero(moved > 5e-3) < len(probe)

def test_counter_array_trees_are_refused_as_mvautils_would(tmp_path, booster_and_inputs):
    """uproot's layout (int32_t[n] with counters) fails MVAUtils' std::vector SetBranchAddress."""
    booster, _ = booster_and_inputs
    path = mvautils.write_uproot_tree_file(tmp_path / "uproot.root", mvautils.preorder_trees(booster))
    with pytest.raises(ValueError, match=r"uproot\.root: branches are not std::vector"):
        mvautils_root.RootForest(path)


def test_wrong_title_and_missing_tree_are_named(tmp_path, booster_and_inputs):
    import uproot

    with uproot.recreate(tmp_path / "wrong.root") as f:
        f.mktree("xgboost", {"vars": "int32"}, title="creator=lgbm")
        f["xgboost"].extend({"vars": np.zeros(1, np.int32)})
    with pytest.raises(ValueError, match=r"wrong\.root: tree title 'creator=lgbm', MVAUtils needs 'creator=xgboost'"):
        mvautils_root.RootForest(tmp_path / "wrong.root")
    with uproot.recreate(tmp_path / "empty.root") as f:
        f["other"] = "x"
    with pytest.raises(ValueError, match=r"empty\.root: no TTree 'xgboost'"):
        mvautils_root.RootForest(tmp_path / "empty.root")


def test_no_half_file_under_the_final_name(tmp_path, booster_and_inputs):
    booster, _ = booster_and_inputs
    path = mvautils_root.write_tree_file(tmp_path / "bdt.root", mvautils.preorder_trees(booster))
    assert path.exists() and not (tmp_path / "bdt.root.tmp").exists()
