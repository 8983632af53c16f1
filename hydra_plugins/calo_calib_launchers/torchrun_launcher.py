"""Hydra launcher ``hydra/launcher=torchrun``: every job of a multirun under torchrun, on its own GPUs.

    python -m calo_calib.run -m model=transformer,gnn_edge loss=mse,huber particle=electron \\
        hydra/launcher=torchrun hydra.launcher.gpus_per_job=2

Why a launcher of our own: Hydra's basic launcher runs jobs one after the other in-process, joblib
and ray know nothing of GPUs or torchrun, and submitit's local executor cannot share a node's GPUs
between queued jobs. This one starts each job as
``python -m torch.distributed.run --standalone --nproc_per_node=<gpus_per_job> -m <entry> <overrides>
hydra.run.dir=<job dir>`` with ``CUDA_VISIBLE_DEVICES`` set to the job's GPUs, queues jobs while
GPUs are busy, and returns every job's result (the value the task returns, read back from its
``metrics.json``). A failed job is reported with its exit code and log tail while the others
finish; Hydra then raises the first failure. Job logs: ``<job dir>/torchrun.log``; a summary of all
jobs: ``<sweep dir>/launcher_results.json``.

Hydra plugins must live in the ``hydra_plugins`` package; the scheduling itself is
:mod:`calo_calib.launch.local_jobs`.
"""

# No `from __future__ import annotations`: Hydra loads plugins outside sys.modules during discovery,
# where dataclasses cannot resolve string annotations.
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

# Hydra-level overrides that concern the sweep itself and must not reach the single-run jobs.
_SWEEP_ONLY = ("hydra/launcher", "hydra.launcher", "hydra/sweeper", "hydra.sweeper", "hydra.sweep", "hydra.mode", "hydra.run")


@dataclass
class TorchrunLauncherConf:
    """``hydra.launcher.*`` options (a structured config: unknown options are rejected by Hydra)."""

    _target_: str = "hydra_plugins.calo_calib_launchers.torchrun_launcher.TorchrunLauncher"
    entry: str = "calo_calib.run"  # module torchrun runs for each job
    gpus_per_job: Optional[int] = None  # GPUs = torchrun processes per job; 0: CPU jobs (gloo); null: 1 if the node has GPUs, else 0
    procs_per_cpu_job: int = 1  # torchrun processes per job when gpus_per_job = 0
    gpus: Optional[List[int]] = None  # GPU indices to use; null = every visible GPU
    max_parallel: Optional[int] = None  # jobs at once; null = as many as the GPUs allow (1 for CPU jobs)
    torchrun_args: List[str] = field(default_factory=list)  # extra torchrun options, e.g. ["--max-restarts=2"]
    poll_seconds: float = 1.0


ConfigStore.instance().store(group="hydra/launcher", name="torchrun", node=TorchrunLauncherConf, provider="calo_calib")


