"""The SALT norm dict ``{dataset: {variable: {mean, std}}}``: streaming statistics, YAML read and write.

The writer (:func:`calo_calib.io.salt_writer.parquet_to_salt_h5`) accumulates one
:class:`RunningStats` per numeric field: over all clusters for the clusters dataset, over the
valid cells only for the cells dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from calo_calib.io.dataset_stream import replace_file, tmp_file
from calo_calib.io.salt_layout import PathLike
from calo_calib.moments import EXACT_ZERO_FLOOR, StreamingMoments

SALT_STD_FLOOR = EXACT_ZERO_FLOOR
"""Std floor of the norm dict: only an exactly zero std (a constant variable) is written as 1."""


class RunningStats(StreamingMoments):
    """Mean and std of one variable of the stream for the norm dict: NaN marks "not applicable"
    (truth_conv_r of unconverted photons), so non-finite values are left out."""

    def __init__(self) -> None:
        # A constant variable (e.g. cluster_e_tg3, always 0) has std 0: dividing by it would give inf,
        # so 1 is written instead (the scikit-learn StandardScaler convention); the mean still centres it.
        super().__init__(1, std_floor=SALT_STD_FLOOR)

    def update(self, values: np.ndarray) -> int:  # type: ignore[override]
        v = np.asarray(values, dtype=np.float64)
        return super().update(v, np.isfinite(v))

    def result(self) -> dict[str, float]:
        return {"mean": float(self.mean[0]), "std": float(self.std()[0])}


def read_norm_dict(path: PathLike) -> dict[str, dict[str, dict[str, float]]]:
    """Read a SALT norm dict ``{dataset: {variable: {mean, std}}}`` from YAML.

    Raises:
        ValueError: if the file is not a mapping of that shape (the offending entry is named).
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a norm dict must be a mapping {{dataset: {{variable: {{mean, std}}}}}}")
    for ds, variables in data.items():
        if not isinstance(variables, dict):
            raise ValueError(f"{path}: entry {ds!r} must map variables to {{mean, std}}")
        for var, ms in variables.items():
            if not (isinstance(ms, dict) and {"mean", "std"} <= set(ms)):
                raise ValueError(f"{path}: {ds}.{var} must have 'mean' and 'std'")
    return data


def write_yaml_atomic(data: Any, path: Path) -> None:
    """Write ``data`` as YAML (key order kept) under a temporary name, then rename it to ``path``."""
    tmp = tmp_file(path)
    try:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        replace_file(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
