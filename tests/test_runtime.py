"""The ONNX Runtime Holistic against mediapipe==0.10.21 itself, and its edges: bad images,
wrong models, no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from holotune.cli import main
from holotune.export import export_stock_models
from holotune.models.spec import MODEL_SPECS
from holotune.runtime import Holistic, HolisticResult, ModelLoadError
from holotune.runtime.image import ImageError, load_image
from holotune.samples import sample_images

PARTS = ("pose", "face", "left_hand", "right_hand")


@pytest.fixture(scope="module")
def stock_onnx():
    return export_stock_models()  # once per machine; kept in the user cache


@pytest.fixture(scope="module")
def holistic(stock_onnx):
    with Holistic() as h:
        yield h


def _conformance_images() -> dict[str, np.ndarray]:
    images = dict(sample_images())
    images["astronaut_crop"] = np.ascontiguousarray(images["astronaut"][40:400, 60:420])
    images["grace_hopper_small"] = np.ascontiguousarray(images["grace_hopper"][::2, ::2])
    return images


def _mediapipe(image: np.ndarray) -> dict[str, np.ndarray | None]:
    import mediapipe as mp

    # A fresh instance per image: "static" mode still tracks face and hand ROIs between calls.
    with mp.solutions.holistic.Holistic(static_image_mode=True, model_complexity=1) as ref:
        r = ref.process(image)

    def arr(landmarks, vis=False):
        if landmarks is None:
            return None
        return np.array([[p.x, p.y, p.z] + ([p.visibility] if vis else []) for p in landmarks.landmark])

    return {"pose": arr(r.pose_landmarks, True), "pose_world": arr(r.pose_world_landmarks, True),
            "face": arr(r.face_landmarks), "left_hand": arr(r.left_hand_landmarks),
            "right_hand": arr(r.right_hand_landmarks)}


@pytest.mark.parametrize("name", list(_conformance_images()))
def test_matches_mediapipe_holistic(holistic, name):
    image = _conformance_images()[name]
    ours, ref = holistic.process(image), _mediapipe(image)
    for part in PARTS:
        assert (getattr(ours, part) is None) == (ref[part] is None), f"{part} detected differently"
    for part in PARTS:
        if ref[part] is None:
            continue
        dxy = np.abs(getattr(ours, part)[:, :2] - ref[part][:, :2]).max(axis=1)
        if part == "pose":
            # One landmark may move more: its heatmap window can flip with float noise near a cell edge.
            assert np.sort(dxy)[-2] <= 2e-3 and dxy.max() <= 1e-2, dxy.max()
            assert np.abs(ours.pose[:, 3] - ref["pose"][:, 3]).max() <= 5e-3  # visibility
            assert np.abs(ours.pose_world[:, :3] - ref["pose_world"][:, :3]).max() <= 5e-3  # metres
        else:
            assert dxy.max() <= 2e-3, (part, dxy.max())


def test_left_is_the_subjects_left(holistic):
    pose = holistic.process(sample_images()["astronaut"]).pose
    # A camera-facing person's left shoulder (11) is on the image's right.
    assert pose[11, 0] > pose[12, 0]


def test_no_person_gives_an_empty_result(holistic):
    result = holistic.process(np.full((240, 320, 3), 127, dtype=np.uint8))
    assert all(getattr(result, p) is None for p in (*PARTS, "pose_world"))
    assert np.isnan(result.to_array()).all()


def test_to_array_layout(holistic):
    result = holistic.process(sample_images()["astronaut"])
    arr = result.to_array()
    assert arr.shape == (543, 4) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr[:33], result.pose)
    np.testing.assert_array_equal(arr[33:501, :3], result.face)
    assert np.isnan(arr[33:501, 3]).all() and np.isnan(arr[501:]).all()  # no visibility; no hands


def test_result_json_round_trip():
    result = HolisticResult(pose=np.zeros((33, 4), np.float32), face=None)
    assert json.loads(json.dumps(result.to_dict()))["pose"][0] == [0.0, 0.0, 0.0, 0.0]


def test_runtime_never_imports_torch(stock_onnx):
    code = ("import sys, numpy as np; from holotune.runtime import Holistic; "
            "Holistic().process(np.zeros((64, 64, 3), np.uint8)); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_fine_tuned_model_override_is_used(stock_onnx, tmp_path):
    import shutil

    copy = shutil.copy(stock_onnx["face_landmark"], tmp_path / "face_ft.onnx")
    with Holistic(face_mesh=copy) as h:
        assert h.sources == {"face_mesh": str(copy)}
        assert h.process(sample_images()["astronaut"]).face is not None


def test_override_with_the_wrong_signature_is_refused(stock_onnx):
    with pytest.raises(ModelLoadError, match=r"hand_recrop.onnx: input must be 'input' \(N, 3, 192, 192\)"):
        Holistic(face_mesh=stock_onnx["hand_recrop"])


def test_override_that_does_not_exist_is_refused(stock_onnx, tmp_path):
    with pytest.raises(ModelLoadError, match="missing.onnx: no such model file"):
        Holistic(hands=tmp_path / "missing.onnx")


def test_thresholds_are_validated(stock_onnx):
    with pytest.raises(ValueError, match="min_detection_confidence must be in"):
        Holistic(min_detection_confidence=1.5)


# ---------------------------------------------------------------- bad input
def test_image_conversions(tmp_path):
    rgb = sample_images()["astronaut"][:64, :48]
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "grey.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray((rgb[:, :, 1].astype(np.uint16) * 257)).save(tmp_path / "deep.png")  # 16-bit greyscale
    grey, rgba, deep = (load_image(tmp_path / f) for f in ("grey.png", "rgba.png", "deep.png"))
    assert grey.shape == rgba.shape == deep.shape == (64, 48, 3) and deep.dtype == np.uint8
    np.testing.assert_array_equal(grey[:, :, 2], rgb[:, :, 0])
    np.testing.assert_array_equal(rgba, rgb)
    np.testing.assert_array_equal(deep[:, :, 0], rgb[:, :, 1])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"this is not an image\n", "not an image file"),
        ("truncated", "corrupt or truncated image"),
        ("tiny", "image is 1x1 pixels; need at least 2x2"),
    ],
)
def test_bad_image_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.jpg"
    if content == "truncated":
        Image.fromarray(sample_images()["camera"]).save(path, quality=90)
        path.write_bytes(path.read_bytes()[:3000])
    elif content == "tiny":
        Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(path)
    else:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=f"bad.jpg: {message}"):
        load_image(path)


def test_infer_goes_on_after_a_bad_image_and_exits_nonzero(stock_onnx, tmp_path, capsys):
    good = tmp_path / "astronaut.png"
    Image.fromarray(sample_images()["astronaut"]).save(good)
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    code = main(["infer", str(bad), str(good), "--json", "--overlay", str(tmp_path / "overlays")])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 1
    assert lines[0]["image"] == str(bad) and "not an image file" in lines[0]["error"]
    assert lines[1]["image"] == str(good) and len(lines[1]["pose"]) == 33 and len(lines[1]["face"]) == 468
    assert lines[1]["left_hand"] is None
    assert "notes.txt: not an image file" in captured.err and "1 of 2 image(s) failed" in captured.err
    overlay = np.asarray(Image.open(tmp_path / "overlays" / "astronaut.png"))
    assert overlay.shape == (512, 512, 3) and not np.array_equal(overlay, sample_images()["astronaut"])


def test_bench_runtime_reports_both_pipelines(stock_onnx, tmp_path, capsys):
    Image.fromarray(sample_images()["astronaut"]).save(tmp_path / "astronaut.png")
    assert main(["bench", "runtime", "--images", str(tmp_path), "--json", "--runs", "2", "--warmup", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    row = report["images"]["astronaut.png"]
    assert row["size"] == [512, 512] and row["holotune_ms"] > 0 and row["mediapipe_ms"] > 0
    assert row["ratio"] == pytest.approx(row["holotune_ms"] / row["mediapipe_ms"])


def test_a_session_missing_an_output_holistic_reads_is_refused(stock_onnx):
    from holotune.models import MODEL_SPECS
    from holotune.runtime import ModelSession

    partial = ModelSession(MODEL_SPECS["face_landmark"], stock_onnx["face_landmark"], outputs=["landmarks"])
    with Holistic() as h, pytest.raises(ValueError, match=r"does not compute \['face_flag'\]"):
        h.set_model("face_mesh", partial)


def test_override_from_an_mlflow_registry_alias(stock_onnx, tmp_path, monkeypatch):
    import mlflow
    import onnx

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment("runtime-test", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.onnx.log_model(onnx.load(str(stock_onnx["face_landmark"])), name="model",
                                     registered_model_name="holotune-face_mesh")
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("holotune-face_mesh", "champion", info.registered_model_version)
    with Holistic(face_mesh="models:/holotune-face_mesh@champion") as h:
        assert h.sources["face_mesh"] == "models:/holotune-face_mesh@champion"
        assert h.process(sample_images()["astronaut"]).face is not None
    with pytest.raises(ModelLoadError, match="models:/holotune-face_mesh@nobody: cannot download"):
        Holistic(face_mesh="models:/holotune-face_mesh@nobody")


_NO_TORCH_CLI = """
import json, sys
from holotune.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "torch": sorted(n for n in sys.modules if n.split(".")[0] == "torch")}))
"""


def _cli_without_torch(args: list[str], **env) -> dict:
    import os

    done = subprocess.run([sys.executable, "-c", _NO_TORCH_CLI, *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cli_infer_never_imports_torch(stock_onnx, tmp_path):
    Image.fromarray(sample_images()["astronaut"]).save(tmp_path / "astronaut.jpg")
    out = _cli_without_torch(["infer", str(tmp_path / "astronaut.jpg"), "--overlay", str(tmp_path / "overlays")])
    assert out == {"rc": 0, "torch": []}
    assert (tmp_path / "overlays" / "astronaut.png").is_file()


@pytest.mark.slow
def test_cli_infer_exports_missing_stock_models_in_a_child_process(tmp_path):
    """First use on a fresh machine: the stock ONNX files are built by a child process (which needs
    torch); the infer process itself still never imports it."""
    Image.fromarray(sample_images()["astronaut"]).save(tmp_path / "astronaut.jpg")
    out = _cli_without_torch(["infer", str(tmp_path / "astronaut.jpg")], HOLOTUNE_ONNX_DIR=str(tmp_path / "onnx"))
    assert out == {"rc": 0, "torch": []}
    assert sorted(p.stem for p in (tmp_path / "onnx").glob("*.onnx")) == sorted(MODEL_SPECS)
