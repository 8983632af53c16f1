"""`python -m calo_calib.make_data`: splits for every particle, resumable, distinct seeds."""

import json
import subprocess
import sys

from calo_calib.io.parquet import read_clusters, read_metadata


def test_make_data_generates_and_resumes(tmp_path):
    # Every split sized here: a split left out keeps conf/make_data.yaml's size (test: 20000 per particle,
    # which made this the slowest test of the suite while it asserted nothing about that split).
    args = [
        sys.executable, "-m", "calo_calib.make_data", f"root={tmp_path}", "splits={train: 300, val: 100, test: 100}",
        "particles=[electron,photon_conv]", "shard_size=200", "progress=false", "workers=1",
    ]  # fmt: skip
    subprocess.run(args, check=True, capture_output=True, text=True)
    seeds = set()
    for particle in ("electron", "photon_conv"):
        for split, n in (("train", 300), ("val", 100), ("test", 100)):
            d = tmp_path / particle / split
            table = read_clusters(d, columns=["particle", "cluster_e"])
            assert table.num_rows == n
            assert set(table.column("particle").to_pylist()) == {particle}
            meta = read_metadata(sorted(d.glob("*.parquet"))[0])
            seeds.add(meta["seed"])
    assert len(seeds) == 6, "every (particle, split) must have its own seed"
    shard = tmp_path / "electron" / "train" / "shard_00000.parquet"
    before = shard.stat().st_mtime_ns
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    assert shard.stat().st_mtime_ns == before, "a complete split must not be regenerated"
    assert "already complete" in out.stdout + out.stderr
    assert json.loads((tmp_path / "electron" / "train" / "dataset.json").read_text())["n_clusters"] == 300


def test_ensure_default_data_inside_a_hydra_app_generates_once(tmp_path):
    """The training entry point calls this from inside its own Hydra app: no global Hydra state needed."""
    from hydra import compose, initialize_config_dir

    from calo_calib.config import make_data_config
    from calo_calib.paths import CONF_DIR
    from calo_calib.simulation.default_data import ensure_default_data

    small = ["splits.train=60", "splits.val=30", "splits.test=30", "workers=1", "progress=false"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        compose(config_name="run")  # a Hydra app is "running"
        root = ensure_default_data("photon_unconv", make_data_config(), root=tmp_path, overrides=small)
    shards = {s: sorted((root / "photon_unconv" / s).glob("*.parquet")) for s in ("train", "val", "test")}
    assert all(shards.values())
    mtimes = [p.stat().st_mtime_ns for s in shards.values() for p in s]
    ensure_default_data("photon_unconv", make_data_config(), root=tmp_path, overrides=small)  # complete splits are kept
    assert mtimes == [p.stat().st_mtime_ns for s in shards.values() for p in s]
