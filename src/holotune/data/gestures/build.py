"""The gesture pose writer: synthetic hands posed, oriented, projected into an image and labelled.

For every hand identity x class x condition, ``poses_per_condition`` samples:

1. the class's joint angles (:func:`~holotune.data.gestures.classes.draw_angles`) through the
   identity's skeleton (the measured median hand x its scale x its bone proportions,
   :func:`draw_identities`) -> 21 points in the hand frame (:func:`~.kinematics.forward_kinematics`),
   mirrored for a left hand;
2. an orientation: the default view (palm to the camera, fingers up), turned by the condition's yaw
   and pitch (:data:`CONDITIONS`), then rolled in the image plane: so that the class's aimed vector
   points up or down within its tolerance (:class:`~.classes.Aim`), else so that the hand's axis
   (wrist -> middle MCP) is within :data:`ROLL_DEG` of up;
3. a pinhole camera (:data:`HFOV_DEG`) at the distance that makes the hand span (the longer side of
   its 2-D bounding box) a uniform draw in :data:`SPAN_PX`, at a uniform position in the image,
   where the roll is corrected so that the aim survives perspective (:func:`solve_roll`);
4. Gaussian noise of the condition's share of the span on x, y and z (pixels), and a redraw of the
   position until every point is inside the image.

Every number comes from one ``numpy.random.Generator(seed)``, drawn in a fixed order.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from holotune.data.gestures.classes import GESTURES, Range, draw_angles
from holotune.data.gestures.kinematics import (
    BONE_LENGTHS_M,
    BONE_OBSERVATIONS,
    PALM_DIRECTIONS,
    HandSkeleton,
    forward_kinematics,
    mirror,
)
from holotune.data.gestures.options import GesturePoseOptions
from holotune.landmarks import NUM_HAND, NUM_KEYPOINTS, PARTS, HandLandmark

DECIMALS = 6
"""Rounding of written keypoints: keeps labels.jsonl byte-stable against float noise."""
SOURCES_FILE = "sources.json"
LABELS_FILE = "labels.jsonl"
GENERATOR = "holotune.data.gestures.build_gesture_poses: kinematic hand model (docs/gesture_data.md)"

HAND_SCALE_SIGMA = 0.08
"""Per hand identity: every bone x N(1, 0.08), clipped to +-2 sigma (0.84-1.16): adult hand sizes."""
BONE_JITTER_SIGMA = 0.03
"""Per identity and bone, on top of the scale: x N(1, 0.03), clipped to +-2 sigma (0.94-1.06):
hands differ in proportions, not only in size."""
HFOV_DEG = 60.0
"""The pinhole camera's horizontal field of view (a webcam's): focal length ``width / (2 tan 30°)``."""
SPAN_PX: Range = (60.0, 250.0)
"""The hand's span (longer side of the 21 points' bounding box), pixels, uniform."""
ROLL_DEG = 60.0
"""Classes without an :class:`~.classes.Aim`: the hand axis (wrist -> middle MCP) is drawn uniformly
within this of the image's up direction."""
MIN_AIM_PROJECTION = 0.5
"""An aimed vector must keep this share of its 3-D length in the image, or the orientation is drawn
again: a thumb pointing at the camera points neither up nor down."""
MAX_REDRAWS = 200
"""Rounds of redrawing (orientation, placement) before the build gives up; in practice a few suffice."""


@dataclass(frozen=True)
class Condition:
    """How a condition's samples are seen.

    Attributes:
        name: the ``condition`` field.
        yaw_deg: |yaw| range (the sign is drawn too): the palm turned about the image's vertical.
        pitch_deg: pitch range: the palm tilted about the image's horizontal.
        noise: landmark noise sigma, as a share of the hand span (x, y and z alike).
    """

    name: str
    yaw_deg: Range
    pitch_deg: Range
    noise: float


CONDITIONS = (
    Condition("clean", (0.0, 30.0), (-30.0, 30.0), 0.01),
    Condition("side_view", (45.0, 75.0), (-20.0, 20.0), 0.01),
    Condition("noisy", (0.0, 30.0), (-30.0, 30.0), 0.04),
)
"""The conditions, every sample's ``condition``; evaluation reports them apart."""

# The default view: hand frame u (radial) -> image right, v (distal) -> image up (-y),
# n (palmar) -> towards the camera (-z); camera coordinates are x right, y down, z forward.
DEFAULT_VIEW = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]).T