class TorchrunLauncher(Launcher):
    def __init__(
        self,
        entry: str = "calo_calib.run",
        gpus_per_job: int | None = None,
        procs_per_cpu_job: int = 1,
        gpus: list[int] | None = None,
        max_parallel: int | None = None,
        torchrun_args: list[str] | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.entry = entry
        self.gpus_per_job = gpus_per_job if gpus_per_job is None else int(gpus_per_job)
        self.procs_per_cpu_job = int(procs_per_cpu_job)
        self.gpus = None if gpus is None else [int(g) for g in gpus]
        self.max_parallel = None if max_parallel is None else int(max_parallel)
        self.torchrun_args = [str(a) for a in (torchrun_args or [])]
        self.poll_seconds = float(poll_seconds)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context

    # -- resources -------------------------------------------------------------------------------
    def _resources(self) -> tuple[list[int], int, int]:
        """(GPUs to hand out, GPUs per job, jobs at once); raises before any job starts if impossible."""
        from calo_calib.launch.local_jobs import visible_gpus

        if self.gpus_per_job is None:
            self.gpus_per_job = 1 if visible_gpus() else 0
        if self.gpus_per_job < 0 or self.procs_per_cpu_job < 1:
            raise ValueError(f"hydra.launcher: gpus_per_job must be >= 0 and procs_per_cpu_job >= 1, got {self.gpus_per_job}, {self.procs_per_cpu_job}")
        if self.max_parallel is not None and self.max_parallel < 1:
            raise ValueError(f"hydra.launcher.max_parallel must be >= 1 or null, got {self.max_parallel}")
        if self.gpus_per_job == 0:
            return [], 0, self.max_parallel or 1
        visible = visible_gpus()
        gpus = visible if self.gpus is None else self.gpus
        unknown = sorted(set(gpus) - set(visible))
        if unknown:
            raise ValueError(f"hydra.launcher.gpus={self.gpus}: GPU(s) {unknown} do not exist on this node (visible: {visible})")
        if self.gpus_per_job > len(gpus):
            raise ValueError(
                f"hydra.launcher.gpus_per_job={self.gpus_per_job} but only {len(gpus)} GPU(s) are available "
                f"({gpus}); use gpus_per_job <= {len(gpus)}, or gpus_per_job=0 for CPU jobs"
            )
        return gpus, self.gpus_per_job, self.max_parallel or max(1, len(gpus) // self.gpus_per_job)

    # -- launch ----------------------------------------------------------------------------------
    def launch(self, job_overrides: Any, initial_job_idx: int) -> list[JobReturn]:
        from calo_calib.launch.local_jobs import JobSpec, run_jobs

        assert self.config is not None and self.hydra_context is not None
        gpus, per_job, parallel = self._resources()  # before anything starts
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        hydra_overrides = [o for o in self.config.hydra.overrides.hydra if not o.lstrip("+~").startswith(_SWEEP_ONLY)]
        nproc = per_job or self.procs_per_cpu_job

        specs, sweep_configs = [], []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = f"{idx}"
                sweep_config.hydra.job.num = idx
            job_dir = sweep_dir / str(sweep_config.hydra.sweep.subdir)
            command = [
                sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                *self.torchrun_args, "-m", self.entry, *overrides, *hydra_overrides, f"hydra.run.dir={_quoted(job_dir)}",
            ]  # fmt: skip
            specs.append(JobSpec(idx, command, job_dir / "torchrun.log", n_gpus=per_job))
            sweep_configs.append((sweep_config, job_dir, list(overrides)))
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        log.info("torchrun launcher: %d jobs, %d process(es) each, %s, %d at a time", len(specs), nproc,
                 f"GPUs {gpus}" if gpus else "CPU", parallel)  # fmt: skip

        outcomes = run_jobs(specs, gpus=gpus, max_parallel=parallel, poll_seconds=self.poll_seconds, cwd=os.getcwd())
        returns = [self._job_return(cfg, job_dir, overrides, out) for (cfg, job_dir, overrides), out in zip(sweep_configs, outcomes)]
        self._write_summary(sweep_dir, returns, outcomes)
        return returns

    def _job_return(self, sweep_config: DictConfig, job_dir: Path, overrides: list[str], outcome) -> JobReturn:
        ret = JobReturn()
        ret.overrides = overrides
        ret.working_dir = str(job_dir)
        ret.task_name = str(sweep_config.hydra.job.name)
        ret.hydra_cfg = OmegaConf.create({"hydra": sweep_config.hydra})
        with open_dict(sweep_config):
            task_cfg = OmegaConf.masked_copy(sweep_config, [k for k in sweep_config.keys() if k != "hydra"])
        ret.cfg = task_cfg
        if outcome.ok:
            ret.status = JobStatus.COMPLETED
            ret.return_value = _task_value(job_dir)
        else:
            ret.status = JobStatus.FAILED
            ret.return_value = RuntimeError(
                f"job #{outcome.index} ({' '.join(overrides)}) failed with exit code {outcome.returncode}; "
                f"log: {outcome.log_path}\n--- log tail ---\n{outcome.log_tail[-3000:]}"
            )
        return ret

    @staticmethod
    def _write_summary(sweep_dir: Path, returns: list[JobReturn], outcomes) -> None:
        from calo_calib.launch.summary import write_sweep_summary

        rows = []
        for ret, out in zip(returns, outcomes):
            rows.append({
                "job": out.index,
                "overrides": ret.overrides,
                "run_dir": ret.working_dir,
                "status": ret.status.name,
                "exit_code": out.returncode,
                "gpus": out.gpus,
                "seconds": round(out.seconds, 1),
                "return_value": ret._return_value if out.ok else None,
                "error": None if out.ok else str(ret._return_value).splitlines()[0],
            })  # fmt: skip
        write_sweep_summary(sweep_dir, rows, "torchrun")


def _task_value(job_dir: Path) -> float | None:
    """What ``calo_calib.run`` returns: the inclusive σ_rel of the run's model, from its metrics.json."""
    try:
        metrics = json.loads((job_dir / "metrics.json").read_text())
        return float(metrics["inclusive"][metrics["run"]["model"]]["sigma_rel"])
    except (OSError, KeyError, ValueError, TypeError) as err:  # exit code 0 but no usable result: say so
        log.warning("job in %s ended without error but its metrics.json is unusable (%s): no result recorded", job_dir, err)
        return None


def _quoted(path: Path) -> str:
    """A path as a quoted Hydra override value (job directories contain '=' and ',')."""
    return "'" + str(path).replace("\\", "\\\\").replace("'", "\\'") + "'"
