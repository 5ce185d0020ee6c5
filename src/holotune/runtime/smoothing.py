"""MediaPipe's landmark filters: the one-euro filter in pixel space and the visibility low-pass.

Each class follows the mediapipe 0.10.21 calculator it is named after
(``docs/mediapipe_video.md`` §4): ``LandmarksSmoothingCalculator`` with ``OneEuroFilter``, and
``VisibilitySmoothingCalculator`` with ``LowPassFilter``. MediaPipe runs one filter per landmark
and axis; all of them see the same timestamps, so here one filter state is an array over
landmarks and axes, updated at once. Timestamps are integer microseconds, as MediaPipe's packets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_FREQUENCY_HZ = 30.0  # OneEuroFilter's frequency until two timestamps exist
MIN_ALLOWED_OBJECT_SCALE = 1e-6  # below it, LandmarksSmoothingCalculator passes landmarks unfiltered


@dataclass(frozen=True, kw_only=True)
class OneEuroParams:
    """One-euro filter settings (Casiez et al., CHI 2012), with MediaPipe's value scaling.

    Attributes:
        min_cutoff: Hz; the cutoff when the landmark is still (lower: smoother, more lag at rest).
        beta: how fast the cutoff rises with speed (higher: less lag when moving).
        derivate_cutoff: Hz; cutoff of the speed estimate's own low-pass.
        disable_value_scaling: filter raw values; otherwise speeds are divided by the object's
            size in pixels, so the filter behaves alike for near and far subjects.
    """

    min_cutoff: float
    beta: float
    derivate_cutoff: float
    disable_value_scaling: bool = False

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "derivate_cutoff"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of Hz, got {value}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be >= 0, got {self.beta}")


# MediaPipe Holistic 0.10.21's pose filters (graph PoseLandmarkFiltering; docs/mediapipe_video.md §4.1).
POSE_LANDMARKS = OneEuroParams(min_cutoff=0.05, beta=80.0, derivate_cutoff=1.0)
POSE_AUXILIARY = OneEuroParams(min_cutoff=0.01, beta=10.0, derivate_cutoff=1.0)
POSE_WORLD = OneEuroParams(min_cutoff=0.1, beta=40.0, derivate_cutoff=1.0, disable_value_scaling=True)
VISIBILITY_ALPHA = 0.1


class LowPassFilter:
    """MediaPipe's ``LowPassFilter`` on an array: ``out = a·x + (1 − a)·prev``; the first value passes.

    The state is float32, as MediaPipe stores it.
    """

    def __init__(self) -> None:
        self.stored: np.ndarray | None = None
        self.raw: np.ndarray | None = None

    def apply(self, value: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
        value = np.asarray(value, dtype=np.float32)
        if self.stored is None:
            out = value.copy()
        else:
            out = (alpha * value.astype(np.float64) + (1.0 - alpha) * self.stored).astype(np.float32)
        self.raw, self.stored = value, out
        return out


class OneEuroFilter:
    """MediaPipe's ``OneEuroFilter`` (``mediapipe/util/filtering/one_euro_filter.cc``) on an array.

    Arithmetic in float64 as the C++ code's doubles; the two inner low-pass filters keep float32.
    """

    def __init__(self, params: OneEuroParams):
        self.params = params
        self.frequency = DEFAULT_FREQUENCY_HZ
        self.last_us = 0
        self._x = LowPassFilter()
        self._dx = LowPassFilter()

    def move(self, transform) -> None:
        """Carry the filter's state along a motion: ``transform`` maps an (N, ...) state array to its new values."""
        if self._x.stored is not None:
            self._x.stored = transform(self._x.stored).astype(np.float32)
            self._x.raw = transform(self._x.raw).astype(np.float32)

    def _alpha(self, cutoff: float | np.ndarray) -> float | np.ndarray:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * self.frequency)

    def apply(self, value: np.ndarray, timestamp_us: int, value_scale: float) -> np.ndarray:
        """Filter ``value`` (any shape) seen at ``timestamp_us``; a non-increasing timestamp returns it as is."""
        value = np.asarray(value, dtype=np.float32)
        if self.last_us >= timestamp_us:
            return value
        if self.last_us != 0 and timestamp_us != 0:
            self.frequency = 1.0 / ((timestamp_us - self.last_us) * 1e-6)
        self.last_us = timestamp_us
        if self._x.raw is None:
            dvalue = np.zeros(value.shape)
        else:
            dvalue = (value.astype(np.float64) - self._x.raw) * value_scale * self.frequency
        edvalue = self._dx.apply(dvalue, self._alpha(self.params.derivate_cutoff))
        cutoff = self.params.min_cutoff + self.params.beta * np.abs(edvalue.astype(np.float64))
        return self._x.apply(value, self._alpha(cutoff))


