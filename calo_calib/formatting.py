"""Numbers in reports: metrics values read back, markdown cells, strict JSON (one implementation each).

* :func:`as_float`: a metrics value as float, ``None`` (a NaN written as JSON null) -> NaN;
* :func:`fmt`: ``value`` or ``value ± err`` as a markdown cell, ``–`` for a missing value; each
  table keeps its own style through the arguments (scale to %, decimals, sign, suffix);
* :func:`jsonable`: NaN/inf -> None, numpy scalars/arrays -> Python, paths -> str, recursively, so
  that ``json.dumps(..., allow_nan=False)`` accepts the result.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

MISSING = "–"
"""What :func:`fmt` writes for a missing (None, NaN or infinite) value."""


def as_float(x: Any) -> float:
    """``x`` as float; None (a NaN written as null) -> NaN."""
    return float("nan") if x is None else float(x)


def _finite(x: Any) -> bool:
    return x is not None and math.isfinite(x)


def fmt(
    value: Any,
    err: Any = None,
    *,
    scale: float = 1.0,
    digits: int | Literal["auto"] = 2,
    sign: bool = False,
    suffix: str = "",
    missing: str = MISSING,
) -> str:
    """``scale * value`` with ``digits`` decimals, `` ± scale * err`` when the error is finite.

    Args:
        value, err: numbers, None or NaN (a missing value gives ``missing``; a missing error is omitted).
        scale: e.g. 100 for a fraction written in %.
        digits: decimals of both; ``"auto"``: 2, 3 or 4, enough for the scaled error to show a
            significant digit (>= 0.01, >= 0.001, below), 2 without an error.
        sign: a ``+`` in front of a positive value (not of the error).
        suffix: appended at the end (e.g. ``"%"``).
        missing: the text for a missing value.
    """
    if not _finite(value) or not math.isfinite(v := scale * value):
        return missing
    e = scale * err if _finite(err) else float("nan")
    if digits == "auto":
        digits = 2 if not math.isfinite(e) or e >= 0.01 else (3 if e >= 0.001 else 4)
    text = f"{v:{'+' if sign else ''}.{digits}f}"
    if math.isfinite(e):
        text += f" ± {e:.{digits}f}"
    return text + suffix


def jsonable(obj: Any) -> Any:
    """NaN/inf -> None, numpy scalars/arrays -> Python, paths -> str, recursively (strict JSON).

    Mappings become dicts with ``str`` keys, lists and tuples become lists; anything else is returned
    unchanged (``json.dumps`` then decides).
    """
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj
