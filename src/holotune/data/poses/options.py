"""What the pose data build takes: :class:`PoseDataOptions` and the shifts' :class:`ShiftDistribution`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

MIN_IMAGE_SIZE = 128
"""Smallest side of a person canvas: below it a whole body is too few pixels for the pose model's 256-px input."""

Range = tuple[float, float]
"""A ``(low, high)`` bound of a uniform draw."""

CUTOFF_SIDES = ("bottom", "left", "right", "top")
"""Which frame edge cuts the body in the ``cutoff`` condition: the legs (a portrait framing), one side, the head."""


@dataclass(frozen=True, kw_only=True)
class ShiftDistribution:
    """The bounds of every random draw of a variant (:func:`~holotune.data.poses.shifts.sample_shift`).

    Ranges are uniform ``(low, high)``; pixel sizes are in pixels of the ``image_size`` canvas.

    Attributes:
        scale: jitter zoom factor (every variant, ``clean`` included).
        rotation_deg: jitter rotation, degrees counter-clockwise on screen.
        shift: jitter translation, each of dx, dy, as a fraction of the canvas side.
        low_res_height: the person's height, in pixels, in the low-resolution capture (before the
            upscale back to the canvas): 48-96 px, as users report from far or cheap cameras.
        low_res_cubic_probability: the upscale is bicubic, else bilinear.
        blur_length: length of the linear motion-blur kernel, pixels.
        blur_angle_deg: its direction, degrees.
        gain: exposure gain of the dim capture (``gain * x**gamma``).
        gamma: its tone curve exponent.
        read_noise: sigma of signal-independent sensor noise, fraction of full scale.
        shot_noise: variance per unit signal of the signal-dependent noise.
        chroma_noise: sigma of the demosaiced colour noise, relative to the sensor noise's sigma.
        jpeg_quality: the dim capture's JPEG quality.
        cutoff_weights: relative frequencies of the :data:`CUTOFF_SIDES` (bottom, left, right, top).
        cutoff_keep: the fraction of the body's extent (across the cut edge) left inside the frame.
        occluder_size: an occluding patch's side, fraction of the person's height.
        occluder_aspect: its width / height.
        occluder_rotation_deg: its rotation.
    """

    scale: Range = (0.9, 1.1)
    rotation_deg: Range = (-8.0, 8.0)
    shift: Range = (-0.05, 0.05)
    low_res_height: Range = (48.0, 96.0)
    low_res_cubic_probability: float = 0.5
    blur_length: Range = (7.0, 25.0)
    blur_angle_deg: Range = (0.0, 180.0)
    gain: Range = (0.2, 0.5)
    gamma: Range = (1.3, 2.2)
    read_noise: Range = (0.006, 0.02)
    shot_noise: Range = (0.002, 0.01)
    chroma_noise: Range = (0.4, 1.2)
    jpeg_quality: tuple[int, int] = (30, 80)
    cutoff_weights: tuple[float, float, float, float] = (0.5, 0.2, 0.2, 0.1)
    cutoff_keep: Range = (0.4, 0.75)
    occluder_size: Range = (0.25, 0.5)
    occluder_aspect: Range = (0.5, 2.0)
    occluder_rotation_deg: Range = (-30.0, 30.0)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and len(value) == 2 and f.name not in ("cutoff_weights",):
                lo, hi = value
                if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                    raise ValueError(f"distribution.{f.name} must be a finite (low, high) with low <= high, got {value}")
        if not 8.0 <= self.low_res_height[0]:
            raise ValueError(f"distribution.low_res_height must start at >= 8 px, got {self.low_res_height}")
        if self.blur_length[0] < 1:
            raise ValueError(f"distribution.blur_length must be >= 1 px, got {self.blur_length}")
        if not (0.0 < self.cutoff_keep[0] and self.cutoff_keep[1] < 1.0):
            raise ValueError(f"distribution.cutoff_keep must lie in (0, 1), got {self.cutoff_keep}")
        if len(self.cutoff_weights) != len(CUTOFF_SIDES) or min(self.cutoff_weights) < 0 or sum(self.cutoff_weights) <= 0:
            raise ValueError(f"distribution.cutoff_weights must be {len(CUTOFF_SIDES)} weights >= 0 with a positive sum "
                             f"({', '.join(CUTOFF_SIDES)}), got {self.cutoff_weights}")
        for name in ("low_res_cubic_probability",):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"distribution.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"distribution.jpeg_quality must be 1 <= low <= high <= 100, got {self.jpeg_quality}")


@dataclass(frozen=True, kw_only=True)
class PoseDataOptions:
    """What :func:`~holotune.data.poses.build.build_pose_data` builds.

    The fields without a default are set by ``conf/ingest/default.yaml`` (``pose_data``), their one
    source of defaults.

    Attributes:
        seed: seeds every random choice (numpy ``Generator``s derived per sample).
        variants_per_condition: rendered variants per person and condition.
        media: include the people of the optional media (``make media``); missing media are skipped
            with a warning and recorded in ``sources.json``. Off: only the three sample photos.
        image_size: side, in pixels, of the square person canvases (and of every written image).
        distribution: the bounds of every random draw of a variant.
    """

    seed: int
    variants_per_condition: int
    media: bool
    image_size: int = 384
    distribution: ShiftDistribution = field(default_factory=ShiftDistribution)

    def __post_init__(self):
        if self.variants_per_condition < 1:
            raise ValueError(f"variants_per_condition must be >= 1, got {self.variants_per_condition}")
        if self.image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}, got {self.image_size}")
        if self.distribution.low_res_height[1] > self.image_size / 2:
            raise ValueError(f"distribution.low_res_height {self.distribution.low_res_height} must stay below half "
                             f"the image_size ({self.image_size}): the capture must be smaller than the canvas")
