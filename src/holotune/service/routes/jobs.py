"""The fine-tuning API: queue fine-tuning and pruning jobs, list, inspect and cancel them, and read
their metrics. ``router`` is included only when the API is on; ``status_router`` (the readiness
check, also the original API's) always is."""

from __future__ import annotations

from pathlib import Path

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError

from holotune import __version__
from holotune.service import pipeline
from holotune.service.errors import body_error, field_error
from holotune.service.jobs import FINISHED, JOB_PREFIX, QUEUED, RUNNING, STATUSES
from holotune.service.routes.common import BEARER, JobId, find_job, job_summary, log_url
from holotune.service.schemas import FinetuneRequest, MetricsResponse, PruneRequest, StartResponse, StatusResponse
from holotune.service.security import PathRejected, resolve_in_workspace
from holotune.service.state import Service, get_service

router = APIRouter(tags=["finetune"], dependencies=BEARER)
status_router = APIRouter(tags=["finetune"], dependencies=BEARER)
SWITCHED_OFF = "the fine-tuning API is off (start the service without --no-finetune-api)"


@status_router.get("/api/v1/finetune/status", response_model=StatusResponse)
def status(request: Request, service: Service = Depends(get_service)) -> dict:
    """`{"status": "ready", "version": ...}`, plus the running jobs and the queue length."""
    store = service.store
    return {"status": "ready", "version": __version__,
            "running": [job_summary(service, request, j) for j in store.list(status=RUNNING)],
            "queued": store.count(QUEUED)}


async def submit(service: Service, request: Request, kind: str, module: str, body: dict, build) -> dict:
    """Queue a job, and start it now if a slot is free."""
    job = service.store.create(kind, module, body, service.state_dir, build)
    await anyio.to_thread.run_sync(service.tick)
    job = service.store.get(job.id)
    return {"job_id": job.id, "status": "queued" if job.status == QUEUED else "running",
            "log_url": log_url(service, request, job.id)}


@router.post("/api/v1/finetune/start", response_model=StartResponse,
             responses={422: {"description": "a field is invalid (named in `detail[].loc`)"}})
async def start(body: FinetuneRequest, request: Request, service: Service = Depends(get_service)) -> dict:
    """Queue a fine-tuning job: ingest -> tfrecord -> finetune -> evaluate (against stock, on the job's test
    split, through the forgetting gate) -> export (ONNX and .tflite, registered as `challenger`) on `dataset_path`."""
    settings = service.settings
    errors = list(body.field_errors())
    fields = body.model_dump(exclude_none=True)
    for field, must_exist in (("dataset_path", True), ("checkpoint_dir", False)):
        if field in fields:
            try:
                fields[field] = str(resolve_in_workspace(fields[field], settings.workspace, field,
                                                         must_exist=must_exist, want="any" if must_exist else "dir"))
            except PathRejected as exc:
                errors.append((field, exc.reason))
    if not errors and "dataset_kind" not in fields:
        try:
            fields["dataset_kind"] = pipeline.detect_dataset_kind(Path(fields["dataset_path"]), body.task_type)
        except pipeline.DatasetKindError as exc:
            errors.append(("dataset_path", str(exc)))
    if errors:
        raise RequestValidationError([body_error(f, m, getattr(body, f, None)) for f, m in errors])
    build = lambda job_id, job_dir: pipeline.finetune_commands(  # noqa: E731
        fields, job_dir, project_root=settings.project_root, python=settings.python, cwd=settings.state_dir,
        tracking_uri=settings.tracking_uri)
    return await submit(service, request, "finetune", body.module, fields, build)


@router.post("/api/v1/model/prune", response_model=StartResponse)
async def prune(body: PruneRequest, request: Request, service: Service = Depends(get_service)) -> dict:
    """Queue a pruning job on a completed fine-tuning job's model (`job_id`, default the latest)."""
    settings, store = service.settings, service.store
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
    return await submit(service, request, "prune", source.module, fields, build)


@router.get("/api/v1/finetune/jobs")
def jobs(request: Request, status: str | None = Query(None, pattern=f"^({'|'.join(STATUSES)})$"),
         kind: str | None = Query(None, pattern=f"^({'|'.join(JOB_PREFIX)})$"),
         limit: int = Query(100, ge=1, le=1000), service: Service = Depends(get_service)) -> dict:
    """Every job, newest first."""
    return {"jobs": [job_summary(service, request, j) for j in service.store.list(status, kind, limit=limit)]}


@router.get("/api/v1/finetune/jobs/{job_id}")
def job_detail(request: Request, job_id: str, service: Service = Depends(get_service)) -> dict:
    """One job: its summary, the request as resolved, the stage command lines and its result."""
    job = find_job(service, job_id)
    return {**job_summary(service, request, job), "request": job.request, "result": job.result,
            "commands": [{"stage": c["stage"], "cwd": c["cwd"], "argv": c["argv"]} for c in job.commands]}


@router.post("/api/v1/finetune/cancel")
def cancel(request: Request, job_id: str = JobId, service: Service = Depends(get_service)) -> dict:
    """Cancel a queued or running job (its processes get SIGTERM, then SIGKILL)."""
    job = find_job(service, job_id)
    if job.status in FINISHED:
        raise HTTPException(409, f"job {job_id} is already {job.status}")
    job = service.cancel(job_id)
    if job.status != "cancelled":  # it finished first
        raise HTTPException(409, f"job {job_id} is already {job.status}")
    return job_summary(service, request, job)


@router.get("/api/v1/finetune/metrics", response_model=MetricsResponse)
async def metrics(job_id: str = JobId, service: Service = Depends(get_service)) -> dict:
    """The latest `loss`, `val_loss` and `epoch` (epochs completed), and every logged metric; the stages;
    the test split; the evaluation's before/after figures and gate; the registered version."""
    from holotune.service.metrics import latest_metrics

    job = find_job(service, job_id)
    facts = {"test_split": None, "evaluation": None, "registered": None}
    if job.kind == "finetune":
        job_dir = Path(job.job_dir)
        tensorboard = pipeline.finetune_outputs(job_dir, job.module)["tensorboard"]
        latest = await anyio.to_thread.run_sync(latest_metrics, tensorboard)
        facts = {"test_split": pipeline.split_facts(job_dir, job.module),
                 "evaluation": pipeline.evaluation_facts(job_dir, job.module),
                 "registered": pipeline.registered_facts(job_dir, job.module)}
    else:
        latest = {"loss": None, "val_loss": None, "epoch": 0, "step": None, "metrics": {}}
    return {"job_id": job.id, "status": job.status, "epochs": job.request.get("epochs"), **latest,
            "result": job.result, "stage": job.stage, "stages": job.stage_list(), **facts}
