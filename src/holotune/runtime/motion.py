"""Image motion between consecutive frames around a set of landmarks (pyramidal Lucas-Kanade).

The optional face and hand smoothing filters landmarks in coordinates that move with the image
content: the previous frame's filter state is carried along this motion before the new landmarks
are blended in. Camera shake and head motion, which the pixels show precisely, are then followed
without lag, and only what the pixels do not explain (the landmark model's frame-to-frame noise)
is smoothed away.
"""

from __future__ import annotations

import cv2
import numpy as np

LK_WINDOW = (21, 21)  # pixels; OpenCV's default window
LK_LEVELS = 3  # pyramid levels: follows motions up to roughly 2^3 · 10 px per frame
MIN_TRACKED = 6  # fewer points than this tracked: no motion estimate


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 grey."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def estimate_motion(previous: np.ndarray, current: np.ndarray, points_px: np.ndarray) -> np.ndarray | None:
    """A similarity transform (2, 3) taking pixels of ``previous`` to ``current`` near ``points_px``.

    Args:
        previous, current: (H, W) uint8 grey frames of the same size.
        points_px: (N, 2) pixel positions on ``previous`` to follow.

    Returns:
        The (2, 3) float64 matrix (rotation, uniform scale, translation; RANSAC over the tracked
        points), or ``None`` when too few points could be followed.
    """
    if previous.shape != current.shape or len(points_px) < MIN_TRACKED:
        return None
    start = np.ascontiguousarray(points_px, dtype=np.float32).reshape(-1, 1, 2)
    end, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, start, None, winSize=LK_WINDOW, maxLevel=LK_LEVELS)
    ok = status.reshape(-1) == 1
    if ok.sum() < MIN_TRACKED:
        return None
    matrix, _ = cv2.estimateAffinePartial2D(start[ok], end[ok], method=cv2.RANSAC, ransacReprojThreshold=1.0)
    return matrix
