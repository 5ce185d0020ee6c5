"""A job's log (its stages' output): JSON chunks by byte offset or last lines, and the plain-text
``log_url``, which can follow the log until the job ends. Part of the fine-tuning API."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse, StreamingResponse

from holotune.service.jobs import FINISHED, Job
from holotune.service.routes.common import BEARER, JobId, find_job
from holotune.service.schemas import LogResponse
from holotune.service.state import Service, get_service

router = APIRouter(tags=["finetune"], dependencies=BEARER)
LOG_CHUNK_BYTES = 1 << 20  # most bytes of log one response carries
Offset = Query(None, ge=0)
Tail = Query(None, ge=0, le=100_000)


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


@router.get("/api/v1/finetune/logs", response_model=LogResponse)
def logs(job_id: str = JobId, offset: int | None = Offset, tail: int | None = Tail,
         service: Service = Depends(get_service)) -> dict:
    """The job's log (stage output), from byte `offset` or its last `tail` lines, 1 MiB at most."""
    job = find_job(service, job_id)
    start, data, size = read_log(job, offset, tail)
    return {"job_id": job.id, "status": job.status, "offset": start, "next_offset": start + len(data),
            "size": size, "text": data.decode("utf-8", "replace")}


@router.get("/logs/{job_id}", response_class=PlainTextResponse)
async def log_text(job_id: str, offset: int | None = Offset, tail: int | None = Tail, follow: bool = False,
                   service: Service = Depends(get_service)):
    """The job's log as plain text (the `log_url`); `follow=true` streams it until the job ends."""
    job = find_job(service, job_id)
    if not follow:
        _, data, _ = read_log(job, offset, tail)
        return PlainTextResponse(data.decode("utf-8", "replace"))
    return StreamingResponse(_follow(service, job, offset, tail), media_type="text/plain; charset=utf-8")


async def _follow(service: Service, job: Job, offset: int | None, tail: int | None):
    """The log from ``offset`` (or its last ``tail`` lines), then what is appended, until the job ends."""
    start, data, _ = read_log(job, offset, tail)
    position = start + len(data)
    yield data
    while True:
        current = service.store.get(job.id)
        _, data, size = read_log(current, position, None)
        position += len(data)
        if data:
            yield data
        elif current.status in FINISHED and position >= size:
            return
        else:
            await asyncio.sleep(0.5)
