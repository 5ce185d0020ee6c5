"""The HTTP service: the original fine-tuning API, pruning, and Holistic inference with hot model updates.

    from holotune.service import ServiceSettings, create_app
    app = create_app(ServiceSettings(workspace="/workspace"))     # uvicorn.run(app, host=..., port=...)

Everything heavy (the job table, the ONNX sessions, the registry follower, the job runner) is
created in the lifespan, not at import or in ``create_app``, so building the app is free and a
test can make as many as it likes. The service process never imports torch: jobs run in their
own processes, inference on ONNX Runtime.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import logging
import math
import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPBearer

from holotune import __version__
from holotune.service import pipeline
from holotune.service.follower import ModelFollower
from holotune.service.jobs import FINISHED, JOB_PREFIX, QUEUED, RUNNING, STATUSES, Job, JobStore
from holotune.service.runner import JobRunner
from holotune.service.schemas import (
    FinetuneRequest,
    LogResponse,
    MetricsResponse,
    PruneRequest,
    StartResponse,
    StatusResponse,
)
from holotune.service.security import (
    BodySizeLimit,
    PathRejected,
    is_loopback,
    load_token,
    resolve_in_workspace,
    send_json_error,
    token_matches,
)
from holotune.service.settings import ServiceSettings, resolve_settings

log = logging.getLogger("holotune.service")
JOB_ID_PATTERN = r"^(ft|pr)_\d{8}_[a-z_]+\d+$"
INFER_PATH = "/api/v1/infer"
# Paths open without a token even on a public bind: the OpenAPI schema and its viewers.
OPEN_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
LOG_CHUNK_BYTES = 1 << 20  # most bytes of log one response carries


class ServiceError(RuntimeError):
    """The service cannot start; the message says what to fix."""


def _body_error(field: str, message: str, value=None) -> dict:
    return {"loc": ("body", field), "msg": message, "type": "value_error", "input": value}


def field_error(field: str, message: str, value=None) -> RequestValidationError:
    """A 422 in FastAPI's own shape, naming the body field."""
    return RequestValidationError([_body_error(field, message, value)])


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
        if settings.finetune_api and settings.project_root is None:
            raise ServiceError("no project root with stages/ and conf/ found: pass --project-root "
                               "(or $HOLOTUNE_PROJECT_ROOT), or --no-finetune-api")
        pipeline.quote(str(settings.workspace))  # a workspace path the stages could not be given fails here
        self.store = JobStore(self.state_dir / "jobs.db")
        self.runner = JobRunner(self.store, settings.python, self.state_dir, settings.max_running_jobs,
                                settings.cancel_grace_s, recheck=self._recheck_paths)
        self._tick_lock = threading.Lock()
        self.holistic = None
        self.follower = None
        self.infer_limiter = anyio.CapacityLimiter(settings.infer_concurrency)
        self.infer_pending = 0
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        from holotune.runtime import Holistic, ModelLoadError

        failed = self.runner.recover()
        if failed:
            log.warning("jobs marked failed at start (their process was gone): %s", ", ".join(failed))
        try:
            self.holistic = Holistic()
        except ModelLoadError as exc:
            raise ServiceError(f"{exc} (holotune serve does it for you)") from None
        self.follower = ModelFollower(self.holistic, self.settings.tracking_uri, self.settings.alias,
                                      self.state_dir / "serving", pose_threads=min(2, os.cpu_count() or 1))
        await anyio.to_thread.run_sync(self.follower.check)
        if self.settings.finetune_api:
            self._tasks.append(asyncio.create_task(self._run_jobs()))
        if self.settings.poll_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._follow_models()))
        log.info("holotune service %s: workspace %s, jobs in %s, token from %s, serving %s", __version__,
                 self.settings.workspace, self.state_dir, self.token_source, self.follower.versions())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.holistic is not None:
            self.holistic.close()
        # Running jobs are left running: they are their own process groups, record their own
        # end, and the next service start adopts them.
        self._lock_file.close()

    def tick(self) -> None:
        with self._tick_lock:
            self.runner.tick()

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

    def process(self, rgb):
        """Holistic on one image, and the model versions that computed it."""
        with self.follower.lock.reading():
            return self.holistic.process(rgb), self.follower.versions()


