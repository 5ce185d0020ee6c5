"""The service's parts on their own: a request's Hydra overrides compose to the intended config
(through the real stage script), job ids and conditional status changes, the TensorBoard reader,
error-line extraction, worker identity (pid and start time), one service per state folder, and a
job worker that loads no web stack."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
import yaml

from holotune.service.jobs import CANCELLED, COMPLETED, QUEUED, RUNNING, Job, JobStore
from holotune.service.pipeline import detect_dataset_kind, finetune_commands, literal, prune_commands, quote
from holotune.service.runner import describe_exit, process_start_time, worker_alive
from holotune.service.worker import last_error

PROJECT = Path(__file__).resolve().parents[1]


def _compose(argv: list[str], cwd: Path) -> dict:
    """The config a stage command line composes (Hydra's --cfg job), without running the stage."""
    out = subprocess.run([*argv, "--cfg", "job"], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return yaml.safe_load(out.stdout)


def test_a_request_composes_to_the_intended_stage_config(tmp_path):
    job = tmp_path / "jobs" / "ft_20250405_hands01"
    request = {"module": "hands", "dataset_path": str(tmp_path / "data" / "gestures"), "dataset_kind": "class_folders",
               "task_type": "classification", "class_names": ["none", "open palm", "ok"], "epochs": 3,
               "batch_size": 4, "learning_rate": 5e-5, "lora_rank": 4, "freeze_backbone": False,
               "validation_split": 0.25, "gradient_clip": 0.5, "mixed_precision": True, "cache_dataset": False,
               "max_time": "00:00:10:00", "limit_train_batches": 2, "checkpoint_dir": str(tmp_path / "ck pt"),
               "test_split": 0.3, "allow_regression": True}
    commands = finetune_commands(request, job, project_root=PROJECT, python=sys.executable, cwd=tmp_path,
                                 tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    assert [c["stage"] for c in commands] == ["ingest", "tfrecord", "finetune", "evaluate", "export"]
    assert all(c["argv"][2:] == commands[0]["argv"][2:] for c in commands)  # every stage: the same overrides
    assert commands[2]["argv"][:2] == [sys.executable, str(PROJECT / "stages" / "finetune.py")]
    cfg = _compose(commands[2]["argv"], tmp_path)
    assert cfg["ingest"]["sources"] == [{"kind": "class_folders", "path": request["dataset_path"]}]
    assert cfg["ingest"]["class_names"] == cfg["task"]["class_names"] == ["none", "open palm", "ok"]
    assert cfg["task"] == {"type": "classification", "input": "image", "num_classes": 3,
                           "class_names": ["none", "open palm", "ok"]}
    assert cfg["module"]["name"] == "hands" and cfg["trainer"]["limit_train_batches"] == 2
    f = cfg["finetune"]
    assert (f["epochs"], f["batch_size"], f["learning_rate"], f["lora_rank"]) == (3, 4, 5e-5, 4)
    assert (f["freeze_backbone"], f["validation_split"], f["gradient_clip"]) == (False, 0.25, 0.5)
    assert (f["mixed_precision"], f["cache_dataset"], f["max_time"]) == (True, False, "00:00:10:00")
    assert f["checkpoint_dir"] == str(tmp_path / "ck pt") and f["tensorboard_dir"] == str(job / "tensorboard")
    assert f["tracking_uri"] == f"sqlite:///{tmp_path}/mlflow.db"
    # Every path a stage writes is in the job's folder (interpolations resolved by the stage).
    # finetune's checkpoint and TensorBoard folders are set above, whatever paths.* they default to.
    assert {k: cfg["paths"][k] for k in ("data", "models", "reports")} == {
        "data": str(job / "data"), "models": str(job / "models"), "reports": str(job / "reports")}
    assert f["out_dir"] == "${paths.models}/${module.name}" and cfg["tfrecord"]["out_dir"] == "${paths.data}/shards"
    # ingest holds out a test split (or fails saying why); evaluate scores it; export registers the result,
    # tagged with the job, in the service's registry.
    assert cfg["ingest"]["test_split"] == 0.3 and cfg["ingest"]["require_test"] is True
    assert cfg["evaluate"]["allow_regression"] is True
    e = cfg["export"]
    assert (e["register"], e["tflite"], e["tracking_uri"]) == (True, True, f"sqlite:///{tmp_path}/mlflow.db")
    assert e["tags"] == {"holotune.job_id": "ft_20250405_hands01"}


def test_the_evaluate_and_export_stages_write_into_the_job_and_register_with_its_id(tmp_path):
    """The stage scripts' resolved config (``--resolve``): every evaluate and export path is in the job's folder;
    a gesture head (task.input=landmarks) keeps its own registered model."""
    job = tmp_path / "jobs" / "ft_20250405_face_mesh02"
    commands = finetune_commands({"module": "face_mesh", "dataset_path": str(tmp_path / "d.tfrecord"),
                                  "dataset_kind": "tfrecord"}, job, project_root=PROJECT, python=sys.executable,
                                 cwd=tmp_path, tracking_uri="sqlite:///x.db")
    cfg = _compose([*commands[4]["argv"], "--resolve"], tmp_path)
    ev, ex = cfg["evaluate"], cfg["export"]
    assert (ev["model"], ev["shards_dir"], ev["out_dir"], ev["split"]) == (
        str(job / "models" / "face_mesh" / "model.pt"), str(job / "data" / "shards"), str(job / "reports"), "test")
    assert ev["allow_regression"] is False and cfg["ingest"]["test_split"] == 0.25  # conf/'s defaults
    assert (ex["model_dir"], ex["out_dir"], ex["metrics"]) == (
        str(job / "models" / "face_mesh"), str(job / "models" / "exported" / "face_mesh"), str(job / "reports" / "metrics.json"))
    assert ex["tags"] == {"holotune.job_id": job.name} and ex["tracking_uri"] == "sqlite:///x.db"
    gesture = finetune_commands({"module": "hands", "dataset_path": str(tmp_path / "poses"), "dataset_kind": "labelled",
                                 "task_type": "classification", "task_input": "landmarks",
                                 "class_names": ["none", "fist"]}, tmp_path / "jobs" / "ft_20250405_hands02",
                                project_root=PROJECT, python=sys.executable, cwd=tmp_path, tracking_uri="sqlite:///x.db")
    cfg = _compose([*gesture[4]["argv"], "--resolve"], tmp_path)
    assert cfg["export"]["task_input"] == cfg["evaluate"]["task_input"] == "landmarks"  # -> holotune-gesture
    assert cfg["export"]["tags"] == {"holotune.job_id": "ft_20250405_hands02"}


def test_a_prune_request_points_at_the_source_jobs_outputs(tmp_path):
    source, job = tmp_path / "jobs" / "ft_20250405_pose01", tmp_path / "jobs" / "pr_20250405_pose01"
    [command] = prune_commands({"module": "pose", "method": "channels", "sparsity": 0.25,
                                "layers": ["conv2d_1", "conv2d_2"]}, source, job, project_root=PROJECT,
                               python=sys.executable, cwd=tmp_path, tracking_uri="sqlite:///x.db")
    cfg = _compose(command["argv"], tmp_path)
    expected = {"method": "channels", "sparsity": 0.25, "layers": ["conv2d_1", "conv2d_2"], "module": "pose",
                "model": str(source / "models" / "pose" / "model.pt"), "out_dir": str(job / "pruned"),
                "shards_dir": str(source / "data" / "shards"),
                "manifest": str(source / "data" / "interim" / "manifest.jsonl")}
    assert {k: cfg["prune"][k] for k in expected} == expected  # the other prune keys keep conf/'s defaults


def test_override_values_are_literal_or_refused():
    assert literal(True) == "true" and literal(3) == "3" and literal(1e-5) == "1e-05" and literal(0.2) == "0.2"
    assert literal(["a b", "c"]) == '["a b","c"]' and literal(None) == "null"
    for bad in ("${oc.env:HOME}", 'a"b', "a'b", "a\\b", "a\nb"):
        with pytest.raises(ValueError, match="cannot be passed to a stage"):
            quote(bad)


def test_dataset_kinds(tmp_path):
    (tmp_path / "a.tfrecord").write_bytes(b"")
    (tmp_path / "labels.jsonl").write_text("")
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert detect_dataset_kind(tmp_path / "a.tfrecord", None) == "tfrecord"
    assert detect_dataset_kind(tmp_path / "labels.jsonl", None) == "labelled"
    assert detect_dataset_kind(tmp_path / "clip.mp4", None) == "unlabelled"
    assert detect_dataset_kind(tmp_path, None) == "tfrecord"
    classes = tmp_path / "classes"
    (classes / "fist").mkdir(parents=True)
    assert detect_dataset_kind(classes, "classification") == "class_folders"
    assert detect_dataset_kind(classes, None) == "unlabelled"


def test_job_ids_number_per_day_and_module_and_status_changes_are_conditional(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    make = lambda module: store.create("finetune", module, {"module": module}, tmp_path,  # noqa: E731
                                       lambda job_id, job_dir: [{"stage": "x", "argv": [job_id], "cwd": str(job_dir)}])
    a, b, c = make("face_mesh"), make("face_mesh"), make("pose")
    day = a.id.split("_")[1]
    assert (a.id, b.id, c.id) == (f"ft_{day}_face_mesh01", f"ft_{day}_face_mesh02", f"ft_{day}_pose01")
    assert b.commands == [{"stage": "x", "argv": [b.id], "cwd": str(tmp_path / b.id)}]
    assert (tmp_path / a.id / "job.log").is_file() and store.next_queued().id == a.id
    assert store.update(a.id, expect=QUEUED, status=RUNNING)
    assert store.finish(a.id, CANCELLED, error="cancelled")            # the cancel wins...
    assert not store.finish(a.id, COMPLETED, result={"x": 1})          # ...the worker's late "completed" does not
    assert store.get(a.id).status == CANCELLED and store.get(a.id).result is None
    assert [j.id for j in store.list()] == [c.id, b.id, a.id]
    assert [j.id for j in store.list(status=QUEUED, module="face_mesh")] == [b.id]
    assert JobStore(tmp_path / "jobs.db").get(b.id).request == {"module": "face_mesh"}  # reopened: all there


def test_each_stage_is_reported_with_its_status_and_wall_time(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    commands = lambda job_id, job_dir: [{"stage": s, "argv": [], "cwd": "."} for s in ("ingest", "finetune", "export")]  # noqa: E731
    job = store.create("finetune", "face_mesh", {}, tmp_path, commands)
    assert [(s["name"], s["status"], s["seconds"]) for s in job.stage_list()] == [
        ("ingest", "pending", None), ("finetune", "pending", None), ("export", "pending", None)]
    store.update(job.id, status=RUNNING)
    store.record_stage(job.id, "ingest", status=RUNNING, started=100.0)
    store.record_stage(job.id, "ingest", status=COMPLETED, ended=112.5, returncode=0)
    store.record_stage(job.id, "finetune", status=RUNNING, started=113.0)
    stages = store.get(job.id).stage_list(now=120.0)
    assert [(s["name"], s["status"], s["seconds"]) for s in stages] == [
        ("ingest", "completed", 12.5), ("finetune", "running", 7.0), ("export", "pending", None)]
    assert stages[0]["started_at"] and stages[0]["finished_at"] and stages[1]["finished_at"] is None
    store.finish(job.id, CANCELLED, error="cancelled during stage finetune")  # the stage's process was killed
    assert [(s["name"], s["status"]) for s in store.get(job.id).stage_list()] == [
        ("ingest", "completed"), ("finetune", "cancelled"), ("export", "skipped")]
    assert store.get(job.id).summary()["stages"][1]["finished_at"] is not None


def test_a_job_table_from_before_stages_were_recorded_gets_the_column(tmp_path):
    import sqlite3

    from holotune.service import jobs

    db = sqlite3.connect(tmp_path / "jobs.db")
    db.execute(jobs._SCHEMA.replace(",\n    stages      TEXT", ""))
    db.execute("INSERT INTO jobs (id, kind, module, status, request, commands, job_dir, log_path, created_at, seq) "
               "VALUES ('ft_20250405_pose01', 'finetune', 'pose', 'completed', '{}', "
               "'[{\"stage\": \"ingest\", \"argv\": [], \"cwd\": \".\"}]', '.', 'log', 0, 1)")
    db.commit()
    db.close()
    old = JobStore(tmp_path / "jobs.db").get("ft_20250405_pose01")
    assert old.stages is None and old.stage_list()[0]["status"] == "unknown"  # it ran, but no one recorded how
    store = JobStore(tmp_path / "jobs.db")  # opened again: the column is not added twice
    job = store.create("finetune", "pose", {}, tmp_path, lambda job_id, job_dir: [{"stage": "ingest", "argv": [],
                                                                                    "cwd": "."}])
    assert job.stages == {} and job.stage_list()[0]["status"] == "pending"


def test_latest_metrics_from_tensorboard_events(tmp_path):
    import time

    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    from holotune.service.metrics import latest_metrics

    assert latest_metrics(tmp_path / "none") == {"loss": None, "val_loss": None, "epoch": 0, "step": None,
                                                 "metrics": {}}
    writer = EventFileWriter(str(tmp_path / "face_mesh" / "version_0"))
    for step, tag, value in [(0, "train/loss_step", 0.9), (1, "train/loss_step", 0.7), (1, "train/loss_epoch", 0.8),
                             (1, "val/loss", 0.85), (3, "train/loss_epoch", 0.5), (3, "val/loss", 0.6)]:
        writer.add_event(Event(step=step, wall_time=time.time(),
                               summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)])))
    writer.close()
    got = latest_metrics(tmp_path)
    assert got["loss"] == pytest.approx(0.5) and got["val_loss"] == pytest.approx(0.6)
    assert got["epoch"] == 2 and got["step"] == 3 and got["metrics"]["train/loss_step"] == pytest.approx(0.7)


def test_the_reason_of_a_failed_stage_is_its_last_exception_line(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("Epoch 0\nTraceback (most recent call last):\n  File x\n"
                   "holotune.training.finetune.FinetuneConfigError: lora_rank must be >= 1, got 0\n"
                   "[holotune] stage finetune exited with code 1 after 3.0 s\n")
    assert last_error(log) == "holotune.training.finetune.FinetuneConfigError: lora_rank must be >= 1, got 0"
    assert last_error(log, "finetune") == last_error(log)
    log.write_text("just output\n\n[holotune] stage finetune exited with code 1 after 3.0 s\n")
    assert last_error(log) == "just output"


def test_the_reason_of_a_failed_gate_is_the_evaluate_stages_message_with_the_figures(tmp_path):
    gate = ("evaluate: evaluate gate failed: reference split (16 samples, 16 identities): nme 12.334 (stock) -> "
            "13.100 (fine-tuned), +6.21%; the gate allows 2% higher; false presence on non-face patches 1% -> 9% "
            "(allowed +5 points). The fine-tuned model forgot part of the stock domain; reports are in "
            f"{tmp_path / ('x' * 300)}. Re-run with evaluate.allow_regression=true to accept it.")
    log = tmp_path / "job.log"
    log.write_text("[holotune] 2025-04-05 10:00:00 stage finetune: (cd /w && python stages/finetune.py)\n"
                   "finetune: train/loss=0.3\nValueError: a warning line an earlier stage printed\n"
                   "[holotune] stage finetune exited with code 0 after 9.0 s\n"
                   "[holotune] 2025-04-05 10:00:09 stage evaluate: (cd /w && python stages/evaluate.py)\n"
                   "/x/plots.py:82: RuntimeWarning: Mean of empty slice\n"
                   f"{gate}\n[holotune] stage evaluate exited with code 1 after 4.0 s\n")
    assert last_error(log, "evaluate") == gate  # whole: the figures and the allowance, past 500 characters
    assert last_error(log) == "ValueError: a warning line an earlier stage printed"  # without the stage: as before
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(-9) == "was killed by signal 9 (SIGKILL)"


def test_a_worker_is_alive_while_its_pid_names_the_process_that_started_then(tmp_path):
    me = os.getpid()
    started = process_start_time(me)
    assert process_start_time(999_999_999) is None and 0 < started <= time.time()
    job = Job("ft_20250405_face_mesh01", "finetune", "face_mesh", RUNNING, {}, [], str(tmp_path), "log", 0.0)
    assert worker_alive(replace(job, pid=me, pid_start=started))
    assert worker_alive(replace(job, pid=me, pid_start=started + 0.5))  # a small clock step
    assert not worker_alive(replace(job, pid=me, pid_start=started - 60))  # the pid was reused
    assert not worker_alive(replace(job, pid=999_999_999, pid_start=started))
    assert not worker_alive(replace(job, pid=me))
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 60
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.05)  # until it has exited, not yet reaped
    assert process_start_time(zombie.pid) is None
    zombie.wait()


def test_one_service_per_state_folder(tmp_path):
    from holotune.service.settings import ServiceSettings, resolve_settings
    from holotune.service.state import Service, ServiceError

    settings = resolve_settings(ServiceSettings(workspace=tmp_path, token="t"))
    first = Service(settings)
    with pytest.raises(ServiceError, match=f"another holotune service is using {tmp_path / 'jobs'}"):
        Service(settings)
    first.release()
    Service(settings).release()  # free again once the first is gone


def test_the_job_worker_loads_neither_fastapi_nor_onnxruntime():
    code = ("import sys, holotune.service.worker; from holotune.service import ServiceSettings; "
            "print(sorted(m for m in ('fastapi', 'onnxruntime', 'holotune.service.app') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-2000:]
    from holotune.service import create_app  # still there, loaded on first use

    assert callable(create_app)
