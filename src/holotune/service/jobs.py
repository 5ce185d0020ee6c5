"""The job table: one SQLite row per fine-tuning or pruning job, shared by the service and the workers.

The service inserts and schedules rows; each job's worker process (``holotune.service.worker``)
records its stage and its end in the same file, so a job that finishes while the service is down
is still recorded. WAL mode and a busy timeout let both processes write. Every status change is
conditional on the status it expects, so a cancel and a worker's "completed" cannot overwrite
each other: the first one wins.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = "queued", "running", "completed", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED)
FINISHED = (COMPLETED, FAILED, CANCELLED)
JOB_PREFIX = {"finetune": "ft", "prune": "pr"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    module      TEXT NOT NULL,
    status      TEXT NOT NULL,
    request     TEXT NOT NULL,
    commands    TEXT NOT NULL,
    job_dir     TEXT NOT NULL,
    log_path    TEXT NOT NULL,
    created_at  REAL NOT NULL,
    started_at  REAL,
    finished_at REAL,
    stage       TEXT,
    pid         INTEGER,
    pid_start   REAL,
    returncode  INTEGER,
    error       TEXT,
    result      TEXT,
    seq         INTEGER NOT NULL,
    stages      TEXT
)
"""
# Columns added since the first release, with their type: an older jobs.db gets them on open.
_ADDED_COLUMNS = {"stages": "TEXT"}


@dataclass
class Job:
    """One job row.

    Attributes:
        id: ``ft_<YYYYMMDD>_<module><n>`` (fine-tuning) or ``pr_<YYYYMMDD>_<module><n>`` (pruning).
        kind: ``finetune`` | ``prune``.
        status: ``queued`` | ``running`` | ``completed`` | ``failed`` | ``cancelled``.
        request: the validated request body, with paths resolved.
        commands: the stage command lines, ``[{"stage", "argv", "cwd"}]``, run in order.
        job_dir: the job's own folder (data, models, TensorBoard events, log).
        stage: the stage running now (or the last one that ran).
        stages: what each stage that started did: name -> ``{"status", "started", "ended", "returncode"}``
            (Unix times); the worker records it (``None``: a job from before it did). :meth:`stage_list`
            gives every stage, in order.
        pid, pid_start: the worker process and its start time, Unix seconds (tells a reused pid apart).
        error: why the job failed or was cancelled.
        result: the finished job's metrics or report.
        created_at, started_at, finished_at: Unix times (seconds).
    """

    id: str
    kind: str
    module: str
    status: str
    request: dict
    commands: list[dict]
    job_dir: str
    log_path: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    stage: str | None = None
    pid: int | None = None
    pid_start: float | None = None
    returncode: int | None = None
    error: str | None = None
    result: dict | None = None
    stages: dict | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        data = dict(row)
        data.pop("seq", None)
        data["request"] = json.loads(data["request"])
        data["commands"] = json.loads(data["commands"])
        data["result"] = json.loads(data["result"]) if data["result"] else None
        data["stages"] = json.loads(data["stages"]) if data.get("stages") is not None else None
        return cls(**data)

    def stage_list(self, now: float | None = None) -> list[dict]:
        """Every stage of the job, in order: ``{"name", "status", "started_at", "finished_at", "seconds"}``.

        ``status``: ``pending`` (not started yet), ``running``, ``completed``, ``failed`` or
        ``skipped`` (the job ended before it); a stage that was running when the job was cancelled
        or its worker died ends ``cancelled`` or ``failed`` at the job's end time. A job from before
        stages were recorded (``stages`` is ``None``) has them ``unknown``.
        """
        now = time.time() if now is None else now
        out = []
        for command in self.commands:
            name = command["stage"]
            record = (self.stages or {}).get(name, {})
            status, started, ended = record.get("status"), record.get("started"), record.get("ended")
            if self.stages is None:
                status = "unknown"
            elif status is None:
                status = "skipped" if self.status in FINISHED else "pending"
            elif status == RUNNING and self.status in FINISHED:  # cancelled, or the worker died mid-stage
                status = CANCELLED if self.status == CANCELLED else FAILED
                ended = self.finished_at
            seconds = None if started is None else round((ended or now) - started, 1)
            out.append({"name": name, "status": status, "started_at": _iso(started), "finished_at": _iso(ended),
                        "seconds": seconds})
        return out

    def summary(self) -> dict:
        """The public view: everything but the command lines and the worker's pid details."""
        return {"job_id": self.id, "kind": self.kind, "module": self.module, "status": self.status,
                "stage": self.stage, "stages": self.stage_list(), "created_at": _iso(self.created_at),
                "started_at": _iso(self.started_at), "finished_at": _iso(self.finished_at), "error": self.error,
                "returncode": self.returncode}


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


