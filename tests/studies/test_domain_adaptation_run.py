"""``adversary=grl`` end to end on tiny data: labelled MC from ``tiny_data``, data-like clusters simulated
with 30 % more upstream material (``detector.material.scale=1.3``), the unlabelled copy stripped of
every truth column (so the run cannot use labels even by accident), and a labelled data-like test set
that only the evaluation reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from calo_calib.config import compose_run_config
from calo_calib.io.schema import TRUTH_PREFIX
from calo_calib.pipeline import RunError, check_config, train_and_evaluate

TINY_NET = ["model.net.embed_dim=16", "model.net.n_layers=1", "model.net.n_heads=2", "model.net.head_hidden=16"]
QUICK = ["trainer.epochs=2", "trainer.max_steps_per_epoch=4", "data.batch_size=64", "evaluation.n_boot=10", "progress=false",
         "logger=none", "compare_to=null", "evaluation.plots=false"]  # fmt: skip


def simulate_variant(out: Path, n: int, seed: int) -> Path:
    """A small electron split with the upstream material scaled by 1.3 (a data-like detector variant)."""
    from calo_calib.simulation import compose_config
    from calo_calib.simulation.runner import run_simulation

    cfg = compose_config([
        "particle=electron", f"n_clusters={n}", "mu=51.0", f"seed={seed}", f"out={out}", "workers=1",
        f"shard_size={n // 2}", "progress=false", "detector.material.scale=1.3",
    ])  # fmt: skip
    return run_simulation(cfg)


@pytest.fixture(scope="module")
def variant(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("material_up")
    labelled_train = simulate_variant(root / "train_labelled", 400, seed=31)
    unlabelled = root / "train_unlabelled"
    unlabelled.mkdir()
    for shard in sorted(labelled_train.glob("*.parquet")):
        table = pq.read_table(shard)
        pq.write_table(
            table.drop_columns([c for c in table.column_names if c.startswith(TRUTH_PREFIX)]), unlabelled / shard.name
        )
    shutil.copy(labelled_train / "dataset.json", unlabelled / "dataset.json")  # a generated set is complete with it
    return {"unlabelled": unlabelled, "test": simulate_variant(root / "test", 300, seed=33)}


def test_adversarial_run_trains_on_unlabelled_data_and_reports_the_data_like_sample(tmp_path, tiny_data, variant):
    cfg = compose_run_config([
        "model=transformer", "adversary=grl", *tiny_data.run_overrides("electron"), *QUICK, *TINY_NET,
        f"data.unlabelled={variant['unlabelled']}", f"data.unlabelled_test={variant['test']}",
    ])  # fmt: skip
    metrics = train_and_evaluate(cfg, tmp_path / "run")
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == 2
    for record in history:
        assert 0.0 <= record["adv_disc_acc"] <= 1.0 and record["adv_disc_loss"] > 0 and 0 < record["adv_lambda"] <= 1
    assert history[1]["adv_lambda"] > history[0]["adv_lambda"]  # the ramp
    training = metrics["run"]["training"]
    assert training["adversary"]["name"] == "grl" and metrics["run"]["adversary"] == "grl"
    # the data-like evaluation: its own clusters, numbers next to the MC ones
    data_like = metrics["data_like"]
    assert data_like["test_data"] == [str(variant["test"])] and data_like["n_clusters"] > 200
    shift = data_like["shift"]["transformer"]
    assert shift["response_shift"] == pytest.approx(shift["median_data"] - shift["median_mc"])
    assert shift["sigma_rel_mc"] == pytest.approx(metrics["inclusive"]["transformer"]["sigma_rel"])
    assert set(data_like["shift"]) == {"raw", "transformer", "oracle"}
    assert pq.read_table(tmp_path / "run" / "predictions_data_like.parquet").num_rows == data_like["n_clusters"]
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["data_like"]["shift"]["transformer"]["sigma_rel_data"] == pytest.approx(shift["sigma_rel_data"])
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "Data-like sample" in summary and "domain adversary grl" in summary


def test_adversary_configuration_errors_name_the_field(tiny_data, variant):
    base = ["model=transformer", *tiny_data.run_overrides("electron")]
    with pytest.raises(RunError, match="data.unlabelled=<dataset dir>"):
        check_config(compose_run_config([*base, "adversary=grl"]))
    with pytest.raises(RunError, match="not available for model=bdt"):
        check_config(compose_run_config(["model=bdt", "adversary=grl", f"data.unlabelled={variant['unlabelled']}"]))
    with pytest.raises(RunError, match="data.unlabelled: /nonexistent"):
        check_config(compose_run_config([*base, "adversary=grl", "data.unlabelled=/nonexistent/x"]))
    with pytest.raises(RunError, match="data.unlabelled_test: /nonexistent"):
        check_config(compose_run_config([*base, "data.unlabelled_test=/nonexistent/y"]))
