"""The service end to end over real HTTP: the original API's sequence (status -> start on tiny data
-> logs -> metrics until done -> prune), a restart that keeps jobs, statuses and logs, the queue,
cancellation, a job whose process dies, and ``holotune tensorboard`` over the jobs' logs."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from datetime import datetime

import httpx
import pytest
from service_harness import ServerProcess, free_port, tiny_dataset, wait_for_job

import holotune
from holotune.service.jobs import JobStore

TODAY = datetime.now().strftime("%Y%m%d")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, shards):
    root = tmp_path_factory.mktemp("service") / "workspace"
    tiny_dataset(shards, root)
    return root


def _original_body(workspace, **extra) -> dict:
    """The article's start body, shrunk to tiny data (2 epochs of 2 batches). The forgetting gate is
    test_service_loop's subject: here the job must complete whatever two such epochs do to the reference
    NME (seen +1.4 %, near the 2 % allowance), so a regression is allowed (the model is still registered)."""
    return {"dataset_path": f"{workspace}/data/train.tfrecord", "module": "face_mesh", "epochs": 2,
            "batch_size": 8, "learning_rate": 1e-3, "lora_rank": 8, "freeze_backbone": True,
            "validation_split": 0.2, "checkpoint_dir": f"{workspace}/checkpoints/face_custom_v1",
            "gradient_clip": 1.0, "mixed_precision": False, "cache_dataset": True, "limit_train_batches": 2,
            "allow_regression": True, **extra}


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_original_sequence_survives_a_restart(workspace):
    server = ServerProcess(workspace).start()
    try:
        with server.client() as http:
            # 1. status, as the article's `curl .../status`
            assert http.get("/api/v1/finetune/status").json() == {
                "status": "ready", "version": holotune.__version__, "running": [], "queued": 0}
            # 2. start
            r = http.post("/api/v1/finetune/start", json=_original_body(workspace), headers=server.auth)
            assert r.status_code == 200, r.text
            started = r.json()
            job_id = started["job_id"]
            assert job_id == f"ft_{TODAY}_face_mesh01" and started["status"] == "running"
            assert started["log_url"] == f"{server.base}/logs/{job_id}"
            assert http.get("/api/v1/finetune/status").json()["running"][0]["job_id"] == job_id
            # 3. logs (followed by offset) and 4. metrics, until the job is done
            text, offset, seen_metrics = "", 0, []
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                chunk = http.get("/api/v1/finetune/logs", params={"job_id": job_id, "offset": offset}).json()
                assert chunk["offset"] == offset
                text += chunk["text"]
                offset = chunk["next_offset"]
                metrics = http.get("/api/v1/finetune/metrics", params={"job_id": job_id}).json()
                seen_metrics.append(metrics)
                if metrics["status"] in ("completed", "failed", "cancelled") and offset == chunk["size"]:
                    break
                time.sleep(0.5)
            assert metrics["status"] == "completed", text[-3000:]
            # The log holds every stage's command and output, in order.
            starts = [text.index(f"stage {s}: ") for s in ("ingest", "tfrecord", "finetune")]
            assert starts == sorted(starts)
            assert re.search(r"^ingest: \d+ in, \d+ kept", text, re.M) and "finetune: " in text
            assert text.rstrip().endswith(f"job {job_id} completed")
            # The metrics: the article's keys, the latest values, consistent with the run's metrics.json.
            assert metrics["epoch"] == 2 and metrics["epochs"] == 2
            assert metrics["loss"] == pytest.approx(metrics["result"]["train/loss_epoch"], rel=1e-6)
            assert metrics["val_loss"] == pytest.approx(metrics["result"]["val/loss"], rel=1e-6)
            assert metrics["metrics"]["val/nme"] > 0 and metrics["result"]["epochs_completed"] == 2
            # The request's checkpoint_dir was used; everything else is in the job's folder.
            assert {p.name for p in (workspace / "checkpoints" / "face_custom_v1").iterdir()} >= {"best.ckpt",
                                                                                                  "last.ckpt"}
            job_dir = workspace / "jobs" / job_id
            assert (job_dir / "models" / "face_mesh" / "model.pt").is_file()
            detail = http.get(f"/api/v1/finetune/jobs/{job_id}").json()
            assert [c["stage"] for c in detail["commands"]] == ["ingest", "tfrecord", "finetune", "evaluate", "export"]
            assert [s["status"] for s in detail["stages"]] == ["completed"] * 5
            assert "finetune.learning_rate=0.001" in detail["commands"][2]["argv"]
            # 5. prune, as the article's `curl -X POST .../model/prune -d '{"method": "l1_norm", "sparsity": 0.3}'`
            r = http.post("/api/v1/model/prune", content=json.dumps({"method": "l1_norm", "sparsity": 0.3}),
                          headers={**server.auth, "Content-Type": "application/x-www-form-urlencoded"})  # as curl -d
            assert r.status_code == 200, r.text
            prune_id = r.json()["job_id"]
            assert prune_id == f"pr_{TODAY}_face_mesh01"
            pruned = wait_for_job(http, prune_id, ("completed", "failed"))
            prune_log = http.get(f"/logs/{prune_id}").text
            assert pruned["status"] == "completed", prune_log[-3000:]
            assert f"prune.model=\"{job_dir}/models/face_mesh/model.pt\"" in prune_log
            before = {j: http.get(f"/logs/{j}").text for j in (job_id, prune_id)}
            final_metrics = http.get("/api/v1/finetune/metrics", params={"job_id": job_id}).json()
    finally:
        server.stop()
        server.kill_jobs()
    # The restarted service finds both jobs, their statuses, logs and metrics.
    server = ServerProcess(workspace, log_name="server2.log").start()
    try:
        with server.client() as http:
            jobs = {j["job_id"]: j for j in http.get("/api/v1/finetune/jobs").json()["jobs"]}
            assert {jobs[job_id]["status"], jobs[prune_id]["status"]} == {"completed"}
            assert jobs[job_id]["log_url"] == f"{server.base}/logs/{job_id}"
            assert {j: http.get(f"/logs/{j}").text for j in (job_id, prune_id)} == before
            assert http.get("/api/v1/finetune/metrics", params={"job_id": job_id}).json() == final_metrics
            # The day's numbering goes on after a restart.
            r = http.post("/api/v1/finetune/start", json=_original_body(workspace, epochs=1), headers=server.auth)
            assert r.json()["job_id"] == f"ft_{TODAY}_face_mesh02"
            assert http.post("/api/v1/finetune/cancel", params={"job_id": r.json()["job_id"]},
                             headers=server.auth).json()["status"] == "cancelled"
    finally:
        server.stop()
        server.kill_jobs()


def test_tensorboard_serves_every_jobs_logs(tmp_path):
    """``holotune tensorboard --workspace`` finds each job's event files (a real TensorBoard)."""
    import subprocess
    import sys

    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    for job in (f"ft_{TODAY}_face_mesh01", f"ft_{TODAY}_pose01"):  # what the finetune stage writes per job
        writer = EventFileWriter(str(tmp_path / "jobs" / job / "tensorboard" / "face_mesh" / "version_0"))
        writer.add_event(Event(step=1, wall_time=time.time(),
                               summary=Summary(value=[Summary.Value(tag="val/loss", simple_value=0.5)])))
        writer.close()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "holotune.cli", "tensorboard", "--workspace", str(tmp_path),
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, runs = time.monotonic() + 60, []
        while time.monotonic() < deadline and len(runs) < 2:
            try:
                runs = httpx.get(f"http://127.0.0.1:{port}/data/runs", timeout=2).json()
            except (httpx.TransportError, ValueError):
                time.sleep(0.5)
        assert sorted(runs) == [f"ft_{TODAY}_face_mesh01/tensorboard/face_mesh/version_0",
                                f"ft_{TODAY}_pose01/tensorboard/face_mesh/version_0"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def queue_server(workspace):
    server = ServerProcess(workspace, args=["--max-jobs", "1"], log_name="server-queue.log").start()
    yield server
    server.stop()
    server.kill_jobs()


def _long_job(server, http, workspace) -> str:
    r = http.post("/api/v1/finetune/start", headers=server.auth,
                  json=_original_body(workspace, epochs=500, checkpoint_dir="checkpoints/long"))
    assert r.status_code == 200, r.text
    return r.json()["job_id"]


def test_one_job_at_a_time_and_cancelling_queued_and_running_jobs(queue_server, workspace):
    server = queue_server
    store = JobStore(workspace / "jobs" / "jobs.db")
    with server.client() as http:
        first = _long_job(server, http, workspace)
        r = http.post("/api/v1/finetune/start", json=_original_body(workspace), headers=server.auth)
        second = r.json()["job_id"]
        assert r.json()["status"] == "queued"
        assert http.get("/api/v1/finetune/status").json()["queued"] == 1
        # The queued one: cancelled without ever running.
        r = http.post("/api/v1/finetune/cancel", params={"job_id": second}, headers=server.auth)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert r.json()["error"] == "cancelled while queued" and r.json()["started_at"] is None
        # The running one: its whole process group is gone within the grace period.
        wait_for_job(http, first, ("running",))
        time.sleep(1.0)  # into a stage
        pid = store.get(first).pid
        assert pid and _group_alive(pid)
        r = http.post("/api/v1/finetune/cancel", params={"job_id": first}, headers=server.auth)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert r.json()["error"].startswith("cancelled during stage ")
        deadline = time.monotonic() + 15
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_alive(pid)
        # Cancelling again, or a finished job: 409; an unknown job: 404; a malformed id: 422.
        again = http.post("/api/v1/finetune/cancel", params={"job_id": first}, headers=server.auth)
        assert again.status_code == 409 and again.json()["detail"] == f"job {first} is already cancelled"
        assert http.post("/api/v1/finetune/cancel", params={"job_id": f"ft_{TODAY}_pose99"},
                         headers=server.auth).status_code == 404
        bad = http.post("/api/v1/finetune/cancel", params={"job_id": "../../etc"}, headers=server.auth)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "job_id"]
        assert http.get("/api/v1/finetune/metrics", params={"job_id": first}).json()["status"] == "cancelled"
        # Nothing ran for the queued job.
        assert http.get(f"/logs/{second}").text == ""
        assert http.get("/api/v1/finetune/status").json() == {
            "status": "ready", "version": holotune.__version__, "running": [], "queued": 0}


