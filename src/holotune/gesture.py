"""Gesture recognition on Holistic's hands: the contract every gesture head follows (no torch).

Two heads give a gesture per hand (``docs/gestures.md``):

* the **landmark head** (``task.input=landmarks``), as MediaPipe Model Maker's gesture recognizer:
  a small MLP on :func:`hand_features` of the 21 hand landmarks, exported as its own ONNX model
  (input :data:`FEATURES_INPUT` ``(N, FEATURE_SIZE)``, output :data:`LOGITS_OUTPUT` ``(N, C)``) and
  registered as ``holotune-gesture``. It runs on any Holistic output, holotune's or MediaPipe's;
* the **image head** (``task.input=image``): a class head on the hand model's trunk, exported as an
  extra output :data:`GESTURE_OUTPUT` ``(N, C)`` of the hand model's ONNX (one model, several heads).

Both store their class names in the ONNX metadata (:data:`CLASS_NAMES_KEY`, a JSON list) and the
registry version's tags. Class 0 is always :data:`BACKGROUND` (``none``), and a winner scoring below
the threshold (:data:`SCORE_THRESHOLD`, MediaPipe's 0.5) is reported as ``none``: :func:`decide`.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from holotune.landmarks import NUM_HAND, HandLandmark

BACKGROUND = "none"
SCORE_THRESHOLD = 0.5
GESTURE_OUTPUT = "gesture"
FEATURES_INPUT = "features"
LOGITS_OUTPUT = "logits"
CLASS_NAMES_KEY = "holotune.gesture.class_names"
INPUT_KIND_KEY = "holotune.gesture.input"
FEATURE_VERSION_KEY = "holotune.gesture.features"
# Bumped whenever hand_features changes: a landmark head trained on other features must not load.
FEATURE_VERSION = "1"
SIDES = ("left", "right")
# Rotation-normalized points (63), the same points unrotated (63: absolute orientation, the role of
# MediaPipe's world landmarks), handedness (1).
FEATURE_SIZE = 2 * NUM_HAND * 3 + 1
# The knuckles whose mean with the wrist sets the hand's up direction, as MediaPipe's hand ROI
# (HandLandmarksToRectCalculator: wrist -> mean of the index, middle and ring MCPs).
_UP_POINTS = (HandLandmark.INDEX_FINGER_MCP, HandLandmark.MIDDLE_FINGER_MCP, HandLandmark.RING_FINGER_MCP)


class GestureError(ValueError):
    """Bad gesture input or model; the message names the file, field or value."""


class Gesture(NamedTuple):
    """One hand's gesture: the class name and its softmax score in [0, 1]."""

    label: str
    score: float

    def to_dict(self) -> dict:
        return {"label": self.label, "score": round(float(self.score), 6)}


def check_class_names(class_names, where: str = "class_names") -> list[str]:
    """``class_names`` as a list, checked: strings, unique, at least two, :data:`BACKGROUND` first."""
    names = list(class_names or [])
    if len(names) < 2 or not all(isinstance(n, str) and n for n in names):
        raise GestureError(f"{where}: need at least two non-empty class names, got {names}")
    if len(set(names)) != len(names):
        raise GestureError(f"{where}: duplicate class names in {names}")
    if names[0] != BACKGROUND:
        raise GestureError(f"{where}: the first class must be {BACKGROUND!r} (the background class, as MediaPipe's "
                           f"gesture recognizer requires), got {names}")
    return names


