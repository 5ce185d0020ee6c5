"""What the routers share: the bearer scheme for /docs, job ids and job lookups, job summaries."""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPBearer

from holotune.service import pipeline
from holotune.service.jobs import Job
from holotune.service.state import Service

# Documents the bearer scheme in /docs (the Authorize button); the TokenGuard middleware does the checking.
BEARER = [Depends(HTTPBearer(auto_error=False, description="the service's API token"))]
JOB_ID_PATTERN = r"^(ft|pr)_\d{8}_[a-z_]+\d+$"
JobId = Query(..., pattern=JOB_ID_PATTERN, description="e.g. ft_20250405_face_mesh01")


def find_job(service: Service, job_id: str) -> Job:
    """The job, or 404."""
    job = service.store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


def log_url(service: Service, request: Request, job_id: str) -> str:
    """Where the job's plain-text log is: under ``public_url`` if set, else under the request's base URL."""
    base = (service.settings.public_url or str(request.base_url)).rstrip("/")
    return f"{base}/logs/{job_id}"


def job_summary(service: Service, request: Request, job: Job) -> dict:
    """:meth:`Job.summary` plus its ``log_url`` and, for a fine-tuning job whose ingest has run, the
    test split it made (:func:`pipeline.split_facts`)."""
    split = pipeline.split_facts(Path(job.job_dir), job.module) if job.kind == "finetune" else None
    return {**job.summary(), "test_split": split, "log_url": log_url(service, request, job.id)}