class TokenGuard:
    """ASGI middleware: the bearer token, checked before the body is read or validated.

    Mutating requests (every POST but ``/api/v1/infer``) always need it; on a bind that is not
    loopback every request does, except the OpenAPI pages. Missing: 401 with
    ``WWW-Authenticate: Bearer``; wrong: 403.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        service: Service | None = getattr(scope["app"].state, "service", None)
        path, method = scope["path"], scope["method"]
        mutating = method not in ("GET", "HEAD", "OPTIONS") and path != INFER_PATH
        if service is None or path in OPEN_PATHS or (service.loopback and not mutating):
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            why = "this endpoint" if service.loopback else "every endpoint on a non-loopback bind"
            return await send_json_error(send, 401, f"{why} needs a bearer token: send 'Authorization: Bearer "
                                                    "<token>' (the service's start-up log says where its token is)",
                                         [(b"www-authenticate", b"Bearer")])
        if not token_matches(given.strip(), service.token):
            return await send_json_error(send, 403, "wrong bearer token")
        return await self.app(scope, receive, send)


class FormAsJson:
    """ASGI middleware: a JSON endpoint's body sent as ``application/x-www-form-urlencoded`` (or with
    no type) is read as JSON. The original API's documented prune call is
    ``curl -X POST .../model/prune -d '{"method": "l1_norm", "sparsity": 0.3}'``, and ``curl -d``
    labels its body form-encoded."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] != INFER_PATH:
            headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"content-type"]
            kind = dict(scope.get("headers") or []).get(b"content-type", b"").split(b";")[0].strip().lower()
            if kind in (b"", b"application/x-www-form-urlencoded"):
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        return await self.app(scope, receive, send)


