"""Run a queue of commands on a node's GPUs: each job gets its own share, the rest wait.

This is the scheduling core of the ``torchrun`` Hydra launcher
(:mod:`hydra_plugins.calo_calib_launchers.torchrun_launcher`), kept free of Hydra so it can be used
and tested on its own. A job is a command line plus how many GPUs it needs; a job starts as soon as
that many GPUs are free (and fewer than ``max_parallel`` jobs run), with ``CUDA_VISIBLE_DEVICES``
set to its GPUs, and its output goes to its own log file. Every job runs to its end: a failing job
is reported with its exit code and the tail of its log while the others continue.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class JobSpec:
    """One command to run. ``n_gpus = 0`` for a CPU job."""

    index: int
    command: list[str]
    log_path: Path
    n_gpus: int = 0
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class JobOutcome:
    """How a job ended: exit code, the GPUs it had, its wall time and the tail of its log."""

    index: int
    returncode: int
    gpus: list[int]
    seconds: float
    log_path: Path
    log_tail: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def visible_gpus() -> list[int]:
    """Indices of the GPUs this process may use (``CUDA_VISIBLE_DEVICES`` respected), without
    initialising CUDA in the launcher process (``torch.cuda.device_count`` uses NVML)."""
    import torch

    return list(range(torch.cuda.device_count()))


def _tail(path: Path, n_chars: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n_chars))
            return f.read().decode(errors="replace")
    except OSError as err:
        return f"(log unreadable: {err})"


def run_jobs(
    jobs: Sequence[JobSpec],
    gpus: Sequence[int] = (),
    max_parallel: int = 1,
    poll_seconds: float = 0.5,
    cwd: str | os.PathLike[str] | None = None,
) -> list[JobOutcome]:
    """Run ``jobs`` in order, at most ``max_parallel`` at a time, each on its own free GPUs.

    Args:
        jobs: the commands; a job needing more GPUs than ``gpus`` holds is an error (before any start).
        gpus: GPU indices to hand out (``CUDA_VISIBLE_DEVICES`` values); empty on a CPU node.
        max_parallel: jobs running at once (>= 1).
        poll_seconds: how often finished processes are collected.
        cwd: working directory of the jobs.

    Returns:
        One :class:`JobOutcome` per job, in the order of ``jobs``.
    """
    if max_parallel < 1:
        raise ValueError(f"max_parallel must be >= 1, got {max_parallel}")
    too_big = [j for j in jobs if j.n_gpus > len(gpus)]
    if too_big:
        raise ValueError(f"job #{too_big[0].index} needs {too_big[0].n_gpus} GPUs but only {len(gpus)} are available ({list(gpus)})")
    pending = deque(jobs)
    free = list(gpus)
    running: dict[int, tuple[subprocess.Popen, JobSpec, list[int], float, object]] = {}
    outcomes: dict[int, JobOutcome] = {}
    try:
        while pending or running:
            # Start jobs in queue order while resources allow (no overtaking: the order is the sweep's).
            while pending and len(running) < max_parallel and pending[0].n_gpus <= len(free):
                spec = pending.popleft()
                mine, free = free[: spec.n_gpus], free[spec.n_gpus :]
                env = {**os.environ, **spec.env}
                if spec.n_gpus:
                    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in mine)
                spec.log_path.parent.mkdir(parents=True, exist_ok=True)
                logfile = open(spec.log_path, "w")  # noqa: SIM115 - closed when the job ends
                proc = subprocess.Popen(spec.command, stdout=logfile, stderr=subprocess.STDOUT, env=env, cwd=cwd)
                running[spec.index] = (proc, spec, mine, time.perf_counter(), logfile)
                log.info("job #%d started on %s (pid %d), log: %s", spec.index, f"GPUs {mine}" if mine else "CPU", proc.pid, spec.log_path)
            time.sleep(poll_seconds)
            for index in [i for i, (p, *_rest) in running.items() if p.poll() is not None]:
                proc, spec, mine, t0, logfile = running.pop(index)
                logfile.close()
                free = sorted(free + mine)
                out = JobOutcome(index, proc.returncode, mine, time.perf_counter() - t0, spec.log_path, _tail(spec.log_path))
                outcomes[index] = out
                if out.ok:
                    log.info("job #%d finished in %.0f s", index, out.seconds)
                else:
                    log.error("job #%d FAILED (exit code %d) after %.0f s; log %s ends with:\n%s", index, out.returncode, out.seconds, spec.log_path, out.log_tail[-1500:])
    finally:
        for proc, _spec, _mine, _t0, logfile in running.values():  # interrupted (Ctrl-C): no orphans
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            logfile.close()
    return [outcomes[j.index] for j in jobs]
