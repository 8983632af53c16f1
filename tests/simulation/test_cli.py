"""The simulation CLI end to end: reproducibility, provenance, output safety, errors.

Runs the real entry point in a subprocess (``python -m calo_calib.simulate``); configuration errors
are mostly checked in-process through ``compose_config`` (fast), with a few subprocess calls to see
the user-facing exit status and message.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import HydraException

import calo_calib
from calo_calib.io.parquet import read_clusters, read_metadata
from calo_calib.io.schema import arrow_schema
from calo_calib.paths import REPO_ROOT
from calo_calib.simulation import compose_config
from calo_calib.simulation.material import ConfigError

BASE = ["particle=photon", "n_clusters=600", "shard_size=300", "mu=30"]
SHARDS = ("shard_00000.parquet", "shard_00001.parquet")


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "calo_calib.simulate", *args, "progress=false"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def snapshot(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    """name -> (mtime_ns, inode, bytes) of every file in ``directory``."""
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino, p.read_bytes()) for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """seed=7, workers=1: the reference output (read-only for the tests: they work on copies).

    Generated once per session even under pytest-xdist: the workers share their parent temporary
    directory and serialise on a lock file there.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    out = root / "cli_base_seed7"
    with open(root / "cli_base_seed7.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "dataset.json").exists():
            shutil.rmtree(out, ignore_errors=True)
            res = run_cli(*BASE, "seed=7", "workers=1", f"out={out}")
            assert res.returncode == 0, res.stderr + res.stdout
    return out


def copy_of(base: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(base, dst)
    return dst


def test_base_output_layout(base_run):
    names = sorted(p.name for p in base_run.iterdir())
    assert names == ["dataset.json", *SHARDS]
    summary = json.loads((base_run / "dataset.json").read_text())
    assert summary["n_clusters"] == 600 and summary["n_shards"] == 2 and summary["seed"] == 7
    table = read_clusters(base_run)
    assert table.num_rows == 600
    assert table.schema.equals(arrow_schema(), check_metadata=False)


def test_provenance_in_parquet_metadata(base_run):
    for i, name in enumerate(SHARDS):
        meta = read_metadata(base_run / name)
        assert meta["seed"] == 7
        assert meta["calo_calib_version"] == calo_calib.__version__
        assert meta["shard"] == i and meta["n_shards"] == 2 and meta["n_clusters"] == 300
        config = meta["config"]
        assert config["particle"]["name"] == "photon"
        assert config["mu"] == 30.0
        assert "detector" in config and "material" in config["detector"]
        for key in ("out", "workers", "progress", "overwrite", "resume", "hydra"):
            assert key not in config, f"execution-only key {key!r} leaked into the provenance"


def test_same_seed_same_bytes_for_any_worker_count(base_run, tmp_path):
    """Also: a directory holding only a stale *.tmp is not 'existing output' (the run proceeds and
    removes it) and the stale file is never read as a shard."""
    out = tmp_path / "w2"
    out.mkdir()
    stale = out / f"{SHARDS[0]}.1-abcd.tmp"
    stale.write_bytes(b"PAR1 garbage")
    res = run_cli(*BASE, "seed=7", "workers=2", f"out={out}")
    assert res.returncode == 0, res.stderr + res.stdout
    assert not stale.exists()
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", *SHARDS]
    for name in SHARDS:
        assert (out / name).read_bytes() == (base_run / name).read_bytes(), name


def test_existing_output_is_refused_and_untouched(base_run, tmp_path):
    out = copy_of(base_run, tmp_path)
    before = snapshot(out)
    res = run_cli(*BASE, "seed=7", "workers=1", f"out={out}")
    assert res.returncode != 0
    assert "overwrite=true" in res.stderr + res.stdout
    assert snapshot(out) == before


def test_overwrite_regenerates_and_seed_changes_bytes(base_run, tmp_path):
    out = copy_of(base_run, tmp_path)
    before = snapshot(out)
    res = run_cli(*BASE, "seed=8", "workers=1", "overwrite=true", f"out={out}")
    assert res.returncode == 0, res.stderr + res.stdout
    after = snapshot(out)
    for name in SHARDS:
        assert after[name][:2] != before[name][:2], f"{name} was not rewritten"
        assert after[name][2] != (base_run / name).read_bytes(), f"{name}: seed 8 gives the bytes of seed 7"
        assert read_metadata(out / name)["seed"] == 8
    assert json.loads((out / "dataset.json").read_text())["seed"] == 8


def test_resume_regenerates_only_missing_shard(base_run, tmp_path):
    out = copy_of(base_run, tmp_path)
    (out / SHARDS[1]).unlink()
    stale = out / f"{SHARDS[1]}.12345-deadbeef.tmp"  # left by an interrupted writer: garbage
    stale.write_bytes(b"not a parquet file")
    kept_before = snapshot(out)[SHARDS[0]]
    res = run_cli(*BASE, "seed=7", "workers=1", "resume=true", f"out={out}")
    assert res.returncode == 0, res.stderr + res.stdout
    assert not list(out.glob("*.tmp")), "stale temporary file not removed"
    after = snapshot(out)
    assert after[SHARDS[0]] == kept_before, "a complete shard was regenerated by resume"
    assert after[SHARDS[1]][2] == (base_run / SHARDS[1]).read_bytes()
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["generated_now"] == 300


# -- configuration errors (in-process) ------------------------------------------------------------
BAD_TABLE = "detector.material.table=[[0.0,0.3,1.7,0.5],[0.4,0.33,1.8,0.5],[0.2,0.4,2.0,0.5]]"
NEGATIVE_TABLE = "detector.material.table=[[0.0,0.3,1.7,0.5],[0.4,-0.33,1.8,0.5],[0.8,0.4,2.0,0.5]]"


@pytest.mark.parametrize(
    "override,patterns",
    [
        ("n_clusters=0", ["n_clusters"]),
        ("n_clusters=-5", ["n_clusters"]),
        ("shard_size=0", ["shard_size"]),
        ("gun.abs_eta_max=3.0", ["abs_eta"]),
        ("gun.e_min=0", ["gun.e_min"]),
        ("mu=-1", ["mu"]),
        (BAD_TABLE, ["detector.material", "row 2"]),
        (NEGATIVE_TABLE, ["detector.material", "negative"]),
        ("detector.material.scale=-1", ["detector.material.scale"]),
        ("detector.accordion.table=[[0.0,6.0,22.0,23.7],[1.0,6.0,5.0,30.0]]", ["detector.accordion", "row 1"]),
        ("detector.clustering.seed_sigma=1.0", ["detector.clustering"]),
    ],
)
def test_config_errors_name_the_field(override, patterns):
    with pytest.raises(ConfigError) as err:
        compose_config(["particle=photon", override])
    for pattern in patterns:
        assert pattern in str(err.value), str(err.value)


def test_unknown_particle_is_rejected_by_hydra():
    with pytest.raises(HydraException, match="particle"):
        compose_config(["particle=muon"])


def test_missing_out_is_an_error():
    from calo_calib.simulation.runner import run_simulation

    cfg = compose_config(["particle=photon", "n_clusters=10"])
    with pytest.raises(ConfigError, match="out"):
        run_simulation(cfg)


# -- configuration errors (subprocess) ------------------------------------------------------------
def test_cli_unknown_particle(tmp_path):
    res = run_cli("particle=muon", "n_clusters=10", f"out={tmp_path / 'x'}")
    assert res.returncode != 0
    assert "particle" in res.stderr + res.stdout
    assert not list((tmp_path).rglob("*.parquet"))


def test_cli_bad_value_names_field(tmp_path):
    out = tmp_path / "y"
    res = run_cli("particle=photon", "n_clusters=0", f"out={out}")
    assert res.returncode != 0
    assert "n_clusters" in res.stderr + res.stdout
    assert not list(tmp_path.rglob("*.parquet"))


def test_cli_missing_out():
    res = run_cli("particle=photon", "n_clusters=10")
    assert res.returncode != 0
    assert "out" in res.stderr + res.stdout


@pytest.mark.parametrize("override", ["shard_size=true", "workers=true"])
def test_boolean_counts_are_rejected(override):
    with pytest.raises(ConfigError):
        compose_config(["particle=photon", override])


def test_cli_missing_out_gives_friendly_message():
    res = run_cli("particle=photon", "n_clusters=10")
    assert res.returncode != 0
    assert "out is required" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr + res.stdout


def test_refused_run_leaves_tmp_files_alone(base_run, tmp_path):
    out = copy_of(base_run, tmp_path)
    inflight = out / f"{SHARDS[1]}.4242-0badcafe.tmp"
    inflight.write_bytes(b"being written by another process")
    before = snapshot(out)
    res = run_cli(*BASE, "seed=7", "workers=1", f"out={out}")
    assert res.returncode != 0
    assert snapshot(out) == before