def test_a_job_whose_process_dies_is_failed_with_the_reason(queue_server, workspace):
    server = queue_server
    store = JobStore(workspace / "jobs" / "jobs.db")
    with server.client() as http:
        job_id = _long_job(server, http, workspace)
        wait_for_job(http, job_id, ("running",))
        time.sleep(1.0)
        pid = store.get(job_id).pid
        os.kill(pid, signal.SIGKILL)  # the worker only: its stage is left behind, and must be cleaned up
        job = wait_for_job(http, job_id, ("failed",), timeout=30)
        assert re.fullmatch(rf"the job's worker process {pid} was killed by signal 9 \(SIGKILL\) during stage "
                            r"(ingest|tfrecord|finetune)", job["error"]), job["error"]
        deadline = time.monotonic() + 10
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_alive(pid)


def test_a_job_that_died_while_the_service_was_down_is_failed_at_restart(workspace, queue_server):
    queue_server.stop()  # this test restarts the module's server itself
    server = ServerProcess(workspace, args=["--max-jobs", "1"], log_name="server-down.log").start()
    try:
        with server.client() as http:
            running = _long_job(server, http, workspace)
            queued = http.post("/api/v1/finetune/start", json=_original_body(workspace, epochs=1),
                               headers=server.auth).json()["job_id"]
            wait_for_job(http, running, ("running",))
        server.stop()
        pid = JobStore(workspace / "jobs" / "jobs.db").get(running).pid
        assert _group_alive(pid)  # jobs outlive the service...
        os.killpg(pid, signal.SIGKILL)  # ...but this one dies while it is down
        server = ServerProcess(workspace, args=["--max-jobs", "1"], log_name="server-down2.log").start()
        with server.client() as http:
            job = http.get(f"/api/v1/finetune/jobs/{running}").json()
            assert job["status"] == "failed"
            assert job["error"].startswith(f"the job's worker process {pid} is gone (found at service start")
            # The queue survived too: the waiting job starts on the new service.
            wait_for_job(http, queued, ("running", "completed"))
            http.post("/api/v1/finetune/cancel", params={"job_id": queued}, headers=server.auth)
    finally:
        server.stop()
        server.kill_jobs()
