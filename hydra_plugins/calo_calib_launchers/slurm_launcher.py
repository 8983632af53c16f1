"""Hydra launcher ``hydra/launcher=slurm``: hydra-submitit-launcher's SLURM launcher, extended so that
a sweep waits for every job and reports every failure.

The stock ``submitit_slurm`` launcher collects results job by job and stops at the first job that
ended without a result (killed, out of memory, node failure, cancelled): the sweep's remaining
results are never collected and nothing says which other jobs failed. Here every job is waited for;
a job without a result becomes a FAILED JobReturn naming its SLURM job id, its state and its log
files, and ``<sweep dir>/launcher_results.json`` lists all jobs. Hydra then raises the first failure.

Submission is the stock one (same ``hydra.launcher.*`` options, array job, one task per GPU with
``tasks_per_node``), and so is preemption handling: on SLURM's USR2 signal (timeout approaching or
preemption) submitit requeues the job (``BaseSubmititLauncher.checkpoint``), which reruns it in the
same job directory, where ``calo_calib.run`` resumes from the last checkpoint. The presets are in
``conf/hydra/launcher/slurm.yaml``.
"""

# No `from __future__ import annotations`: Hydra loads plugins outside sys.modules during discovery.
import logging
from pathlib import Path
from typing import Any, List, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


class CaloSlurmLauncher(SlurmLauncher):
    """``SlurmLauncher`` that collects every job's result, failures included."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run one job inside SLURM. The job unpickles this launcher (the task function travels by value),
        so ``calo_calib.run``'s module-level requeue fix never runs there: install it here, before
        submitit can receive the preemption signal (calo_calib/launch/requeue.py)."""
        from calo_calib.launch.requeue import install

        install()
        return super().__call__(*args, **kwargs)

    def _executor(self) -> Any:
        """The submitit executor with the ``hydra.launcher.*`` parameters (as the stock launcher maps them)."""
        import submitit

        init_keys = {"submitit_folder", "max_num_timeout"}
        executor = submitit.AutoExecutor(
            cluster=self._EXECUTOR,
            folder=self.params["submitit_folder"],
            slurm_max_num_timeout=self.params.get("max_num_timeout", 0),
        )
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{k if k in base else f"{self._EXECUTOR}_{k}": v for k, v in self.params.items() if k not in init_keys}
        )
        return executor

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from calo_calib.launch.summary import write_sweep_summary

        assert self.config is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        executor = self._executor()
        log.info("SLURM sweep output dir: %s", sweep_dir)
        job_params: List[Any] = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        jobs = executor.map_array(self, *zip(*job_params))
        log.info("submitted SLURM array %s (%d jobs)", jobs[0].job_id.split("_")[0] if jobs else "-", len(jobs))

        returns, rows = [], []
        for (overrides, _key, idx, _name, _state), job in zip(job_params, jobs):
            try:
                ret = job.results()[0]  # rank 0's JobReturn (one per task)
                error = None if ret.status == JobStatus.COMPLETED else f"{type(ret._return_value).__name__}: {ret._return_value}"
            except Exception as err:  # noqa: BLE001 - any way a job can end without a result
                ret = JobReturn()
                ret.overrides = overrides
                ret.status = JobStatus.FAILED
                state = job.state
                error = f"SLURM job {job.job_id} ended without a result (state {state}): {str(err).splitlines()[0]}"
                ret.return_value = RuntimeError(f"{error}\nlogs: {job.paths.stdout} {job.paths.stderr}")
                log.error("job #%d: %s", idx, error)
            returns.append(ret)
            rows.append({
                "job": idx,
                "overrides": overrides,
                "slurm_job_id": job.job_id,
                "run_dir": _output_dir(ret),
                "status": ret.status.name if ret.status else "FAILED",
                "return_value": ret._return_value if ret.status == JobStatus.COMPLETED else None,
                "error": error,
                "stdout": str(job.paths.stdout),
            })  # fmt: skip
        write_sweep_summary(sweep_dir, rows, "slurm")
        return returns


def _output_dir(ret: JobReturn) -> Any:
    """The job's run directory (Hydra's output dir; ``working_dir`` is the cwd when jobs do not chdir)."""
    try:
        return str(ret.hydra_cfg.hydra.runtime.output_dir)
    except Exception:  # noqa: BLE001 - a job without a result has no Hydra config
        return None