class JobStore:
    """The ``jobs`` table in ``path`` (created if missing)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            have = {r[1] for r in db.execute("PRAGMA table_info(jobs)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in have:
                    try:
                        db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
                    except sqlite3.OperationalError as exc:  # another process added it first
                        if "duplicate column" not in str(exc):
                            raise

    @contextmanager
    def _connect(self):
        # One short-lived connection per operation: the store is used from the event loop, worker
        # threads and other processes, and sqlite3 connections must not cross threads.
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    def create(self, kind: str, module: str, request: dict, job_root: Path, build_commands) -> Job:
        """Insert a queued job with the next free id for today and ``module``.

        Args:
            build_commands: ``(job_id, job_dir) -> list[dict]``: the stage command lines, which
                need the id and folder before the row exists.
        """
        prefix = f"{JOB_PREFIX[kind]}_{datetime.now():%Y%m%d}_{module}"
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # the id is read and taken in one write transaction
            try:
                taken = {r[0] for r in db.execute("SELECT id FROM jobs WHERE substr(id, 1, ?) = ?",
                                                  (len(prefix), prefix))}
                n = 1
                while f"{prefix}{n:02d}" in taken:
                    n += 1
                job_id = f"{prefix}{n:02d}"
                job_dir = job_root / job_id
                commands = build_commands(job_id, job_dir)
                seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
                db.execute(
                    "INSERT INTO jobs (id, kind, module, status, request, commands, job_dir, log_path, created_at, seq,"
                    " stages) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')",
                    (job_id, kind, module, QUEUED, json.dumps(request), json.dumps(commands), str(job_dir),
                     str(job_dir / "job.log"), time.time(), seq))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / "job.log").touch()
        return self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def list(self, status: str | None = None, kind: str | None = None, module: str | None = None,
             limit: int = 100) -> list[Job]:
        """Newest first."""
        where, args = [], []
        for column, value in (("status", status), ("kind", kind), ("module", module)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq DESC LIMIT ?"
        with self._connect() as db:
            return [Job.from_row(r) for r in db.execute(sql, (*args, limit))]

    def next_queued(self) -> Job | None:
        """The oldest queued job."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE status = ? ORDER BY seq LIMIT 1", (QUEUED,)).fetchone()
        return Job.from_row(row) if row else None

    def count(self, status: str) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (status,)).fetchone()[0]

    def update(self, job_id: str, expect: str | tuple[str, ...] | None = None, **fields) -> bool:
        """Set ``fields`` on the job, only if its status is ``expect`` (one or several); True if it changed.

        ``result`` is stored as JSON.
        """
        if "result" in fields and fields["result"] is not None:
            fields["result"] = json.dumps(fields["result"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        sql, args = f"UPDATE jobs SET {sets} WHERE id = ?", [*fields.values(), job_id]
        if expect is not None:
            expected = (expect,) if isinstance(expect, str) else tuple(expect)
            sql += f" AND status IN ({', '.join('?' * len(expected))})"
            args += expected
        with self._connect() as db:
            return db.execute(sql, args).rowcount == 1

    def record_stage(self, job_id: str, stage: str, **fields) -> None:
        """Merge ``fields`` (``status``, ``started``, ``ended``, ``returncode``) into the job's record of
        ``stage`` (the worker calls it as each stage starts and ends)."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # read and write in one transaction
            try:
                row = db.execute("SELECT stages FROM jobs WHERE id = ?", (job_id,)).fetchone()
                if row is not None:
                    stages = json.loads(row[0]) if row[0] else {}
                    stages[stage] = {**stages.get(stage, {}), **fields}
                    db.execute("UPDATE jobs SET stages = ? WHERE id = ?", (json.dumps(stages), job_id))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def finish(self, job_id: str, status: str, *, error: str | None = None, returncode: int | None = None,
               result: dict | None = None, expect: str | tuple[str, ...] = RUNNING) -> bool:
        """Move a job to a final status (only from ``expect``); True if this call did it."""
        fields = {"status": status, "finished_at": time.time(), "error": error, "returncode": returncode}
        if result is not None:
            fields["result"] = result
        return self.update(job_id, expect=expect, **fields)
