"""ROI geometry of MediaPipe Holistic: rects, crops and projections back to the image.

Every formula follows the calculator it is named after (mediapipe 0.10.21; the references are in
``docs/mediapipe_holistic.md`` §4). Coordinates are normalized to the image unless a
name says ``_px``: x by the width W, y by the height H; rotation in radians, clockwise on screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Rect:
    """MediaPipe's ``NormalizedRect``: centre, size and rotation, normalized to the image."""

    x_center: float
    y_center: float
    width: float
    height: float
    rotation: float = 0.0


def normalize_radians(angle: float) -> float:
    """Wrap to [-pi, pi), as MediaPipe's ``NormalizeRadians``."""
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def rotation_between(start: np.ndarray, end: np.ndarray, target: float, size: tuple[int, int]) -> float:
    """Rotation that turns the vector ``start -> end`` (normalized points) to ``target`` radians, in pixels."""
    w, h = size
    return normalize_radians(target - math.atan2(-(end[1] - start[1]) * h, (end[0] - start[0]) * w))


def transform_rect(
    rect: Rect, size: tuple[int, int], *, scale: float = 1.0, shift_y: float = 0.0, square_long: bool = True
) -> Rect:
    """``RectTransformationCalculator``: shift (along the rotated axes), square the long side, scale."""
    w_img, h_img = size
    xc, yc, w, h, rot = rect.x_center, rect.y_center, rect.width, rect.height, rect.rotation
    if shift_y:
        if rot == 0.0:
            yc += h * shift_y
        else:
            xc += (-h_img * h * shift_y * math.sin(rot)) / w_img
            yc += (h_img * h * shift_y * math.cos(rot)) / h_img
    if square_long:
        long_side = max(w * w_img, h * h_img)
        w, h = long_side / w_img, long_side / h_img
    return Rect(xc, yc, w * scale, h * scale, rot)


def alignment_rect(start: np.ndarray, end: np.ndarray, target: float, size: tuple[int, int]) -> Rect:
    """``AlignmentPointsRectsCalculator``: a square centred on ``start`` with side 2·|end − start| px."""
    w_img, h_img = size
    side = 2.0 * math.hypot((end[0] - start[0]) * w_img, (end[1] - start[1]) * h_img)
    return Rect(float(start[0]), float(start[1]), side / w_img, side / h_img,
                rotation_between(start, end, target, size))


def box_rect(points: np.ndarray, rotation: float) -> Rect:
    """``DetectionsToRectsCalculator`` on a min/max box of ``points`` (N, 2), with a given rotation."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    return Rect(float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2, float(hi[0] - lo[0]), float(hi[1] - lo[1]), rotation)


def landmarks_box_rect(points: np.ndarray, rotation: float) -> Rect:
    """``LandmarksToDetection`` then ``DetectionsToRects`` (DEFAULT mode).

    ``LandmarksToDetection`` starts its max at ``FLT_MIN`` (a tiny positive number), not at
    -inf, so a box whose points all lie left of or above the image is clamped to ~0 there.
    """
    lo = points.min(axis=0)
    hi = np.maximum(points.max(axis=0), np.finfo(np.float32).tiny)
    return Rect(float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2, float(hi[0] - lo[0]), float(hi[1] - lo[1]), rotation)


@dataclass(frozen=True)
class Crop:
    """A crop as ``ImageToTensorCalculator`` makes it: the square pixel ROI and its letterbox padding.

    Attributes:
        rect: the ROI after ``keep_aspect_ratio`` padding, normalized to the image.
        padding: (left, top, right, bottom) letterbox, in units of the tensor size.
    """

    rect: Rect
    padding: tuple[float, float, float, float]


def pad_roi(rect: Rect, size: tuple[int, int], out_size: tuple[int, int], keep_aspect_ratio: bool) -> Crop:
    """``PadRoi``: grow the ROI to the tensor's aspect ratio, recording the letterbox."""
    if not keep_aspect_ratio:
        return Crop(rect, (0.0, 0.0, 0.0, 0.0))
    w_img, h_img = size
    out_h, out_w = out_size
    roi_w, roi_h = rect.width * w_img, rect.height * h_img
    tensor_aspect, roi_aspect = out_h / out_w, roi_h / roi_w
    if tensor_aspect > roi_aspect:
        new_w, new_h = roi_w, roi_w * tensor_aspect
        vertical, horizontal = (1.0 - roi_aspect / tensor_aspect) / 2.0, 0.0
    else:
        new_w, new_h = roi_h / tensor_aspect, roi_h
        vertical, horizontal = 0.0, (1.0 - tensor_aspect / roi_aspect) / 2.0
    padded = Rect(rect.x_center, rect.y_center, new_w / w_img, new_h / h_img, rect.rotation)
    return Crop(padded, (horizontal, vertical, horizontal, vertical))


