"""Tracking ROIs: the crop MediaPipe cuts from a part's own landmarks, and when it keeps it.

Face and hands (``docs/mediapipe_holistic.md`` §9, ``docs/mediapipe_video.md`` §5): each frame
builds a re-crop ROI from a detector (face) or the re-crop model (hands), and a ROI from the
previous frame's landmarks; ``RoiTrackingCalculator`` keeps the previous-landmark ROI while it
agrees with the re-crop ROI. Pose (§3): the next frame's ROI comes from the two smoothed
auxiliary landmarks. Coordinates are normalized to the image; ``size`` is (width, height) px.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from holotune.landmarks import FaceLandmark, HandLandmark
from holotune.runtime.geometry import Rect, alignment_rect, landmarks_box_rect, rotation_between, transform_rect

# MediaPipe's HandLandmarksToRect: the palm and the two lower joints of each finger (not the tips).
HAND_RECT_POINTS = (
    HandLandmark.WRIST, HandLandmark.THUMB_CMC, HandLandmark.THUMB_MCP, HandLandmark.THUMB_IP,
    HandLandmark.INDEX_FINGER_MCP, HandLandmark.INDEX_FINGER_PIP, HandLandmark.MIDDLE_FINGER_MCP,
    HandLandmark.MIDDLE_FINGER_PIP, HandLandmark.RING_FINGER_MCP, HandLandmark.RING_FINGER_PIP,
    HandLandmark.PINKY_MCP, HandLandmark.PINKY_PIP,
)
FACE_ROTATION_POINTS = (FaceLandmark.RIGHT_EYE_OUTER, FaceLandmark.LEFT_EYE_OUTER)  # the eye line is level
POSE_ROI_SCALE = 1.25  # detection ROI and tracking ROI alike (PoseDetectionToRoi, PoseLandmarksToRoi)


def rotated_box_rect(points: np.ndarray, rotation: float, size: tuple[int, int]) -> Rect:
    """The tightest rect with ``rotation`` around (N, 2) normalized points (in pixels, as MediaPipe)."""
    w_img, h_img = size
    px = points * (w_img, h_img)
    cos, sin = math.cos(rotation), math.sin(rotation)
    # Coordinates along the rect's own axes.
    u = px[:, 0] * cos + px[:, 1] * sin
    v = -px[:, 0] * sin + px[:, 1] * cos
    uc, vc = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
    cx, cy = uc * cos - vc * sin, uc * sin + vc * cos
    return Rect(cx / w_img, cy / h_img, (u.max() - u.min()) / w_img, (v.max() - v.min()) / h_img, rotation)


def face_tracking_rect(face: np.ndarray, size: tuple[int, int]) -> Rect:
    """``FaceLandmarksToRoi``: the ROI of (468, >=2) face landmarks: their box, eye line level, square, x1.5."""
    rotation = rotation_between(face[FACE_ROTATION_POINTS[0], :2], face[FACE_ROTATION_POINTS[1], :2], 0.0, size)
    return transform_rect(landmarks_box_rect(face[:, :2].astype(np.float64), rotation), size, scale=1.5)


def hand_tracking_rect(hand: np.ndarray, size: tuple[int, int]) -> Rect:
    """``HandLandmarksToRoi``: the ROI of (21, >=2) hand landmarks.

    The 12-point palm box along the wrist -> palm-centre axis (pointing up), x2.0, shifted up 0.1, square.
    """
    pts = hand[:, :2].astype(np.float64)
    wrist = pts[HandLandmark.WRIST]
    middle = ((pts[HandLandmark.INDEX_FINGER_MCP] + pts[HandLandmark.RING_FINGER_MCP]) / 2
              + pts[HandLandmark.MIDDLE_FINGER_MCP]) / 2
    rotation = rotation_between(wrist, middle, math.pi / 2, size)
    rect = rotated_box_rect(pts[list(HAND_RECT_POINTS)], rotation, size)
    return transform_rect(rect, size, scale=2.0, shift_y=-0.1)


def pose_rect_from_keypoints(centre: np.ndarray, edge: np.ndarray, size: tuple[int, int]) -> Rect:
    """The pose ROI from a centre (hip) point and a point on the body circle, both normalized (2,).

    ``AlignmentPointsRects`` (target 90°), then x1.25, square: the detector's keypoints on the first
    frame, the smoothed auxiliary landmarks 33 and 34 after it.
    """
    return transform_rect(alignment_rect(centre, edge, math.pi / 2, size), size, scale=POSE_ROI_SCALE)


@dataclass(frozen=True)
class RoiTrackingLimits:
    """``RoiTrackingCalculatorOptions``: how far the re-crop ROI may move before tracking is dropped.

    Attributes:
        rotation_deg: largest rotation change, degrees.
        translation: largest centre shift along each re-crop axis, a fraction of the re-crop side.
        scale: largest side change, a fraction of the re-crop side.
        margin: the previous landmarks must lie inside the re-crop ROI grown by (1 + margin).
    """

    rotation_deg: float
    translation: float
    scale: float
    margin: float


# face_tracking.pbtxt and hand_tracking.pbtxt (docs/mediapipe_video.md §5).
FACE_TRACKING = RoiTrackingLimits(rotation_deg=15.0, translation=0.1, scale=0.3, margin=-0.2)
HAND_TRACKING = RoiTrackingLimits(rotation_deg=40.0, translation=0.2, scale=0.4, margin=-0.1)


def keeps_tracking(prev_landmarks: np.ndarray, prev_rect: Rect, recrop: Rect, size: tuple[int, int],
                   limits: RoiTrackingLimits) -> bool:
    """``RoiTrackingCalculator``: whether the previous-landmark ROI may stand in for the re-crop ROI.

    Both rects and the landmarks are turned into pixels and rotated by minus the re-crop rotation,
    so shifts are measured along the re-crop rect's axes; every check must pass (a value strictly
    above its limit fails it; a landmark must be strictly inside).

    Args:
        prev_landmarks: (N, >=2) the part's landmarks on the previous frame, normalized.
        prev_rect: the tracking ROI built from them on this frame's image size.
        recrop: this frame's re-crop ROI.
        size: (width, height) in pixels.
        limits: the part's thresholds.
    """
    w_img, h_img = size
    cos, sin = math.cos(-recrop.rotation), math.sin(-recrop.rotation)

    def rotate(x: np.ndarray | float, y: np.ndarray | float):
        return x * w_img * cos - y * h_img * sin, x * w_img * sin + y * h_img * cos

    prev_x, prev_y = rotate(prev_rect.x_center, prev_rect.y_center)
    rec_x, rec_y = rotate(recrop.x_center, recrop.y_center)
    rec_w, rec_h = recrop.width * w_img, recrop.height * h_img
    rotation_diff = math.degrees(prev_rect.rotation) - math.degrees(recrop.rotation)
    if rotation_diff > 180.0:
        rotation_diff -= 360.0
    if rotation_diff < -180.0:
        rotation_diff += 360.0
    if abs(rotation_diff) > limits.rotation_deg:
        return False
    if abs(prev_x - rec_x) > rec_w * limits.translation or abs(prev_y - rec_y) > rec_h * limits.translation:
        return False
    if (abs(prev_rect.width * w_img - rec_w) > rec_w * limits.scale
            or abs(prev_rect.height * h_img - rec_h) > rec_h * limits.scale):
        return False
    half_w, half_h = rec_w * (1.0 + limits.margin) / 2.0, rec_h * (1.0 + limits.margin) / 2.0
    x, y = rotate(prev_landmarks[:, 0].astype(np.float64), prev_landmarks[:, 1].astype(np.float64))
    return bool(np.all((rec_x - half_w < x) & (x < rec_x + half_w) & (rec_y - half_h < y) & (y < rec_y + half_h)))
