"""The face-mesh teacher for faces without a body: the stock face model alone, with MediaPipe's
landmark-driven ROI refinement (:func:`holotune.runtime.tracking.face_tracking_rect`), as face tracking runs it."""

from __future__ import annotations

import numpy as np

from holotune.landmarks import NUM_FACE

TEACHER_REFINEMENTS = 3
"""Re-crops from the landmarks after the first run: the ROI settles on the face (as tracking does)."""
TEACHER_START_SIZE = 0.85
"""The first ROI: a centred square this fraction of the image height (the face fills most of an LFW canvas)."""


def face_mesh_teacher(images: np.ndarray, session, refinements: int = TEACHER_REFINEMENTS,
                      start_size: float = TEACHER_START_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Face-mesh labels for images that each hold one centred face (no detector, no pose).

    Starts from a centred square ROI, then re-crops ``refinements`` times from the landmarks with
    MediaPipe's face tracking ROI (:func:`~holotune.runtime.tracking.face_tracking_rect`: landmark box, rotation
    from the eye line, square on the long side, x1.5), and returns the last run's landmarks.

    Args:
        images: (N, H, W, 3) uint8 RGB, all the same size.
        session: the stock ``face_landmark`` session (:func:`holotune.runtime.sessions.open_stock`).

    Returns:
        ``(points, presence)``: (N, 468, 3) normalized to the image (z in units of its width), and
        (N,) face presence probabilities of the last run.
    """
    from holotune.models.spec import MODEL_SPECS
    from holotune.runtime.geometry import Rect, crop_image, pad_roi, project_to_image, remove_letterbox
    from holotune.runtime.tracking import face_tracking_rect

    spec = MODEL_SPECS["face_landmark"]
    th, tw = spec.input_size
    lo, hi = spec.input_range
    n, h, w = images.shape[:3]
    size = (w, h)
    rects = [Rect(0.5, 0.5, start_size, start_size * w / h, 0.0)] * n
    points = np.zeros((n, NUM_FACE, 3))
    presence = np.zeros(n)
    for it in range(refinements + 1):
        crops = [pad_roi(r, size, spec.input_size, spec.keep_aspect_ratio) for r in rects]
        pixels = np.stack([crop_image(images[i], crops[i], spec.input_size, border_zero=False) for i in range(n)])
        # u8 * (hi - lo) / 255 + lo, in this order: for the [0, 1] range it is exactly u8 / 255.
        x = pixels.astype(np.float32) * np.float32(hi - lo) / np.float32(255.0) + np.float32(lo)
        out = session.run(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        raw = out["landmarks"].reshape(n, NUM_FACE, 3).astype(np.float64)
        presence = 1.0 / (1.0 + np.exp(-out["face_flag"].reshape(n).astype(np.float64)))
        for i in range(n):
            local = raw[i] / np.array([tw, th, tw])
            points[i] = project_to_image(remove_letterbox(local, crops[i].padding), crops[i].rect)
        if it < refinements:
            rects = [face_tracking_rect(points[i], size) for i in range(n)]
    return points, presence
