"""MVAUtils trees through real ROOT: ``std::vector`` branches written with PyROOT, and a C++ reader that
loads them as ``MVAUtils::BDT(TTree*)`` does (``SetBranchAddress`` of ``std::vector<T>*``).

Why ROOT and not uproot: ``MVAUtils/Root/ForestXGBoost.cxx`` (athena @ d7835dd8) binds the branches
``vars``, ``values`` and ``default_left`` to ``std::vector<int>*``, ``std::vector<float>*`` and
``std::vector<bool>*``. uproot 5.7 writes only leaf arrays with counters (scikit-hep/uproot5 #1486),
which that ``SetBranchAddress`` refuses (type mismatch). The ROOT wheel on PyPI (package ``ROOT``,
6.40, the ``root`` extra of this project) writes the vector branches as athena's own
``convertXGBoostToRootTree.py`` does.

The C++ part is ours, written from the contract (never copied): open the file, check the title
``creator=xgboost``, bind the three vector branches, concatenate the trees' preorder arrays, find
each internal node's right child, and evaluate ``x[var] < cut`` -> left (the next node), NaN ->
``default_left``, summing the leaves in float. No ``base_score``: MVAUtils does not add it either.
It is compiled once per process by cling (``ROOT.gInterpreter.Declare``).

Everything here needs ``import ROOT``; :func:`available` says whether it can be imported.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from calo_calib.deploy import athena_spec as spec

if TYPE_CHECKING:  # the dataclass only; mvautils imports this module lazily
    from calo_calib.deploy.mvautils import PreorderTree

_CPP = r"""
#include <TFile.h>
#include <TTree.h>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace calo_calib_mvautils {

struct Forest {
  std::vector<int> vars;      // all trees' nodes, concatenated in preorder
  std::vector<float> values;  // cut (internal node) or response (leaf)
  std::vector<char> default_left;
  std::vector<int> right;     // index of each internal node's right child, -1 for leaves
  std::vector<int> roots;     // first node of each tree
};

// Loads the forest exactly through the branch types MVAUtils::BDT binds.
std::shared_ptr<Forest> load(const std::string& path, const std::string& tree_name,
                             const std::string& title) {
  std::unique_ptr<TFile> file(TFile::Open(path.c_str(), "READ"));
  if (!file || file->IsZombie()) throw std::runtime_error(path + ": cannot open");
  TTree* tree = nullptr;
  file->GetObject(tree_name.c_str(), tree);
  if (!tree) throw std::runtime_error(path + ": no TTree '" + tree_name + "'");
  if (title != tree->GetTitle())
    throw std::runtime_error(path + ": tree title '" + tree->GetTitle() + "', MVAUtils needs '" + title + "'");
  std::vector<int>* vars = nullptr;
  std::vector<float>* values = nullptr;
  std::vector<bool>* default_left = nullptr;
  // SetBranchAddress returns < 0 when the branch is not a std::vector of that type.
  if (tree->SetBranchAddress("vars", &vars) < 0 || tree->SetBranchAddress("values", &values) < 0 ||
      tree->SetBranchAddress("default_left", &default_left) < 0)
    throw std::runtime_error(path + ": branches are not std::vector<int/float/bool> vars/values/default_left");
  auto forest = std::make_shared<Forest>();
  for (Long64_t entry = 0; entry < tree->GetEntries(); ++entry) {
    tree->GetEntry(entry);
    if (vars->size() != values->size() || vars->size() != default_left->size() || vars->empty())
      throw std::runtime_error(path + ": entry " + std::to_string(entry) + " has arrays of different lengths");
    const int offset = static_cast<int>(forest->vars.size());
    forest->roots.push_back(offset);
    std::vector<int> open;  // internal nodes whose left subtree is still being read
    for (size_t i = 0; i < vars->size(); ++i) {
      forest->vars.push_back((*vars)[i]);
      forest->values.push_back((*values)[i]);
      forest->default_left.push_back((*default_left)[i]);
      forest->right.push_back(-1);
      if ((*vars)[i] >= 0) {
        open.push_back(offset + static_cast<int>(i));
      } else if (!open.empty()) {  // a leaf ends the left subtree of the innermost open node
        forest->right[open.back()] = offset + static_cast<int>(i) + 1;
        open.pop_back();
      }
    }
  }
  tree->ResetBranchAddresses();
  return forest;
}

