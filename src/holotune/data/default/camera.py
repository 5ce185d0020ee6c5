"""The low-light camera model: a dim, noisy, sometimes blurred, low-resolution capture of a scene."""

from __future__ import annotations

import cv2
import numpy as np

from holotune.data.default.variants import LowLight

BLUR_REFERENCE_SIZE = 384
"""``LowLight.blur_sigma`` is in pixels of an image this long: the blur scales with the image, so
the same parameters look alike on a 192-px LFW canvas and a 384-px photo."""
MIN_CAPTURE_SIDE = 2
"""The downscaled capture keeps at least this many pixels per side (``cv2.resize`` needs >= 1; 2
keeps a bilinear upscale meaningful)."""


def apply_low_light(image: np.ndarray, params: LowLight, grey: bool) -> np.ndarray:
    """(H, W, 3) float32 [0, 1] -> the same scene captured in low light, uint8.

    Order as in a camera: exposure (gain, gamma), white-balance cast, optics blur, sensor
    resolution, shot + read noise, 8-bit quantisation, then the upscale back to the image size.
    A monochrome photo stays monochrome (no cast, the same noise in every channel).
    """
    h, w = image.shape[:2]
    x = params.gain * np.power(np.clip(image, 0, 1), params.gamma)
    if not grey:
        x = x * np.array(params.cast, np.float32)
    if params.blur_sigma > 0:
        x = cv2.GaussianBlur(x, (0, 0), params.blur_sigma * max(w, h) / BLUR_REFERENCE_SIZE)
    if params.downscale < 1:
        small = (max(MIN_CAPTURE_SIDE, round(w * params.downscale)),
                 max(MIN_CAPTURE_SIDE, round(h * params.downscale)))
        x = cv2.resize(x, small, interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(params.noise_seed)
    noise = rng.standard_normal((*x.shape[:2], 1 if grey else 3)).astype(np.float32)
    x = x + noise * np.sqrt(params.shot_noise * np.clip(x, 0, None) + params.read_noise**2)
    x = np.clip(np.round(x * 255), 0, 255).astype(np.uint8)
    if params.downscale < 1:
        x = cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)
    return x