def crop_image(
    image: np.ndarray, crop: Crop, out_size: tuple[int, int], border_zero: bool
) -> np.ndarray:
    """Cut ``crop`` out of ``image`` as MediaPipe does: perspective warp of the uint8 image.

    The ROI's ``cv2.boxPoints`` corners (BL, TL, TR, BR) map to tensor pixels (0, S), (0, 0),
    (S, 0), (S, S); the warp is bilinear, with zero or replicated borders.

    Args:
        image: (H, W, 3) uint8 RGB.
        crop: from :func:`pad_roi`.
        out_size: (height, width) of the tensor.
        border_zero: BORDER_CONSTANT 0 (the detectors) instead of BORDER_REPLICATE (landmark models).

    Returns:
        (height, width, 3) uint8.
    """
    h_img, w_img = image.shape[:2]
    r = crop.rect
    box = cv2.boxPoints(((r.x_center * w_img, r.y_center * h_img), (r.width * w_img, r.height * h_img),
                         math.degrees(r.rotation)))
    out_h, out_w = out_size
    corners = np.array([[0, out_h], [0, 0], [out_w, 0], [out_w, out_h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(box.astype(np.float32), corners)
    return cv2.warpPerspective(
        image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT if border_zero else cv2.BORDER_REPLICATE, borderValue=(0, 0, 0),
    )


def remove_letterbox(points: np.ndarray, padding: tuple[float, float, float, float]) -> np.ndarray:
    """``LandmarkLetterboxRemovalCalculator`` on (N, >=2) tensor-normalized points (z scales with x)."""
    left, top, right, bottom = padding
    if not any(padding):
        return points
    out = points.copy()
    out[:, 0] = (points[:, 0] - left) / (1.0 - left - right)
    out[:, 1] = (points[:, 1] - top) / (1.0 - top - bottom)
    if points.shape[1] > 2:
        out[:, 2] = points[:, 2] / (1.0 - left - right)
    return out


def project_to_image(points: np.ndarray, rect: Rect) -> np.ndarray:
    """``LandmarkProjectionCalculator``: ROI-normalized (N, >=2) points -> image-normalized.

    Rotates in normalized coordinates, which is exact here because every ROI is square in pixels;
    z is scaled like x (by the ROI width). Columns past z (visibility...) pass through.
    """
    cos, sin = math.cos(rect.rotation), math.sin(rect.rotation)
    x, y = points[:, 0] - 0.5, points[:, 1] - 0.5
    out = points.copy()
    out[:, 0] = (cos * x - sin * y) * rect.width + rect.x_center
    out[:, 1] = (sin * x + cos * y) * rect.height + rect.y_center
    if points.shape[1] > 2:
        out[:, 2] = points[:, 2] * rect.width
    return out


def project_detection_points(points: np.ndarray, rect: Rect, size: tuple[int, int]) -> np.ndarray:
    """``DetectionProjectionCalculator``: tensor-normalized (N, 2) points -> image-normalized, in pixels.

    Uses the crop's own sub-rect matrix, so a non-square (padded) ROI is handled exactly.
    """
    w_img, h_img = size
    cos, sin = math.cos(rect.rotation), math.sin(rect.rotation)
    u = (points[:, 0] - 0.5) * rect.width * w_img
    v = (points[:, 1] - 0.5) * rect.height * h_img
    x = (cos * u - sin * v) / w_img + rect.x_center
    y = (sin * u + cos * v) / h_img + rect.y_center
    return np.stack([x, y], axis=1)
