"""Make submitit's requeue-on-preemption immune to SLURM's own termination signal.

On a preemption or time-limit warning (USR2) submitit checkpoints the job and calls
``scontrol requeue <id>``. SLURM answers the requeue by sending SIGTERM to every process of the
job, and the ``scontrol`` child is one of them: when the signal arrives before it has exited,
``scontrol`` dies with SIGTERM, submitit raises ``CalledProcessError`` and the job is reported as
failed although it was requeued (seen on the loopback SLURM of tests/launch/test_slurm.py about
one run in two). Here ``scontrol`` is started with SIGTERM ignored (the ignored disposition is
kept across exec), so it completes its request and exits normally; the job's main process is
still terminated by SLURM as usual.
"""

from __future__ import annotations

import signal
import subprocess


def _ignore_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def install() -> None:
    """Patch ``submitit``'s SLURM job environment (a no-op when submitit is not installed)."""
    try:
        from submitit.core import logger
        from submitit.slurm.slurm import SlurmJobEnvironment
    except ImportError:
        return
    if getattr(SlurmJobEnvironment._requeue, "_calo_calib", False):
        return

    def _requeue(self, countdown: int) -> None:
        jid = self.job_id
        subprocess.check_call(["scontrol", "requeue", jid], timeout=60, preexec_fn=_ignore_sigterm)
        logger.get_logger().info(f"Requeued job {jid} ({countdown} remaining timeouts)")

    _requeue._calo_calib = True  # type: ignore[attr-defined]
    SlurmJobEnvironment._requeue = _requeue
