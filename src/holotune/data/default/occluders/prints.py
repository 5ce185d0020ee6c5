"""The patterns of a printed mask: dots, stripes, gingham checks and small flowers.

Patterns are laid out in the mask's surface coordinates (``s`` across, ``t`` down, pixels; see
:mod:`.covering`), so they wrap around the face and bend with the mask. Edges are anti-aliased by
the size of a pixel in pattern units.
"""

from __future__ import annotations

import numpy as np

from holotune.data.default.variants import Print

MIN_PERIOD_PX = 4.0  # a repeat under 4 px would be mush: the print is drawn at least this coarse
DOT_STAGGER = 0.5  # every other row of dots shifts by half a repeat
CHECK_BAND = 0.5  # gingham: each band is half the repeat (size is ignored)
PETALS = 5
PETAL_RADIUS = 0.45  # a petal's radius, fraction of the flower's size
PETAL_DISTANCE = 0.55  # a petal's centre from the flower's, fraction of its size
FLOWER_CENTRE = 0.4  # the flower's centre disc, fraction of its size
FLOWER_JITTER = 0.15  # flowers move up to this fraction of the repeat off their grid point
_HASH_SCALE = (12.9898, 78.233, 43758.5453)  # the classic shader hash: a deterministic pseudo-random per grid cell
HASH_SALTS = 997  # the seed picks one of 997 flower layouts (a prime: small, so sin() stays precise)


def print_coverage(print_: Print, s: np.ndarray, t: np.ndarray, face_w: float, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Coverage (h, w) float32 in [0, 1] of the print's ink and of its accent colour.

    Args:
        print_: the pattern.
        s, t: surface coordinates, pixels (h, w).
        face_w: the face width in pixels (the repeat is ``print_.period`` face widths).
        seed: places the flowers.
    """
    period = max(print_.period * face_w, MIN_PERIOD_PX)
    a = np.radians(print_.angle_deg)
    x = (s * np.cos(a) + t * np.sin(a)) / period
    y = (-s * np.sin(a) + t * np.cos(a)) / period
    px = 1.0 / period  # one pixel, in repeats
    none = np.zeros_like(s)
    if print_.kind == "dots":
        row = np.floor(y)
        dx = _wrap(x + DOT_STAGGER * (row % 2))
        return _edge(print_.size - np.hypot(dx, _wrap(y)), px), none
    if print_.kind == "stripes":
        return _edge(print_.size - np.abs(_wrap(y)), px), none
    if print_.kind == "checks":
        across = _edge(CHECK_BAND / 2 - np.abs(_wrap(x)), px)
        down = _edge(CHECK_BAND / 2 - np.abs(_wrap(y)), px)
        return 0.5 * (across + down), across * down
    if print_.kind == "floral":
        return _flowers(x, y, print_.size, px, seed)
    raise ValueError(f"unknown print pattern {print_.kind!r}")


def _wrap(v: np.ndarray) -> np.ndarray:
    """Offset from the nearest integer, in [-0.5, 0.5)."""
    return v - np.floor(v + 0.5)


def _edge(signed: np.ndarray, px: float) -> np.ndarray:
    """Anti-aliased inside-ness of a shape whose signed distance (positive inside) is ``signed`` repeats."""
    return np.clip(signed / px + 0.5, 0, 1).astype(np.float32)


def _hash(i: np.ndarray, j: np.ndarray, salt: float) -> np.ndarray:
    return (np.sin(i * _HASH_SCALE[0] + j * _HASH_SCALE[1] + salt) * _HASH_SCALE[2]) % 1.0


def _flowers(x: np.ndarray, y: np.ndarray, size: float, px: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One five-petal flower per grid cell, jittered and turned per cell."""
    i, j = np.floor(x + 0.5), np.floor(y + 0.5)
    salt = float(seed % HASH_SALTS)
    cx = i + FLOWER_JITTER * (2 * _hash(i, j, salt) - 1)
    cy = j + FLOWER_JITTER * (2 * _hash(i, j, salt + 1) - 1)
    turn = 2 * np.pi * _hash(i, j, salt + 2)
    dx, dy = x - cx, y - cy
    petals = np.zeros_like(x)
    for k in range(PETALS):
        angle = turn + 2 * np.pi * k / PETALS
        d = np.hypot(dx - PETAL_DISTANCE * size * np.cos(angle), dy - PETAL_DISTANCE * size * np.sin(angle))
        petals = np.maximum(petals, _edge(PETAL_RADIUS * size - d, px))
    centre = _edge(FLOWER_CENTRE * size - np.hypot(dx, dy), px)
    return np.maximum(petals, centre), centre
