"""The whole loop over HTTP only: a job started with the original API's ``POST /api/v1/finetune/start``
on a small TFRecord runs ingest -> tfrecord -> finetune -> evaluate -> export, reports each stage as it
runs, gives the evaluation's before/after figures and the registered version in ``/metrics``; the
version is promoted and serves ``/api/v1/infer``, then rolled back. A model that fails the forgetting
gate fails its job with the figures and is not registered; a dataset that cannot give a test split
fails at ingest, saying why."""

from __future__ import annotations

import time

import pytest
from service_harness import ServerProcess, jpeg, tiny_dataset

from holotune.samples import sample_images

FACE = "holotune-face_mesh"
STAGES = ["ingest", "tfrecord", "finetune", "evaluate", "export"]
FINISHED = ("completed", "failed", "cancelled")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, shards):
    root = tmp_path_factory.mktemp("loop") / "workspace"
    tiny_dataset(shards, root)
    return root


@pytest.fixture(scope="module")
def server(workspace):
    # No polling: the test asks for a registry check (POST /api/v1/models/reload) after each promotion.
    server = ServerProcess(workspace, args=["--poll-interval", "0"]).start()
    yield server
    server.stop()
    server.kill_jobs()


def _tiny_job(**extra) -> dict:
    """The original API's body on the tiny data: one epoch of two batches."""
    return {"dataset_path": "data/train.tfrecord", "module": "face_mesh", "epochs": 1, "batch_size": 8,
            "lora_rank": 4, "limit_train_batches": 2, **extra}


def _run(server, http, body: dict, timeout: float = 600.0) -> tuple[dict, set[str]]:
    """Start a job and follow ``/status`` until it ends; returns its final detail and the stages seen running."""
    r = http.post("/api/v1/finetune/start", json=body, headers=server.auth)
    assert r.status_code == 200, r.text
    job_id = r.json()["job_id"]
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in http.get("/api/v1/finetune/status").json()["running"]:
            if job["job_id"] == job_id and job["stage"]:
                seen.add(job["stage"])
                running = [s["name"] for s in job["stages"] if s["status"] == "running"]
                assert running == [job["stage"]], job["stages"]
        detail = http.get(f"/api/v1/finetune/jobs/{job_id}").json()
        if detail["status"] in FINISHED:
            return detail, seen
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not end in {timeout} s:\n{http.get(f'/logs/{job_id}?tail=40').text}")


def _infer_version(server, http, image: bytes) -> str | None:
    """Check the registry now, then the face model version that answers ``/api/v1/infer``."""
    assert http.post("/api/v1/models/reload", headers=server.auth).status_code == 200
    r = http.post("/api/v1/infer", files={"image": ("astronaut.jpg", image, "image/jpeg")})
    assert r.status_code == 200, r.text
    return r.json()["models"]["face_mesh"]