class LandmarksSmoother:
    """``LandmarksSmoothingCalculator`` with a one-euro filter, for normalized landmarks.

    x, y, z are filtered in pixels (x·W, y·H, z·W) and converted back; columns after z (visibility)
    pass through. ``reset()`` is what an empty landmarks packet does: the next frame passes
    through unfiltered and the frequency restarts at 30 Hz.
    """

    def __init__(self, params: OneEuroParams):
        self.params = params
        self._filter = OneEuroFilter(params)

    def reset(self) -> None:
        self._filter = OneEuroFilter(self.params)

    def apply(self, landmarks: np.ndarray, timestamp_us: int, size: tuple[int, int],
              object_scale: float | None = None, normalized: bool = True,
              motion: np.ndarray | None = None) -> np.ndarray:
        """Smooth (N, >=3) landmarks.

        Args:
            landmarks: (N, C) with x, y, z first; normalized to the image if ``normalized``,
                else in their own units (world landmarks in metres).
            timestamp_us: the frame's time in microseconds.
            size: (width, height) of the image in pixels.
            object_scale: pixels; the value scale is its inverse. ``None``: the mean side of the
                landmarks' bounding box in pixels (MediaPipe's default).
            normalized: convert to pixels before filtering.
            motion: (2, 3) pixels of the previous frame -> this frame (holotune's motion-compensated
                smoothing, :mod:`holotune.runtime.motion`): the filter state moves with it first.

        Returns:
            (N, C) float32: the filtered landmarks.
        """
        width, height = size
        scale = np.array([width, height, width], dtype=np.float32) if normalized else np.ones(3, np.float32)
        value_scale = 1.0
        if not self.params.disable_value_scaling:
            if object_scale is None:
                px = landmarks[:, :2] * scale[:2]
                object_scale = float(((px.max(axis=0) - px.min(axis=0)).sum()) / 2.0)
            if object_scale < MIN_ALLOWED_OBJECT_SCALE:
                return landmarks.astype(np.float32)
            value_scale = 1.0 / object_scale
        if motion is not None:
            def warp(state: np.ndarray) -> np.ndarray:
                moved = state.astype(np.float64)
                moved[:, :2] = state[:, :2] @ motion[:, :2].T + motion[:, 2]
                return moved

            self._filter.move(warp)
        out = landmarks.astype(np.float32).copy()
        out[:, :3] = self._filter.apply(landmarks[:, :3] * scale, timestamp_us, value_scale) / scale
        return out


class VisibilitySmoother:
    """``VisibilitySmoothingCalculator`` with a low-pass filter on column 3 (visibility) of (N, 4) landmarks."""

    def __init__(self, alpha: float = VISIBILITY_ALPHA):
        self.alpha = alpha
        self._filter = LowPassFilter()

    def apply(self, landmarks: np.ndarray) -> np.ndarray:
        out = landmarks.astype(np.float32).copy()
        out[:, 3] = self._filter.apply(landmarks[:, 3], self.alpha)
        return out

# holotune's optional face and hand smoothing (MediaPipe smooths neither inside Holistic); value
# scale from the landmarks' box, run in motion-compensated coordinates (runtime.motion). Face: the
# values of MediaPipe's standalone FaceLandmarker in stream mode. Hands: beta 5, since hand tracks
# jump more than faces (benchmarks/video.py: with beta 80 hand jitter fell 7 % and 32 %, with 5
# 40 % and 77 %, lag 0.5 frame on a real moving webcam clip; docs/mediapipe_video.md §10).
FACE_SMOOTHING = OneEuroParams(min_cutoff=0.05, beta=80.0, derivate_cutoff=1.0)
HAND_SMOOTHING = OneEuroParams(min_cutoff=0.05, beta=5.0, derivate_cutoff=1.0)
