"""The HDF5 layout of SALT (the ATLAS ``salt`` ML framework): write from and read into Parquet datasets.

SALT trains on HDF5 files holding one *structured* (compound dtype) dataset per object type: a 1-D
dataset of the global objects (here: clusters) and 2-D ``(n_objects, max_constituents)`` padded
datasets of their constituents (here: cells), whose boolean field ``valid`` marks the real entries.
The input-variable means and standard deviations come from a YAML "norm dict"
``{dataset: {variable: {mean: .., std: ..}}}``. Layout written here (names configurable):

* ``clusters``: shape (N,), one row per cluster, one field per scalar column of the Parquet data
  (``docs/data_format.md``), with the same dtype (float32, int32, int8, bool; ``particle`` as fixed
  length UTF-8 bytes);
* ``cells``: shape (N, max_cells), one field per per-cell list column (``cell_e``, ``cell_eta``, ...)
  plus ``valid`` (bool). Cell ``j`` of cluster ``i`` is ``cells[i, j]`` for ``j < n_cells[i]``; the
  padding entries are all-zero with ``valid = False``;
* attributes: on the file the format name/version, the package version, the dataset and mask names,
  the original column order, the source files and their ``calo_calib`` provenance metadata (JSON);
  on each dataset ``units`` (JSON ``{field: unit}``; GeV, mm, rad);
* ``<file stem>.norm.yaml`` next to the file: mean and std of every numeric field over all clusters
  (``clusters``) and over the valid cells only (``cells``).

Conversions stream: Parquet is read chunk by chunk (``chunk_rows`` clusters) and HDF5 slice by
slice, so memory is bounded by one chunk whatever the dataset size. Files are written under a
temporary name and renamed when complete. A Parquet -> HDF5 -> Parquet round trip returns every value
of every column bit for bit, with the types of the format.

This module is the format's public interface; the code is split by job:
:mod:`~calo_calib.io.salt_layout` (names, version, dtypes), :mod:`~calo_calib.io.salt_norm` (the norm
dict), :mod:`~calo_calib.io.salt_input` (checks and pre-pass of the Parquet input),
:mod:`~calo_calib.io.salt_writer` (:func:`parquet_to_salt_h5`) and :mod:`~calo_calib.io.salt_reader`
(:func:`salt_h5_to_parquet`). ``python -m calo_calib.convert`` calls the two converters through this
module.
"""

from __future__ import annotations

from calo_calib.io.salt_layout import (
    DEFAULT_CELLS,
    DEFAULT_CLUSTERS,
    DEFAULT_REQUIRED,
    FORMAT_NAME,
    FORMAT_VERSION,
    MASK_FIELD,
    PathLike,
    default_norm_path,
)
from calo_calib.io.salt_norm import SALT_STD_FLOOR, read_norm_dict
from calo_calib.io.salt_reader import salt_h5_to_parquet
from calo_calib.io.salt_writer import parquet_to_salt_h5

__all__ = [
    "DEFAULT_CELLS",
    "DEFAULT_CLUSTERS",
    "DEFAULT_REQUIRED",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MASK_FIELD",
    "SALT_STD_FLOOR",
    "PathLike",
    "default_norm_path",
    "parquet_to_salt_h5",
    "read_norm_dict",
    "salt_h5_to_parquet",
]
