"""The SALT HDF5 layout's names and types: dataset and mask names, format version, dtype mapping.

What the layout is: :mod:`calo_calib.io.salt_h5` (module docstring). Shared by the writer
(:mod:`calo_calib.io.salt_writer`), the reader (:mod:`calo_calib.io.salt_reader`) and the norm dict
(:mod:`calo_calib.io.salt_norm`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from calo_calib.io.schema import COLUMNS

PathLike = str | os.PathLike[str]

FORMAT_NAME = "calo_calib/salt_h5"
FORMAT_VERSION = 1
"""Version of this HDF5 layout (attribute ``format_version``); bumped on incompatible changes."""

DEFAULT_CLUSTERS = "clusters"
DEFAULT_CELLS = "cells"
MASK_FIELD = "valid"

# Fields every file must provide to become a dataset of the format: all columns except n_cells,
# which is the number of valid cells and is derived when absent (SALT files usually lack it).
DEFAULT_REQUIRED: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.name != "n_cells")

CHUNK_BYTES = 1 << 20  # ~1 MiB HDF5 chunks: the usual sweet spot between compression and random access
CACHE_BYTES = 64 << 20  # chunk cache: our write slices need not align with the HDF5 chunks


def default_norm_path(h5_path: PathLike) -> Path:
    """``<dir>/<stem>.norm.yaml`` for ``<dir>/<stem>.h5``: where the norm dict is written by default."""
    p = Path(h5_path)
    return p.with_name(p.stem + ".norm.yaml")


def numpy_dtype(t: pa.DataType, what: str) -> np.dtype:
    """The numpy (and so HDF5) dtype of an Arrow scalar type; strings are handled by the caller."""
    if pa.types.is_boolean(t):
        return np.dtype(np.bool_)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return np.dtype(t.to_pandas_dtype())
    raise TypeError(f"{what}: Arrow type {t} has no HDF5 equivalent here (numbers, bool and strings only)")


def is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)
