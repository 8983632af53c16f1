"""The BDT for ATLAS's MVAUtils: one TTree per booster in the layout of ``convertXGBoostToRootTree.py``, and a
Python walk of those trees as ``MVAUtils::BDT`` (ForestXGBoost / NodeXGBoost) evaluates them.

Layout (athena ``Reconstruction/MVAUtils/util/convertXGBoostToRootTree.py`` @ 4e2990c6, read by
``Root/ForestXGBoost.cxx`` @ d7835dd8): a TTree titled ``creator=xgboost``, one entry per decision tree,
each entry three arrays over the tree's nodes in preorder (node, then its "yes"/left subtree, then
its "no"/right subtree): ``vars`` (int: the input index cut on, -1 for a leaf), ``values`` (float: the
cut of an internal node, the response of a leaf), ``default_left`` (bool: where a NaN input goes;
true for leaves). Evaluation: at an internal node go left if ``x[var] < cut`` (XGBoost's "yes"), right
otherwise, and by ``default_left`` if ``x[var]`` is NaN; the response is the sum of the trees'
leaves. MVAUtils does NOT add XGBoost's ``base_score`` (ForestXGBoost.h, "Global bias 'base_score' is
not included"): it is written next to the trees (``binning.json``, ``offset`` per booster) and added by the caller.

**std::vector branches.** ``ForestXGBoost`` binds the branches to ``std::vector<T>*``. With ROOT
installed (the ``root`` extra, ``pip install ROOT``: the PyPI wheel of ROOT 6.40, part of ``make
install``) the trees are written by :mod:`calo_calib.deploy.mvautils_root` with real vector branches,
as athena's converter writes them, and proved by a C++ reader that binds them as MVAUtils does.
Without ROOT, uproot (5.7) writes the same content as leaf arrays with counters (``int32_t[nvars]``
..., one byte per bool; uproot cannot write ``std::vector``, scikit-hep/uproot5 #1486), which
``MVAUtils::BDT`` does NOT load: :func:`write_tree_file` then warns, and athena's own
``convertXGBoostToRootTree.py`` on the exported JSON boosters gives the loadable file.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost as xgb

from calo_calib.deploy import athena_spec as spec


@dataclass
class PreorderTree:
    """One decision tree as MVAUtils stores it: (n_nodes,) arrays in preorder."""

    vars: np.ndarray  # int32
    values: np.ndarray  # float32
    default_left: np.ndarray  # bool


def base_score(booster: xgb.Booster) -> float:
    """XGBoost's global bias (added to the sum of the trees for the identity-link regression objectives)."""
    cfg = json.loads(booster.save_config())
    raw = str(cfg["learner"]["learner_model_param"]["base_score"]).strip("[]")  # "5E-1" or "[5E-1]" (xgboost 3)
    return float(raw)


def preorder_trees(booster: xgb.Booster) -> list[PreorderTree]:
    """The booster's trees in MVAUtils' preorder layout, from XGBoost's JSON model (exact float32 cuts).

    In the JSON model a node ``i`` is a leaf when ``left_children[i] == -1``; its response is then
    ``split_conditions[i]``. The "yes" (``x < cut``) child is ``left_children[i]``.
    """
    model = json.loads(bytes(booster.save_raw("json")))
    out = []
    for t in model["learner"]["gradient_booster"]["model"]["trees"]:
        left, right = t["left_children"], t["right_children"]
        idx, cond, dleft = t["split_indices"], t["split_conditions"], t["default_left"]
        v, c, d = [], [], []
        stack = [0]
        while stack:  # iterative preorder: node, left subtree, right subtree
            i = stack.pop()
            leaf = left[i] == -1
            v.append(-1 if leaf else int(idx[i]))
            c.append(cond[i])
            d.append(True if leaf else bool(dleft[i]))  # the converter writes true for leaves
            if not leaf:
                stack += [right[i], left[i]]
        out.append(PreorderTree(np.asarray(v, np.int32), np.asarray(c, np.float32), np.asarray(d, bool)))
    return out


