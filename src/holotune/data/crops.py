"""Training crops: the ROI MediaPipe would track from ground-truth keypoints, and labels in crop coordinates.

The ROIs are MediaPipe's tracking ROIs (``docs/mediapipe_holistic.md`` §9), so a
fine-tuned model sees crops framed as it will be fed at run time:

* face: bounding box of the 468 points, rotated so landmark 33 -> 263 is level, square, x1.5;
* hand: ``HandLandmarksToRect`` on the 12-point palm subset, rotated so wrist -> middle of
  (index, ring, middle MCPs) points up, x2.0, shifted up 0.1, square;
* pose: MediaPipe's tracking ROI (``pose_rect_from_keypoints``: centre at auxiliary landmark 33,
  rotated and sized by the body-circle point 34, x1.25, square), with the two auxiliary landmarks,
  which labels do not have, derived from the hips and shoulders as the stock model places them
  (:func:`holotune.landmarks.pose_auxiliary_points`; ``docs/mediapipe_holistic.md`` §9.4).
"""

from __future__ import annotations

import math

import numpy as np

from holotune.landmarks import PARTS, PoseLandmark, pose_auxiliary_points
from holotune.models.spec import get_module
from holotune.runtime.geometry import Rect, crop_image, pad_roi
from holotune.runtime.tracking import face_tracking_rect, hand_tracking_rect, pose_rect_from_keypoints

_POSE_CORE = (PoseLandmark.LEFT_HIP, PoseLandmark.RIGHT_HIP, PoseLandmark.LEFT_SHOULDER, PoseLandmark.RIGHT_SHOULDER)


def pose_roi(pose: np.ndarray, size: tuple[int, int]) -> Rect:
    """MediaPipe's pose tracking ROI from (33, >=2) normalized landmarks (hips and shoulders labelled)."""
    scale = np.array(size, np.float64)
    auxiliary = pose_auxiliary_points(pose[:, :2].astype(np.float64) * scale) / scale
    return pose_rect_from_keypoints(auxiliary[0], auxiliary[1], size)


def part_roi(rule: str, points: np.ndarray, labelled: np.ndarray, size: tuple[int, int]) -> Rect | None:
    """The tracking ROI of one part by its module's ``roi`` rule, or ``None`` if too few points are labelled.

    ``face`` and ``hand`` need every point; ``pose`` needs hips, shoulders and half of the points.
    """
    if rule == "pose":
        if labelled[list(_POSE_CORE)].all() and labelled.mean() >= 0.5:
            return pose_roi(points, size)
        return None
    if not labelled.all():
        return None
    if rule == "face":
        return face_tracking_rect(points, size)
    if rule == "hand":
        return hand_tracking_rect(points, size)
    raise ValueError(f"unknown ROI rule {rule!r}; one of face, hand, pose")


def module_rois(module: str, keypoints: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> list[tuple[str, Rect]]:
    """The ROIs a module trains on in one image: ``[(part, rect)]`` for every labelled part (see :func:`part_roi`)."""
    spec = get_module(module)
    rois = []
    for part in spec.parts:
        rows = PARTS[part]
        rect = part_roi(spec.roi, keypoints[rows], mask[rows] > 0, size)
        if rect is not None:
            rois.append((part, rect))
    return rois


def to_crop(points: np.ndarray, rect: Rect, padding: tuple[float, float, float, float] = (0, 0, 0, 0)) -> np.ndarray:
    """Image-normalized (N, 3) points -> crop-normalized (x, y in [0, 1] of the crop; z / ROI width).

    The inverse of :func:`holotune.runtime.geometry.project_to_image` (then of letterbox removal).
    """
    cos, sin = math.cos(rect.rotation), math.sin(rect.rotation)
    a = (points[:, 0] - rect.x_center) / rect.width
    b = (points[:, 1] - rect.y_center) / rect.height
    out = np.empty_like(points, dtype=np.float32)
    out[:, 0] = cos * a + sin * b + 0.5
    out[:, 1] = -sin * a + cos * b + 0.5
    out[:, 2] = points[:, 2] / rect.width
    left, top, right, bottom = padding
    if any(padding):
        out[:, 0] = out[:, 0] * (1 - left - right) + left
        out[:, 1] = out[:, 1] * (1 - top - bottom) + top
        out[:, 2] = out[:, 2] * (1 - left - right)
    return out


def cut_crop(image: np.ndarray, rect: Rect, out_size: tuple[int, int], keep_aspect_ratio: bool,
             border_zero: bool = False) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The model-input crop (uint8) of ``rect`` and its letterbox padding, exactly as the runtime cuts it."""
    size = (image.shape[1], image.shape[0])
    crop = pad_roi(rect, size, out_size, keep_aspect_ratio)
    return crop_image(image, crop, out_size, border_zero), crop.padding