@dataclass(frozen=True)
class Identities:
    """The synthetic hands.

    Attributes:
        palm: (hands, 5, 3) metres, the skeleton's finger bases (right-hand frame).
        phalanges: (hands, 5, 3) metres.
        scale: (hands,) the overall factor on the measured bones.
        left: (hands,) bool, a left hand.
    """

    palm: np.ndarray
    phalanges: np.ndarray
    scale: np.ndarray
    left: np.ndarray


def draw_identities(rng: np.random.Generator, hands: int, left_fraction: float) -> Identities:
    """``hands`` skeletons: the measured hand x N(1, :data:`HAND_SCALE_SIGMA`) x per-bone
    N(1, :data:`BONE_JITTER_SIGMA`) (both clipped to 2 sigma); ``round(hands * left_fraction)`` of them,
    chosen at random, are left hands."""
    stock = HandSkeleton.measured()
    scale = 1.0 + np.clip(rng.normal(0.0, HAND_SCALE_SIGMA, hands), -2 * HAND_SCALE_SIGMA, 2 * HAND_SCALE_SIGMA)
    jitter = 1.0 + np.clip(rng.normal(0.0, BONE_JITTER_SIGMA, (hands, 5, 4)), -2 * BONE_JITTER_SIGMA,
                           2 * BONE_JITTER_SIGMA)  # per finger: its palm bone, then its three phalanges
    palm = stock.palm * (scale[:, None] * jitter[..., 0])[..., None]
    phalanges = stock.phalanges * scale[:, None, None] * jitter[..., 1:]
    left = np.zeros(hands, dtype=bool)
    left[rng.permutation(hands)[: int(round(hands * left_fraction))]] = True
    return Identities(palm, phalanges, scale, left)


def rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations by ``angle`` (N,) radians about camera axis 0 (x), 1 (y) or 2 (z)."""
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros((angle.size, 3, 3))
    i, j = [k for k in range(3) if k != axis]
    out[:, axis, axis] = 1.0
    out[:, i, i], out[:, i, j], out[:, j, i], out[:, j, j] = c, -s, s, c
    return out


def orient(points: np.ndarray, yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(N, 21, 3) hand-frame points -> camera orientation (metres, wrist at the origin).

    The default view (:data:`DEFAULT_VIEW`), then pitch about x, yaw about y, and last the roll about
    the optical axis, so that roll is a pure image-plane rotation. Angles (N,) radians.
    """
    turn = rotation(2, roll) @ rotation(1, yaw) @ rotation(0, pitch) @ DEFAULT_VIEW
    return np.einsum("nij,npj->npi", turn, points)


@dataclass(frozen=True)
class AimTargets:
    """Per sample, the vector whose image direction is set by the roll.

    Attributes:
        start, end: (N,) landmark indices (:class:`~.classes.Aim`; without one: wrist -> middle MCP).
        angle: (N,) radians, the drawn image angle (atan2 of image dy, dx; up is -pi/2).
    """

    start: np.ndarray
    end: np.ndarray
    angle: np.ndarray