def write_tree_file(path: str | os.PathLike[str], trees: list[PreorderTree]) -> Path:
    """Write ``trees`` as the TTree ``xgboost`` (title ``creator=xgboost``): with ROOT's std::vector
    branches when ROOT is installed, else with uproot's counter arrays and a warning (module docstring)."""
    from calo_calib.deploy import mvautils_root

    if mvautils_root.available():
        return mvautils_root.write_tree_file(path, trees)
    warnings.warn(f"{path}: ROOT is not installed, so the MVAUtils tree is written by uproot with counter arrays, "
                  "which MVAUtils::BDT cannot load; `pip install ROOT` (the project's `root` extra) writes "
                  "std::vector branches", stacklevel=2)  # fmt: skip
    return write_uproot_tree_file(path, trees)


def write_uproot_tree_file(path: str | os.PathLike[str], trees: list[PreorderTree]) -> Path:
    """The uproot fallback of :func:`write_tree_file`: same content, counter arrays, not MVAUtils-loadable."""
    import awkward as ak
    import uproot

    path = Path(path)
    with uproot.recreate(path) as f:
        f.mktree(spec.MVAUTILS_TREE_NAME, {"vars": "var * int32", "values": "var * float32", "default_left": "var * bool"},
                 title=spec.MVAUTILS_TREE_TITLE)  # fmt: skip
        f[spec.MVAUTILS_TREE_NAME].extend({
            "vars": ak.Array([t.vars for t in trees]),
            "values": ak.Array([t.values for t in trees]),
            "default_left": ak.Array([t.default_left for t in trees]),
        })  # fmt: skip
    return path


def read_tree_file(path: str | os.PathLike[str]) -> list[PreorderTree]:
    """Read a file of :func:`write_tree_file` back with uproot, either layout (the title must say
    ``creator=xgboost``, as BDT(TTree*) requires)."""
    import uproot

    with uproot.open(path) as f:
        tree = f[spec.MVAUTILS_TREE_NAME]
        if tree.title != spec.MVAUTILS_TREE_TITLE:
            raise ValueError(f"{path}: tree title {tree.title!r}, MVAUtils needs {spec.MVAUTILS_TREE_TITLE!r}")
        arrays = tree.arrays(["vars", "values", "default_left"], library="np")
    return [PreorderTree(np.asarray(v, np.int32), np.asarray(c, np.float32), np.asarray(d, bool))
            for v, c, d in zip(arrays["vars"], arrays["values"], arrays["default_left"])]  # fmt: skip


def _right(vars_: np.ndarray) -> np.ndarray:
    """Index of each internal node's right child in the preorder arrays (MVAUtils' detail::computeRight)."""
    right = np.full(len(vars_), -1, dtype=np.int64)
    pending: list[int] = []  # internal nodes whose left subtree is being visited
    for i in range(len(vars_)):
        if vars_[i] >= 0:
            pending.append(i)
        else:  # a leaf closes every left subtree that ends here
            if pending:
                right[pending.pop()] = i + 1
    # A node's left subtree ends exactly before its right child: the stack discipline above pops the
    # innermost open node at each leaf; its right child starts at the next index.
    return right


class MVAUtilsForest:
    """``MVAUtils::BDT::GetResponse`` on preorder trees (no base_score: add it yourself)."""

    def __init__(self, trees: list[PreorderTree]) -> None:
        self.trees = trees
        self.rights = [_right(t.vars) for t in trees]

    def response(self, x: np.ndarray) -> float:
        """Sum of the leaves reached by one input vector ``x`` (n_vars,) float32, accumulated in float32."""
        total = np.float32(0.0)
        for t, right in zip(self.trees, self.rights):
            i = 0
            while t.vars[i] >= 0:
                value = x[t.vars[i]]
                if math.isnan(value):
                    i = i + 1 if t.default_left[i] else right[i]
                else:
                    i = i + 1 if value < t.values[i] else right[i]
            total = np.float32(total + t.values[i])
        return float(total)

    def responses(self, x: np.ndarray) -> np.ndarray:
        """:meth:`response` of every row of ``x`` (N, n_vars) -> (N,) float64."""
        x = np.asarray(x, dtype=np.float32)
        return np.array([self.response(row) for row in x])
