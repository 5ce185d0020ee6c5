"""The low-light camera model: a dim, noisy, sometimes blurred, low-resolution capture of a scene,
demosaiced and JPEG-compressed as a phone or webcam stores it."""

from __future__ import annotations

import functools
import statistics

import cv2
import numpy as np

from holotune.data.default.variants import LowLight

BLUR_REFERENCE_SIZE = 384
"""``LowLight.blur_sigma`` is in pixels of an image this long: the blur scales with the image, so
the same parameters look alike on a 192-px LFW canvas and a 384-px photo."""
MIN_CAPTURE_SIDE = 2
"""The downscaled capture keeps at least this many pixels per side (``cv2.resize`` needs >= 1; 2
keeps a bilinear upscale meaningful)."""
BAYER_CELL = 2
"""The colour noise is drawn once per 2x2 Bayer cell and interpolated between cells: demosaicing
builds each pixel's colour from its cell's neighbours, so a colour error spreads over ~2 px
(blotches, not per-pixel speckle)."""
NOISE_LEVELS = 256
"""Gaussian noise is drawn as random bytes mapped through the normal quantile function of 256 levels
(a table lookup: ~10x faster than ``Generator.standard_normal``; its tails end at 2.7 sigma, where
8-bit sensor noise is clipped anyway)."""
LUMA = np.array((0.299, 0.587, 0.114), np.float32)
"""Rec. 601 luma weights: the grey a monochrome photo shows a colour as; the colour noise has none
of it (it changes hue, not brightness)."""
CHROMA_BASIS = ((0.0, -0.344, 1.772), (1.402, -0.714, 0.0))
"""The RGB change of a unit step of Cb and of Cr (Rec. 601): two colour directions of zero luma. The
colour noise is a random mix of them (strongest in blue and red, as a sensor's is)."""
CHROMA_RMS = 1.382
"""The basis's root-mean-square over the three channels: dividing by it gives the noise an RMS of 1."""
INTERPOLATED_STD = 0.625
"""Upsampling the cells 2x bilinearly keeps 0.625 of the noise's standard deviation: OpenCV samples a
quarter of the way between cells, weights 3/4 and 1/4 per axis, so (9/16 + 1/16)**2 of the variance."""


def apply_low_light(image: np.ndarray, params: LowLight, grey: bool) -> np.ndarray:
    """(H, W, 3) uint8, or float32 in [0, 1] -> the same scene captured in low light, uint8.

    Order as in a camera: exposure (gain, gamma) of the scene's 8-bit levels, white-balance cast,
    optics blur, sensor resolution, shot + read noise, demosaiced colour noise, 8-bit quantisation, JPEG compression,
    then the upscale back to the image size. A monochrome photo stays monochrome (no cast, no colour
    noise, the same noise in every channel, a greyscale JPEG). Deterministic given ``params``
    (and the OpenCV build, for the JPEG).
    """
    h, w = image.shape[:2]
    # Exposure and white balance as one table over the scene's 8-bit levels (one pass, no pow per pixel).
    levels = image if image.dtype == np.uint8 else np.clip(image * np.float32(255) + 0.5, 0, 255).astype(np.uint8)
    cast = np.ones(3, np.float32) if grey else np.array(params.cast, np.float32)
    response = params.gain * (np.arange(256, dtype=np.float32) / 255) ** params.gamma
    x = cv2.LUT(levels, (response[:, None] * cast).astype(np.float32).reshape(1, 256, 3))
    if params.blur_sigma > 0:
        x = cv2.GaussianBlur(x, (0, 0), params.blur_sigma * max(w, h) / BLUR_REFERENCE_SIZE)
    if params.downscale < 1:
        small = (max(MIN_CAPTURE_SIDE, round(w * params.downscale)),
                 max(MIN_CAPTURE_SIDE, round(h * params.downscale)))
        x = cv2.resize(x, small, interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(params.noise_seed)
    sigma = np.sqrt(params.shot_noise * x + np.float32(params.read_noise**2))  # x >= 0 here
    if grey:  # one noise for the three equal channels
        x += grey3(gaussian(rng, x.shape[:2]) * sigma[..., 0])
    else:
        x += gaussian(rng, x.shape) * sigma
        if params.chroma_noise > 0:
            luma_sigma = cv2.transform(sigma, LUMA[None]) * np.float32(params.chroma_noise)
            x += chroma_noise(rng, x.shape[:2]) * grey3(luma_sigma)
    np.clip(x, 0, 1, out=x)
    x = (x * 255 + 0.5).astype(np.uint8)
    x = jpeg(x, params.jpeg_quality, grey)
    if params.downscale < 1:
        x = cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)
    return x


@functools.cache
def _normal_quantiles() -> np.ndarray:
    dist = statistics.NormalDist()
    return np.array([dist.inv_cdf((i + 0.5) / NOISE_LEVELS) for i in range(NOISE_LEVELS)], np.float32)


def gaussian(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """float32 standard normal noise of ``shape`` (quantised to ``NOISE_LEVELS`` levels)."""
    levels = np.frombuffer(rng.bytes(int(np.prod(shape))), np.uint8).reshape(shape[0], -1)
    return cv2.LUT(levels, _normal_quantiles()).reshape(shape)


def chroma_noise(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) float32 colour noise of ~unit RMS over the channels, without luminance (its
    Rec. 601 luma is 0 at every pixel), drawn once per Bayer cell and interpolated between cells
    (correlated over ~2 px)."""
    h, w = shape
    cells = gaussian(rng, (-(-h // BAYER_CELL) + 1, -(-w // BAYER_CELL) + 1, len(CHROMA_BASIS)))
    rgb = cv2.transform(cells, np.array(CHROMA_BASIS, np.float32).T * np.float32(1 / (CHROMA_RMS * INTERPOLATED_STD)))
    return cv2.resize(rgb, (rgb.shape[1] * BAYER_CELL, rgb.shape[0] * BAYER_CELL),
                      interpolation=cv2.INTER_LINEAR)[:h, :w]


def grey3(values: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32: ``values`` (h, w) in each channel (cv2.merge: numpy broadcasting over 3 channels is slow)."""
    v = np.asarray(values, np.float32)
    return cv2.merge([v, v, v])


def jpeg(image: np.ndarray, quality: int, grey: bool) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> the same after a JPEG round trip at ``quality`` (a greyscale JPEG when ``grey``)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    if grey:
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[..., 0]), params)
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2RGB)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
