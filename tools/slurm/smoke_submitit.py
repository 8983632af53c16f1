#!/usr/bin/env python
"""End-to-end smoke test of submitit against the loopback SLURM.

Usage (from the repository root, SLURM started with tools/slurm/loopback.sh):

    eval "$(tools/slurm/loopback.sh env)"
    .venv/bin/python tools/slurm/smoke_submitit.py [--cases a,b,c,c2,d,e,f] [--keep]

Cases:
  a   a job returning a value completes and the value comes back
  b   a 2-element array job (executor.map_array) completes
  c   a job SIGKILLed mid-run (scancel --signal=KILL) makes job.result() raise
      instead of hanging (needs the sacct stand-in on PATH)
  c2  same, but the job's python process is killed directly (like the OOM killer)
  d   preemption: a checkpointable callable (like Hydra's launcher) gets USR2 via
      job._interrupt(), requeues itself with "scontrol requeue", runs again, completes
  e   tasks_per_node=2: both tasks run, SLURM_PROCID 0 and 1
  f   tasks_per_node=2 + torch.distributed gloo all_reduce (skipped without torch)

Prints one line per case (PASS/FAIL, seconds) and a JSON summary; exit status 1
if any case failed.  Every wait has a deadline, so a hang shows up as FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import submitit
from submitit.helpers import DelayedSubmission

# --------------------------------------------------------------------------
# Functions run inside the jobs (pickled by value with cloudpickle).


def add(a, b):
    return a + b


def square(x):
    return x * x


def sleep_after_marker(marker: str, seconds: float):
    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return "should not get here"


class Preemptible:
    """Like Hydra's submitit launcher: a callable with checkpoint()."""

    def __init__(self, workdir: str):
        self.workdir = workdir

    def __call__(self, workdir: str):
        runs = Path(workdir) / "runs.txt"
        with runs.open("a") as fh:
            fh.write(f"{os.environ.get('SLURM_JOB_ID')} restart={os.environ.get('SLURM_RESTART_COUNT', '0')}\n")
        attempt = len(runs.read_text().splitlines())
        if attempt == 1:
            (Path(workdir) / "started").write_text("1")
            time.sleep(120)  # waits to be preempted
            return "first attempt was not preempted"
        return {"attempt": attempt, "restart_count": os.environ.get("SLURM_RESTART_COUNT")}

    def checkpoint(self, *args, **kwargs):
        (Path(self.workdir) / "checkpointed").write_text("1")
        return DelayedSubmission(self, *args, **kwargs)


def rank_info():
    keys = ["SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS", "SLURM_JOB_ID"]
    return {k: os.environ.get(k) for k in keys}


def gloo_allreduce():
    import torch
    import torch.distributed as dist

    env = submitit.helpers.TorchDistributedEnvironment().export()
    dist.init_process_group(backend="gloo")
    t = torch.tensor([float(env.rank + 1)])
    dist.all_reduce(t)
    world = dist.get_world_size()
    dist.destroy_process_group()
    return {"rank": env.rank, "world": world, "sum": t.item()}


# --------------------------------------------------------------------------
# Helpers on the submitting side.


class CaseFailed(Exception):
    pass


