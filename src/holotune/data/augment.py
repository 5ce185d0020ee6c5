"""Keypoint-aware augmentation for training crops (OpenCV and numpy; no torchvision).

Geometry is applied to the ROI, not the image: the crop is re-cut from the original photo with a
jittered rect (rotation, scale, shift), and the labels follow through the same rect, so they stay
exact. A horizontal flip mirrors the whole image and swaps left/right landmarks
(:func:`holotune.landmarks.flip_permutation_543`). Photometric changes (colour, blur, occlusion)
touch only the crop's pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from holotune.landmarks import flip_permutation_543
from holotune.runtime.geometry import Rect, normalize_radians


@dataclass(frozen=True, kw_only=True)
class AugmentOptions:
    """Augmentation strengths (``finetune.augment`` in ``conf/``); all zero means no augmentation.

    Attributes:
        rotation_deg: max ROI rotation jitter, degrees.
        scale: max relative ROI size jitter (0.1 = ±10%).
        shift: max ROI centre jitter, as a fraction of the ROI size.
        flip_prob: probability of a horizontal flip (left/right landmarks swapped).
        color: max brightness/contrast/saturation jitter (0.2 = ±20%).
        blur_prob: probability of a Gaussian blur (sigma 0.5-2 px).
        occlusion_prob: probability of one random occluding rectangle over the crop.
    """

    rotation_deg: float
    scale: float
    shift: float
    flip_prob: float
    color: float
    blur_prob: float
    occlusion_prob: float


NO_AUGMENTATION = AugmentOptions(rotation_deg=0.0, scale=0.0, shift=0.0, flip_prob=0.0, color=0.0, blur_prob=0.0,
                                 occlusion_prob=0.0)


def flip_sample(image: np.ndarray, keypoints: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror an image and its (543, 3) labels: x -> 1 - x, left/right landmarks swapped."""
    perm = flip_permutation_543()
    flipped = keypoints[perm].copy()
    flipped[:, 0] = 1.0 - flipped[:, 0]
    return np.ascontiguousarray(image[:, ::-1]), flipped, mask[perm].copy()


def jitter_rect(rect: Rect, options: AugmentOptions, rng: np.random.Generator) -> Rect:
    """A randomly rotated, scaled and shifted copy of ``rect`` (shift along the rect's own axes)."""
    if not (options.rotation_deg or options.scale or options.shift):
        return rect
    s = 1.0 + rng.uniform(-options.scale, options.scale)
    du, dv = rng.uniform(-options.shift, options.shift, size=2)
    cos, sin = math.cos(rect.rotation), math.sin(rect.rotation)
    # The ROI is square in pixels, so rotating its normalized offsets by the ROI angle is exact enough
    # for a random jitter.
    dx = (cos * du - sin * dv) * rect.width
    dy = (sin * du + cos * dv) * rect.height
    dtheta = math.radians(rng.uniform(-options.rotation_deg, options.rotation_deg))
    return replace(rect, x_center=rect.x_center + dx, y_center=rect.y_center + dy, width=rect.width * s,
                   height=rect.height * s, rotation=normalize_radians(rect.rotation + dtheta))


def photometric(crop: np.ndarray, options: AugmentOptions, rng: np.random.Generator) -> np.ndarray:
    """Colour, blur and occlusion on a (H, W, 3) uint8 crop; returns a new array."""
    out = crop.astype(np.float32)
    if options.color:
        brightness = 1.0 + rng.uniform(-options.color, options.color)
        contrast = 1.0 + rng.uniform(-options.color, options.color)
        saturation = 1.0 + rng.uniform(-options.color, options.color)
        mean = out.mean()
        out = (out - mean) * contrast + mean * brightness
        grey = out.mean(axis=2, keepdims=True)
        out = grey + (out - grey) * saturation
    if options.blur_prob and rng.random() < options.blur_prob:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=rng.uniform(0.5, 2.0))
    if options.occlusion_prob and rng.random() < options.occlusion_prob:
        h, w = out.shape[:2]
        ow, oh = int(w * rng.uniform(0.15, 0.4)), int(h * rng.uniform(0.15, 0.4))
        x0, y0 = int(rng.integers(0, w - ow + 1)), int(rng.integers(0, h - oh + 1))
        out[y0 : y0 + oh, x0 : x0 + ow] = rng.uniform(0, 255, size=3) + rng.normal(0, 12, size=(oh, ow, 3))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
