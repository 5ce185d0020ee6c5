"""Fabric textures on a covering's surface: plain weave, rib knit, folds and fibre noise.

Each function takes surface coordinates ``s`` (across the covering) and ``t`` (down it), in pixels,
as (h, w) float32 arrays, and returns a brightness multiplier of the same shape (1 = untouched).
A texture finer than the pixels would alias into moire: its contrast fades out as its repeat shrinks
towards 1 px (a 25-px LFW face shows no weave, as a camera would not).
"""

from __future__ import annotations

import numpy as np

VISIBLE_PERIOD_PX = 3.0  # a repeat of >= 3 px is drawn at full contrast ...
INVISIBLE_PERIOD_PX = 1.2  # ... and one of <= 1.2 px not at all (linear in between)
KNIT_ROW_RATIO = 0.7  # a knit stitch is 0.7 times as tall as it is wide
KNIT_CHEVRON = 1.4  # rows shift by 1.4 rows across a stitch's half-width: the V of a knit stitch
KNIT_GROOVE = 1.0  # how much darker the groove between two stitch columns (the rib) is, relative to contrast
KNIT_GROOVE_SHARPNESS = 4  # the groove's profile exponent: a narrow groove between round columns
WEAVE_SLUB = 0.5  # thread thickness varies: each thread's brightness varies by half the weave contrast
SLUB_THREADS = 64  # the thicknesses repeat every 64 threads (far more than a mask's width shows)
FOLD_COUNT = 4  # a scarf drapes in a few overlapping folds
FOLD_WAVELENGTH = (0.12, 0.3)  # their spacing, face widths
FOLD_TILT_DEG = 25.0  # folds run within 25 degrees of horizontal (a scarf hangs under its own weight)
FOLD_WARP = 0.8  # radians of phase wobble: folds are not straight


def visibility(period_px: float) -> float:
    """How much of a texture's contrast survives at a repeat of ``period_px`` pixels (0..1)."""
    return float(np.clip((period_px - INVISIBLE_PERIOD_PX) / (VISIBLE_PERIOD_PX - INVISIBLE_PERIOD_PX), 0, 1))


def weave(s: np.ndarray, t: np.ndarray, period_px: float, contrast: float, rng: np.random.Generator) -> np.ndarray:
    """A plain weave: warp and weft threads ``period_px`` apart, each on top in alternate cells."""
    contrast *= visibility(period_px)
    if contrast <= 0:
        return np.ones_like(s)
    a = s * (2 * np.pi / period_px)
    b = t * (2 * np.pi / period_px)
    over = np.sin(0.5 * a) * np.sin(0.5 * b)  # > 0 where the warp thread is on top
    warp = np.cos(a)  # bright along each warp thread's middle
    weft = np.cos(b)
    mix = 0.5 + 0.5 * np.tanh(4 * over)
    slub = rng.normal(0, WEAVE_SLUB, SLUB_THREADS).astype(np.float32)  # each thread's thickness
    col = np.floor(s / period_px).astype(np.int64) % SLUB_THREADS
    row = np.floor(t / period_px).astype(np.int64) % SLUB_THREADS
    thread = mix * (warp + slub[col]) + (1 - mix) * (weft + slub[row])
    return (1 + contrast * 0.5 * thread).astype(np.float32)


def knit(s: np.ndarray, t: np.ndarray, period_px: float, contrast: float) -> np.ndarray:
    """A rib knit: columns of V-shaped stitches ``period_px`` wide, with grooves between the columns."""
    contrast *= visibility(period_px)
    if contrast <= 0:
        return np.ones_like(s)
    col = s / period_px
    x = col - np.floor(col) - 0.5  # -0.5 .. 0.5 across a column
    row = t / (KNIT_ROW_RATIO * period_px)
    stitch = np.cos(2 * np.pi * (row + KNIT_CHEVRON * np.abs(x)))
    groove = (2 * np.abs(x)) ** KNIT_GROOVE_SHARPNESS
    return (1 + contrast * (0.5 * stitch - KNIT_GROOVE * groove + 0.5 * KNIT_GROOVE)).astype(np.float32)


def folds(s: np.ndarray, t: np.ndarray, face_w: float, depth: float, rng: np.random.Generator) -> np.ndarray:
    """Soft folds of draped cloth: ``FOLD_COUNT`` wobbly, roughly horizontal waves, ``depth`` deep."""
    out = np.zeros_like(s)
    for _ in range(FOLD_COUNT):
        tilt = np.radians(rng.uniform(-FOLD_TILT_DEG, FOLD_TILT_DEG))
        k = 2 * np.pi / (rng.uniform(*FOLD_WAVELENGTH) * face_w)
        along = s * np.cos(tilt) + t * np.sin(tilt)
        across = -s * np.sin(tilt) + t * np.cos(tilt)
        wobble = FOLD_WARP * np.sin(along * k * rng.uniform(0.2, 0.5) + rng.uniform(0, 2 * np.pi))
        wave = np.sin(across * k + wobble + rng.uniform(0, 2 * np.pi))
        out += wave * abs(wave)  # sharper crests and troughs than a sine: folds, not ripples
    return (1 + depth * out / np.sqrt(FOLD_COUNT)).astype(np.float32)


def fibre_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """(h, w) float32 per-pixel relative brightness noise of ``sigma`` (the same in each channel: no
    colour speckle)."""
    return rng.normal(0, sigma, shape).astype(np.float32)