def _json_safe(value):
    """``value`` with non-finite floats as strings: Python's json reads ``NaN``, JSON cannot carry it back."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body (``{"detail": [{"loc", "msg", "type", "input"}]}``), safe for any input."""
    return JSONResponse(status_code=422, content={"detail": _json_safe(jsonable_encoder(exc.errors()))})


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The FastAPI app for ``settings`` (defaults: loopback, the current folder as workspace)."""
    settings = resolve_settings(settings or ServiceSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service = Service(settings)
        try:
            await service.start()
            app.state.service = service
            yield
        finally:
            app.state.service = None
            await service.stop()

    app = FastAPI(title="holotune", version=__version__, lifespan=lifespan,
                  description="Fine-tune MediaPipe Holistic's landmark models and serve them on ONNX Runtime. "
                              "Mutating endpoints need `Authorization: Bearer <token>`.")
    app.state.service = None
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(FormAsJson)
    app.add_middleware(BodySizeLimit, default_limit=settings.max_body_bytes,
                       limits={INFER_PATH: settings.max_upload_bytes})
    app.add_middleware(TokenGuard)
    # Documents the bearer scheme in /docs (the Authorize button); TokenGuard does the checking.
    bearer = [Depends(HTTPBearer(auto_error=False, description="the service's API token"))]

    def service_of(request: Request) -> Service:
        return request.app.state.service

    def base_url(request: Request) -> str:
        return (settings.public_url or str(request.base_url)).rstrip("/")

    def summary(job: Job, request: Request) -> dict:
        return {**job.summary(), "log_url": f"{base_url(request)}/logs/{job.id}"}

    def finetune_api() -> None:
        if not settings.finetune_api:
            raise HTTPException(404, "the fine-tuning API is off (start the service without --no-finetune-api)")

    def get_job(request: Request, job_id: str) -> Job:
        job = service_of(request).store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    JobId = Query(..., pattern=JOB_ID_PATTERN, description="e.g. ft_20250405_face_mesh01")

    # ------------------------------------------------------------------ fine-tuning jobs
    @app.get("/api/v1/finetune/status", response_model=StatusResponse, tags=["finetune"], dependencies=bearer)
    def status(request: Request) -> dict:
        """`{"status": "ready", "version": ...}`, plus the running jobs and the queue length."""
        store = service_of(request).store
        return {"status": "ready", "version": __version__,
                "running": [summary(j, request) for j in store.list(status=RUNNING)], "queued": store.count(QUEUED)}

    async def submit(request: Request, kind: str, module: str, body: dict, build) -> dict:
        service = service_of(request)
        job = service.store.create(kind, module, body, service.state_dir, build)
        await anyio.to_thread.run_sync(service.tick)  # start it now if a slot is free
        job = service.store.get(job.id)
        return {"job_id": job.id, "status": "queued" if job.status == QUEUED else "running",
                "log_url": f"{base_url(request)}/logs/{job.id}"}

    @app.post("/api/v1/finetune/start", response_model=StartResponse, tags=["finetune"], dependencies=bearer,
              responses={422: {"description": "a field is invalid (named in `detail[].loc`)"}})
    async def start(body: FinetuneRequest, request: Request) -> dict:
        """Queue a fine-tuning job: ingest -> tfrecord -> finetune on `dataset_path`."""
        finetune_api()
        errors = list(body.field_errors())
        fields = body.model_dump(exclude_none=True)
        for field, must_exist in (("dataset_path", True), ("checkpoint_dir", False)):
            if field in fields:
                try:
                    fields[field] = str(resolve_in_workspace(fields[field], settings.workspace, field,
                                                             must_exist=must_exist,
                                                             want="any" if must_exist else "dir"))
                except PathRejected as exc:
                    errors.append((field, exc.reason))
        if not errors and "dataset_kind" not in fields:
            try:
                fields["dataset_kind"] = pipeline.detect_dataset_kind(Path(fields["dataset_path"]), body.task_type)
            except pipeline.DatasetKindError as exc:
                errors.append(("dataset_path", str(exc)))
        if errors:
            raise RequestValidationError([_body_error(f, m, getattr(body, f, None)) for f, m in errors])
        build = lambda job_id, job_dir: pipeline.finetune_commands(  # noqa: E731
            fields, job_dir, project_root=settings.project_root, python=settings.python, cwd=settings.state_dir,
            tracking_uri=settings.tracking_uri)
        return await submit(request, "finetune", body.module, fields, build)

    @app.post("/api/v1/model/prune", response_model=StartResponse, tags=["finetune"], dependencies=bearer)
    async def prune(body: PruneRequest, request: Request) -> dict:
        """Queue a pruning job on a completed fine-tuning job's model (`job_id`, default the latest)."""
        finetune_api()
        store = service_of(request).store
        if body.job_id:
            source = store.get(body.job_id)
            if source is None or source.kind != "finetune":
                raise field_error("job_id", f"no fine-tuning job {body.job_id}", body.job_id)
            if source.status != "completed":
                raise field_error("job_id", f"job {body.job_id} is {source.status}, not completed", body.job_id)
        else:
            done = store.list(status="completed", kind="finetune", module=body.module, limit=1)
            if not done:
                raise field_error("job_id", "no completed fine-tuning job" + (f" of module {body.module}" if
                                  body.module else "") + " to prune; start one with /api/v1/finetune/start")
            source = done[0]
        if body.module and body.module != source.module:
            raise field_error("module", f"job {source.id} fine-tuned {source.module}, not {body.module}", body.module)
        fields = {**body.model_dump(exclude_none=True), "module": source.module, "job_id": source.id}
        build = lambda job_id, job_dir: pipeline.prune_commands(  # noqa: E731
            fields, Path(source.job_dir), job_dir, project_root=settings.project_root, python=settings.python,
            cwd=settings.state_dir, tracking_uri=settings.tracking_uri)
        return await submit(request, "prune", source.module, fields, build)

    @app.get("/api/v1/finetune/jobs", tags=["finetune"], dependencies=bearer)
    def jobs(request: Request, status: str | None = Query(None, pattern=f"^({'|'.join(STATUSES)})$"),
             kind: str | None = Query(None, pattern=f"^({'|'.join(JOB_PREFIX)})$"),
             limit: int = Query(100, ge=1, le=1000)) -> dict:
        """Every job, newest first."""
        finetune_api()
        return {"jobs": [summary(j, request) for j in service_of(request).store.list(status, kind, limit=limit)]}

    @app.get("/api/v1/finetune/jobs/{job_id}", tags=["finetune"], dependencies=bearer)
    def job_detail(request: Request, job_id: str) -> dict:
        """One job: its summary, the request as resolved, the stage command lines and its result."""
        finetune_api()
        job = get_job(request, job_id)
        return {**summary(job, request), "request": job.request, "result": job.result,
                "commands": [{"stage": c["stage"], "cwd": c["cwd"], "argv": c["argv"]} for c in job.commands]}

    @app.post("/api/v1/finetune/cancel", tags=["finetune"], dependencies=bearer)
    def cancel(request: Request, job_id: str = JobId) -> dict:
        """Cancel a queued or running job (its processes get SIGTERM, then SIGKILL)."""
        finetune_api()
        service = service_of(request)
        job = get_job(request, job_id)
        if job.status in FINISHED:
            raise HTTPException(409, f"job {job_id} is already {job.status}")
        with service._tick_lock:
            job = service.runner.cancel(job_id)
        if job.status != "cancelled":  # it finished first
            raise HTTPException(409, f"job {job_id} is already {job.status}")
        return summary(job, request)

    def read_log(job: Job, offset: int | None, tail: int | None) -> tuple[int, bytes, int]:
        """(start offset, bytes, size now) of the job's log: from ``offset``, or the last ``tail`` lines."""
        path = Path(job.log_path)
        size = path.stat().st_size if path.is_file() else 0
        if size == 0:
            return 0, b"", 0
        with open(path, "rb") as fh:
            if tail is not None:
                start = max(0, size - LOG_CHUNK_BYTES)
                fh.seek(start)
                data = fh.read(size - start)
                lines = data.splitlines(keepends=True)[-tail:] if tail else []
                data = b"".join(lines)
                return size - len(data), data, size
            start = min(offset or 0, size)
            fh.seek(start)
            data = fh.read(min(LOG_CHUNK_BYTES, size - start))
        if start + len(data) < size and b"\n" in data:  # cut at a line end, not inside a UTF-8 character
            data = data[: data.rindex(b"\n") + 1]
        return start, data, size

    @app.get("/api/v1/finetune/logs", response_model=LogResponse, tags=["finetune"], dependencies=bearer)
    def logs(request: Request, job_id: str = JobId, offset: int | None = Query(None, ge=0),
             tail: int | None = Query(None, ge=0, le=100_000)) -> dict:
        """The job's log (stage output), from byte `offset` or its last `tail` lines, 1 MiB at most."""
        finetune_api()
        job = get_job(request, job_id)
        start, data, size = read_log(job, offset, tail)
        return {"job_id": job.id, "status": job.status, "offset": start, "next_offset": start + len(data),
                "size": size, "text": data.decode("utf-8", "replace")}

    @app.get("/logs/{job_id}", tags=["finetune"], dependencies=bearer, response_class=PlainTextResponse)
    async def log_text(request: Request, job_id: str, offset: int | None = Query(None, ge=0),
                       tail: int | None = Query(None, ge=0, le=100_000), follow: bool = False):
        """The job's log as plain text (the `log_url`); `follow=true` streams it until the job ends."""
        finetune_api()
        job = get_job(request, job_id)
        if not follow:
            _, data, _ = read_log(job, offset, tail)
            return PlainTextResponse(data.decode("utf-8", "replace"))
        store = service_of(request).store

        async def stream():
            start, data, _ = read_log(job, offset, tail)
            position = start + len(data)
            yield data
            while True:
                current = store.get(job_id)
                _, data, size = read_log(current, position, None)
                position += len(data)
                if data:
                    yield data
                elif current.status in FINISHED and position >= size:
                    return
                else:
                    await asyncio.sleep(0.5)

        return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")

    @app.get("/api/v1/finetune/metrics", response_model=MetricsResponse, tags=["finetune"], dependencies=bearer)
    async def metrics(request: Request, job_id: str = JobId) -> dict:
        """The latest `loss`, `val_loss` and `epoch` (epochs completed), and every logged metric."""
        from holotune.service.metrics import latest_metrics

        finetune_api()
        job = get_job(request, job_id)
        if job.kind == "finetune":
            tensorboard = pipeline.finetune_outputs(Path(job.job_dir), job.module)["tensorboard"]
            latest = await anyio.to_thread.run_sync(latest_metrics, tensorboard)
        else:
            latest = {"loss": None, "val_loss": None, "epoch": 0, "step": None, "metrics": {}}
        return {"job_id": job.id, "status": job.status, "epochs": job.request.get("epochs"), **latest,
                "result": job.result}

    # ------------------------------------------------------------------ inference and models
    @app.post(INFER_PATH, tags=["inference"], dependencies=bearer)
    async def infer(request: Request, image: UploadFile = File(..., description="a JPEG/PNG/... image")) -> dict:
        """The 543 keypoints of one image, as `holotune infer --json` prints them, plus `models`: the
        registry version of each part that computed them (`null`: the stock export)."""
        service = service_of(request)
        if service.infer_pending >= settings.max_pending_infer:  # before decoding: refuse without the work
            raise HTTPException(503, f"{service.infer_pending} inference requests already pending; retry later",
                                headers={"Retry-After": "1"})
        service.infer_pending += 1
        try:
            # Decoding (up to max_image_pixels) runs in a thread, not on the event loop, and outside
            # the inference limiter, so it overlaps the image being processed.
            rgb = await anyio.to_thread.run_sync(decode_upload, await image.read(), image.filename or "image",
                                                 settings.max_image_pixels)
            result, versions = await anyio.to_thread.run_sync(service.process, rgb, limiter=service.infer_limiter)
        finally:
            service.infer_pending -= 1
        return {"image": image.filename, "width": rgb.shape[1], "height": rgb.shape[0], **result.to_dict(),
                "models": versions}

    @app.get("/api/v1/models", tags=["inference"], dependencies=bearer)
    def models(request: Request) -> dict:
        """Which registry version serves each part, the alias followed, and the last check's error."""
        return service_of(request).follower.state()

    @app.post("/api/v1/models/reload", tags=["inference"], dependencies=bearer)
    async def reload(request: Request) -> dict:
        """Check the registry now; load, verify and swap every part whose alias moved. A part that
        fails keeps its old model and reports why in `error`."""
        follower = service_of(request).follower
        checked = await anyio.to_thread.run_sync(lambda: follower.check(force=True))
        return {"alias": follower.alias, "parts": checked}

    return app


def decode_upload(data: bytes, name: str, max_pixels: int):
    """An uploaded image to (H, W, 3) uint8 RGB; 422 naming ``image`` if it is not one, 413 if too large."""
    from holotune.runtime.image import ImageError, ImageTooLargeError, decode_image

    if not data:
        raise field_error("image", f"{name}: empty file")
    try:
        return decode_image(io.BytesIO(data), name, max_pixels)
    except ImageTooLargeError as exc:
        raise HTTPException(413, f"image: {exc}") from None
    except ImageError as exc:
        raise field_error("image", str(exc)) from None
