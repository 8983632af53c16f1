"""simulate workers=2 whose parent is killed with kill -9: the workers exit and write nothing more."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.reliability.conftest import ENV

psutil = pytest.importorskip("psutil")


def _shards(out):
    return sorted(p.name for p in out.glob("shard_*.parquet"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_simulate_workers_die_with_a_killed_parent(tmp_path):
    out = tmp_path / "sim"
    # 100 shards of 100 clusters: far more than the few seconds before the kill can produce.
    proc = subprocess.Popen(
        [sys.executable, "-m", "calo_calib.simulate", "particle=electron", "n_clusters=10000", "shard_size=100",
         f"out={out}", "workers=2", "progress=false", "seed=5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
    )  # fmt: skip
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 15 and not _shards(out):
            time.sleep(0.05)
        parent = psutil.Process(proc.pid)
        children = parent.children(recursive=True)
        workers = [c for c in children if "--multiprocessing-fork" in " ".join(c.cmdline())]
        assert len(workers) == 2, [c.cmdline() for c in children]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    at_kill = _shards(out)
    assert len(at_kill) < 100, "the run finished before it was killed: the test proves nothing"

    gone, alive = psutil.wait_procs(children, timeout=10)
    for p in alive:  # do not leave them behind whatever the outcome
        p.kill()
    assert not alive, f"still running 10 s after the parent was killed: {[p.pid for p in alive]}"
    time.sleep(1.0)
    assert _shards(out) == at_kill, "a shard was written after the parent died"