def test_a_job_runs_the_whole_loop_and_its_model_is_promoted_and_rolled_back(server):
    photo = jpeg(sample_images()["astronaut"])
    with server.client() as http:
        # A small learning rate: the model stays near stock, so the forgetting gate passes.
        job, seen = _run(server, http, _tiny_job(learning_rate=1e-5))
        job_id = job["job_id"]
        log = http.get(f"/logs/{job_id}").text
        assert job["status"] == "completed", log[-4000:]
        assert [c["stage"] for c in job["commands"]] == STAGES
        # Status reported the stages as they ran; each has its wall time.
        assert {"evaluate", "export"} <= seen, seen
        assert [(s["name"], s["status"]) for s in job["stages"]] == [(s, "completed") for s in STAGES]
        assert all(s["seconds"] > 0 and s["started_at"] <= s["finished_at"] for s in job["stages"])
        # The test split ingest made, and its fraction (conf/ingest's default).
        split = job["test_split"]
        assert split["fraction"] == 0.25 and split["split_by"] == "group" and 0 < split["samples"] < split["of"]

        metrics = http.get("/api/v1/finetune/metrics", params={"job_id": job_id}).json()
        # The original fields keep their meaning: training curves and the finetune metrics.json.
        assert metrics["epoch"] == 1 and metrics["epochs"] == 1 and metrics["loss"] > 0
        assert metrics["result"]["epochs_completed"] == 1
        assert metrics["stages"] == job["stages"] and metrics["test_split"] == split
        # Before and after, on the job's own test split, and the gate.
        evaluation = metrics["evaluation"]
        assert evaluation["split"] == "test" and evaluation["metric"] == "nme"
        reference = evaluation["splits"]["reference"]
        assert reference["n"] == split["samples"]
        assert reference["baseline"] > 0 and reference["finetuned"] > 0
        assert reference["change_pct"] == pytest.approx(100 * (reference["finetuned"] / reference["baseline"] - 1),
                                                        rel=1e-6)
        low, high = reference["change_pct_ci95"]
        assert low <= reference["change_pct"] <= high
        assert evaluation["gate"]["passed"] is True and "(stock) ->" in evaluation["gate"]["message"]
        # Exported (ONNX and .tflite) and registered as the challenger, tagged with the job.
        registered = metrics["registered"]
        assert registered["name"] == FACE and registered["alias"] == "challenger"
        assert registered["tags"] == {"holotune.job_id": job_id}
        new = registered["version"]
        assert new != "1"  # version 1 is the stock model
        exported = server.workspace / "jobs" / job_id / "models" / "exported" / "face_mesh"
        assert (exported / "model.onnx").is_file() and (exported / "model.tflite").is_file()

        # Serving: the stock version 1 answers until the new one is promoted.
        stock = _infer_version(server, http, photo)
        assert stock == "1"
        r = http.post(f"/api/v1/models/{FACE}/promote", json={"version": "challenger"}, headers=server.auth)
        assert r.status_code == 200, r.text
        assert _infer_version(server, http, photo) == new
        # Rollback.
        r = http.post(f"/api/v1/models/{FACE}/promote", json={"version": 1}, headers=server.auth)
        assert r.status_code == 200, r.text
        assert _infer_version(server, http, photo) == stock


def test_a_model_that_fails_the_gate_fails_its_job_with_the_figures_and_is_not_registered(server):
    with server.client() as http:
        # A learning rate this large wrecks the trunk in two steps: far worse than stock on the reference split.
        job, _ = _run(server, http, _tiny_job(learning_rate=0.05))
        job_id = job["job_id"]
        assert job["status"] == "failed", http.get(f"/logs/{job_id}").text[-4000:]
        assert [(s["name"], s["status"]) for s in job["stages"]] == [
            ("ingest", "completed"), ("tfrecord", "completed"), ("finetune", "completed"), ("evaluate", "failed"),
            ("export", "skipped")]
        error = job["error"]
        assert error.startswith("stage evaluate exited with code 1: evaluate: evaluate gate failed: reference split ("), error
        metrics = http.get("/api/v1/finetune/metrics", params={"job_id": job_id}).json()
        reference, gate = metrics["evaluation"]["splits"]["reference"], metrics["evaluation"]["gate"]
        assert gate["passed"] is False and gate["message"] in error  # the figures: stock -> fine-tuned, change, allowance
        assert f"{reference['baseline']:.3f} (stock) -> {reference['finetuned']:.3f} (fine-tuned)" in error
        assert f"{reference['change_pct']:+.2f}%; the gate allows 2% higher" in error
        assert metrics["registered"] is None
        job_dir = server.workspace / "jobs" / job_id
        assert (job_dir / "models" / "face_mesh" / "model.pt").is_file()  # the model stays, unexported
        assert not (job_dir / "models" / "exported").exists()


def test_a_dataset_without_a_usable_test_split_fails_at_ingest(server, workspace):
    from holotune.data.tfrecord import decode_example, iter_tfrecord, write_tfrecord

    first = decode_example(next(iter(iter_tfrecord(workspace / "data" / "train.tfrecord"))))
    write_tfrecord(workspace / "data" / "one.tfrecord", [first])  # one image: nothing to hold out
    with server.client() as http:
        job, _ = _run(server, http, _tiny_job(dataset_path="data/one.tfrecord"))
        assert job["status"] == "failed"
        assert job["error"].startswith("stage ingest exited with code 1: ingest: no usable test split: "
                                       "ingest.test_split=0.25, split_by=group: 1 sample(s) in 1 split unit(s)"), job["error"]
        assert [s["status"] for s in job["stages"]] == ["failed", "skipped", "skipped", "skipped", "skipped"]
        # A test split the request sets is used, and stated.
        job, _ = _run(server, http, _tiny_job(dataset_path="data/one.tfrecord", test_split=0.5))
        assert "ingest.test_split=0.5," in job["error"]
        r = http.post("/api/v1/finetune/start", json=_tiny_job(test_split=1.0), headers=server.auth)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "test_split"]