def hand_features(points: np.ndarray, side: str, size: tuple[int, int]) -> np.ndarray:
    """The landmark head's input for one hand.

    Args:
        points: (21, 3) x, y normalized to the image, z in the same scale as x (MediaPipe's hand landmarks).
        side: ``left`` | ``right``, the subject's hand; a left hand is mirrored to look like a right one.
        size: the image's (width, height) in pixels, so that angles and proportions are the real ones.

    Returns:
        (:data:`FEATURE_SIZE`,) float32: the points with the wrist at the origin, divided by the larger
        of the hand's width and height in its own frame (MediaPipe's object normalization), first rotated
        so that the wrist -> knuckles direction points up (63), then unrotated (63), then 1.0 for a right
        hand, 0.0 for a left one.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (NUM_HAND, 3):
        raise GestureError(f"hand landmarks must be ({NUM_HAND}, 3), got {points.shape}")
    if not math.isfinite(points.sum()):
        raise GestureError("hand landmarks hold NaN or inf")
    if side not in SIDES:
        raise GestureError(f"side must be one of {SIDES}, got {side!r}")
    # Written with few numpy calls, none of them a reduction over a strided view: the runtime runs this per
    # hand per frame (<= 0.1 ms for the whole landmark head, benchmarks/gestures.py).
    width, height = size
    centred = points * np.array((-width if side == "left" else width, height, width))
    centred -= centred[HandLandmark.WRIST]
    i, m, r = _UP_POINTS
    ux, uy = (centred[i, :2] + centred[m, :2] + centred[r, :2]).tolist()
    norm = math.hypot(ux, uy)
    if not norm > 0:
        raise GestureError("hand landmarks are all at one point")
    # Rotate so that the knuckles point to -y (image y grows downwards): cos = -uy/|u|, sin = -ux/|u|.
    cos, sin = -uy / norm, -ux / norm
    rotated = np.array(((cos, -sin, 0.0), (sin, cos, 0.0), (0.0, 0.0, 1.0))) @ centred.T  # (3, 21)
    # The extent in the hand's own frame, as MediaPipe's ROI-aligned object normalization: a roll of the
    # hand in the image changes neither block's scale.
    xs, ys = rotated[:2].tolist()
    extent = max(max(xs) - min(xs), max(ys) - min(ys))
    out = np.empty(FEATURE_SIZE, np.float32)
    out[: NUM_HAND * 3] = rotated.T.ravel()
    out[NUM_HAND * 3 : 2 * NUM_HAND * 3] = centred.ravel()
    out[:-1] /= extent
    out[-1] = 1.0 if side == "right" else 0.0
    return out


def mediapipe_hands(results) -> dict[str, np.ndarray | None]:
    """``{"left", "right"}`` -> (21, 3) landmarks or ``None`` from the results of MediaPipe's own Holistic
    (``mediapipe.solutions.holistic.Holistic(...).process(image)``), for :meth:`GestureModel.classify`:
    the landmark head runs on MediaPipe's output as on holotune's. Reads ``left_hand_landmarks`` and
    ``right_hand_landmarks`` (the subject's hands, as holotune's ``left_hand`` / ``right_hand``)."""
    return {side: None if hand is None else np.array([(p.x, p.y, p.z) for p in hand.landmark], np.float64)
            for side, hand in (("left", results.left_hand_landmarks), ("right", results.right_hand_landmarks))}


def softmax(logits) -> list[float]:
    """Softmax of one hand's (C,) logits (a sequence of floats), in plain Python: for a handful of classes
    it is several times faster than numpy's per-call overhead, and the runtime calls it per hand."""
    top = max(logits)
    z = [math.exp(v - top) for v in logits]
    total = sum(z)
    return [v / total for v in z]


def decide(probabilities: np.ndarray, class_names: list[str], threshold: float = SCORE_THRESHOLD) -> Gesture:
    """MediaPipe's rule for one hand: the top class if it is not the background and scores at least
    ``threshold``; otherwise :data:`BACKGROUND` with the background's own score.

    Args:
        probabilities: (C,) softmax scores in ``class_names`` order (class 0 is the background): an
            array or a list.
    """
    top = max(range(len(probabilities)), key=probabilities.__getitem__)
    if top != 0 and probabilities[top] >= threshold:
        return Gesture(class_names[top], float(probabilities[top]))
    return Gesture(BACKGROUND, float(probabilities[0]))


def decide_indices(probabilities: np.ndarray, threshold: float = SCORE_THRESHOLD) -> np.ndarray:
    """:func:`decide` for (N, C) softmax scores: (N,) class indices, 0 (the background) where the top
    class is the background or scores below ``threshold``."""
    top = probabilities.argmax(axis=-1)
    keep = probabilities[np.arange(len(top)), top] >= threshold
    return np.where(keep, top, 0).astype(np.int64)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """An ONNX file's metadata properties (key -> value); needs no ``onnx`` package (the serving install)."""
    from holotune.runtime.onnx_file import read_model

    try:
        return read_model(Path(path).read_bytes()).metadata
    except (OSError, ValueError) as exc:
        raise GestureError(f"{path}: not a readable ONNX model: {exc}") from exc


