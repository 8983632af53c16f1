"""Run the simulation into Parquet shards: what ``python -m calo_calib.simulate`` calls.

Shards are the unit of parallelism, reproducibility and safety: shard ``i`` is generated from
``SeedSequence(seed).spawn(n_shards)[i]``, so the bytes do not depend on the number of workers; each
shard is written to a temporary name and renamed, so an interrupted run never leaves a corrupt
shard; ``resume=true`` keeps the complete shards and generates the rest; an output directory that
already holds shards is never overwritten unless ``overwrite=true``. Worker processes die with the
run (``prctl(PR_SET_PDEATHSIG)`` on Linux, and a parent check before each write): a killed run
leaves no worker behind writing shards. :func:`run_simulation` also writes ``dataset.json``.
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

import calo_calib
from calo_calib.io.parquet import read_metadata, write_table_atomic
from calo_calib.simulation.api import columns_to_table, simulate_columns, validate_config
from calo_calib.simulation.material import ConfigError

log = logging.getLogger("calo_calib.simulate")  # the command's logger name, as before the move

# Keys that change how a run executes but not what it produces: left out of the provenance so
# that identical physics settings and seeds give identical bytes.
EXECUTION_KEYS = ("out", "workers", "progress", "overwrite", "resume")
SHARD_PATTERN = "shard_{:05d}.parquet"


@dataclass(frozen=True)
class ShardTask:
    """Everything a worker needs to write one shard."""

    index: int
    n_clusters: int
    seed: np.random.SeedSequence
    path: Path
    config: dict
    provenance: dict


def physics_config(cfg: DictConfig) -> dict:
    """The resolved configuration without execution-only keys (what the output depends on)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    for key in EXECUTION_KEYS:
        container.pop(key, None)
    return container


def plan_shards(cfg: DictConfig) -> list[ShardTask]:
    """Split ``n_clusters`` into shards with independent, worker-count-independent seeds."""
    n, size = int(cfg.n_clusters), int(cfg.shard_size)
    n_shards = math.ceil(n / size)
    seeds = np.random.SeedSequence(int(cfg.seed)).spawn(n_shards)
    config = physics_config(cfg)
    out = Path(str(cfg.out))
    tasks = []
    for i in range(n_shards):
        n_i = min(size, n - i * size)
        provenance = {
            "calo_calib_version": calo_calib.__version__,
            "seed": int(cfg.seed),
            "shard": i,
            "n_shards": n_shards,
            "n_clusters": n_i,
            "particle": str(cfg.particle.name),
            "config": config,
        }
        tasks.append(ShardTask(i, n_i, seeds[i], out / SHARD_PATTERN.format(i), config, provenance))
    return tasks


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_parent_pid: int | None = None  # in a worker process: the pid of the run that started it


