"""The gesture contract (holotune.gesture) and the landmark head end to end: data -> train -> evaluate ->
export -> serve, on the synthetic gesture poses and (with the optional media) real hands."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from holotune.gesture import (
    BACKGROUND,
    FEATURE_SIZE,
    GestureError,
    GestureModel,
    check_class_names,
    decide,
    decide_indices,
    hand_features,
)
from holotune.landmarks import NUM_HAND, HandLandmark


def _hand(rng: np.random.Generator) -> np.ndarray:
    """A plausible right hand, (21, 3) normalized to a 640x480 image: fingers up from a wrist at the bottom."""
    points = np.zeros((NUM_HAND, 3))
    for finger, x in enumerate((-0.08, -0.04, 0.0, 0.04, 0.08)):
        for joint in range(4):
            index = 1 + 4 * finger + joint
            points[index] = (0.5 + x * (1 + 0.1 * joint), 0.6 - 0.05 * (joint + 1) - 0.02 * (finger > 0), 0.01 * joint)
    points[HandLandmark.WRIST] = (0.5, 0.65, 0.0)
    return points + rng.normal(scale=0.003, size=points.shape)


def _rotate(points: np.ndarray, degrees: float, size=(640, 480)) -> np.ndarray:
    """Rotate in the image plane about the wrist, in pixels (so the shape stays the same)."""
    w, h = size
    px = points * (w, h, w)
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    d = px[:, :2] - px[HandLandmark.WRIST, :2]
    px[:, :2] = px[HandLandmark.WRIST, :2] + d @ np.array([[c, s], [-s, c]])
    return px / (w, h, w)


def test_hand_features_are_normalized_for_position_size_and_side():
    rng = np.random.default_rng(0)
    hand = _hand(rng)
    f = hand_features(hand, "right", (640, 480))
    assert f.shape == (FEATURE_SIZE,) and f.dtype == np.float32 and f[-1] == 1.0
    # wrist at the origin, the larger extent is 1
    assert np.allclose(f[:3], 0.0) and math.isclose(np.ptp(f[:63].reshape(21, 3)[:, :2], axis=0).max(), 1.0, rel_tol=1e-5)
    knuckles = f[:63].reshape(21, 3)[[HandLandmark.INDEX_FINGER_MCP, HandLandmark.MIDDLE_FINGER_MCP,
                                      HandLandmark.RING_FINGER_MCP], :2].mean(axis=0)
    assert abs(knuckles[0]) < 1e-5 and knuckles[1] < 0  # the rotated block: wrist -> knuckles points up
    # moved and scaled in the image: the same features
    moved = hand.copy()
    moved[:, :2] = 0.2 + 0.5 * hand[:, :2]
    moved[:, 2] *= 0.5
    assert np.allclose(hand_features(moved, "right", (640, 480)), f, atol=1e-5)
    # the rotated block ignores a roll in the image plane; the unrotated block (absolute orientation: thumb up
    # vs down) does not
    rolled = hand_features(_rotate(hand, 35.0), "right", (640, 480))
    assert np.allclose(rolled[:63], f[:63], atol=1e-4) and not np.allclose(rolled[63:126], f[63:126], atol=1e-2)
    # a left hand is the mirror image of a right one: the same shape features, handedness 0
    mirrored = hand.copy()
    mirrored[:, 0] = 1.0 - hand[:, 0]
    left = hand_features(mirrored, "left", (640, 480))
    assert np.allclose(left[:126], f[:126], atol=1e-5) and left[-1] == 0.0


@pytest.mark.parametrize(("points", "side", "message"), [
    (np.zeros((20, 3)), "left", r"hand landmarks must be \(21, 3\), got \(20, 3\)"),
    (np.full((21, 3), np.nan), "left", "hand landmarks hold NaN or inf"),
    (np.ones((21, 3)), "up", r"side must be one of \('left', 'right'\), got 'up'"),
    (np.ones((21, 3)), "left", "hand landmarks are all at one point"),
])
def test_hand_features_refuse_bad_input(points, side, message):
    with pytest.raises(GestureError, match=message):
        hand_features(points, side, (640, 480))


def test_decide_follows_mediapipes_background_and_threshold_rule():
    names = [BACKGROUND, "fist", "palm"]
    assert decide(np.array([0.1, 0.8, 0.1]), names) == ("fist", pytest.approx(0.8))
    assert decide(np.array([0.3, 0.45, 0.25]), names) == ("none", pytest.approx(0.3))  # winner below 0.5
    assert decide(np.array([0.6, 0.3, 0.1]), names) == ("none", pytest.approx(0.6))
    assert decide(np.array([0.3, 0.45, 0.25]), names, threshold=0.4).label == "fist"
    p = np.array([[0.1, 0.8, 0.1], [0.3, 0.45, 0.25], [0.6, 0.3, 0.1], [0.0, 0.5, 0.5]])
    assert decide_indices(p).tolist() == [1, 0, 0, 1]
    with pytest.raises(GestureError, match="the first class must be 'none'"):
        check_class_names(["fist", "none"])
    with pytest.raises(GestureError, match="duplicate class names"):
        check_class_names(["none", "a", "a"])


def test_a_gesture_model_that_does_not_fit_is_refused_with_the_reason(tmp_path):
    from gesture_models import make_gesture_onnx

    good = make_gesture_onnx(tmp_path / "good.onnx", ["none", "fist"])
    assert GestureModel(good).class_names == ["none", "fist"]
    with pytest.raises(GestureError, match=r"input must be 'features' \(N, 127\)"):
        GestureModel(make_gesture_onnx(tmp_path / "wide.onnx", ["none", "fist"], width=100))
    with pytest.raises(GestureError, match="no such gesture model file"):
        GestureModel(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(GestureError, match="not a readable ONNX model"):
        GestureModel(tmp_path / "junk.onnx")


# ------------------------------------------------------------------ the landmark head end to end
CLASSES = ("none", "closed_fist", "open_palm", "pointing_up", "thumb_down", "thumb_up", "victory", "i_love_you")


@pytest.fixture(scope="module")
def landmark_run(tmp_path_factory):
    """ingest (synthetic poses) -> finetune (task.input=landmarks) -> evaluate -> export, as the gesture
    pipeline's stages call them, on a small build (24 hands)."""
    from stage_options import evaluate_options, export_options, hparams, ingest_options, model_options, run_options

    from holotune.data.ingest import Source, ingest
    from holotune.evaluation.report import evaluate
    from holotune.release import release
    from holotune.training.finetune import finetune

    root = tmp_path_factory.mktemp("gestures")
    gesture_data = {"seed": 0, "hands": 24, "poses_per_condition": 1, "class_names": list(CLASSES),
                    "left_fraction": 0.5, "width": 640, "height": 480}
    report = ingest(ingest_options([Source("gestures", str(root / "interim" / "poses"))], root / "interim",
                                   class_names=CLASSES, gesture_data=gesture_data))
    manifest = str(root / "interim" / "manifest.jsonl")
    model = model_options(module="hands", task_type="classification", task_input="landmarks", class_names=CLASSES,
                          num_classes=len(CLASSES))
    run = run_options(manifest=manifest, out_dir=str(root / "model"), checkpoint_dir=str(root / "ckpt"),
                      tracking_uri=f"sqlite:///{root / 'mlflow.db'}", tensorboard_dir=str(root / "tb"))
    trained = finetune(model, hparams(epochs=25, batch_size=64, learning_rate=3e-3, warmup_steps=5), run)
    metrics = evaluate(evaluate_options(module="hands", task_input="landmarks", gesture=str(root / "model" / "gesture.pt"),
                                        manifest=manifest, out_dir=str(root / "reports")))
    record = release(export_options(module="hands", task_input="landmarks", model_dir=str(root / "model"),
                                    out_dir=str(root / "export"), manifest=manifest,
                                    metrics=str(root / "reports" / "metrics.json"), register=True,
                                    tracking_uri=f"sqlite:///{root / 'mlflow.db'}"))
    return {"root": root, "report": report, "trained": trained, "metrics": metrics, "record": record}


