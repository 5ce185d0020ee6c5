"""What one running service holds: the job table and runner, the ONNX sessions and the registry
follower. The app's lifespan builds a :class:`Service` and keeps it on ``app.state.service``;
routes reach it through the :func:`get_service` dependency.

Everything heavy is created here, in the lifespan, not at import or in ``create_app``, so building
the app is free and a test can make as many as it likes.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import shutil
import threading
from pathlib import Path

import anyio
from fastapi import Request

from holotune import __version__, extras
from holotune.registry import redact_uri
from holotune.service import pipeline
from holotune.service.follower import ModelFollower
from holotune.service.jobs import Job, JobStore
from holotune.service.runner import JobRunner
from holotune.service.security import PathRejected, is_loopback, load_token, resolve_in_workspace
from holotune.service.settings import ServiceSettings

log = logging.getLogger("holotune.service")


class ServiceError(RuntimeError):
    """The service cannot start; the message says what to fix."""


class Service:
    """Everything one running service holds; built and torn down by the app's lifespan."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.loopback = is_loopback(settings.host)
        self.state_dir = Path(settings.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.state_dir / "service.lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise ServiceError(f"another holotune service is using {self.state_dir}") from None
        self.token, self.token_source = load_token(settings.token, settings.token_file, self.state_dir)
        # The serving install (no [train] extra) runs no jobs: the job endpoints answer 503 saying so.
        self.training_missing = extras.training_missing() if settings.finetune_api else []
        self.jobs_enabled = settings.finetune_api and not self.training_missing
        if self.jobs_enabled and settings.project_root is None:
            raise ServiceError("no project root with stages/ and conf/ found: pass --project-root "
                               "(or $HOLOTUNE_PROJECT_ROOT), or --no-finetune-api")
        pipeline.quote(str(settings.workspace))  # a workspace path the stages could not be given fails here
        self.store = JobStore(self.state_dir / "jobs.db")
        self.runner = JobRunner(self.store, settings.python, self.state_dir, settings.max_running_jobs,
                                settings.cancel_grace_s, recheck=self._recheck_paths)
        self._tick_lock = threading.Lock()  # the runner is not thread-safe: one tick or cancel at a time
        self.holistic = None
        self.follower = None
        self.infer_limiter = anyio.CapacityLimiter(settings.infer_concurrency)
        self.infer_pending = 0
        self.stream_sessions = 0  # open WebSocket sessions on /api/v1/stream
        # Uploaded videos wait here for OpenCV, which reads files; emptied at start (a crash's leftovers).
        self.upload_dir = self.state_dir / "uploads"
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        from holotune.runtime import Holistic, ModelLoadError

        failed = self.runner.recover()
        shutil.rmtree(self.upload_dir, ignore_errors=True)
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        if failed:
            log.warning("jobs marked failed at start (their process was gone): %s", ", ".join(failed))
        try:
            self.holistic = Holistic()
        except ModelLoadError as exc:
            raise ServiceError(f"{exc} (holotune serve does it for you)") from None
        self.follower = ModelFollower(self.holistic, self.settings.tracking_uri, self.settings.alias,
                                      self.state_dir / "serving", pose_threads=min(2, os.cpu_count() or 1))
        await anyio.to_thread.run_sync(self.follower.check)
        if self.jobs_enabled:
            self._tasks.append(asyncio.create_task(self._run_jobs()))
        elif self.training_missing:
            log.warning("%s", extras.needs_training("the fine-tuning API", self.training_missing))
        if extras.registry_missing():
            log.warning("%s; serving the stock models", extras.needs_registry("following the registry alias"))
        elif self.settings.poll_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._follow_models()))
        log.info("holotune service %s: workspace %s, jobs in %s, registry %s, token from %s, serving %s", __version__,
                 self.settings.workspace, self.state_dir, redact_uri(self.settings.tracking_uri), self.token_source,
                 self.follower.versions())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.holistic is not None:
            self.holistic.close()
        # Running jobs are left running: they are their own process groups, record their own
        # end, and the next service start adopts them.
        self.release()

    def release(self) -> None:
        """Give up the state folder (another service may use it from now on)."""
        self._lock_file.close()

    def tick(self) -> None:
        """One job runner pass (see :meth:`JobRunner.tick`)."""
        with self._tick_lock:
            self.runner.tick()

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job, between two runner passes (see :meth:`JobRunner.cancel`)."""
        with self._tick_lock:
            return self.runner.cancel(job_id)

    def process(self, rgb):
        """Holistic on one image, and the model versions that computed it."""
        with self.follower.lock.reading():
            return self.holistic.process(rgb), self.follower.versions()

    def track(self, stream, rgb, timestamp_ms: float | None):
        """The next frame of a video-mode ``stream`` (from ``self.holistic.stream()``), and the model
        versions that computed it. Each frame holds the swap lock alone, so a promoted model comes
        in between two frames of a running video or WebSocket session, and no frame is dropped."""
        with self.follower.lock.reading():
            return stream.process(rgb, timestamp_ms), self.follower.versions()

    async def _run_jobs(self) -> None:
        while True:
            try:
                await anyio.to_thread.run_sync(self.tick)
            except Exception:  # keep scheduling; the next tick retries
                log.exception("job runner tick failed")
            await asyncio.sleep(self.settings.job_poll_s)

    async def _follow_models(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            try:
                await anyio.to_thread.run_sync(self.follower.check)
            except Exception:
                log.exception("registry check failed")

    def _recheck_paths(self, job: Job) -> str | None:
        """Re-resolve a job's request paths just before it starts (a symlink may have moved)."""
        for field in ("dataset_path", "checkpoint_dir"):
            value = job.request.get(field)
            if value is None:
                continue
            try:
                resolved = resolve_in_workspace(value, self.settings.workspace, field,
                                                must_exist=field == "dataset_path")
            except PathRejected as exc:
                return f"{exc} (checked again when the job started)"
            if str(resolved) != value:
                return f"{field}: {value} now resolves to {resolved} (changed since submission)"
        return None


def get_service(request: Request) -> Service:
    """The dependency every route takes: the running app's :class:`Service`."""
    return request.app.state.service