// Copies a numpy buffer into a branch's vector (a Python loop of push_back is ~1 us per node).
template <typename T, typename U>
void assign(std::vector<T>& v, const U* data, long n) { v.assign(data, data + n); }

// Sum of the leaves each row of x (n_rows x n_vars, row-major float) reaches; out has n_rows.
void responses(const Forest& f, const float* x, long n_rows, long n_vars, float* out) {
  for (long r = 0; r < n_rows; ++r) {
    const float* row = x + r * n_vars;
    float total = 0.f;
    for (int root : f.roots) {
      int i = root;
      while (f.vars[i] >= 0) {
        const float value = row[f.vars[i]];
        const bool left = std::isnan(value) ? f.default_left[i] != 0 : value < f.values[i];
        i = left ? i + 1 : f.right[i];
      }
      total += f.values[i];
    }
    out[r] = total;
  }
}

}  // namespace calo_calib_mvautils
"""


def available() -> bool:
    """Whether PyROOT can be imported here (the ``root`` extra)."""
    try:
        _root()
    except ImportError:
        return False
    return True


@functools.cache
def _root():
    """PyROOT, in batch mode, with the reader compiled (once per process)."""
    import warnings

    with warnings.catch_warnings():  # the PyPI wheel warns that it is an alpha distribution
        warnings.simplefilter("ignore")
        import ROOT
    ROOT.gROOT.SetBatch(True)
    if not ROOT.gInterpreter.Declare(_CPP):
        raise RuntimeError("cling could not compile the MVAUtils tree reader")
    return ROOT


def write_tree_file(path: str | os.PathLike[str], trees: list[PreorderTree]) -> Path:
    """Write ``trees`` as TTree ``xgboost`` (title ``creator=xgboost``), one entry per tree, with
    ``std::vector<int> vars``, ``std::vector<float> values``, ``std::vector<bool> default_left``.

    Written to ``<path>.tmp`` and renamed, so a crash never leaves a half file under the final name.
    """
    ROOT = _root()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    vars_, values, default_left = ROOT.std.vector("int")(), ROOT.std.vector("float")(), ROOT.std.vector("bool")()
    file = ROOT.TFile.Open(str(tmp), "RECREATE")
    if not file or file.IsZombie():
        raise OSError(f"{tmp}: ROOT cannot create the file")
    tree = ROOT.TTree(spec.MVAUTILS_TREE_NAME, spec.MVAUTILS_TREE_TITLE)
    tree.Branch("vars", vars_)
    tree.Branch("values", values)
    tree.Branch("default_left", default_left)
    assign = ROOT.calo_calib_mvautils.assign
    for t in trees:
        v = np.ascontiguousarray(t.vars, np.int32)
        c = np.ascontiguousarray(t.values, np.float32)
        d = np.ascontiguousarray(t.default_left, np.bool_)  # one byte per entry, as C++ bool
        assign["int", "int"](vars_, v, len(v))
        assign["float", "float"](values, c, len(c))
        assign["bool", "bool"](default_left, d, len(d))
        tree.Fill()
    file.Write()
    file.Close()
    os.replace(tmp, path)
    return path


class RootForest:
    """The forest of one MVAUtils tree file, loaded and evaluated in C++ through ROOT's vector branches."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        ROOT = _root()
        self.path = Path(path)
        try:
            self._forest = ROOT.calo_calib_mvautils.load(str(path), spec.MVAUTILS_TREE_NAME, spec.MVAUTILS_TREE_TITLE)
        except Exception as err:  # cppyy re-raises the std::runtime_error with its message
            raise ValueError(str(err).splitlines()[-1]) from err

    @property
    def n_trees(self) -> int:
        return int(self._forest.roots.size())

    def responses(self, x: np.ndarray) -> np.ndarray:
        """Raw responses (no base_score) of the rows of ``x`` (N, n_vars) -> (N,) float64."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"inputs must be (N, n_vars), got shape {x.shape}")
        out = np.empty(len(x), dtype=np.float32)
        _root().calo_calib_mvautils.responses(self._forest, x, len(x), x.shape[1], out)
        return out.astype(np.float64)