def test_the_landmark_head_trains_evaluates_and_exports(landmark_run):
    report, metrics, record = landmark_run["report"], landmark_run["metrics"], landmark_run["record"]
    # 24 hands x 8 classes x 3 conditions, every row kept; landmarks only (no image), labelled synthetic
    assert report.counts == {"in": 576, "kept": 576, "quarantined": 0}
    assert landmark_run["trained"]["train_no_hand"] == 0 and landmark_run["trained"]["task_input"] == "landmarks"
    cls = metrics["classification"]
    assert cls["class_names"] == list(CLASSES) and metrics["synthetic"] == 1.0
    assert cls["finetuned"]["accuracy"] > 0.85 and cls["finetuned"]["macro_f1"] > 0.85  # measured 0.95+ at this size
    assert set(cls["conditions"]) == {"clean", "side_view", "noisy"}
    assert sum(c["n"] for c in cls["conditions"].values()) == cls["finetuned"]["n"] == metrics["samples"]
    assert np.asarray(cls["confusion_matrix"]).sum() == cls["finetuned"]["n"]
    rows = json.loads((landmark_run["root"] / "reports" / "plots" / "confusion.json").read_text())
    assert len(rows) == cls["finetuned"]["n"] and {r["actual"] for r in rows} <= set(CLASSES)
    assert metrics["gate"]["passed"] and "unchanged" in metrics["gate"]["landmarks"]
    # the export: ONNX == torch on the test hands, the runtime's own checks, and a registry version with the classes
    assert record["parity"]["onnx_vs_torch"]["logits"] < 1e-4
    assert GestureModel(record["onnx"]).class_names == list(CLASSES)
    assert record["registered"]["name"] == "holotune-gesture" and record["registered"]["alias"] == "challenger"
    assert (landmark_run["root"] / "export" / "MODEL_CARD.md").read_text().count("| clean |") == 1


