"""Anti-aliased coverage of polygons, polylines and curves, computed inside a pixel box.

An occluder touches a small part of the image, so everything is computed in a :class:`Box` around it
(that keeps a 384-px variant at a few milliseconds). Points are in continuous image pixels (pixel i
spans [i, i+1)); coverage arrays are (box height, box width) float32 in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

_FRACTION_BITS = 4  # OpenCV draws with 4 fractional bits of sub-pixel precision


@dataclass(frozen=True)
class Box:
    """Pixels ``[x0, x1) x [y0, y1)`` of an image (possibly empty)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def around(cls, points: np.ndarray, margin: float, shape: tuple[int, int]) -> Box:
        """The box of ``points`` (N, 2) grown by ``margin`` pixels, clipped to an image of ``shape`` (H, W)."""
        points = np.asarray(points, np.float64).reshape(-1, 2)
        lo = np.floor(points.min(axis=0) - margin)
        hi = np.ceil(points.max(axis=0) + margin)
        h, w = shape
        x0, y0 = min(max(int(lo[0]), 0), w), min(max(int(lo[1]), 0), h)
        return cls(x0, y0, min(max(int(hi[0]), x0), w), min(max(int(hi[1]), y0), h))

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    @property
    def slices(self) -> tuple[slice, slice]:
        """Index an (H, W, ...) image with this to get the box's pixels."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(yy, xx): the continuous image coordinates of the box's pixel centres, float32, (h, 1) and
        (1, w): they broadcast to (h, w) in arithmetic (an open grid: no full arrays until needed)."""
        yy = np.arange(self.y0, self.y1, dtype=np.float32)[:, None] + np.float32(0.5)
        xx = np.arange(self.x0, self.x1, dtype=np.float32)[None, :] + np.float32(0.5)
        return yy, xx

    def _fixed(self, points: np.ndarray) -> np.ndarray:
        """Continuous image pixels (..., 2) -> OpenCV's fixed-point pixel-centre coordinates inside the box."""
        local = np.asarray(points, np.float64) - (self.x0 + 0.5, self.y0 + 0.5)
        return np.round(local * (1 << _FRACTION_BITS)).astype(np.int32)

    def _fixed_all(self, polylines: list[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """``_fixed`` of each polyline (a list of (N, 2), or one (k, N, 2) array converted at once)."""
        if isinstance(polylines, np.ndarray):
            return list(self._fixed(polylines))
        return [self._fixed(p) for p in polylines]

    def fill(self, polygons: list[np.ndarray]) -> np.ndarray:
        """Coverage of closed polygons (each (N, 2)), their union (one at a time: ``cv2.fillPoly`` given
        several would fill their overlap by the even-odd rule, i.e. not at all)."""
        canvas = np.zeros(self.shape, np.uint8)
        for polygon in polygons:
            one = np.zeros(self.shape, np.uint8)
            cv2.fillPoly(one, [self._fixed(polygon)], 255, lineType=cv2.LINE_AA, shift=_FRACTION_BITS)
            np.maximum(canvas, one, out=canvas)
        return canvas.astype(np.float32) * (1 / 255)

    def stroke(self, polylines: list[np.ndarray] | np.ndarray, thickness: int, closed: bool = False) -> np.ndarray:
        """Coverage of polylines (a list of (N, 2), or a (k, N, 2) array) drawn ``thickness`` pixels wide (>= 1)."""
        canvas = np.zeros(self.shape, np.uint8)
        cv2.polylines(canvas, self._fixed_all(polylines), closed, 255, thickness=max(1, int(thickness)),
                      lineType=cv2.LINE_AA, shift=_FRACTION_BITS)
        return canvas.astype(np.float32) * (1 / 255)

    def distance(self, polylines: list[np.ndarray]) -> np.ndarray:
        """(h, w) float32: each pixel's distance in pixels to the nearest of ``polylines`` (a 1-px trace)."""
        canvas = np.full(self.shape, 255, np.uint8)
        cv2.polylines(canvas, [self._fixed(p) for p in polylines], False, 0, thickness=1, lineType=cv2.LINE_8,
                      shift=_FRACTION_BITS)
        return cv2.distanceTransform(canvas, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)

    def paste(self, full: np.ndarray, part: np.ndarray) -> None:
        """``full[box] = max(full[box], part)`` (full: (H, W) coverage of the whole image)."""
        region = full[self.slices]
        np.maximum(region, part, out=region)


def bezier(control: np.ndarray, n: int) -> np.ndarray:
    """``n`` points on the Bezier curve of ``control`` (k, 2) points (k = 3: quadratic, 4: cubic)."""
    control = np.asarray(control, np.float64)
    k = len(control) - 1
    t = np.linspace(0.0, 1.0, n)[:, None]
    return sum(math.comb(k, i) * (1 - t) ** (k - i) * t**i * control[i] for i in range(k + 1))


def chaikin(points: np.ndarray, iterations: int) -> np.ndarray:
    """Corner cutting on a closed polygon (N, 2): each edge is replaced by its quarter points."""
    for _ in range(iterations):
        nxt = np.roll(points, -1, axis=0)
        points = np.stack([0.75 * points + 0.25 * nxt, 0.25 * points + 0.75 * nxt], axis=1).reshape(-1, 2)
    return points


def densify(polygon: np.ndarray, step: float) -> np.ndarray:
    """A closed polygon (N, 2) resampled at equal steps of at most ``step`` pixels along its outline."""
    closed = np.vstack([polygon, polygon[:1]])
    along = np.r_[0.0, np.cumsum(np.hypot(*np.diff(closed, axis=0).T))]
    at = np.linspace(0.0, along[-1], max(3, int(np.ceil(along[-1] / max(step, 1e-6)))), endpoint=False)
    return np.stack([np.interp(at, along, closed[:, 0]), np.interp(at, along, closed[:, 1])], axis=1)


def shifted(values: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """(h, w) ``values`` moved by ``offset`` (dx, dy) pixels, rounded; what enters from outside is 0."""
    dx, dy = (int(round(float(v))) for v in offset)
    h, w = values.shape
    out = np.zeros_like(values)
    if abs(dx) < w and abs(dy) < h:
        out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = values[max(-dy, 0):h - max(dy, 0),
                                                                             max(-dx, 0):w - max(dx, 0)]
    return out


def soften(coverage: np.ndarray, sigma: float) -> np.ndarray:
    """Coverage blurred by a Gaussian of ``sigma`` pixels (fabric and skin edges are not razor sharp)."""
    return cv2.GaussianBlur(coverage, (0, 0), sigma) if sigma > 0 else coverage
