"""Distributed set-up in one place: read the torchrun (or SLURM) environment, pick the device.

A single process is the world_size = 1 case of the same code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands in a (possibly single-process) job."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, plots and tracking."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(*names: str, default: int) -> int:
    for name in names:
        if name in os.environ:
            return int(os.environ[name])
    return default


def export_slurm_env() -> bool:
    """Inside a multi-task SLURM job step (``srun``, or submitit with ``tasks_per_node > 1``) that was
    not started by torchrun: export MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE/LOCAL_RANK from the SLURM
    variables so that ``init_process_group(init_method="env://")`` works. Returns True if it did.

    ``SLURM_STEP_NUM_TASKS`` (set by srun for the step) is used rather than ``SLURM_NTASKS``: a
    single process started by hand inside a many-task allocation must not wait for absent peers.
    The master port is derived from the job id (submitit's rule), so a requeued job reuses it.
    """
    if "WORLD_SIZE" in os.environ or _env_int("SLURM_STEP_NUM_TASKS", default=1) <= 1:
        return False
    from submitit.helpers import TorchDistributedEnvironment

    # CUDA_VISIBLE_DEVICES stays as SLURM set it; setup() picks the local rank's GPU among the visible ones.
    TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return True


def setup(device: str = "auto") -> DistEnv:
    """Detect rank/world size (torchrun: RANK/WORLD_SIZE/LOCAL_RANK; SLURM: SLURM_PROCID/...),
    initialise the process group when world_size > 1 (NCCL on GPU, gloo on CPU) and choose the device.

    Args:
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    """
    export_slurm_env()
    world = _env_int("WORLD_SIZE", default=1)
    rank = _env_int("RANK", default=0)
    local = _env_int("LOCAL_RANK", default=0)
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("trainer.device=cuda but no CUDA device is available")
    # With one GPU per task bound by SLURM, each process sees a single device: index 0.
    dev = torch.device(f"cuda:{local % torch.cuda.device_count()}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistEnv(rank, local, world, dev)


def teardown() -> None:
    """Destroy the process group if one was created."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def shared_run_stamp(env_var: str = "CALO_CALIB_RUN_STAMP") -> str | None:
    """Make every torchrun worker use the same timestamp for its run directory.

    Hydra's ``${now:...}`` is evaluated per process, so without this each rank of
    ``torchrun -m calo_calib.run`` could name its own directory. The first worker to ask stores its
    stamp in torchrun's agent store (the TCP store the elastic agent hosts for its workers) and all
    workers read it back into ``env_var``, which ``conf/run.yaml`` uses. The store outlives worker
    restarts, so restarted workers land in the same directory and resume from its checkpoint.

    Returns the stamp, or None outside torchrun (nothing to agree on) or when ``env_var`` is already set.
    """
    if os.environ.get(env_var) or _env_int("WORLD_SIZE", default=1) <= 1:
        return None
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() != "true" or "MASTER_ADDR" not in os.environ:
        return None  # not torchrun (e.g. srun): the launcher must fix the directory (Hydra multirun does)
    import datetime as dt

    store = torch.distributed.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False, timeout=dt.timedelta(seconds=300)
    )
    mine = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")  # calo_calib.config.STAMP_FORMAT
    stamp = store.compare_set("calo_calib/run_stamp", "", mine).decode()
    os.environ[env_var] = stamp
    return stamp
