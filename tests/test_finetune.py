"""The finetune stage end to end on tiny data: the loss goes down, stock weights stay bit-identical,
the adapter and merged weights are saved, MLflow holds the metrics, and a resumed run continues."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from stage_options import evaluate_options, hparams, lora, model_options, run_options

from holotune.data.augment import NO_AUGMENTATION
from holotune.training.finetune import FinetuneConfigError, RunOptions, check_config, finetune


def _run(root, tmp_path, **overrides) -> RunOptions:
    fields = dict(shards_dir=str(root / "shards"), manifest=str(root / "interim" / "manifest.jsonl"),
                  out_dir=str(tmp_path / "model"), checkpoint_dir=str(tmp_path / "ckpt"),
                  tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", tensorboard_dir=str(tmp_path / "tb"),
                  augment=NO_AUGMENTATION)
    return run_options(**{**fields, **overrides})


@pytest.mark.parametrize("module", ["pose", "hands"])
def test_each_module_trains(shards, gesture_shards, tmp_path, module):
    from holotune.models import MODULE_MODELS, create_model

    run = _run(shards, tmp_path, manifest=None, cache_dataset=True)
    if module == "hands":  # the default data has no hands: synthetic hand labels
        run = _run(shards, tmp_path, manifest=None, cache_dataset=True, shards_dir=str(gesture_shards))
    metrics = finetune(model_options(module=module, lora=lora(r=4, placement="head")),
                       hparams(epochs=3, batch_size=8, learning_rate=3e-3, warmup_steps=1), run)
    assert metrics["cached_trunk_features"] is True and metrics["train/loss_epoch"] < metrics["train/loss_step"] * 5
    history = _loss_history(tmp_path)
    assert history[-1] < history[0]
    merged = torch.load(tmp_path / "model" / "model.pt", weights_only=True)
    stock = create_model(MODULE_MODELS[module]).state_dict()
    changed = {k.rsplit(".", 1)[0] for k in stock if not torch.equal(merged[k], stock[k])}
    assert changed and changed <= set(create_model(MODULE_MODELS[module]).head_layers["landmarks"] +
                                      create_model(MODULE_MODELS[module]).head_layers[
                                          {"pose": "pose_flag", "hands": "hand_flag"}[module]])


def _loss_history(tmp_path) -> list[float]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("holotune-finetune").experiment_id])
    return [m.value for m in client.get_metric_history(run.info.run_id, "train/loss_epoch")]


def test_full_fine_tuning_in_bf16_with_a_validation_split(shards, tmp_path):
    from holotune.models import create_model

    run = _run(shards, tmp_path, mixed_precision=True, validation_split=0.3)
    metrics = finetune(model_options(use_lora=False, freeze_backbone=False),
                       hparams(epochs=1, batch_size=8, learning_rate=1e-4, warmup_steps=1), run)
    assert metrics["val_samples"] > 0 and not (tmp_path / "model" / "adapter").exists()
    merged = torch.load(tmp_path / "model" / "model.pt", weights_only=True)
    stock = create_model("face_landmark").state_dict()
    assert not torch.equal(merged["conv2d_1.weight"], stock["conv2d_1.weight"])  # the trunk trained too


def test_finetune_face_mesh_end_to_end(shards, tmp_path):
    import mlflow

    from holotune.models import create_model

    model = model_options(lora=lora(r=4, placement="branch"))
    metrics = finetune(model, hparams(epochs=2, batch_size=8, learning_rate=3e-3, warmup_steps=1), _run(shards, tmp_path))
    assert metrics["epochs_completed"] == 2 and metrics["train_samples"] > 0
    out = tmp_path / "model"
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "model.pt").is_file()
    assert json.loads((out / "metrics.json").read_text())["global_step"] == metrics["global_step"]
    # The merged weights load into the stock layout; only the adapted branch changed.
    merged = torch.load(out / "model.pt", weights_only=True)
    stock = create_model("face_landmark").state_dict()
    assert merged.keys() == stock.keys()
    changed = {k.rsplit(".", 1)[0] for k in stock if not torch.equal(merged[k], stock[k])}
    assert changed and changed <= {"conv2d_16", "conv2d_17", "conv2d_18", "conv2d_19", "conv2d_20", "conv2d_21",
                                   "conv2d_28", "conv2d_29", "conv2d_30", "conv2d_31"}
    # MLflow holds the run's per-epoch metrics and params.
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("holotune-finetune").experiment_id])
    history = client.get_metric_history(run.info.run_id, "train/loss_epoch")
    assert len(history) == 2 and history[-1].value < history[0].value
    assert run.data.params["lora_r"] == "4" and "val/nme" in run.data.metrics
    # Resume: two more epochs continue from last.ckpt instead of starting over.
    again = finetune(model, hparams(epochs=4, batch_size=8, learning_rate=3e-3, warmup_steps=1),
                     _run(shards, tmp_path, resume=True))
    assert again["epochs_completed"] == 4 and again["global_step"] == 2 * metrics["global_step"]


@pytest.mark.parametrize(
    ("model", "train", "message"),
    [
        ({"module": "face"}, {}, "module: unknown module 'face'"),
        ({}, {"learning_rate": 0}, "learning_rate must be > 0, got 0"),
        ({}, {"auxiliary_target": "teacher"}, "auxiliary_target must be 'labels' or 'stock', got 'teacher'"),
        ({"lora": {"r": 0}}, {}, "lora_rank must be >= 1, got 0"),
        ({"lora": {"target_modules": ("conv2d_99",)}}, {}, "no layer named 'conv2d_99'"),
    ],
)
def test_bad_configuration_fails_before_any_work(shards, tmp_path, model, train, message):
    if "lora" in model:
        model = {**model, "lora": lora(**model["lora"])}
    with pytest.raises(FinetuneConfigError, match=message):
        check_config(model_options(**model), hparams(**train), _run(shards, tmp_path))


def test_unwritable_checkpoint_dir_is_refused(shards, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(FinetuneConfigError, match="checkpoint_dir .*file/ckpt: cannot create it"):
        check_config(model_options(), hparams(), _run(shards, tmp_path, checkpoint_dir=str(blocker / "ckpt")))


def _hand_keypoints(cx: float, cy: float, size: float) -> np.ndarray:
    """A plausible upright open hand (21 points) in a box of ``size`` around (cx, cy), 543 layout."""
    u = [0.5, 0.38, 0.3, 0.24, 0.18, 0.4, 0.38, 0.37, 0.36, 0.5, 0.5, 0.5, 0.5, 0.6, 0.61, 0.62, 0.63, 0.7, 0.73,
         0.75, 0.77]
    v = [0.9, 0.8, 0.7, 0.62, 0.55, 0.55, 0.4, 0.3, 0.22, 0.53, 0.36, 0.26, 0.18, 0.55, 0.4, 0.31, 0.24, 0.6, 0.5,
         0.43, 0.37]
    keypoints = np.zeros((543, 3), np.float32)
    keypoints[501:522, 0] = cx + (np.array(u) - 0.5) * size
    keypoints[501:522, 1] = cy + (np.array(v) - 0.5) * size
    return keypoints


@pytest.fixture(scope="module")
def gesture_shards(tmp_path_factory):
    import io

    from PIL import Image

    from holotune.data.tfrecord import KeypointRecord, write_tfrecord
    from holotune.samples import sample_images

    root = tmp_path_factory.mktemp("gestures")
    mask = np.zeros(543, np.float32)
    mask[501:522] = 1
    records = {"train": [], "val": []}
    for i, (name, label) in enumerate([("camera", 0), ("astronaut", 1)] * 6):
        buffer = io.BytesIO()
        Image.fromarray(sample_images()[name]).save(buffer, format="JPEG", quality=90)
        kp = _hand_keypoints(0.55 + 0.01 * (i % 3), 0.4, 0.25)
        split = "val" if i >= 8 else "train"
        records[split].append(KeypointRecord(buffer.getvalue(), kp, mask, label, ["none", "palm"][label], f"s{i}"))
    for split, recs in records.items():
        write_tfrecord(root / f"{split}-00000-of-00001.tfrecord", recs)
    return root


def test_gesture_classification_head(gesture_shards, tmp_path):
    model = model_options(module="hands", lora=lora(r=4, placement="head"), task_type="classification",
                          num_classes=2, class_names=("none", "palm"))
    run = run_options(shards_dir=str(gesture_shards), manifest=None, out_dir=str(tmp_path / "m"),
                      checkpoint_dir=str(tmp_path / "c"), tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                      tensorboard_dir=str(tmp_path / "tb"), augment=NO_AUGMENTATION)
    metrics = finetune(model, hparams(epochs=20, batch_size=8, learning_rate=3e-3, warmup_steps=1), run)
    assert metrics["val/accuracy"] == 1.0 and metrics["val/macro_f1"] == 1.0  # two trivially different scenes
    assert metrics["confusion_matrix"] == [[2, 0], [0, 2]] and metrics["class_names"] == ["none", "palm"]
    head = torch.load(tmp_path / "m" / "classifier.pt", weights_only=False)
    assert head["class_names"] == ["none", "palm"] and head["feature"] == "global_average_pooling2d"
    # the evaluate stage scores the class head next to the landmarks (PCK for hands), on the same crops
    from holotune.evaluation.report import evaluate
    from holotune.evaluation.scoring import CENTRED

    report = evaluate(evaluate_options(module="hands", model=str(tmp_path / "m" / "model.pt"),
                                       classifier=str(tmp_path / "m" / "classifier.pt"), shards_dir=str(gesture_shards),
                                       manifest=None, split="val", out_dir=str(tmp_path / "reports"), bootstrap=200,
                                       roi_jitter=CENTRED, allow_regression=True, tensorboard_dir=None))
    cls = report["classification"]
    assert cls["finetuned"]["accuracy"] == 1.0 and cls["confusion_matrix"] == [[2, 0], [0, 2]]
    assert cls["baseline"] is None  # the stock model has no class head
    assert {"nme", "pck@0.05", "pck@0.1", "presence_rate"} <= set(report["splits"]["all"]["baseline"])
    assert report["splits"]["all"]["n"] == 4 and report["false_presence"] is None
    rows = json.loads((tmp_path / "reports" / "plots" / "confusion.json").read_text())
    assert sorted((r["actual"], r["predicted"]) for r in rows) == [("none", "none")] * 2 + [("palm", "palm")] * 2
    assert cls["conditions"]["all"]["n"] == 4  # per condition too (this data names none: one condition, "all")
    _export_and_serve_image_head(tmp_path / "m", tmp_path / "export")


def _export_and_serve_image_head(model_dir, out_dir):
    """The export stage writes one hand model with both heads; the runtime serves its gesture output."""
    import onnx
    from stage_options import export_options

    from holotune.models.spec import MODEL_SPECS
    from holotune.release import release
    from holotune.runtime import Holistic
    from holotune.runtime.holistic import OPTIONAL_OUTPUTS
    from holotune.runtime.sessions import ModelSession

    record = release(export_options(module="hands", model_dir=str(model_dir), out_dir=str(out_dir), register=False,
                                    latency_runs=3))
    assert record["parity"]["onnx_vs_torch"]["gesture"] < 1e-3  # ONNX == torch for the new head too
    model = onnx.load(record["onnx"])
    assert [o.name for o in model.graph.output][-1] == "gesture"
    session = ModelSession(MODEL_SPECS["hand_landmark_full"], record["onnx"], 1, None,
                           OPTIONAL_OUTPUTS["hand_landmark_full"])
    assert session.gesture_classes == ["none", "palm"]
    with Holistic(hands=record["onnx"]) as holistic:
        assert holistic.gesture_classes == ["none", "palm"]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"task_type": "classification", "class_names": ("a", "b")},
         r"task_type=classification needs a module with a class-head feature \(hands\)"),
        ({"module": "hands", "task_type": "classification", "num_classes": 3, "class_names": ("none", "palm")},
         r"num_classes=3 but class_names has 2 entries: \['none', 'palm'\]"),
        ({"module": "hands", "task_type": "classification", "class_names": ("fist", "palm")},
         r"the first class must be 'none' \(the background class"),
        ({"module": "hands", "task_type": "classification", "class_names": ("none",)},
         r"need at least two non-empty class names"),
        ({"module": "hands", "task_type": "regression", "task_input": "landmarks"},
         r"task.input=landmarks trains a gesture head: it needs task.type=classification"),
        ({"module": "hands", "task_type": "classification", "task_input": "pixels", "class_names": ("none", "a")},
         r"task.input must be 'image' or 'landmarks', got 'pixels'"),
    ],
)
def test_classification_configuration_errors(shards, tmp_path, model, message):
    with pytest.raises(FinetuneConfigError, match=message):
        check_config(model_options(**model), hparams(), _run(shards, tmp_path))


def test_labels_outside_class_names_are_refused(gesture_shards, tmp_path):
    from holotune.data.tfrecord import read_records, write_tfrecord

    shards = tmp_path / "shards"
    shards.mkdir()
    records = list(read_records(sorted(gesture_shards.glob("train-*"))))
    records[0] = dataclasses.replace(records[0], label=2, label_name="ok")
    write_tfrecord(shards / "train-00000-of-00001.tfrecord", records)
    model = model_options(module="hands", lora=lora(r=2, placement="head"), task_type="classification",
                          num_classes=None, class_names=("none", "palm"))
    run = run_options(shards_dir=str(shards), manifest=None, out_dir=str(tmp_path / "m"),
                      checkpoint_dir=str(tmp_path / "c"), tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                      tensorboard_dir=str(tmp_path / "tb"))
    with pytest.raises(FinetuneConfigError, match=r"labels \[2\] in the data are out of range for class_names \['none', 'palm'\]"):
        finetune(model, hparams(epochs=1), run)


def test_hydra_sweep_gives_one_mlflow_run_per_point(shards, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    import mlflow

    root = Path(__file__).resolve().parent.parent
    db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cmd = [sys.executable, str(root / "stages" / "finetune.py"), "-m", "finetune.lora_rank=2,4",
           "finetune.epochs=1", "finetune.batch_size=8", f"finetune.shards_dir={shards / 'shards'}",
           f"finetune.manifest={shards / 'interim' / 'manifest.jsonl'}", f"finetune.out_dir={tmp_path / 'out'}",
           f"finetune.checkpoint_dir={tmp_path / 'ckpt'}", f"finetune.tracking_uri={db}",
           f"finetune.tensorboard_dir={tmp_path / 'tb'}", f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(tracking_uri=db)
    runs = client.search_runs([client.get_experiment_by_name("holotune-finetune").experiment_id])
    assert sorted(r.data.params["lora_r"] for r in runs) == ["2", "4"]
    assert all("train/loss_epoch" in r.data.metrics for r in runs)


def test_finetune_stage_is_byte_reproducible_across_processes(shards, tmp_path):
    """Two runs of the stage, in processes with different hash seeds, write byte-identical DVC outputs
    (model.pt, the adapter, metrics.json): what dvc.lock records does not change on a re-run."""
    import hashlib
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    digests = []
    for run, hash_seed in enumerate(("1", "2")):
        out = tmp_path / f"run{run}"
        cmd = [sys.executable, str(root / "stages" / "finetune.py"), "finetune.epochs=1", "finetune.batch_size=8",
               "finetune.lora_placement=head", f"finetune.shards_dir={shards / 'shards'}",
               f"finetune.manifest={shards / 'interim' / 'manifest.jsonl'}", f"finetune.out_dir={out / 'model'}",
               f"finetune.checkpoint_dir={out / 'ckpt'}", f"finetune.tracking_uri=sqlite:///{out / 'mlflow.db'}",
               f"finetune.tensorboard_dir={out / 'tb'}", "hydra.run.dir=.", "hydra.output_subdir=null"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                              env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert done.returncode == 0, done.stderr[-3000:]
        files = sorted(p for p in (out / "model").rglob("*") if p.is_file())
        digests.append({str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files})
    assert "model/model.pt" in digests[0] and "model/adapter/adapter_config.json" in digests[0]
    assert digests[0] == digests[1]
