"""A job's own process: runs its stage command lines in order and records the outcome.

    python -m holotune.service.worker <jobs.db> <job_id>

The service starts it in a new session (its own process group), so cancelling a job kills the
worker and whatever stage it is running at once, and stopping the service leaves running jobs
alone: a restarted service finds them by pid. Stage output (stdout and stderr) is appended to
the job's log; each stage starts with a header naming the command, to rerun it by hand.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from holotune.service.jobs import COMPLETED, FAILED, RUNNING, JobStore
from holotune.service.pipeline import result_path
from holotune.service.runner import describe_exit
from holotune.service.settings import TOKEN_ENV, TOKEN_FILE_ENV

# What an error line looks like in a stage's output: Python's last traceback line.
_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*")
# The worker's own lines in the log (stage headers and ends).
_WORKER_LINE = "[holotune] "
ERROR_CHARS = 2000  # the evaluate gate's message holds every gated split's figures


def last_error(log_path: str | Path, stage: str | None = None, tail_bytes: int = 16384) -> str:
    """Why a stage failed, from the log's tail: the last line that is an exception (``SomeError:
    message``) or, with ``stage``, the stage script's own error (``<stage>: message``, which names
    what failed: the evaluate gate's figures, a bad option); else the last line of output.

    With ``stage``, only the output after that stage's header counts; the worker's own lines never do.
    """
    with open(log_path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - tail_bytes))
        lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").replace("\r", "\n").splitlines()]
    if stage is not None:
        header = [i for i, ln in enumerate(lines) if ln.startswith(_WORKER_LINE) and f" stage {stage}: " in ln]
        lines = lines[header[-1] + 1:] if header else lines
    lines = [ln for ln in lines if ln and not ln.startswith(_WORKER_LINE)]
    errors = [ln for ln in lines if _ERROR_LINE.match(ln) or (stage is not None and ln.startswith(f"{stage}: "))]
    return (errors or lines or ["(no output)"])[-1][:ERROR_CHARS]


def run_job(db_path: str, job_id: str) -> int:
    """Run job ``job_id``'s stages; returns 0 when all passed (or the job was cancelled meanwhile)."""
    store = JobStore(db_path)
    job = store.get(job_id)
    if job is None:
        print(f"holotune worker: no job {job_id} in {db_path}", file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, TOKEN_FILE_ENV)}
    env["PYTHONUNBUFFERED"] = "1"  # the log is read while the job runs
    with open(job.log_path, "ab", buffering=0) as log:
        for command in job.commands:
            current = store.get(job_id)
            if current is None or current.status != RUNNING:  # cancelled between stages
                return 0
            stage = command["stage"]
            store.update(job_id, expect=RUNNING, stage=stage)
            store.record_stage(job_id, stage, status=RUNNING, started=time.time())
            log.write(f"[holotune] {time.strftime('%Y-%m-%d %H:%M:%S')} stage {stage}: "
                      f"(cd {shlex.quote(command['cwd'])} && {shlex.join(command['argv'])})\n".encode())
            started = time.perf_counter()
            code = subprocess.call(command["argv"], cwd=command["cwd"], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env)
            log.write(f"[holotune] stage {stage} {describe_exit(code)} after "
                      f"{time.perf_counter() - started:.1f} s\n".encode())
            store.record_stage(job_id, stage, status=COMPLETED if code == 0 else FAILED, ended=time.time(),
                               returncode=code)
            if code != 0:
                reason = f"stage {stage} {describe_exit(code)}: {last_error(job.log_path, stage)}"
                store.finish(job_id, FAILED, error=reason, returncode=code)
                return 1
        result_file = result_path(job.kind, Path(job.job_dir), job.module)
        result = None
        if result_file.is_file():
            try:
                result = json.loads(result_file.read_text())
            except ValueError:
                result = {"unreadable": str(result_file)}
        # The line goes first: a client that sees the status "completed" must find it in the log.
        log.write(f"[holotune] job {job_id} completed\n".encode())
        if not store.finish(job_id, COMPLETED, returncode=0, result=result):
            log.write(f"[holotune] job {job_id} was cancelled as its last stage ended: it stays cancelled\n".encode())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m holotune.service.worker <jobs.db> <job_id>", file=sys.stderr)
        return 2
    return run_job(*args)


if __name__ == "__main__":
    sys.exit(main())
