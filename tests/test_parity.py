"""TFLite = PyTorch = ONNX Runtime on real photo crops, and the traps that would break it.

The positive test runs every model through the reference interpreter, the module and its ONNX
export. Each negative control puts one conversion trap from docs/tflite_port.md §4
back into the converter and asserts that verification fails: a parity check that cannot fail on
these mistakes would prove nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F

from holotune.models import list_models, tflite_graph, tflite_module
from holotune.models.verification import DEFAULT_TOLERANCE, verify_model, verify_models

TOLERANCE = 1e-2  # the bound on landmark, box and score outputs


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return verify_models(onnx_dir=tmp_path_factory.mktemp("onnx"))


def test_default_tolerance_is_the_documented_bound():
    assert DEFAULT_TOLERANCE == TOLERANCE


@pytest.mark.parametrize("name", list_models())
def test_torch_matches_tflite_and_onnx_matches_torch(report, name):
    model = report.models[name]
    assert model.error is None
    for output, diffs in model.outputs.items():
        assert diffs["torch_vs_tflite"] <= TOLERANCE, (output, diffs)
        assert diffs["onnx_vs_torch"] <= TOLERANCE, (output, diffs)
        assert diffs["batch_vs_single"] <= TOLERANCE, (output, diffs)


def test_parity_is_far_inside_the_bound_on_the_precise_outputs(report):
    # Face and hand landmarks agree to float32 noise (~1e-4 px on values up to ~200 px).
    assert report.models["face_landmark"].outputs["landmarks"]["torch_vs_tflite"] < 1e-3
    assert report.models["hand_landmark_full"].outputs["landmarks"]["torch_vs_tflite"] < 1e-3
    assert report.models["hand_landmark_full"].outputs["hand_flag"]["torch_vs_tflite"] < 1e-5
    assert report.passed


def _symmetric_same_pads(in_size, kernel, stride, dilation=1):
    before, after = _ORIGINAL_SAME_PADS(in_size, kernel, stride, dilation)
    half = (before + after + 1) // 2  # nn.Conv2d(padding=1) for a 3x3 stride-2 conv: same shape, wrong pixels
    return half, half


def _resize_align_corners(x, size, align_corners, half_pixel_centers):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


_ORIGINAL_SAME_PADS = tflite_module.same_pads
TRAPS = {
    "symmetric SAME padding": ("face_landmark", tflite_module, "same_pads", _symmetric_same_pads),
    "pixel_shuffle for DEPTH_TO_SPACE": ("pose_detection", tflite_module, "depth_to_space", F.pixel_shuffle),
    "NCHW flatten before RESHAPE": ("pose_detection", tflite_module, "to_nhwc", lambda x: x),
    "sparse weights read as dense": (
        "pose_detection", tflite_graph, "_densify", lambda values, shape, sparsity: np.resize(values, shape)),
    "align-corners resize": ("pose_landmark_full", tflite_module, "resize_bilinear", _resize_align_corners),
    "batch of 1 baked into RESHAPE": ("pose_detection", tflite_module, "reshape_batch", lambda x, s: x.reshape(s)),
}


@pytest.mark.parametrize("trap", list(TRAPS))
def test_each_conversion_trap_is_caught(monkeypatch, trap):
    name, module, attr, naive = TRAPS[trap]
    assert verify_model(name, check_onnx=False).passed(TOLERANCE)  # the model passes as converted...
    monkeypatch.setattr(module, attr, naive)
    broken = verify_model(name, check_onnx=False)
    assert not broken.passed(TOLERANCE)  # ...and fails with the trap put back
    if broken.error is None:
        worst = max(max(v for v in d.values() if v is not None) for d in broken.outputs.values())
        assert worst > 10 * TOLERANCE


def test_baked_batch_is_caught_by_the_batch_check(monkeypatch):
    # A single-sample parity test cannot see a baked batch; only batch-vs-single does.
    monkeypatch.setattr(tflite_module, "reshape_batch", lambda x, s: x.reshape(s))
    broken = verify_model("pose_detection", check_onnx=False)
    assert broken.error is not None and "shape" in broken.error
    monkeypatch.undo()
    clean = verify_model("hand_recrop", check_onnx=False)
    assert clean.outputs["crop"]["batch_vs_single"] < 1e-3
