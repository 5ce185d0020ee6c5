"""MediaPipe's own Holistic on a fine-tuned face model through a resource folder
(:mod:`holotune.mediapipe_resources`), against holotune's ONNX Runtime Holistic on the same weights.

The "fine-tuned" model is built here, so that a fresh clone needs no pipeline run: the stock face
model with its landmark head (``conv2d_21``) perturbed deterministically, weights rounded to float16
(what the stock ``.tflite`` stores), so that the ``.tflite`` MediaPipe reads and the ``.onnx`` holotune
reads hold exactly the same numbers. Compared: the 468 face landmarks' x, y in normalized image
coordinates, max over landmarks of max(|dx|, |dy|), first call of a fresh instance per image
(``static_image_mode=True`` is not stateless, docs/mediapipe_holistic.md §12.1).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from holotune.mediapipe_resources import (
    MANIFEST,
    POSE_LANDMARK_MODELS,
    ResourceError,
    holistic_resources,
    lay_out_resources,
    mediapipe_holistic,
    open_holistic,
    open_solution,
    read_layout,
    resource_path,
    stock_resource_root,
)
from holotune.runtime.conformance import mediapipe_parts
from holotune.samples import sample_images

OPTIONS = {"static_image_mode": True, "model_complexity": 1, "refine_face_landmarks": False}
FACE_TOLERANCE = 2e-3  # tests/test_runtime.py's face bound for stock MediaPipe vs holotune (docs/mediapipe_holistic.md §12.2)
CHANGED = 5 * FACE_TOLERANCE  # the perturbed model must move the face at least this much
IMAGES = ("grace_hopper", "astronaut")  # sample photos with a large face (the cameraman's is 30 px wide)


def _max_xy(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a[:, :2] - b[:, :2]).max())


def _mediapipe_face(solution, image: np.ndarray) -> np.ndarray | None:
    return mediapipe_parts(solution.process(image))["face"]


@pytest.fixture(scope="module")
def stock_onnx():
    from holotune.export import export_stock_models

    return export_stock_models()  # once per machine; kept in the user cache


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """(resource folder with the perturbed face_landmark.tflite, its .tflite, the same model as .onnx)."""
    import torch

    from holotune.export import export_onnx
    from holotune.models import create_model
    from holotune.tflite_export import write_tflite

    tmp = tmp_path_factory.mktemp("tuned")
    model = create_model("face_landmark")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        head = model.conv2d_21  # the 1404 landmark outputs, in 192-px crop units
        head.bias.add_(6.0 * torch.randn(head.bias.shape, generator=generator))
        head.weight.mul_(1.0 + 0.05 * torch.randn(head.weight.shape, generator=generator))
        for param in (head.bias, head.weight):
            param.copy_(param.half().float())  # exactly what the .tflite stores (float16)
    record = write_tflite(model, tmp / "face_landmark.tflite")
    assert record["weights_changed"] == 2
    onnx_path = export_onnx(model, tmp / "face_tuned.onnx")
    folder = lay_out_resources({"face_mesh": tmp / "face_landmark.tflite"}, tmp / "resources")
    return folder, tmp / "face_landmark.tflite", onnx_path


def test_mediapipe_holistic_runs_the_exported_model_as_holotune_does(tuned, stock_onnx):
    import mediapipe as mp

    from holotune.runtime import Holistic

    folder, _, onnx_path = tuned
    with Holistic() as ours_stock, Holistic(face_mesh=onnx_path) as ours_tuned:
        for name in IMAGES:
            image = sample_images()[name]
            with mediapipe_holistic(folder, **OPTIONS) as mp_tuned:
                # Built while the tuned instance lives: the resource directory is the package's again.
                with mp.solutions.holistic.Holistic(**OPTIONS) as mp_stock:
                    stock = _mediapipe_face(mp_stock, image)
                # Processed after a stock graph was built: its models were read when it was built.
                finetuned = _mediapipe_face(mp_tuned, image)
            expected_tuned, expected_stock = ours_tuned.process(image).face, ours_stock.process(image).face
            assert finetuned is not None and stock is not None, name
            assert _max_xy(finetuned, expected_tuned) <= FACE_TOLERANCE, name
            assert _max_xy(stock, expected_stock) <= FACE_TOLERANCE, name
            assert _max_xy(finetuned, stock) >= CHANGED, name
            assert _max_xy(finetuned, expected_stock) >= CHANGED, name


def test_a_stock_holistic_built_after_the_context_is_stock(tuned, stock_onnx):
    import mediapipe as mp
    from mediapipe.python import solution_base
    from mediapipe.python._framework_bindings import resource_util

    from holotune.runtime import Holistic

    folder, _, onnx_path = tuned
    image = sample_images()["astronaut"]
    with mediapipe_holistic(folder, **OPTIONS) as mp_tuned:
        finetuned = _mediapipe_face(mp_tuned, image)
    assert solution_base.resource_util is resource_util
    with mp.solutions.holistic.Holistic(**OPTIONS) as mp_stock:
        stock = _mediapipe_face(mp_stock, image)
    with Holistic() as ours:
        assert _max_xy(stock, ours.process(image).face) <= FACE_TOLERANCE
    assert _max_xy(stock, finetuned) >= CHANGED


def test_holistic_reads_only_the_listed_resources(tuned, tmp_path, stock_onnx):
    """A folder holding just holistic_resources() runs; the fine-tuned face comes from it."""
    from holotune.runtime import Holistic

    _, tflite_path, onnx_path = tuned
    stock = stock_resource_root()
    for rel in holistic_resources():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(tflite_path if rel == resource_path("face_mesh") else stock / rel, tmp_path / rel)
    image = sample_images()["astronaut"]
    with mediapipe_holistic(tmp_path, **OPTIONS) as mp_tuned:
        finetuned = _mediapipe_face(mp_tuned, image)
    with Holistic(face_mesh=onnx_path) as ours:
        assert _max_xy(finetuned, ours.process(image).face) <= FACE_TOLERANCE


def test_a_graph_that_fails_to_start_names_the_file_and_restores_the_resource_dir(tuned, tmp_path):
    import mediapipe as mp
    from mediapipe.python import solution_base
    from mediapipe.python._framework_bindings import resource_util

    stock = stock_resource_root()
    for rel in holistic_resources():
        if not rel.endswith("handedness.txt"):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(stock / rel, tmp_path / rel)
    with pytest.raises(ResourceError, match=r"hand_landmark/handedness\.txt"):
        open_solution(lambda: mp.solutions.holistic.Holistic(**OPTIONS), tmp_path)
    assert solution_base.resource_util is resource_util
    with mp.solutions.holistic.Holistic(**OPTIONS) as mp_stock:  # would fail to start if still pointed at tmp_path
        assert _mediapipe_face(mp_stock, sample_images()["astronaut"]) is not None


# ---------------------------------------------------------------- the folder and bad input


def test_layout_mirrors_the_package_and_records_the_replacement(tuned):
    folder, tflite_path, _ = tuned
    stock = stock_resource_root()
    face = folder / resource_path("face_mesh")
    assert not face.is_symlink() and face.read_bytes() == tflite_path.read_bytes()
    for rel in holistic_resources():
        assert (folder / rel).is_file(), rel
    hands = folder / resource_path("hands")
    assert hands.is_symlink() and hands.resolve() == (stock / resource_path("hands")).resolve()
    layout = read_layout(folder)
    assert list(layout["replaced"]) == ["mediapipe/modules/face_landmark/face_landmark.tflite"]
    assert layout["replaced"]["mediapipe/modules/face_landmark/face_landmark.tflite"]["model"] == "face_landmark"


def test_laying_out_again_replaces_the_folder(tmp_path):
    stock_hand = stock_resource_root() / resource_path("hands")
    lay_out_resources({"hand_landmark_full": stock_hand}, tmp_path)
    assert not (tmp_path / resource_path("hands")).is_symlink()
    lay_out_resources({}, tmp_path)
    assert (tmp_path / resource_path("hands")).is_symlink() and read_layout(tmp_path)["replaced"] == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "mediapipe"]


def test_a_file_that_is_not_tflite_is_refused(tmp_path):
    bad = tmp_path / "face_landmark.tflite"
    bad.write_text("not a model")
    with pytest.raises(ResourceError, match=r"face_landmark\.tflite: not a TFLite model"):
        lay_out_resources({"face_mesh": bad}, tmp_path / "out")
    with pytest.raises(ResourceError, match=r"missing\.tflite: no such file"):
        lay_out_resources({"face_mesh": tmp_path / "missing.tflite"}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_model_with_another_signature_is_refused():
    wrong = stock_resource_root() / resource_path("hands")
    with pytest.raises(ResourceError, match=r"hand_landmark_full\.tflite: not a drop-in for "
                                            r"mediapipe/modules/face_landmark/face_landmark\.tflite \(models\['face_mesh'\]\): "
                                            r"its inputs are input_1 \[1, 224, 224, 3\] float32; the stock file's are "
                                            r"input_1 \[1, 192, 192, 3\] float32"):
        lay_out_resources({"face_mesh": wrong}, "unused")


def test_bad_keys_and_folders_are_refused(tuned, tmp_path):
    folder, tflite_path, _ = tuned
    with pytest.raises(ResourceError, match="models: unknown model 'face'"):
        lay_out_resources({"face": tflite_path}, tmp_path)
    with pytest.raises(ResourceError, match="'face_mesh' and 'face_landmark' both replace"):
        lay_out_resources({"face_mesh": tflite_path, "face_landmark": tflite_path}, tmp_path)
    (tmp_path / "theirs" / "mediapipe").mkdir(parents=True)
    with pytest.raises(ResourceError, match="theirs: already holds a mediapipe/ folder"):
        lay_out_resources({}, tmp_path / "theirs")
    with pytest.raises(ResourceError, match="not a MediaPipe resource folder"):
        open_holistic(tmp_path)
    with pytest.raises(ResourceError, match=r"replaces \['mediapipe/modules/face_landmark/face_landmark\.tflite'\], "
                                            r"which Holistic\(model_complexity=1, refine_face_landmarks=True\)"):
        open_holistic(folder, refine_face_landmarks=True)


def test_a_pose_model_the_wheel_does_not_ship_is_not_downloaded(tmp_path):
    if (stock_resource_root() / POSE_LANDMARK_MODELS[0]).is_file():
        pytest.skip("this machine's mediapipe package already holds pose_landmark_lite.tflite (downloaded before)")
    lay_out_resources({}, tmp_path)
    with pytest.raises(ResourceError, match="model_complexity: 0 makes MediaPipe's Holistic download"):
        open_holistic(tmp_path, model_complexity=0)


def test_a_missing_file_is_named(tmp_path):
    lay_out_resources({}, tmp_path)
    (tmp_path / "mediapipe/modules/hand_landmark/handedness.txt").unlink()
    with pytest.raises(ResourceError, match=r"hand_landmark/handedness\.txt: missing"):
        open_holistic(tmp_path, **OPTIONS)


def test_the_module_imports_neither_torch_nor_mediapipe():
    code = ("import sys, holotune.mediapipe_resources as m; m.stock_resource_root(); "
            "print('torch' in sys.modules, 'mediapipe' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
