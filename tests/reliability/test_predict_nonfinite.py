"""The hint of predict's NaN error, ``nonfinite='drop'``, is a real option: it drops and counts."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calo_calib.deploy.batch_predict import predict
from tests.reliability.conftest import assert_one_error_line, listing, run_cli, snapshot

N_BAD = 12  # rows of the first shard given a NaN cluster_e_l2


@pytest.fixture
def nan_data(user_data):
    shard = user_data / "shard_00000.parquet"
    t = pq.read_table(shard)
    e = t.column("cluster_e_l2").to_numpy().copy()
    e[:N_BAD] = np.nan
    pq.write_table(t.set_column(t.column_names.index("cluster_e_l2"), "cluster_e_l2", pa.array(e)), shard)
    return user_data


def test_predict_nonfinite_error_names_file_row_column_and_its_hint_works(
    exported_model, user_data, nan_data, tmp_path
):
    output = tmp_path / "calibrated.parquet"
    before, entries = snapshot(nan_data, exported_model), listing(tmp_path)
    proc = run_cli("predict", f"model={exported_model}", f"input={nan_data}", f"output={output}", "progress=false")
    line = assert_one_error_line(proc, "predict", "shard_00000.parquet", "row ", "cluster_e_l2", "nonfinite='drop'")
    assert listing(tmp_path) == entries  # no output, no temporary
    assert snapshot(nan_data, exported_model) == before

    # The hint, as the user would type it on the command line.
    hint = line.split("use ")[-1].split(" to drop")[0]
    assert hint == "nonfinite='drop'"
    proc = run_cli(
        "predict", f"model={exported_model}", f"input={nan_data}", f"output={output}", "progress=false", hint
    )
    assert proc.returncode == 0, proc.stderr
    selection = json.loads(pq.read_schema(output).metadata[b"selection"])
    dropped = selection["n_nonfinite_dropped"]
    assert 0 < dropped <= N_BAD
    assert f"dropped {dropped} cluster(s) with a non-finite" in proc.stdout + proc.stderr
    assert pq.read_table(output).num_rows == selection["n_selected"]
    assert snapshot(nan_data, exported_model) == before


def test_predict_nonfinite_drop_counts_exactly_the_bad_clusters(exported_model, tiny_data, nan_data, tmp_path):
    clean = predict(
        str(exported_model),
        str(tiny_data("photon_conv", "test", n=300)),
        str(tmp_path / "clean.parquet"),
        progress=False,
    )
    stats = predict(
        str(exported_model), str(nan_data), str(tmp_path / "dropped.parquet"), progress=False, nonfinite="drop"
    )
    n_dropped = stats["selection"]["n_nonfinite_dropped"]
    assert n_dropped > 0 and stats["n_clusters"] == clean["n_clusters"] - n_dropped
    kept = set(pq.read_table(tmp_path / "dropped.parquet").column("row_id").to_pylist())
    assert kept.isdisjoint(range(N_BAD)) and kept < set(
        pq.read_table(tmp_path / "clean.parquet").column("row_id").to_pylist()
    )


def test_predict_rejects_an_unknown_nonfinite_value(exported_model, user_data, tmp_path):
    before, entries = snapshot(user_data, exported_model), listing(tmp_path)
    proc = run_cli("predict", f"model={exported_model}", f"input={user_data}", f"output={tmp_path / 'x.parquet'}",
                   "progress=false", "nonfinite=skip")  # fmt: skip
    assert_one_error_line(proc, "predict", "nonfinite", "'skip'", "error", "drop")
    assert snapshot(user_data, exported_model) == before and listing(tmp_path) == entries