def metadata_class_names(metadata: dict[str, str], where: str) -> list[str]:
    """The class names stored under :data:`CLASS_NAMES_KEY`, checked."""
    if CLASS_NAMES_KEY not in metadata:
        raise GestureError(f"{where}: no {CLASS_NAMES_KEY!r} in the ONNX metadata (not a holotune gesture model)")
    try:
        names = json.loads(metadata[CLASS_NAMES_KEY])
    except json.JSONDecodeError:
        raise GestureError(f"{where}: {CLASS_NAMES_KEY!r} is not a JSON list: {metadata[CLASS_NAMES_KEY]!r}") from None
    return check_class_names(names, f"{where}: {CLASS_NAMES_KEY}")


class GestureModel:
    """The landmark head on ONNX Runtime: (N, FEATURE_SIZE) hand features -> a :class:`Gesture` per hand.

    Args:
        path: the exported ``gesture.onnx`` (a folder or an MLflow URI: resolve it first with
            :func:`holotune.runtime.sessions.resolve_model_source`, as ``Holistic(gesture=...)`` does).
        threshold: the score threshold (default :data:`SCORE_THRESHOLD`).

    Raises:
        GestureError: not a holotune landmark head, or its input does not fit :func:`hand_features`.
    """

    def __init__(self, path: str | os.PathLike, threshold: float = SCORE_THRESHOLD):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise GestureError(f"{path}: no such gesture model file")
        if not 0.0 <= threshold <= 1.0:
            raise GestureError(f"threshold must be in [0, 1], got {threshold}")
        self.path, self.threshold = path, float(threshold)
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise GestureError(f"{path}: not a readable ONNX model: {exc}") from exc
        metadata = self._session.get_modelmeta().custom_metadata_map  # the file is read once, by ONNX Runtime
        kind = metadata.get(INPUT_KIND_KEY)
        if kind != "landmarks":
            raise GestureError(f"{path}: {INPUT_KIND_KEY}={kind!r}: not a landmark gesture head (an image head is "
                               f"served as the '{GESTURE_OUTPUT}' output of the hand model: Holistic(hands=...))")
        if metadata.get(FEATURE_VERSION_KEY) != FEATURE_VERSION:
            raise GestureError(f"{path}: trained on hand features version {metadata.get(FEATURE_VERSION_KEY)!r}, "
                               f"this holotune computes version {FEATURE_VERSION!r}; re-train or re-export it")
        self.class_names = metadata_class_names(metadata, str(path))
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or inputs[0].name != FEATURES_INPUT or inputs[0].shape[1:] != [FEATURE_SIZE]:
            got = [(i.name, i.shape) for i in inputs]
            raise GestureError(f"{path}: input must be {FEATURES_INPUT!r} (N, {FEATURE_SIZE}), the hand features of "
                               f"{NUM_HAND} landmarks; got {got}")
        if [o.name for o in outputs] != [LOGITS_OUTPUT] or outputs[0].shape[1:] != [len(self.class_names)]:
            got = [(o.name, o.shape) for o in outputs]
            raise GestureError(f"{path}: output must be {LOGITS_OUTPUT!r} (N, {len(self.class_names)}) for classes "
                               f"{self.class_names}; got {got}")

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(N, FEATURE_SIZE) float32 -> (N, C) logits."""
        return self._session.run([LOGITS_OUTPUT], {FEATURES_INPUT: np.ascontiguousarray(features, np.float32)})[0]

    def classify(self, hands: dict[str, np.ndarray | None], size: tuple[int, int]) -> dict[str, Gesture | None]:
        """A gesture per side for ``{side: (21, 3) landmarks or None}`` (``None`` where no hand), in one run."""
        found = [side for side, points in hands.items() if points is not None]
        out: dict[str, Gesture | None] = {side: None for side in hands}
        if found:
            features = np.empty((len(found), FEATURE_SIZE), np.float32)
            for row, side in enumerate(found):
                features[row] = hand_features(hands[side], side, size)
            for side, logits in zip(found, self.logits(features).tolist()):
                out[side] = decide(softmax(logits), self.class_names, self.threshold)
        return out
