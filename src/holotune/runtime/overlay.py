"""Draw Holistic results on an image with MediaPipe's connection sets."""

from __future__ import annotations

import cv2
import numpy as np

from holotune.landmarks import FACEMESH_CONTOURS, HAND_CONNECTIONS, POSE_CONNECTIONS

# RGB colours and line widths in the spirit of MediaPipe's drawing_styles.
_STYLE = {
    "pose": ((255, 255, 255), (80, 220, 80), 2),
    "face": ((200, 200, 200), (190, 190, 190), 1),
    "left_hand": ((255, 138, 0), (255, 200, 120), 2),
    "right_hand": ((0, 150, 255), (120, 200, 255), 2),
}
_CONNECTIONS = {"pose": POSE_CONNECTIONS, "face": FACEMESH_CONTOURS, "left_hand": HAND_CONNECTIONS,
                "right_hand": HAND_CONNECTIONS}


def draw_overlay(image: np.ndarray, result, min_visibility: float = 0.5) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 RGB with every detected part drawn on it.

    Pose points and edges whose visibility is below ``min_visibility`` are skipped, as MediaPipe does.
    """
    out = image.copy()
    h, w = out.shape[:2]
    for part, (line_colour, point_colour, width) in _STYLE.items():
        points = getattr(result, part)
        if points is None:
            continue
        xy = np.round(points[:, :2] * (w, h)).astype(np.int32)
        shown = points[:, 3] >= min_visibility if part == "pose" else np.ones(len(points), dtype=bool)
        for a, b in _CONNECTIONS[part]:
            if shown[a] and shown[b]:
                cv2.line(out, tuple(map(int, xy[a])), tuple(map(int, xy[b])), line_colour, width, cv2.LINE_AA)
        radius = 1 if part == "face" else 3
        for (x, y), ok in zip(xy, shown):
            if ok:
                cv2.circle(out, (int(x), int(y)), radius, point_colour, -1, cv2.LINE_AA)
    return out
