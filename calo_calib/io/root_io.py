"""ROOT ntuples (flat TTrees) <-> Parquet cluster datasets, through uproot and awkward.

A ntuple has one entry per cluster: flat branches for the cluster quantities and jagged
(variable-length) branches for the cells, one element per cell. Which branch holds which column of
the format (``docs/data_format.md``), and with which unit factor, is given by a *column mapping*, a
YAML file (``conf/data/root_columns/default.yaml`` maps every column to a branch of the same name)::

    tree: clusters                      # default tree name (optional)
    columns:
      cluster_e: {branch: el_cl_E, scale: 0.001}   # our column: {ROOT branch, factor to our unit}
      cell_e: {branch: el_cell_E, scale: 0.001}    # MeV -> GeV
      cluster_eta: el_cl_eta                        # shorthand: only the branch name
      particle: {value: electron}                   # a constant for a column the ntuple lacks

Columns not listed are read from the branch of the same name with factor 1. ``scale`` multiplies
the branch values (in float64, then the value is stored with the format's type); only float columns
may have a scale other than 1. Columns that are not part of the format may be listed too: they are
carried along with the branch's type.

Reading streams with ``uproot.iterate`` (``step_size`` entries or bytes per step) and writes Parquet
shards as it goes; writing (:func:`parquet_to_root`) streams Parquet chunks into ``TTree.extend``.

This module is the format's public interface; the code is split by job:
:mod:`~calo_calib.io.root_mapping` (the column mapping), :mod:`~calo_calib.io.root_reader`
(:func:`root_to_parquet`) and :mod:`~calo_calib.io.root_writer` (:func:`parquet_to_root`).
``python -m calo_calib.convert`` calls the two converters through this module.
"""

from __future__ import annotations

from calo_calib.io.root_mapping import (
    DEFAULT_TREE,
    BranchSpec,
    ColumnMapping,
    MappingArg,
    PathLike,
    load_mapping,
)
from calo_calib.io.root_reader import DEFAULT_REQUIRED, DEFAULT_STEP_SIZE, root_to_parquet
from calo_calib.io.root_writer import parquet_to_root

__all__ = [
    "DEFAULT_REQUIRED",
    "DEFAULT_STEP_SIZE",
    "DEFAULT_TREE",
    "BranchSpec",
    "ColumnMapping",
    "MappingArg",
    "PathLike",
    "load_mapping",
    "parquet_to_root",
    "root_to_parquet",
]
