"""Arrow columns as numpy arrays: scalar columns, and the flattened values of list columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def to_numpy(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A column as numpy (a single-chunk column without combining its chunks)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col.to_numpy(zero_copy_only=False)


def flat_values(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The flattened values of a list column as numpy (slices respected)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col.flatten().to_numpy(zero_copy_only=False)
