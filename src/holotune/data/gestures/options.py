"""What the gesture pose build takes: :class:`GesturePoseOptions` (the config's ``gesture_data`` section)."""

from __future__ import annotations

from dataclasses import dataclass

from holotune.data.gestures.classes import CLASS_NAMES

MIN_IMAGE_SIDE = 300
"""Smallest image width and height (pixels): the largest hand (250 px span) must fit with room to move."""


@dataclass(frozen=True)
class GesturePoseOptions:
    """How many synthetic gesture hands to build, and into what image.

    No defaults: ``conf/`` holds them (``ingest.gesture_data``).

    Attributes:
        seed: seeds the one numpy Generator every draw comes from; the same options give
            byte-identical files.
        hands: synthetic hand identities (each: a hand scale, bone proportions, a side), >= 1.
        poses_per_condition: samples per hand, class and condition, >= 1.
        class_names: the classes built, a subset of
            :data:`~holotune.data.gestures.classes.CLASS_NAMES` starting with ``none``, no repeats.
        left_fraction: share of the hands that are left hands, in [0, 1] (rounded to whole hands).
        width, height: the image size in pixels the landmarks are normalized to, each >= 300
            (:data:`MIN_IMAGE_SIDE`).
    """

    seed: int
    hands: int
    poses_per_condition: int
    class_names: tuple[str, ...]
    left_fraction: float
    width: int
    height: int

    def __post_init__(self):
        object.__setattr__(self, "class_names", tuple(self.class_names))  # a config list becomes a tuple
        for name in ("seed", "hands", "poses_per_condition", "width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"gesture_data.{name} must be an integer, got {value!r}")
        if self.seed < 0:
            raise ValueError(f"gesture_data.seed must be >= 0, got {self.seed}")
        for name in ("hands", "poses_per_condition"):
            if getattr(self, name) < 1:
                raise ValueError(f"gesture_data.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("width", "height"):
            if getattr(self, name) < MIN_IMAGE_SIDE:
                raise ValueError(f"gesture_data.{name} must be >= {MIN_IMAGE_SIDE} px (a 250 px hand must fit), "
                                 f"got {getattr(self, name)}")
        if isinstance(self.left_fraction, bool) or not isinstance(self.left_fraction, (int, float)) \
                or not 0.0 <= self.left_fraction <= 1.0:
            raise ValueError(f"gesture_data.left_fraction must be a number in [0, 1], got {self.left_fraction!r}")
        unknown = [name for name in self.class_names if name not in CLASS_NAMES]
        if unknown:
            raise ValueError(f"gesture_data.class_names: unknown class(es) {unknown}; the known classes are "
                             f"{list(CLASS_NAMES)}")
        if not self.class_names or self.class_names[0] != "none":
            raise ValueError(f"gesture_data.class_names must start with 'none' (the background class, label 0), "
                             f"got {list(self.class_names)}")
        repeated = sorted({name for name in self.class_names if self.class_names.count(name) > 1})
        if repeated:
            raise ValueError(f"gesture_data.class_names repeats {repeated}")