def aim_landmarks(names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per sample of class ``names[i]``: the aimed vector's start and end landmarks (N,), its target
    image angle (N,) radians (up: -pi/2, down: pi/2) and the tolerance (N,) radians around it."""
    aims = [GESTURES[n].aim for n in names]
    start = np.array([a.start if a else HandLandmark.WRIST for a in aims])
    end = np.array([a.end if a else HandLandmark.MIDDLE_FINGER_MCP for a in aims])
    target = np.array([np.pi / 2 if a and a.direction == "down" else -np.pi / 2 for a in aims])
    tolerance = np.radians([a.tolerance_deg if a else ROLL_DEG for a in aims])
    return start, end, target, tolerance


def draw_orientation(rng: np.random.Generator, points: np.ndarray, names: list[str], conditions: np.ndarray
                     ) -> tuple[np.ndarray, AimTargets]:
    """Orient (N, 21, 3) hand-frame points for their classes and conditions (indices into :data:`CONDITIONS`).

    Yaw and pitch are drawn from the condition; the roll turns the aimed vector to an image angle
    drawn uniformly within its tolerance of its target (as seen on the optical axis;
    :func:`draw_placement` keeps that angle where the hand is placed). Orientations whose aimed vector keeps less than
    :data:`MIN_AIM_PROJECTION` of its length in the image are drawn again.

    Returns:
        (N, 21, 3) camera-oriented points (metres, wrist at the origin), and the aims.
    """
    n = len(points)
    yaw_lo, yaw_hi, pitch_lo, pitch_hi = (np.radians([getattr(CONDITIONS[k], f)[i] for k in conditions])
                                          for f, i in (("yaw_deg", 0), ("yaw_deg", 1), ("pitch_deg", 0),
                                                       ("pitch_deg", 1)))
    start, end, target, tolerance = aim_landmarks(names)
    vector = points[np.arange(n), end] - points[np.arange(n), start]
    yaw, pitch = np.zeros(n), np.zeros(n)
    todo = np.arange(n)
    for _ in range(MAX_REDRAWS):
        sign = np.where(rng.random(todo.size) < 0.5, -1.0, 1.0)
        yaw[todo] = sign * rng.uniform(yaw_lo[todo], yaw_hi[todo])
        pitch[todo] = rng.uniform(pitch_lo[todo], pitch_hi[todo])
        seen = orient(vector[todo, None], yaw[todo], pitch[todo], np.zeros(todo.size))[:, 0]
        ratio = np.linalg.norm(seen[:, :2], axis=1) / np.linalg.norm(seen, axis=1)
        todo = todo[ratio < MIN_AIM_PROJECTION]
        if todo.size == 0:
            break
    else:
        raise RuntimeError(f"{todo.size} orientation(s) still foreshortened after {MAX_REDRAWS} draws")
    seen = orient(vector[:, None], yaw, pitch, np.zeros(n))[:, 0]
    angle = target + rng.uniform(-tolerance, tolerance)
    roll = angle - np.arctan2(seen[:, 1], seen[:, 0])
    return orient(points, yaw, pitch, roll), AimTargets(start, end, angle)


def focal_px(width: int) -> float:
    """The pinhole camera's focal length in pixels (:data:`HFOV_DEG` across ``width``)."""
    return width / (2.0 * np.tan(np.radians(HFOV_DEG) / 2.0))


def project(points: np.ndarray, wrist: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pinhole projection (principal point at the image centre) of oriented hands.

    Args:
        points: (N, 21, 3) camera-oriented metres, wrist at the origin (x right, y down, z forward).
        wrist: (N, 3) metres, where the wrist is in the camera frame.

    Returns:
        (N, 21, 3) pixels: x, y, and z = (depth - wrist depth) x focal / wrist depth, MediaPipe's
        wrist-relative z in the scale of x.
    """
    focal = focal_px(width)
    camera = points + wrist[:, None]
    xy = focal * camera[..., :2] / camera[..., 2:] + np.array([width / 2.0, height / 2.0])
    z = (camera[..., 2] - wrist[:, None, 2]) * focal / wrist[:, None, 2]
    return np.concatenate([xy, z[..., None]], axis=-1)


def place(points: np.ndarray, depth: np.ndarray, centre_px: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 3) wrist positions (metres) that put the centre of each hand's 3-D bounding box at
    ``depth`` (N,) metres on the ray through pixel ``centre_px`` (N, 2)."""
    box_centre = (points.min(axis=1) + points.max(axis=1)) / 2.0
    ray = np.concatenate([(centre_px - [width / 2.0, height / 2.0]) / focal_px(width), np.ones((len(points), 1))], 1)
    return ray * depth[:, None] - box_centre


def span_px(pixels: np.ndarray) -> np.ndarray:
    """(N, 21, >=2) pixels -> (N,) the longer side of each 2-D bounding box."""
    extent = pixels[..., :2].max(axis=1) - pixels[..., :2].min(axis=1)
    return extent.max(axis=1)


def solve_roll(points: np.ndarray, wrist: np.ndarray, start: np.ndarray, end: np.ndarray, angle: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """The roll about the axis through the wrist parallel to the optical axis that gives each aimed
    vector its image angle under perspective.

    Off the optical axis, perspective turns a vector with depth (by tens of degrees at the image's
    edge). With the wrist fixed, the projected vector is ``R(roll) a + b`` (``a``: the vector's own
    part, ``b``: the parallax of its two ends' depths), which reaches the angle at the roll solved
    here in closed form.

    Args:
        points: (N, 21, 3) camera-oriented metres, wrist at the origin.
        wrist: (N, 3) its camera position, metres.
        start, end: (N,) the aimed vector's landmarks. angle: (N,) its wanted image angle, radians.

    Returns:
        (N,) roll in radians, and (N,) bool: solvable (False where the parallax outweighs the vector).
    """
    rows = np.arange(len(points))
    near, far = points[rows, start] + wrist, points[rows, end] + wrist
    a = points[rows, end, :2] / far[:, 2:] - points[rows, start, :2] / near[:, 2:]
    b = wrist[:, :2] * (1.0 / far[:, 2:] - 1.0 / near[:, 2:])
    target = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    along = np.sum(target * b, axis=1)
    disc = along**2 - np.sum(b * b, axis=1) + np.sum(a * a, axis=1)
    length = along + np.sqrt(np.maximum(disc, 0.0))  # |length * target - b| = |a|, the larger root
    turned = length[:, None] * target - b
    roll = np.arctan2(turned[:, 1], turned[:, 0]) - np.arctan2(a[:, 1], a[:, 0])
    return roll, (disc > 0) & (length > 0)


def draw_placement(rng: np.random.Generator, points: np.ndarray, aim: AimTargets, noise: np.ndarray, width: int,
                   height: int) -> np.ndarray:
    """Project oriented (N, 21, 3) hands at a random size and position, with noise; (N, 21, 3) pixels.

    Each hand's span is a draw from :data:`SPAN_PX` and its bounding-box centre a uniform pixel
    where that box fits. There, the roll is corrected so the aimed vector keeps its drawn image
    angle under perspective (:func:`solve_roll`), and the depth so the noise-free span is the drawn
    one (two fixed-point steps, then the roll once more: the span is then within 1 %). Noise is
    N(0, ``noise`` x span) per coordinate, pixels (then z is taken relative to the noisy wrist again,
    so the wrist's z is 0). A hand with a point outside the image, or whose aim cannot be kept there,
    gets a new position and noise.
    """
    n = len(points)
    span = rng.uniform(*SPAN_PX, n)
    extent = (points[..., :2].max(axis=1) - points[..., :2].min(axis=1)).max(axis=1)
    depth = focal_px(width) * extent / span
    out = np.zeros((n, NUM_HAND, 3))
    todo = np.arange(n)
    for _ in range(MAX_REDRAWS):
        half = span[todo, None] / 2.0
        centre = rng.uniform(half, np.array([width, height]) - half)
        placed, at = points[todo], depth[todo]
        for final in (False, False, True):
            wrist = place(placed, at, centre, width, height)
            roll, ok = solve_roll(placed, wrist, aim.start[todo], aim.end[todo], aim.angle[todo])
            placed = np.einsum("nij,npj->npi", rotation(2, roll), placed)
            if not final:
                at = at * span_px(project(placed, wrist, width, height)) / span[todo]
        pixels = project(placed, wrist, width, height)
        sigma = noise[todo] * span_px(pixels)
        pixels = pixels + rng.normal(0.0, 1.0, pixels.shape) * sigma[:, None, None]
        pixels[..., 2] -= pixels[:, HandLandmark.WRIST, 2][:, None]  # z stays wrist-relative, as MediaPipe's
        out[todo] = pixels
        inside = ((pixels[..., 0] > 0) & (pixels[..., 0] < width) & (pixels[..., 1] > 0)
                  & (pixels[..., 1] < height)).all(axis=1)
        todo = todo[~(inside & ok)]
        if todo.size == 0:
            return out
    raise RuntimeError(f"{todo.size} hand(s) could not be placed inside {width}x{height} in {MAX_REDRAWS} draws")


def generate(options: GesturePoseOptions) -> dict[str, np.ndarray]:
    """Every sample of the build, in memory (what :func:`build_gesture_poses` writes).

    Returns:
        ``keypoints`` (N, 21, 3) normalized (x / width, y / height, z / width); ``hand_points``
        (N, 21, 3) metres in the hand frame (left hands mirrored), before orientation; ``angles``
        (N, 5, 4) degrees (right-hand joint angles); ``hand``, ``class_index``, ``condition`` (N,)
        indices (into identities, ``options.class_names`` and :data:`CONDITIONS`); ``left`` (N,)
        bool; ``scale`` (N,) the identity's hand scale. Samples are ordered by hand, class,
        condition, repeat.
    """
    rng = np.random.default_rng(options.seed)
    ids = draw_identities(rng, options.hands, options.left_fraction)
    n_classes, n_conditions, reps = len(options.class_names), len(CONDITIONS), options.poses_per_condition
    hand, class_index, condition, _ = (a.reshape(-1) for a in np.meshgrid(
        np.arange(options.hands), np.arange(n_classes), np.arange(n_conditions), np.arange(reps), indexing="ij"))
    angles = np.zeros((hand.size, 5, 4))
    for c, name in enumerate(options.class_names):
        rows = np.flatnonzero(class_index == c)
        angles[rows] = draw_angles(GESTURES[name], rng, rows.size)
    points = forward_kinematics(np.radians(angles), ids.palm[hand], ids.phalanges[hand])
    left = ids.left[hand]
    points[left] = mirror(points[left])
    names = [options.class_names[c] for c in class_index]
    oriented, aim = draw_orientation(rng, points, names, condition)
    noise = np.array([CONDITIONS[k].noise for k in condition])
    pixels = draw_placement(rng, oriented, aim, noise, options.width, options.height)
    keypoints = pixels / np.array([options.width, options.height, options.width])
    return {"keypoints": keypoints, "hand_points": points, "angles": angles, "hand": hand,
            "class_index": class_index, "condition": condition, "left": left, "scale": ids.scale[hand]}


def build_gesture_poses(out_dir: str | os.PathLike, options: GesturePoseOptions) -> Path:
    """Build the synthetic gesture pose dataset (landmarks only, no images).

    Writes ``out_dir/labels.jsonl``, one JSON object per sample (keys sorted, floats rounded to 6
    decimals, so the same options give the same bytes)::

        {"condition": "clean" | "side_view" | "noisy", "domain": "synthetic",
         "group": "hand-017",                  # the hand identity: the split group
         "height": H, "width": W,
         "keypoints": [[x, y, z] * 543],       # the 543 layout; only the hand's 21 rows non-zero:
                                               # x, y normalized to the image, z = wrist-relative depth / W
         "label_name": "<class>", "mask": [543 x 0/1],   # 1 on the hand's rows
         "side": "left" | "right",             # the subject's hand: rows PARTS["<side>_hand"]
         "synthetic": true}

    and ``out_dir/sources.json``: the classes, conditions, counts per class and condition, hands,
    options and the bone table the skeletons come from.

    Returns:
        The path of ``labels.jsonl``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = generate(options)
    width_digits = max(3, len(str(options.hands - 1)))
    rows = np.round(data["keypoints"], DECIMALS) + 0.0  # + 0.0: no "-0.0" in the file
    hand_masks = {side: [1 if i in range(PARTS[f"{side}_hand"].start, PARTS[f"{side}_hand"].stop) else 0
                         for i in range(NUM_KEYPOINTS)] for side in ("left", "right")}
    zero_row = [0.0, 0.0, 0.0]
    lines = []
    for i in range(len(rows)):
        side = "left" if data["left"][i] else "right"
        part = PARTS[f"{side}_hand"]
        keypoints = [zero_row] * NUM_KEYPOINTS
        keypoints[part] = rows[i].tolist()
        lines.append(json.dumps({
            "condition": CONDITIONS[data["condition"][i]].name, "domain": "synthetic",
            "group": f"hand-{data['hand'][i]:0{width_digits}d}", "height": options.height,
            "keypoints": keypoints, "label_name": options.class_names[data["class_index"][i]],
            "mask": hand_masks[side], "side": side, "synthetic": True, "width": options.width,
        }, sort_keys=True))
    labels = out_dir / LABELS_FILE
    labels.write_text("\n".join(lines) + "\n")

    counts = {name: {cond.name: int(np.sum((data["class_index"] == c) & (data["condition"] == k)))
                     for k, cond in enumerate(CONDITIONS)} for c, name in enumerate(options.class_names)}
    sources = {
        "synthetic": True, "generator": GENERATOR, "classes": list(options.class_names),
        "conditions": [asdict(c) for c in CONDITIONS], "counts": counts, "hands": options.hands,
        "left_hands": len(set(data["hand"][data["left"]].tolist())),
        "samples": len(lines), "options": asdict(options),
        "bone_table": {
            "lengths_m": dict(BONE_LENGTHS_M),
            "palm_directions": {k.name.lower(): list(v) for k, v in PALM_DIRECTIONS.items()},
            "observations": BONE_OBSERVATIONS,
            "measured_by": "tools/measure_hand_bones.py (stock hand_landmark_full world landmarks; "
                           "src/holotune/data/gestures/kinematics.py)",
        },
    }
    (out_dir / SOURCES_FILE).write_text(json.dumps(sources, indent=2, sort_keys=True) + "\n")
    return labels
