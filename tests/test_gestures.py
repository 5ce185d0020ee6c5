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
