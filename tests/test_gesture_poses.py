"""The synthetic gesture poses: determinism, label consistency, geometry, the writer's format, options."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from holotune.data.gestures import (
    CLASS_NAMES,
    CONDITIONS,
    GESTURES,
    GesturePoseOptions,
    HandSkeleton,
    build_gesture_poses,
    draw_angles,
    forward_kinematics,
    generate,
    mirror,
)
from holotune.data.gestures.build import (
    BONE_JITTER_SIGMA,
    HAND_SCALE_SIGMA,
    SPAN_PX,
    orient,
    project,
)
from holotune.data.gestures.classes import NONE_MARGIN_DEG, UP_TOLERANCE_DEG, inside_gesture
from holotune.data.gestures.kinematics import BONE_LENGTHS_M, BONES, FINGER_CHAINS, bone_name
from holotune.landmarks import NUM_HAND, NUM_KEYPOINTS, PARTS, HandLandmark

H = HandLandmark
FINGERS = [name for name in FINGER_CHAINS if name != "thumb"]


def options(**changes) -> GesturePoseOptions:
    base = dict(seed=0, hands=12, poses_per_condition=2, class_names=CLASS_NAMES, left_fraction=0.5,
                width=640, height=480)
    return GesturePoseOptions(**{**base, **changes})


@pytest.fixture(scope="module")
def data() -> dict:
    return generate(options())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp("gestures")
    labels = build_gesture_poses(out, options(hands=4, poses_per_condition=1))
    return labels, [json.loads(line) for line in labels.read_text().splitlines()]


def of_class(data: dict, name: str) -> np.ndarray:
    return data["class_index"] == CLASS_NAMES.index(name)


# --- determinism and the written files ---------------------------------------------------------------

def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    small = options(hands=3, poses_per_condition=1)
    first, second, other = (build_gesture_poses(tmp_path / name, opts) for name, opts in
                            (("a", small), ("b", small), ("c", options(hands=3, poses_per_condition=1, seed=1))))
    for name in ("labels.jsonl", "sources.json"):
        assert (first.parent / name).read_bytes() == (second.parent / name).read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_records_have_the_documented_fields_and_only_the_hand_rows(built):
    _, rows = built
    for row in rows:
        assert set(row) == {"keypoints", "mask", "label_name", "group", "condition", "side", "width", "height",
                            "synthetic", "domain"}
        assert row["synthetic"] is True and row["domain"] == "synthetic" and (row["width"], row["height"]) == (640, 480)
        assert row["group"].startswith("hand-") and row["condition"] in [c.name for c in CONDITIONS]
        keypoints, mask = np.array(row["keypoints"]), np.array(row["mask"])
        assert keypoints.shape == (NUM_KEYPOINTS, 3) and mask.shape == (NUM_KEYPOINTS,)
        hand = np.zeros(NUM_KEYPOINTS, dtype=bool)
        hand[PARTS[f"{row['side']}_hand"]] = True
        assert (mask == hand).all()
        assert (keypoints[~hand] == 0).all()
        assert keypoints[hand, 2][H.WRIST] == 0.0  # z is relative to the wrist


def test_counts_in_sources_add_up_to_the_lines(built):
    labels, rows = built
    sources = json.loads((labels.parent / "sources.json").read_text())
    assert sources["synthetic"] is True and sources["classes"] == list(CLASS_NAMES) and sources["hands"] == 4
    assert sum(n for per_class in sources["counts"].values() for n in per_class.values()) == len(rows)
    for name, condition in itertools.product(CLASS_NAMES, [c.name for c in CONDITIONS]):
        assert sources["counts"][name][condition] == 4 == sum(
            r["label_name"] == name and r["condition"] == condition for r in rows)
    assert sources["bone_table"]["lengths_m"] == dict(BONE_LENGTHS_M)
    # one side per hand identity; left_fraction 0.5 of 4 hands -> 2 left
    sides = {r["group"]: {x["side"] for x in rows if x["group"] == r["group"]} for r in rows}
    assert all(len(s) == 1 for s in sides.values()) and sum(s == {"left"} for s in sides.values()) == 2


# --- the labels are what the class says -------------------------------------------------------------

def test_curled_fingers_end_nearer_the_wrist_than_their_mcp(data):
    points = data["hand_points"]
    for name in ("closed_fist", "thumb_up", "thumb_down"):
        rows = of_class(data, name)
        for finger in FINGERS:
            mcp, tip = FINGER_CHAINS[finger][0], FINGER_CHAINS[finger][3]
            assert (np.linalg.norm(points[rows, tip], axis=1) < np.linalg.norm(points[rows, mcp], axis=1)).all(), \
                (name, finger)


def test_open_palm_fingertips_are_far_from_the_wrist(data):
    points = data["hand_points"][of_class(data, "open_palm")]
    for finger in FINGERS:
        mcp, tip = FINGER_CHAINS[finger][0], FINGER_CHAINS[finger][3]
        assert (np.linalg.norm(points[:, tip], axis=1) > 1.5 * np.linalg.norm(points[:, mcp], axis=1)).all(), finger


def _image_angle_from_up(keypoints: np.ndarray, start: int, end: int, width: int = 640, height: int = 480):
    vector = (keypoints[:, end, :2] - keypoints[:, start, :2]) * [width, height]
    return np.degrees(np.arctan2(vector[:, 0], -vector[:, 1]))  # 0 = straight up, +-180 = down


def test_aimed_fingers_point_up_or_down_in_the_image(data):
    keypoints = data["keypoints"]
    up = keypoints[of_class(data, "thumb_up")]
    down = keypoints[of_class(data, "thumb_down")]
    pointing = keypoints[of_class(data, "pointing_up")]
    assert (up[:, H.THUMB_TIP, 1] < up[:, H.THUMB_MCP, 1]).all()  # image y grows downwards
    assert (down[:, H.THUMB_TIP, 1] > down[:, H.THUMB_MCP, 1]).all()
    assert (pointing[:, H.INDEX_FINGER_TIP, 1] < pointing[:, H.INDEX_FINGER_MCP, 1]).all()
    clean = data["condition"] == 0  # with 1 % noise the angle keeps within a few degrees of its draw
    slack = 10.0
    assert (np.abs(_image_angle_from_up(keypoints[clean & of_class(data, "thumb_up")], H.THUMB_MCP, H.THUMB_TIP))
            < UP_TOLERANCE_DEG + slack).all()
    assert (np.abs(_image_angle_from_up(keypoints[clean & of_class(data, "thumb_down")], H.THUMB_MCP, H.THUMB_TIP))
            > 180.0 - UP_TOLERANCE_DEG - slack).all()
    assert (np.abs(_image_angle_from_up(keypoints[clean & of_class(data, "pointing_up")], H.INDEX_FINGER_MCP,
                                        H.INDEX_FINGER_TIP)) < UP_TOLERANCE_DEG + slack).all()


def test_every_class_draws_inside_its_own_ranges_and_none_outside_all_others(data):
    rng = np.random.default_rng(5)
    for name, gesture in GESTURES.items():
        angles = draw_angles(gesture, rng, 2000)
        assert np.any([shape.contains(angles) for shape in gesture.shapes], axis=0).all(), name
    none = draw_angles(GESTURES["none"], rng, 5000)
    assert not inside_gesture(none, NONE_MARGIN_DEG).any()
    assert not inside_gesture(data["angles"][of_class(data, "none")]).any()


def test_gesture_shapes_do_not_overlap():
    """Only thumb_up and thumb_down share a shape (their orientation tells them apart)."""
    named = [(g.name, s) for g in GESTURES.values() if g.name != "none" for s in g.shapes]
    for (a, shape_a), (b, shape_b) in itertools.combinations(named, 2):
        if {a, b} == {"thumb_up", "thumb_down"}:
            continue
        (lo_a, hi_a), (lo_b, hi_b) = shape_a.bounds(), shape_b.bounds()
        assert ((hi_a < lo_b) | (hi_b < lo_a)).any(), (a, b)


def test_classes_are_learnable_from_landmarks_on_clean():
    """A softmax regression (numpy) on wrist-centred, scale-normalised landmarks separates the classes,
    trained on some hand identities and tested on others."""
    data = generate(options(hands=30, seed=3))
    clean = data["condition"] == 0
    pixels = data["keypoints"][clean] * [640, 480, 640]
    centred = pixels - pixels[:, :1]
    features = (centred / np.abs(centred[..., :2]).max(axis=(1, 2))[:, None, None]).reshape(len(pixels), -1)
    labels, hand = data["class_index"][clean], data["hand"][clean]
    train, test = hand < 22, hand >= 22
    mean, std = features[train].mean(0), features[train].std(0) + 1e-9
    x = (features - mean) / std
    weights, bias = np.zeros((x.shape[1], len(CLASS_NAMES))), np.zeros(len(CLASS_NAMES))
    onehot = np.eye(len(CLASS_NAMES))[labels[train]]
    for _ in range(400):
        logits = x[train] @ weights + bias
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        grad = (p - onehot) / train.sum()
        weights -= 0.5 * (x[train].T @ grad + 1e-3 * weights)
        bias -= 0.5 * grad.sum(0)
    accuracy = np.mean(np.argmax(x[test] @ weights + bias, 1) == labels[test])
    assert accuracy > 0.85, accuracy


# --- geometry ----------------------------------------------------------------------------------------

def test_bone_lengths_stay_within_the_scale_range_of_the_table(data):
    points = data["hand_points"]
    table = np.array([BONE_LENGTHS_M[bone_name(b)] for b in BONES])
    lengths = np.stack([np.linalg.norm(points[:, child] - points[:, parent], axis=1) for parent, child in BONES], 1)
    low = (1 - 2 * HAND_SCALE_SIGMA) * (1 - 2 * BONE_JITTER_SIGMA) - 1e-9
    high = (1 + 2 * HAND_SCALE_SIGMA) * (1 + 2 * BONE_JITTER_SIGMA) + 1e-9
    ratio = lengths / table
    assert (ratio >= low).all() and (ratio <= high).all()
    per_hand = ratio / data["scale"][:, None]  # what is left is the per-bone jitter
    assert (np.abs(per_hand - 1) <= 2 * BONE_JITTER_SIGMA + 1e-9).all()
    assert 0.9 < np.median(ratio) < 1.1


def test_points_are_inside_the_image_at_the_drawn_size(data):
    keypoints = data["keypoints"]
    assert ((keypoints[..., :2] > 0) & (keypoints[..., :2] < 1)).all()
    clean = keypoints[data["condition"] == 0] * [640, 480, 640]
    span = (clean[..., :2].max(1) - clean[..., :2].min(1)).max(1)
    assert SPAN_PX[0] * 0.95 < span.min() and span.max() < SPAN_PX[1] * 1.05  # 1 % noise on the drawn span


def test_left_hand_is_the_mirror_image_of_the_right():
    skeleton = HandSkeleton.measured()
    angles = np.radians(draw_angles(GESTURES["open_palm"], np.random.default_rng(0), 4))
    right = forward_kinematics(angles, skeleton.palm, skeleton.phalanges)
    left = mirror(right)
    assert np.allclose(left[..., 0], -right[..., 0]) and np.allclose(left[..., 1:], right[..., 1:])
    # Palm to the camera, fingers up: the right thumb is on the image's right, the left thumb on its left.
    zero = np.zeros(4)
    assert (orient(right, zero, zero, zero)[:, H.THUMB_TIP, 0] > 0).all()
    assert (orient(left, zero, zero, zero)[:, H.THUMB_TIP, 0] < 0).all()
    # Mirrored hand, mirrored yaw and roll, mirrored position -> the mirrored image (x -> W - x).
    yaw, pitch, roll = np.radians([20.0, -35, 50, 5]), np.radians([10.0, 5, -20, 0]), np.radians([30.0, -60, 170, 0])
    wrist = np.array([[-0.1, 0.05, 0.5], [0.0, -0.2, 0.6], [0.3, 0.1, 0.8], [-0.4, 0.3, 1.0]])
    seen_right = project(orient(right, yaw, pitch, roll), wrist, 640, 480)
    seen_left = project(orient(left, -yaw, pitch, -roll), wrist * [-1, 1, 1], 640, 480)
    assert np.allclose(seen_left[..., 0], 640 - seen_right[..., 0])
    assert np.allclose(seen_left[..., 1:], seen_right[..., 1:])


def test_left_hands_go_to_the_left_hand_rows(built):
    _, rows = built
    for row in rows:
        keypoints = np.array(row["keypoints"])
        other = "right" if row["side"] == "left" else "left"
        assert (keypoints[PARTS[f"{row['side']}_hand"]] != 0).any() and (keypoints[PARTS[f"{other}_hand"]] == 0).all()
    assert NUM_HAND == 21


# --- options -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"class_names": ("none", "peace")}, "unknown class(es) ['peace']; the known classes are ['none', 'closed_fist'"),
    ({"class_names": ("open_palm", "none")}, "must start with 'none'"),
    ({"class_names": ("none", "victory", "victory")}, "repeats ['victory']"),
    ({"hands": 0}, "gesture_data.hands must be >= 1, got 0"),
    ({"poses_per_condition": 1.5}, "gesture_data.poses_per_condition must be an integer, got 1.5"),
    ({"left_fraction": 1.5}, "gesture_data.left_fraction must be a number in [0, 1], got 1.5"),
    ({"width": 200}, "gesture_data.width must be >= 300 px"),
    ({"seed": -1}, "gesture_data.seed must be >= 0, got -1"),
])
def test_bad_options_name_the_field_and_value(changes, message):
    with pytest.raises(ValueError) as err:
        options(**changes)
    assert message in str(err.value)


def test_class_subset_and_list_from_config(tmp_path):
    subset = options(hands=2, poses_per_condition=1, class_names=["none", "victory"])
    assert subset.class_names == ("none", "victory")
    rows = build_gesture_poses(tmp_path, subset).read_text().splitlines()
    assert {json.loads(r)["label_name"] for r in rows} == {"none", "victory"} and len(rows) == 2 * 2 * 3
