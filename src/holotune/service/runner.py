"""Runs the queued jobs, one worker process each, at most ``max_running_jobs`` at a time.

The runner owns no state the job table does not have: after a restart it re-reads the table,
adopts running jobs whose worker is still alive (same pid and start time) and marks the others
failed with the reason. A worker that dies without recording an end (killed, out of memory) is
marked failed with how it died, and what is left of its process group is killed.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from holotune.service.jobs import CANCELLED, FAILED, QUEUED, RUNNING, Job, JobStore

log = logging.getLogger("holotune.service")


# How far apart two readings of one process's start time may be and still name the same process.
# psutil reports it in seconds since the epoch (boot time + ticks since boot), so a step of the
# system clock moves later readings; a pid that is reused by a process started within a second
# of its previous owner is not a practical case.
START_TIME_TOLERANCE_S = 1.0


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or ``None`` if it does not exist or is
    a zombie."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def describe_exit(code: int) -> str:
    """``exited with code 1`` or ``was killed by signal 9 (SIGKILL)``, from a Popen return code."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "?"
        return f"was killed by signal {-code} ({name})"
    return f"exited with code {code}"


def worker_alive(job: Job) -> bool:
    """True if the job's recorded worker is still that process (same pid and start time)."""
    if job.pid is None or job.pid_start is None:
        return False
    started = process_start_time(job.pid)
    return started is not None and abs(started - job.pid_start) <= START_TIME_TOLERANCE_S


class JobRunner:
    """Starts, watches and cancels job workers.

    Args:
        store: the job table.
        python: interpreter for ``python -m holotune.service.worker``.
        workdir: the worker's (and its stages') working directory: the state folder, so MLflow's
            default ``./mlruns`` lands beside the job table.
        max_running: jobs running at once.
        cancel_grace_s: seconds from SIGTERM to SIGKILL for a cancelled job.
        recheck: ``(job) -> str | None``: called just before a queued job starts; a returned reason
            fails the job instead (the request's paths are re-resolved there: a symlink swapped in
            after submission must not escape the workspace).
    """

    def __init__(self, store: JobStore, python: str, workdir: Path, max_running: int = 1,
                 cancel_grace_s: float = 10.0, recheck=None):
        self.store = store
        self.python = python
        self.workdir = workdir
        self.max_running = max_running
        self.cancel_grace_s = cancel_grace_s
        self.recheck = recheck
        self._children: dict[str, subprocess.Popen] = {}
        self._kill_at: dict[int, float] = {}  # process group -> when to SIGKILL it

    # ------------------------------------------------------------------ lifecycle
    def recover(self) -> list[str]:
        """After a (re)start: adopt live running jobs, fail dead ones. Returns the failed ids."""
        failed = []
        for job in self.store.list(status=RUNNING, limit=10_000):
            if worker_alive(job):
                log.info("job %s: worker %d still running, adopted", job.id, job.pid)
                continue
            reason = (f"the job's worker process {job.pid} is gone (found at service start; it died while "
                      f"the service was down, or the machine restarted); last stage: {job.stage or 'none'}")
            if self.store.finish(job.id, FAILED, error=reason):
                failed.append(job.id)
        return failed

    def tick(self) -> None:
        """One pass: reap finished workers, check adopted ones, kill overdue cancels, start queued jobs."""
        for job_id, proc in list(self._children.items()):
            code = proc.poll()
            if code is not None:
                del self._children[job_id]
                self._worker_ended(job_id, proc.pid, code)
        for job in self.store.list(status=RUNNING, limit=10_000):
            if job.id not in self._children and job.pid is not None and not worker_alive(job):
                self.store.finish(job.id, FAILED, error=f"the job's worker process {job.pid} disappeared "
                                                         f"during stage {job.stage or 'none'}")
        now = time.monotonic()
        for pgid, deadline in list(self._kill_at.items()):
            if now >= deadline:
                self._signal_group(pgid, signal.SIGKILL)
                del self._kill_at[pgid]
        while self.store.count(RUNNING) < self.max_running:
            job = self.store.next_queued()
            if job is None or not self._start(job):
                break

    def _start(self, job: Job) -> bool:
        if not self.store.update(job.id, expect=QUEUED, status=RUNNING, started_at=time.time()):
            return True  # cancelled meanwhile: look at the next one
        reason = self.recheck(job) if self.recheck else None
        if reason:
            self.store.finish(job.id, FAILED, error=reason)
            return True
        try:
            with open(job.log_path, "ab") as log_file:
                proc = subprocess.Popen(
                    [self.python, "-m", "holotune.service.worker", str(self.store.path), job.id],
                    cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: cancel kills the stage too
                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except OSError as exc:
            self.store.finish(job.id, FAILED, error=f"cannot start the job's worker: {exc}")
            return True
        self._children[job.id] = proc
        self.store.update(job.id, expect=RUNNING, pid=proc.pid, pid_start=process_start_time(proc.pid))
        log.info("job %s started (worker pid %d)", job.id, proc.pid)
        return True

    def _worker_ended(self, job_id: str, pid: int, code: int) -> None:
        job = self.store.get(job_id)
        if job is not None and job.status == RUNNING:
            # The worker records every normal end itself; still running means it died.
            self.store.finish(job_id, FAILED, returncode=code,
                              error=f"the job's worker process {pid} {describe_exit(code)} during stage "
                                    f"{job.stage or 'none'}")
            log.warning("job %s: worker %d %s", job_id, pid, describe_exit(code))
        self._signal_group(pid, signal.SIGKILL)  # a stage it left behind
        self._kill_at.pop(pid, None)

    # ------------------------------------------------------------------ cancel
    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job; returns the job as it is now (``None`` if unknown).

        A running job's process group gets SIGTERM now and SIGKILL after ``cancel_grace_s``.
        A finished job is returned unchanged.
        """
        job = self.store.get(job_id)
        if job is None:
            return None
        if job.status == QUEUED:
            self.store.finish(job_id, CANCELLED, error="cancelled while queued", expect=QUEUED)
        elif job.status == RUNNING:
            if self.store.finish(job_id, CANCELLED, error=f"cancelled during stage {job.stage or 'none'}",
                                 expect=RUNNING) and worker_alive(job):
                self._signal_group(job.pid, signal.SIGTERM)
                self._kill_at[job.pid] = time.monotonic() + self.cancel_grace_s
        return self.store.get(job_id)

    @staticmethod
    def _signal_group(pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
