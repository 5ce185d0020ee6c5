"""One variant of a labelled clean image: jitter geometry, then the occluder, then the camera.

Keypoints follow the pixels exactly: the jitter is one affine in continuous pixel coordinates
(pixel i spans [i, i+1)), applied to the image and to the normalized labels alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from holotune.data.default.camera import apply_low_light
from holotune.data.default.occluders import draw_occluders
from holotune.data.default.variants import Jitter, VariantParams
from holotune.landmarks import FACE_SLICE, NUM_KEYPOINTS

OCCLUDED_ALPHA = 0.5
"""A point is ``occluded`` where the occluder's coverage exceeds this (half-covered pixels count)."""


def jitter_matrix(jitter: Jitter, size: tuple[int, int]) -> np.ndarray:
    """The (2, 3) affine of ``jitter`` in continuous pixel coordinates (pixel i spans [i, i+1)).

    Normalized keypoints map to these coordinates as ``x * W``, ``y * H``.
    """
    w, h = size
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), jitter.rotation_deg, jitter.scale)
    m[0, 2] += jitter.shift[0] * w
    m[1, 2] += jitter.shift[1] * h
    return m


def warp_image(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a continuous-coordinate affine to an image (same size, bilinear, BORDER_REPLICATE)."""
    # OpenCV puts pixel centres at integers: conjugate by the half-pixel shift.
    m = matrix.copy()
    m[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5
    h, w = image.shape[:2]
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_keypoints(keypoints: np.ndarray, matrix: np.ndarray, size: tuple[int, int], scale: float) -> np.ndarray:
    """(N, 3) normalized x, y, z -> the same points after ``matrix`` (z scales with the zoom)."""
    w, h = size
    px = keypoints[:, :2] * np.array([w, h])
    moved = px @ matrix[:, :2].T + matrix[:, 2]
    out = keypoints.astype(np.float64).copy()
    out[:, :2] = moved / np.array([w, h])
    out[:, 2] = keypoints[:, 2] * scale
    return out


def in_image(keypoints: np.ndarray) -> np.ndarray:
    """(N,) bool: x and y inside [0, 1]."""
    xy = keypoints[:, :2]
    return np.all((xy >= 0.0) & (xy <= 1.0), axis=1)


@dataclass(frozen=True)
class Rendered:
    """One rendered variant.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        keypoints: (543, 3) float64, normalized x, y and z (unlabelled rows 0).
        mask: (543,) float32 0/1: labelled and inside the image.
        occluded: (543,) float32 0/1: the point lies under an opaque occluder (coverage > OCCLUDED_ALPHA).
    """

    image: np.ndarray
    keypoints: np.ndarray
    mask: np.ndarray
    occluded: np.ndarray


def render_variant(image: np.ndarray, keypoints: np.ndarray, mask: np.ndarray, params: VariantParams,
                   grey: bool = False) -> Rendered:
    """Render one variant of a labelled clean image.

    Args:
        image: (H, W, 3) uint8 RGB, the clean source.
        keypoints: (543, 3) normalized teacher labels on ``image`` (rows with mask 0 are ignored).
        mask: (543,) 0/1, the parts the teacher found.
        params: from :func:`~holotune.data.default.variants.sample_params`.
        grey: the source is monochrome (keeps occluders and noise monochrome).
    """
    h, w = image.shape[:2]
    matrix = jitter_matrix(params.jitter, (w, h))
    warped = warp_image(image, matrix)
    kp = warp_keypoints(keypoints, matrix, (w, h), params.jitter.scale)
    labelled = mask > 0
    kp[~labelled] = 0.0
    new_mask = (labelled & in_image(kp)).astype(np.float32)
    occluded = np.zeros(NUM_KEYPOINTS, np.float32)
    if params.occluder is None and params.low_light is None:
        return Rendered(warped, kp, new_mask, occluded)
    pixels = warped
    if params.occluder is not None:
        pixels = warped.astype(np.float32) * np.float32(1 / 255)
        if not labelled[FACE_SLICE].all():
            raise ValueError("an occluder needs the face labelled")
        face_px = kp[FACE_SLICE, :2] * np.array([w, h])
        pixels, alpha = draw_occluders(pixels, face_px, params.occluder, grey)
        xy = np.clip(np.floor(kp[:, :2] * np.array([w, h])).astype(int), 0, [w - 1, h - 1])
        occluded = ((alpha[xy[:, 1], xy[:, 0]] > OCCLUDED_ALPHA) & (new_mask > 0)).astype(np.float32)
    if params.low_light is not None:
        out = apply_low_light(pixels, params.low_light, grey)
    else:
        out = (np.clip(pixels, 0, 1) * np.float32(255) + np.float32(0.5)).astype(np.uint8)
    return Rendered(out, kp, new_mask, occluded)