def wait_for(pred, timeout: float, what: str, poll: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(poll)
    raise CaseFailed(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_done(job, timeout: float):
    """job.result() blocks forever on a lost job; poll done() with a deadline."""
    wait_for(job.done, timeout, f"job {job.job_id} to finish (state {job.state})", poll=0.5)


def make_executor(folder: Path, **params):
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    base = dict(timeout_min=60, slurm_partition="debug", cpus_per_task=1, tasks_per_node=1, nodes=1)
    base.update(params)
    ex.update_parameters(**base)
    return ex


def case_a(root: Path):
    job = make_executor(root / "a").submit(add, 2, 3)
    wait_done(job, 60)
    res = job.result()
    if res != 5:
        raise CaseFailed(f"result {res!r} != 5")
    return f"job {job.job_id} -> {res}"


def case_b(root: Path):
    jobs = make_executor(root / "b").map_array(square, [3, 4])
    for j in jobs:
        wait_done(j, 60)
    res = [j.result() for j in jobs]
    if res != [9, 16]:
        raise CaseFailed(f"results {res} != [9, 16]")
    return f"jobs {[j.job_id for j in jobs]} -> {res}"


def _killed_case(root: Path, name: str, how: str):
    marker = root / f"{name}_started"
    job = make_executor(root / name).submit(sleep_after_marker, str(marker), 60)
    wait_for(marker.exists, 60, "the job to start")
    t_kill = time.time()
    if how == "scancel":
        subprocess.run(["scancel", "--signal=KILL", job.job_id], check=True)
    else:
        os.kill(int(marker.read_text()), signal.SIGKILL)
    try:
        wait_done(job, 90)
        job.result()
    except submitit.core.utils.UncompletedJobError as e:
        waited = time.time() - t_kill
        state = job.state
        first = str(e).splitlines()[0]
        if waited > 45:
            raise CaseFailed(f"raised, but only after {waited:.1f}s")
        return f"job {job.job_id} state {state}; result() raised {type(e).__name__} {waited:.1f}s after the kill ({first[:80]}...)"
    except CaseFailed:
        subprocess.run(["scancel", job.job_id])
        raise
    raise CaseFailed("result() returned instead of raising")


def case_c(root: Path):
    return _killed_case(root, "c", "scancel")


def case_c2(root: Path):
    return _killed_case(root, "c2", "os.kill")


def case_d(root: Path):
    work = root / "d_work"
    work.mkdir()
    job = make_executor(root / "d").submit(Preemptible(str(work)), str(work))
    wait_for((work / "started").exists, 60, "the first attempt to start")
    t_int = time.time()
    if USR2_MODE == "interrupt":
        # scancel --signal SIGTERM, then scancel --signal USR2: signals the job
        # steps (the srun'ed python), like Slurm's own --signal=USR2@90.
        job._interrupt()
    else:  # exploration: --batch signals only the batch shell, --full both
        subprocess.run(["scancel", "--signal=USR2", f"--{USR2_MODE}", job.job_id], check=True)
    wait_for((work / "checkpointed").exists, 30, "checkpoint() to be called")
    t_ckpt = time.time() - t_int
    requeue_states = set()

    def finished():
        requeue_states.add(job.state)
        return job.done()

    wait_for(finished, 180, "the requeued job to finish", poll=0.5)
    res = job.result()
    runs = (work / "runs.txt").read_text().splitlines()
    if not isinstance(res, dict) or res.get("attempt") != 2:
        raise CaseFailed(f"unexpected result {res!r}; runs={runs}")
    return (f"job {job.job_id}: checkpoint() {t_ckpt:.1f}s after interrupt, result {res} "
            f"{time.time() - t_int:.1f}s after interrupt; runs={runs}; states seen={sorted(requeue_states)}")


def case_e(root: Path):
    job = make_executor(root / "e", tasks_per_node=2).submit(rank_info)
    wait_done(job, 60)
    res = job.results()
    procids = sorted(r["SLURM_PROCID"] for r in res)
    if procids != ["0", "1"] or any(r["SLURM_NTASKS"] != "2" for r in res):
        raise CaseFailed(f"unexpected ranks {res}")
    return f"job {job.job_id} -> {res}"


def case_f(root: Path):
    try:
        import torch  # noqa: F401
    except ImportError:
        return "SKIPPED (no torch)"
    job = make_executor(root / "f", tasks_per_node=2).submit(gloo_allreduce)
    wait_done(job, 120)
    res = job.results()
    if sorted(r["rank"] for r in res) != [0, 1] or any(r["sum"] != 3.0 for r in res):
        raise CaseFailed(f"unexpected {res}")
    return f"job {job.job_id} -> {res}"


USR2_MODE = "interrupt"
CASES = {"a": case_a, "b": case_b, "c": case_c, "c2": case_c2, "d": case_d, "e": case_e, "f": case_f}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="a,b,c,c2,d,e,f")
    ap.add_argument("--folder", help="submitit folder (default: a fresh temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the folder even if everything passed")
    ap.add_argument("--usr2", choices=["interrupt", "batch", "full"], default="interrupt",
                    help="case d: how USR2 is sent (default job._interrupt(); batch/full: scancel --signal=USR2 --batch/--full)")
    args = ap.parse_args()
    global USR2_MODE
    USR2_MODE = args.usr2

    if not os.environ.get("SLURM_CONF"):
        print('SLURM_CONF is not set: run  eval "$(tools/slurm/loopback.sh env)"  first', file=sys.stderr)
        return 2
    sacct = shutil.which("sacct") or ""
    if "bin/sacct" not in sacct or not sacct.startswith(str(Path(os.environ["SLURM_CONF"]).parent)):
        print(f"warning: sacct on PATH is {sacct!r}, not the loopback stand-in; case c will hang", file=sys.stderr)

    root = Path(args.folder or tempfile.mkdtemp(prefix="calo_submitit_smoke_"))
    root.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name in args.cases.split(","):
        t0 = time.time()
        try:
            detail, ok = CASES[name](root), True
        except Exception as e:  # report and go on with the next case
            detail, ok = f"{type(e).__name__}: {e}", False
        dt = time.time() - t0
        summary[name] = {"ok": ok, "seconds": round(dt, 1)}
        print(f"[{'PASS' if ok else 'FAIL'}] case {name} ({dt:.1f}s): {detail}", flush=True)
    all_ok = all(v["ok"] for v in summary.values())
    print("SUMMARY " + json.dumps(summary), flush=True)
    if all_ok and not args.keep and not args.folder:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"submitit folder kept: {root}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