def _die_with_parent() -> bool:
    """Linux: ask the kernel to SIGKILL this process when its parent dies; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _worker_init(parent_pid: int) -> None:
    """Worker initializer: the worker dies with the run (``kill -9`` of the parent included) instead of
    writing more shards into ``out`` for nobody and then hanging on a result queue no one reads."""
    global _parent_pid
    _parent_pid = parent_pid
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)


def _parent_gone() -> bool:
    """In a worker: whether the run that started it has died (its parent pid changed)."""
    return _parent_pid is not None and os.getppid() != _parent_pid


def _run_shard(task: ShardTask) -> tuple[int, int, int, float]:
    """Worker: simulate and atomically write one shard; returns (index, n, n_rejected, seconds).

    In a worker process, nothing is written once the parent run has died (checked just before the write)."""
    t0 = time.perf_counter()
    cfg = OmegaConf.create(task.config)
    cols, rejected = simulate_columns(cfg, task.n_clusters, task.seed)
    table = columns_to_table(cols)
    if _parent_gone():
        os._exit(1)
    write_table_atomic(table, task.path, task.provenance)
    return task.index, task.n_clusters, rejected, time.perf_counter() - t0


def _shard_is_complete(task: ShardTask) -> bool:
    """A shard on disk counts as done only if its provenance matches the planned one."""
    if not task.path.exists():
        return False
    try:
        meta = read_metadata(task.path)
    except Exception:  # unreadable file: regenerate it
        return False
    return meta == json.loads(json.dumps(task.provenance))


def prepare_output(cfg: DictConfig, tasks: list[ShardTask]) -> list[ShardTask]:
    """Apply the overwrite/resume policy; return the shards that still need generating."""
    out = Path(str(cfg.out))
    out.mkdir(parents=True, exist_ok=True)
    existing = sorted(out.glob("shard_*.parquet"))
    if existing and not (bool(cfg.overwrite) or bool(cfg.resume)):
        raise FileExistsError(
            f"out={out} already holds {len(existing)} shard(s); pass overwrite=true to replace them "
            "or resume=true to keep the complete ones and generate the rest"
        )
    # Temporary shards left by an interrupted run are never valid: remove them, but only once this
    # run has the right to write here.
    for stale in out.glob("shard_*.parquet.*.tmp"):
        stale.unlink()
    if bool(cfg.overwrite) and not bool(cfg.resume):
        for path in existing:
            path.unlink()
        return tasks
    planned = {t.path for t in tasks}
    for path in existing:
        if path not in planned:
            raise FileExistsError(f"{path} is not part of this run (n_clusters/shard_size differ); use overwrite=true")
    todo = [t for t in tasks if not _shard_is_complete(t)]
    if len(todo) < len(tasks):
        log.info("resume: %d of %d shards already complete", len(tasks) - len(todo), len(tasks))
    return todo


def run_simulation(cfg: DictConfig) -> Path:
    """Generate the dataset described by ``cfg`` into ``cfg.out``; returns the output directory."""
    validate_config(cfg)
    if OmegaConf.is_missing(cfg, "out"):
        raise ConfigError("out is required: the output directory for the Parquet shards")
    tasks = plan_shards(cfg)
    todo = prepare_output(cfg, tasks)
    out = Path(str(cfg.out))
    workers = int(cfg.workers) or os.cpu_count() or 1
    workers = max(1, min(workers, len(todo))) if todo else 1
    t0 = time.perf_counter()
    total, rejected = sum(t.n_clusters for t in todo), 0
    bar = tqdm(total=total, unit="cl", desc=f"simulate {cfg.particle.name}", disable=not bool(cfg.progress))
    if workers == 1:
        for task in todo:
            _, n, rej, _ = _run_shard(task)
            rejected += rej
            bar.update(n)
    elif todo:
        # "spawn": forking a process whose torch/OpenMP thread pools are already running can
        # deadlock the children. Each shard's bytes depend only on its task.
        # The initializer ties each worker's life to this process (see _worker_init).
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),)
        ) as pool:
            futures = [pool.submit(_run_shard, t) for t in todo]
            for fut in as_completed(futures):
                _, n, rej, _ = fut.result()
                rejected += rej
                bar.update(n)
    bar.close()
    wall = time.perf_counter() - t0
    summary = {
        "calo_calib_version": calo_calib.__version__,
        "particle": str(cfg.particle.name),
        "n_clusters": int(cfg.n_clusters),
        "n_shards": len(tasks),
        "seed": int(cfg.seed),
        "generated_now": total,
        "rejected_clusters": rejected,
        "wall_seconds": round(wall, 3),
        "workers": workers,
        "clusters_per_second": round(total / wall, 1) if wall > 0 and total else None,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": physics_config(cfg),
    }
    tmp = out / "dataset.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out / "dataset.json")
    if total:
        log.info(
            "wrote %d clusters in %d shard(s) to %s: %.0f clusters/s with %d worker(s) (%.0f per worker)",
            total, len(todo), out, total / wall, workers, total / wall / workers,
        )  # fmt: skip
    return out