def test_onnx_equals_torch_and_the_runtime_serves_the_same_decisions(landmark_run):
    import torch

    from holotune.data.hands import load_hands
    from holotune.training.heads import load_landmark_head

    head = load_landmark_head(landmark_run["root"] / "model" / "gesture.pt")
    hands = load_hands(landmark_run["root"] / "interim" / "manifest.jsonl", "test", list(CLASSES))
    with torch.no_grad():
        expected = head(torch.from_numpy(hands.features)).numpy()
    model = GestureModel(landmark_run["record"]["onnx"])
    assert np.abs(model.logits(hands.features) - expected).max() < 1e-4
    served = [model.classify({"left": None, "right": None}, (640, 480))]
    assert served == [{"left": None, "right": None}]  # no hand, no gesture


def test_holistic_gives_each_found_hand_a_gesture_in_still_and_video_mode(landmark_run, hand_frames):
    from holotune.runtime import Holistic

    onnx_path = landmark_run["record"]["onnx"]
    with Holistic(gesture=onnx_path) as holistic:
        results = [holistic.process(frame) for frame in hand_frames]
        stream = holistic.stream()
        video = [stream.process(frame, 40.0 * i) for i, frame in enumerate(hand_frames)]
    found = 0
    for result in results + video:
        for side in ("left", "right"):
            hand, gesture = getattr(result, f"{side}_hand"), getattr(result, f"{side}_gesture")
            assert (gesture is None) == (hand is None)  # a gesture for every found hand, none without one
            if gesture is not None:
                found += 1
                assert gesture.label in CLASSES and 0.0 <= gesture.score <= 1.0
                out = result.to_dict()[f"{side}_gesture"]
                assert out == {"label": gesture.label, "score": round(gesture.score, 6)}
    assert found >= len(hand_frames)  # every frame has at least one hand
    with Holistic() as plain:  # no gesture head served: hands, but no gestures
        result = plain.process(hand_frames[0])
    assert result.left_gesture is None and result.right_gesture is None


def test_the_landmark_head_runs_on_mediapipes_own_holistic_output(landmark_run, hand_frames):
    import mediapipe as mp

    from holotune.gesture import mediapipe_hands
    from holotune.runtime import Holistic

    model = GestureModel(landmark_run["record"]["onnx"])
    frame = hand_frames[0]
    with mp.solutions.holistic.Holistic(static_image_mode=True, model_complexity=1) as mediapipe:
        theirs = model.classify(mediapipe_hands(mediapipe.process(frame)), (frame.shape[1], frame.shape[0]))
    with Holistic(gesture=landmark_run["record"]["onnx"]) as holistic:
        ours = holistic.process(frame)
    compared = 0
    for side in ("left", "right"):
        mine = getattr(ours, f"{side}_gesture")
        assert (mine is None) == (theirs[side] is None)  # the same hands found
        if mine is not None:  # holotune's landmarks equal MediaPipe's to ~1e-3: the same decision
            assert mine.label == theirs[side].label and abs(mine.score - theirs[side].score) < 0.05
            compared += 1
    assert compared >= 1


