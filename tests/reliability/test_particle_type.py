"""The data's particle type (``particle`` column, conversion types) must be the calibration's.

Before: an electron calibration was trained on, applied to or exported with photon data without a word.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from calo_calib.config import compose_run_config
from calo_calib.data.checks import DataError
from calo_calib.deploy.batch_predict import predict
from calo_calib.pipeline import RunError, check_data, resolve_splits, train_and_evaluate
from tests.reliability.conftest import assert_one_error_line, fast_overrides, listing, run_cli, snapshot, write_column


def test_training_on_data_of_another_particle_is_refused(tiny_data, tmp_path):
    electrons = tiny_data("electron", "train", n=400)
    before, run_dir = snapshot(electrons), tmp_path / "run"
    with pytest.raises(RunError) as err:
        train_and_evaluate(compose_run_config(fast_overrides(tiny_data=tiny_data, train=electrons)), run_dir)
    msg = str(err.value)
    assert "data.train" in msg and "['electron']" in msg and "particle=photon_conv" in msg
    assert "data.allow_particle_mismatch=true" in msg and "shard_00000.parquet" in msg
    assert not run_dir.exists() and snapshot(electrons) == before


def test_the_override_allows_a_mismatch_loudly(tiny_data, caplog):
    cfg = compose_run_config(fast_overrides(tiny_data=tiny_data, train=tiny_data("electron", "train", n=400))
                             + ["data.allow_particle_mismatch=true"])  # fmt: skip
    with caplog.at_level(logging.WARNING):
        check_data(cfg, resolve_splits(cfg))
    assert "PARTICLE MISMATCH" in caplog.text and "['electron']" in caplog.text


def test_conversion_types_are_checked_too(tiny_data, user_split):
    """photon_conv data whose clusters claim conversion_type 0 are not converted photons."""
    from calo_calib.data.checks import check_particle

    data = user_split("photon_conv", "val", n=200)
    shard = data / "shard_00000.parquet"
    import pyarrow.parquet as pq

    write_column(shard, "conversion_type", np.zeros(pq.read_metadata(shard).num_rows, dtype=np.int8))
    with pytest.raises(DataError, match=r"shard_00000.parquet: \d+ of \d+ clusters violate conversion_type > 0"):
        check_particle(sorted(data.glob("*.parquet")), "photon_conv", what="data.val", override="x=true")


def test_predict_refuses_data_of_another_particle_unless_allowed(exported_model, tiny_data, tmp_path):
    electrons = tiny_data("electron", "test", n=300)
    output = tmp_path / "out.parquet"
    before, entries = snapshot(electrons, exported_model), listing(tmp_path)
    proc = run_cli("predict", f"model={exported_model}", f"input={electrons}", f"output={output}", "progress=false")
    assert proc.returncode == 1
    assert_one_error_line(proc, "predict", str(electrons), "['electron']", "particle=photon_conv", "allow_particle_mismatch=true")
    assert listing(tmp_path) == entries and snapshot(electrons, exported_model) == before

    stats = predict(str(exported_model), str(electrons), str(output), progress=False, allow_particle_mismatch=True)
    assert stats["n_clusters"] > 0


def test_export_refuses_parity_data_of_another_particle(trained_run, tiny_data, tmp_path):
    from calo_calib.export import main

    electrons = tiny_data("electron", "test", n=300)
    before = snapshot(electrons, trained_run)
    out = tmp_path / "export"
    assert main([str(trained_run), "--out", str(out), "--data", str(electrons)]) == 1
    assert not out.exists() or not any(out.iterdir())
    assert snapshot(electrons, trained_run) == before


def test_export_particle_message(trained_run, tiny_data, tmp_path, capsys):
    from calo_calib.export import main

    main([str(trained_run), "--out", str(tmp_path / "e"), "--data", str(tiny_data("electron", "test", n=300))])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("calo_calib.export: error: parity data: ") and "--allow-particle-mismatch" in err
