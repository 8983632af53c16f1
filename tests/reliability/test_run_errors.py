"""Config and data errors end as ONE line ``calo_calib.<cmd>: error: ...`` naming the key / file / column.

Before: a string column where a number is expected (``could not convert string to float``),
``trainer.epochs=abc`` (a TypeError deep in the training loop; now refused by the schema at compose
time) and ``+trainer.epoch=3`` (``TrainerConfig got an unexpected keyword argument``) ended in raw tracebacks; ``model=gnn_edge`` was never tried on bad inputs.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calo_calib.config import compose_run_config
from calo_calib.data.checks import DataError
from calo_calib.pipeline import RunError, train_and_evaluate
from tests.reliability.conftest import assert_one_error_line, fast_overrides, listing, run_cli, snapshot, write_column


@pytest.fixture
def string_column(user_split):
    """A training split copy whose cluster_e_l2 is a string column (a CSV import gone wrong)."""
    data = user_split("photon_conv", "train", n=400)
    for shard in sorted(data.glob("*.parquet")):
        values = pq.read_table(shard, columns=["cluster_e_l2"])["cluster_e_l2"].to_numpy()
        write_column(shard, "cluster_e_l2", pa.array([f"{v:.3f}" for v in values]))
    return data


def test_run_gnn_edge_with_a_string_column_is_one_line(string_column, tiny_data, tmp_path):
    before = snapshot(string_column)
    proc = run_cli("run", *fast_overrides("gnn_edge", tiny_data=tiny_data, train=string_column), f"hydra.run.dir={tmp_path}/r")
    assert proc.returncode == 1
    assert_one_error_line(proc, "run", str(string_column / "shard_00000.parquet"), "'cluster_e_l2'", "type string")
    assert snapshot(string_column) == before and not (tmp_path / "r" / "checkpoints").exists()


def test_predict_with_a_string_column_is_one_line(exported_model, string_column, tmp_path):
    before, entries = snapshot(string_column, exported_model), listing(tmp_path / "out")
    proc = run_cli("predict", f"model={exported_model}", f"input={string_column}",
                   f"output={tmp_path / 'out' / 'p.parquet'}", "progress=false")  # fmt: skip
    assert proc.returncode == 1
    assert_one_error_line(proc, "predict", "shard_00000.parquet", "'cluster_e_l2'", "type string")
    assert snapshot(string_column, exported_model) == before and listing(tmp_path / "out") == entries


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("trainer.epochs=abc", ("trainer.epochs", "could not be converted to Integer")),  # the schema, at compose
        ("+trainer.epoch=3", ("trainer.epoch: unknown key", "did you mean trainer.epochs?")),
    ],
)
def test_run_bad_trainer_keys_are_one_line(override, needles, tiny_data, tmp_path):
    proc = run_cli("run", *fast_overrides(tiny_data=tiny_data), override, f"hydra.run.dir={tmp_path}/r")
    assert proc.returncode == 1
    assert_one_error_line(proc, "run", *needles)
    assert not (tmp_path / "r" / "config.yaml").exists()


@pytest.mark.parametrize("bad", ["nan", "absurd"])
def test_gnn_edge_refuses_nonfinite_and_absurd_inputs_before_training(bad, user_split, tiny_data, tmp_path):
    """gnn_edge reads the pair geometry (x, y, z, eta, phi) too: a NaN or a 3e38 there is named, with the
    run's own spelling of the switch (data.nonfinite / data.out_of_range), before any training."""
    data = user_split("photon_conv", "val", n=200)
    shard = data / "shard_00000.parquet"
    table = pq.read_table(shard, columns=["cell_z", "is_crack"])
    col = table["cell_z"].combine_chunks()
    # A row the run trains on: crack clusters are excluded before the checks (data.exclude_crack).
    row = int(np.flatnonzero(~table["is_crack"].to_numpy())[1])
    values = col.flatten().to_numpy().copy()
    values[col.offsets[row].as_py()] = np.nan if bad == "nan" else 3e38
    write_column(shard, "cell_z", pa.ListArray.from_arrays(col.offsets, pa.array(values, pa.float32())))
    before, run_dir = snapshot(data), tmp_path / "run"
    with pytest.raises(RunError) as err:
        train_and_evaluate(compose_run_config(fast_overrides("gnn_edge", tiny_data=tiny_data, val=data)), run_dir)
    msg = str(err.value)
    assert str(shard) in msg and f"row {row}:" in msg and "cell_z" in msg
    assert ("data.nonfinite='drop'" if bad == "nan" else "data.out_of_range='drop'") in msg
    assert not run_dir.exists() and snapshot(data) == before


def test_predict_hint_keeps_its_own_spelling(tiny_data):
    """The same loader error says ``nonfinite='drop'`` for predict (no ``data.`` prefix)."""
    from calo_calib.data.features import DEFAULT_CELL_FEATURES, default_cluster_features
    from calo_calib.data.loader import ClusterDataset

    ds = ClusterDataset(tiny_data("photon_conv", "val", n=200), DEFAULT_CELL_FEATURES, default_cluster_features("photon_conv"))
    assert ds.option_prefix == "" and len(ds) > 0
    with pytest.raises(ValueError, match="data.nonfinite must be one of"):
        ClusterDataset(tiny_data("photon_conv", "val", n=200), DEFAULT_CELL_FEATURES, [], nonfinite="skip",
                       option_prefix="data.")  # fmt: skip
    assert issubclass(DataError, ValueError)


@pytest.mark.parametrize("override", ["data.batch_size=abc", "loss=huber loss.delta=wide", "evaluation.n_boot=1.5", "seed=x"])
def test_numeric_run_options_are_checked_by_name(override, tiny_data):
    """At compose time by the schema (calo_calib/config_schema.py); a config that bypassed it (a saved
    run's config.yaml read back for resume) by the run's own check."""
    from hydra.errors import ConfigCompositionException
    from omegaconf import OmegaConf

    from calo_calib.config import one_line_error
    from calo_calib.pipeline import check_config

    key, value = override.split()[-1].split("=")
    with pytest.raises(ConfigCompositionException) as composed:
        compose_run_config(fast_overrides(tiny_data=tiny_data) + override.split())
    assert f"full_key: {key}" in one_line_error(composed.value)
    cfg = OmegaConf.create(OmegaConf.to_container(compose_run_config(fast_overrides(tiny_data=tiny_data) + override.split()[:-1])))
    OmegaConf.update(cfg, key, value)
    with pytest.raises(RunError, match=rf"^{key}=.*: expected (an integer|a number)$"):
        check_config(cfg)