def test_a_class_folder_dataset_runs_ingest_finetune_evaluate_export_serve(tmp_path, hand_frames):
    """Real hands in class folders (labelled by the teacher), through every stage to the runtime; images
    without a hand are quarantined with the reason and counted, and a class with no hand is an error."""
    import cv2
    from stage_options import evaluate_options, export_options, hparams, ingest_options, model_options, run_options

    from holotune.data.ingest import IngestError, Source, ingest
    from holotune.evaluation.report import evaluate
    from holotune.release import release
    from holotune.runtime import Holistic
    from holotune.samples import sample_images
    from holotune.training.finetune import finetune

    root = tmp_path / "gestures"
    for name in ("none", "chin"):
        (root / name).mkdir(parents=True)
    for i, frame in enumerate(hand_frames):
        cv2.imwrite(str(root / ("none" if i % 2 else "chin") / f"{i}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "chin" / "camera.jpg"), sample_images()["camera"])  # a man with a camera: no hand
    report = ingest(ingest_options([Source("class_folders", str(root))], tmp_path / "out", class_names=("none", "chin"),
                                   validation_split=0.0, test_split=0.0))  # six photos: all of them train
    assert report.counts == {"in": len(hand_frames) + 1, "kept": len(hand_frames), "quarantined": 1}
    (entry,) = report.quarantined
    assert entry["file"].endswith("camera.jpg") and "finds no hand in this image (class 'chin')" in entry["reason"]
    assert report.classes == {"none": len(hand_frames) // 2, "chin": len(hand_frames) // 2}
    manifest = str(tmp_path / "out" / "manifest.jsonl")
    model = model_options(module="hands", task_type="classification", task_input="landmarks", class_names=("none", "chin"),
                          num_classes=2)
    run = run_options(manifest=manifest, out_dir=str(tmp_path / "model"), checkpoint_dir=str(tmp_path / "ckpt"),
                      tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", tensorboard_dir=str(tmp_path / "tb"))
    trained = finetune(model, hparams(epochs=30, batch_size=8, learning_rate=1e-2, warmup_steps=1), run)
    assert trained["train_samples"] == len(hand_frames) and trained["train_no_hand"] == 0
    metrics = evaluate(evaluate_options(module="hands", task_input="landmarks", split="train", manifest=manifest,
                                        gesture=str(tmp_path / "model" / "gesture.pt"), out_dir=str(tmp_path / "reports")))
    assert metrics["classification"]["finetuned"]["n"] == len(hand_frames) and metrics["synthetic"] == 0.0
    record = release(export_options(module="hands", task_input="landmarks", model_dir=str(tmp_path / "model"),
                                    out_dir=str(tmp_path / "export"), manifest=manifest, register=False))
    with Holistic(gesture=record["onnx"]) as holistic:
        result = holistic.process(hand_frames[0])
    assert {g.label for g in (result.left_gesture, result.right_gesture) if g is not None} <= {"none", "chin"}
    assert result.left_gesture is not None or result.right_gesture is not None
    # a class folder where no image has a hand: a clear error naming the folder
    (root / "wave").mkdir()
    cv2.imwrite(str(root / "wave" / "astronaut.jpg"), sample_images()["astronaut"])
    with pytest.raises(IngestError, match=r"wave: no image of class 'wave' has a hand the teacher can find "
                                          r"\(1 quarantined: the teacher"):
        ingest(ingest_options([Source("class_folders", str(root))], tmp_path / "out2", class_names=("none", "chin", "wave")))


@pytest.mark.slow
def test_the_image_head_trains_on_real_hands_and_serves_from_the_hand_model(tmp_path, hand_frames):
    """task.input=image on the real hand frames: ingest -> tfrecord -> finetune (LoRA + class head) -> evaluate
    -> export (one hand model, two heads) -> Holistic(hands=...) gives each found hand a gesture."""
    import cv2
    from stage_options import (
        evaluate_options,
        export_options,
        hparams,
        ingest_options,
        lora,
        model_options,
        run_options,
        shard_options,
    )

    from holotune.data.ingest import Source, ingest
    from holotune.data.shards import write_dataset_shards
    from holotune.evaluation.report import evaluate
    from holotune.evaluation.scoring import CENTRED
    from holotune.release import release
    from holotune.runtime import Holistic
    from holotune.training.finetune import finetune

    root = tmp_path / "gestures"
    for i, frame in enumerate(hand_frames):
        folder = root / ("none" if i % 2 else "chin")
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    ingest(ingest_options([Source("class_folders", str(root))], tmp_path / "interim", class_names=("none", "chin"),
                          validation_split=0.0, test_split=0.0))
    write_dataset_shards(shard_options(tmp_path / "interim" / "manifest.jsonl", tmp_path / "shards"))
    model = model_options(module="hands", lora=lora(r=4, placement="head"), task_type="classification",
                          task_input="image", class_names=("none", "chin"), num_classes=2)
    run = run_options(shards_dir=str(tmp_path / "shards"), manifest=str(tmp_path / "interim" / "manifest.jsonl"),
                      out_dir=str(tmp_path / "model"), checkpoint_dir=str(tmp_path / "ckpt"),
                      tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", tensorboard_dir=str(tmp_path / "tb"))
    finetune(model, hparams(epochs=3, batch_size=8, warmup_steps=1), run)
    metrics = evaluate(evaluate_options(module="hands", model=str(tmp_path / "model" / "model.pt"),
                                        classifier=str(tmp_path / "model" / "classifier.pt"), split="train",
                                        shards_dir=str(tmp_path / "shards"), manifest=str(tmp_path / "interim" / "manifest.jsonl"),
                                        out_dir=str(tmp_path / "reports"), bootstrap=200, roi_jitter=CENTRED,
                                        allow_regression=True))
    assert metrics["classification"]["finetuned"]["n"] >= len(hand_frames)  # every labelled hand crop is scored
    record = release(export_options(module="hands", model_dir=str(tmp_path / "model"), out_dir=str(tmp_path / "export"),
                                    register=False, latency_runs=3))
    with Holistic(hands=record["onnx"]) as holistic:
        assert holistic.gesture_classes == ["none", "chin"]
        results = [holistic.process(frame) for frame in hand_frames]
    for result in results:
        for side in ("left", "right"):
            gesture = getattr(result, f"{side}_gesture")
            assert (gesture is None) == (getattr(result, f"{side}_hand") is None)
            assert gesture is None or gesture.label in ("none", "chin")


def test_landmarks_only_rows_are_checked_and_never_reach_the_tfrecord_stage(tmp_path):
    """A gestures row without the image size is quarantined with the reason; image-less rows stop the
    tfrecord stage with a message naming the row; a class with no training hand stops the landmark head."""
    from stage_options import hparams, ingest_options, model_options, run_options, shard_options

    from holotune.data.ingest import Source, ingest
    from holotune.data.shards import write_dataset_shards
    from holotune.training.finetune import FinetuneConfigError, finetune

    gesture_data = {"seed": 0, "hands": 4, "poses_per_condition": 1, "class_names": ["none", "closed_fist"],
                    "left_fraction": 0.5, "width": 640, "height": 480}
    report = ingest(ingest_options([Source("gestures", str(tmp_path / "interim" / "poses"))], tmp_path / "interim",
                                   class_names=("none", "closed_fist"), gesture_data=gesture_data))
    assert report.counts == {"in": 24, "kept": 24, "quarantined": 0}
    # The same row as the gestures source yields it, without the image width: refused, naming the field.
    from holotune.data.ingest import _Candidate, _to_sample
    from holotune.data.validation import SampleError

    row = json.loads((tmp_path / "interim" / "poses" / "labels.jsonl").read_text().splitlines()[0])
    meta = {k: v for k, v in row.items() if k not in ("keypoints", "mask", "label_name", "group", "width")}
    candidate = _Candidate("gestures:x", "labels.jsonl", 1, keypoints=row["keypoints"], mask=row["mask"],
                           label_name=row["label_name"], meta=meta, landmarks_only=True)
    options = ingest_options([], tmp_path / "x", class_names=("none", "closed_fist"))
    with pytest.raises(SampleError, match=r"width: a landmarks-only row needs the image's width in pixels, got None"):
        _to_sample(candidate, options, None)
    manifest = tmp_path / "interim" / "manifest.jsonl"
    with pytest.raises(ValueError, match=r"manifest.jsonl line 1: sample \w+ \(gestures:.*\) has no image: "
                                         r"landmarks-only data"):
        write_dataset_shards(shard_options(manifest, tmp_path / "shards"))
    model = model_options(module="hands", task_type="classification", task_input="landmarks",
                          class_names=("none", "closed_fist", "victory"), num_classes=3)
    run = run_options(manifest=str(manifest), out_dir=str(tmp_path / "model"), checkpoint_dir=str(tmp_path / "ckpt"),
                      tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", tensorboard_dir=str(tmp_path / "tb"))
    with pytest.raises(FinetuneConfigError, match=r"no training hand for class\(es\) \['victory'\]"):
        finetune(model, hparams(epochs=1), run)
