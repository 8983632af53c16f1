"""The shared number formatting and the strict-JSON sanitiser."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from calo_calib.formatting import MISSING, as_float, fmt, jsonable


def test_as_float_reads_null_as_nan():
    assert math.isnan(as_float(None))
    assert as_float(3) == 3.0 and as_float(np.float32(0.5)) == 0.5


@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), -float("inf")])
def test_missing_values(value):
    assert fmt(value) == MISSING == "–"
    assert fmt(value, 0.1, missing="n/a") == "n/a"


def test_value_and_error():
    assert fmt(0.0123456) == "0.01"
    assert fmt(0.0123456, 0.00042, scale=100, digits=1) == "1.2 ± 0.0"
    assert fmt(0.0123456, float("nan"), scale=100) == "1.23"  # a missing error is omitted
    assert fmt(0.0123456, None, scale=100, digits=3) == "1.235"


def test_sign_and_suffix():
    assert fmt(0.0123, 0.004, scale=100, sign=True) == "+1.23 ± 0.40"
    assert fmt(-0.0123, scale=100, sign=True) == "-1.23"
    assert fmt(0.0123, scale=100, digits=0, suffix="%") == "1%"
    assert fmt(0.012345, scale=100, digits=1, suffix="%") == "1.2%"


def test_auto_digits_follow_the_error():
    assert fmt(0.05, 0.0002, scale=100, digits="auto") == "5.00 ± 0.02"  # err 0.02 %: 2 decimals
    assert fmt(0.05, 0.00002, scale=100, digits="auto") == "5.000 ± 0.002"
    assert fmt(0.05, 0.000002, scale=100, digits="auto") == "5.0000 ± 0.0002"
    assert fmt(0.05, None, scale=100, digits="auto") == "5.00"


def test_jsonable_makes_strict_json():
    obj = {
        1: float("nan"),
        "inf": [float("inf"), -float("inf"), (np.float64(0.25), np.float32("nan"))],
        "np": {"i": np.int64(3), "b": np.bool_(True), "a": np.array([[1.0, np.nan]])},
        "path": Path("/tmp/x"),
        "keep": ["s", None, True, 2],
    }
    out = jsonable(obj)
    assert out == {
        "1": None,
        "inf": [None, None, [0.25, None]],
        "np": {"i": 3, "b": True, "a": [[1.0, None]]},
        "path": "/tmp/x",
        "keep": ["s", None, True, 2],
    }
    assert type(out["np"]["i"]) is int and type(out["np"]["b"]) is bool and type(out["inf"][2][0]) is float
    json.dumps(out, allow_nan=False)
