"""An empty validation or test split (after the selection) is an error before the training starts.

Before: an empty validation split gave a validation loss of 0 and a silent early stop; an empty
test split crashed after the whole training.
"""

from __future__ import annotations

import numpy as np
import pytest

from calo_calib.config import compose_run_config
from calo_calib.pipeline import RunError, train_and_evaluate
from tests.reliability.conftest import fast_overrides, listing, snapshot, write_column


def _all_in_crack(split_dir) -> None:
    """Mark every cluster of a dataset copy as in the crack: the selection (exclude_crack) keeps none."""
    for shard in sorted(split_dir.glob("*.parquet")):
        import pyarrow.parquet as pq

        n = pq.read_metadata(shard).num_rows
        write_column(shard, "is_crack", np.ones(n, dtype=bool))


@pytest.mark.parametrize("split", ["val", "test"])
def test_an_empty_split_is_an_error_before_training(split, tiny_data, user_split, tmp_path):
    empty = user_split("photon_conv", split, n=200 if split == "val" else 300)
    _all_in_crack(empty)
    before = snapshot(empty)
    run_dir = tmp_path / "run"
    cfg = compose_run_config(fast_overrides(tiny_data=tiny_data, **{split: empty}))
    with pytest.raises(RunError) as err:
        train_and_evaluate(cfg, run_dir)
    msg = str(err.value)
    assert f"{split} split is empty" in msg and str(empty) in msg and f"data.{split}" in msg
    assert "'n_crack_excluded': 200" in msg or "'n_crack_excluded': 300" in msg  # the selection counts
    assert not run_dir.exists()  # refused before anything was written: no checkpoint, no config
    assert snapshot(empty) == before


def test_the_empty_split_error_is_one_line_of_calo_calib_run(tiny_data, user_split, tmp_path):
    from tests.reliability.conftest import assert_one_error_line, run_cli

    empty = user_split("photon_conv", "val", n=200)
    _all_in_crack(empty)
    before, runs = snapshot(empty), tmp_path / "runs"
    proc = run_cli("run", *fast_overrides(tiny_data=tiny_data, val=empty), f"hydra.run.dir={runs}/r")
    assert proc.returncode == 1
    assert_one_error_line(proc, "run", "val split is empty", str(empty), "n_selected")
    assert not (runs / "r" / "checkpoints").exists() and not (runs / "r" / "config.yaml").exists()
    assert snapshot(empty) == before and "status.json" not in " ".join(listing(runs))
