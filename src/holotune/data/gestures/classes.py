"""The gesture classes: joint-angle ranges per finger, and the image direction some of them need.

Each class is a :class:`Gesture`: one or more :class:`HandShape` (uniform draw bounds of every
joint angle, degrees, :data:`~holotune.data.gestures.kinematics.JOINT_NAMES`) and, for the classes
defined by where a finger points, an :class:`Aim`. The names and meanings are MediaPipe's canned
gestures (``docs/gestures.md`` §3), in snake_case. ``none`` is "any hand that is no other gesture":
its shapes are broad (relaxed, half-curled, and every mix of finger states), and a draw that falls inside any other class's
shape widened by :data:`NONE_MARGIN_DEG` is drawn again, so no ``none`` hand has another class's
finger configuration (whatever its orientation). ``docs/gesture_data.md`` tabulates every range.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from holotune.data.gestures.kinematics import FINGER_NAMES
from holotune.landmarks import HandLandmark

Range = tuple[float, float]
"""``(low, high)`` degrees of a uniform draw."""

FingerRange = tuple[Range, Range, Range, Range]
"""One finger's four joints, in :data:`~holotune.data.gestures.kinematics.JOINT_NAMES` order."""

NONE_MARGIN_DEG = 10.0
"""How far (degrees, every joint) outside another class's shape a ``none`` hand must be somewhere:
draws closer to a gesture than this on every joint are ambiguous, and are drawn again."""

MAX_REDRAWS = 200
"""Rounds of rejection sampling before :func:`draw_angles` gives up (in practice a few suffice)."""


@dataclass(frozen=True)
class HandShape:
    """Uniform bounds of every joint angle of one hand configuration (degrees, right hand).

    Attributes:
        thumb: (cmc_spread, cmc_palmar, mcp, ip) ranges.
        index, middle, ring, pinky: (spread, mcp, pip, dip) ranges.
    """

    thumb: FingerRange
    index: FingerRange
    middle: FingerRange
    ring: FingerRange
    pinky: FingerRange

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high), each (5, 4) degrees in :data:`FINGER_NAMES` order."""
        table = np.array([getattr(self, finger) for finger in FINGER_NAMES], dtype=np.float64)  # (5, 4, 2)
        return table[..., 0], table[..., 1]

    def contains(self, angles_deg: np.ndarray, margin_deg: float = 0.0) -> np.ndarray:
        """(N,) bool: which (N, 5, 4) degree draws lie inside every range widened by ``margin_deg``."""
        low, high = self.bounds()
        inside = (angles_deg >= low - margin_deg) & (angles_deg <= high + margin_deg)
        return inside.all(axis=(-2, -1))


@dataclass(frozen=True)
class Aim:
    """Where a class's defining finger points in the image.

    Attributes:
        start, end: the landmarks whose vector is aimed (e.g. thumb MCP -> thumb tip).
        direction: ``up`` or ``down`` in the image.
        tolerance_deg: the vector's image angle is drawn uniformly within this of ``direction``.
    """

    start: HandLandmark
    end: HandLandmark
    direction: str
    tolerance_deg: float

    def __post_init__(self):
        if self.direction not in ("up", "down"):
            raise ValueError(f"Aim.direction must be 'up' or 'down', got {self.direction!r}")


@dataclass(frozen=True)
class Gesture:
    """One class.

    Attributes:
        name: snake_case class name (the ``label_name``).
        shapes: the hand configurations drawn (one, except ``none``).
        aim: the image direction the class needs, or ``None`` (any roll in the build's range).
        description: what the hand does, in words.
        weights: relative frequency of each shape (``None``: equal).
    """

    name: str
    shapes: tuple[HandShape, ...]
    aim: Aim | None
    description: str
    weights: tuple[float, ...] | None = None


# --- Finger states (degrees), shared by the classes ----------------------------------------------
# Extended: straight, a little hyper-extension allowed at the MCP. Half: bent half way (a claw, a
# "C"). Curled: a fist's finger, the tip folded back against the palm. The thumb: out (spread from
# the palm, open hand), up (straight, along the side of a fist, as in a thumbs-up), half (bent, loose),
# tucked (folded across the curled fingers).
def _extended(spread: Range) -> FingerRange:
    return (spread, (-10.0, 15.0), (0.0, 15.0), (0.0, 12.0))


EXTENDED = _extended((-5.0, 15.0))
HALF: FingerRange = ((-5.0, 10.0), (25.0, 65.0), (35.0, 85.0), (15.0, 55.0))
CURLED: FingerRange = ((-5.0, 5.0), (65.0, 90.0), (85.0, 105.0), (45.0, 70.0))
THUMB_OUT: FingerRange = ((15.0, 40.0), (0.0, 20.0), (0.0, 15.0), (0.0, 20.0))
THUMB_UP: FingerRange = ((-5.0, 35.0), (10.0, 35.0), (-5.0, 10.0), (-10.0, 10.0))
THUMB_HALF: FingerRange = ((-10.0, 30.0), (10.0, 45.0), (20.0, 50.0), (20.0, 50.0))
THUMB_TUCKED: FingerRange = ((-20.0, -5.0), (20.0, 40.0), (40.0, 60.0), (20.0, 45.0))

FINGER_STATES = MappingProxyType({"extended": EXTENDED, "half": HALF, "curled": CURLED})
THUMB_STATES = MappingProxyType({"out": THUMB_OUT, "up": THUMB_UP, "half": THUMB_HALF, "tucked": THUMB_TUCKED})

UP_TOLERANCE_DEG = 30.0
"""``thumb_up``, ``thumb_down``, ``pointing_up``: the aimed finger's image direction within this of vertical."""

RELAXED = HandShape(thumb=((0.0, 35.0), (0.0, 35.0), (0.0, 35.0), (0.0, 35.0)),
                    index=((-5.0, 15.0), (10.0, 45.0), (15.0, 60.0), (5.0, 40.0)),
                    middle=((-5.0, 10.0), (10.0, 45.0), (15.0, 60.0), (5.0, 40.0)),
                    ring=((-5.0, 15.0), (10.0, 50.0), (15.0, 65.0), (5.0, 45.0)),
                    pinky=((-5.0, 20.0), (10.0, 55.0), (15.0, 70.0), (5.0, 45.0)))
"""``none``: a relaxed hand, every finger a little bent, the thumb loose."""
HALF_CURLED = HandShape(thumb=THUMB_HALF, index=HALF, middle=HALF, ring=HALF,
                        pinky=((-5.0, 10.0), (25.0, 70.0), (35.0, 90.0), (15.0, 60.0)))
"""``none``: every finger half way (a claw, a "C")."""
MIXED = tuple(HandShape(thumb=t, index=i, middle=m, ring=r, pinky=p) for t, i, m, r, p in itertools.product(
    THUMB_STATES.values(), *[FINGER_STATES.values()] * 4))
"""``none``: each finger in its own state (:data:`FINGER_STATES`, :data:`THUMB_STATES`), every
combination (4 x 3^4 = 324): three fingers up, a pinch, the "rock" and "call me" hands... The
combinations that are gestures (all extended with the thumb out, a fist, ...) are rejected."""

GESTURES: MappingProxyType = MappingProxyType({g.name: g for g in (
    Gesture("none", (RELAXED, HALF_CURLED, *MIXED), None,
            "any hand that is none of the other gestures: relaxed, half-curled or mixed fingers",
            weights=(len(MIXED), len(MIXED), *[1] * len(MIXED))),  # a third each: relaxed, half-curled, mixed
    Gesture("closed_fist", (HandShape(thumb=THUMB_TUCKED, index=CURLED, middle=CURLED, ring=CURLED, pinky=CURLED),),
            None, "all four fingers curled into the palm, the thumb folded across them"),
    Gesture("open_palm", (HandShape(thumb=THUMB_OUT, index=_extended((5.0, 20.0)), middle=_extended((-5.0, 5.0)),
                                    ring=_extended((3.0, 15.0)), pinky=_extended((5.0, 25.0))),),
            None, "all five fingers straight and spread"),
    Gesture("pointing_up", (HandShape(thumb=THUMB_TUCKED, index=_extended((-5.0, 10.0)), middle=CURLED,
                                      ring=CURLED, pinky=CURLED),),
            Aim(HandLandmark.INDEX_FINGER_MCP, HandLandmark.INDEX_FINGER_TIP, "up", UP_TOLERANCE_DEG),
            "the index finger straight and pointing up in the image, the others curled, the thumb tucked"),
    Gesture("thumb_down", (HandShape(thumb=THUMB_UP, index=CURLED, middle=CURLED, ring=CURLED, pinky=CURLED),),
            Aim(HandLandmark.THUMB_MCP, HandLandmark.THUMB_TIP, "down", UP_TOLERANCE_DEG),
            "a fist with the thumb straight and pointing down in the image"),
    Gesture("thumb_up", (HandShape(thumb=THUMB_UP, index=CURLED, middle=CURLED, ring=CURLED, pinky=CURLED),),
            Aim(HandLandmark.THUMB_MCP, HandLandmark.THUMB_TIP, "up", UP_TOLERANCE_DEG),
            "a fist with the thumb straight and pointing up in the image"),
    Gesture("victory", (HandShape(thumb=THUMB_TUCKED, index=_extended((8.0, 20.0)), middle=_extended((8.0, 20.0)),
                                  ring=CURLED, pinky=CURLED),),
            None, "index and middle fingers straight and spread in a V, ring and little finger curled, thumb tucked"),
    Gesture("i_love_you", (HandShape(thumb=THUMB_OUT, index=_extended((0.0, 15.0)), middle=CURLED, ring=CURLED,
                                     pinky=_extended((0.0, 20.0))),),
            None, "thumb, index and little finger straight, middle and ring fingers curled (ASL 'I love you')"),
)})
"""Class name -> :class:`Gesture`, ``none`` first (Model Maker puts the background class at index 0)."""

CLASS_NAMES = tuple(GESTURES)
"""Every known class, ``none`` first."""


def inside_gesture(angles_deg: np.ndarray, margin_deg: float = 0.0, exclude: str = "none") -> np.ndarray:
    """(N,) bool: which (N, 5, 4) degree draws lie in the shape of any class but ``exclude``, widened by
    ``margin_deg`` degrees on every joint."""
    hit = np.zeros(angles_deg.shape[0], dtype=bool)
    for gesture in GESTURES.values():
        if gesture.name != exclude:
            for shape in gesture.shapes:
                hit |= shape.contains(angles_deg, margin_deg)
    return hit


def draw_angles(gesture: Gesture, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` uniform draws of the class's joint angles: (count, 5, 4) degrees (right hand).

    Each draw picks one of the class's shapes (by its weight), then every joint uniformly in its range.
    For ``none``, draws inside another class (widened by :data:`NONE_MARGIN_DEG`) are replaced by
    new draws until none is left.

    Raises:
        RuntimeError: ``none`` still had rejected draws after :data:`MAX_REDRAWS` rounds.
    """
    out = _draw_shapes(gesture, rng, count)
    if gesture.name != "none":
        return out
    for _ in range(MAX_REDRAWS):
        bad = np.flatnonzero(inside_gesture(out, NONE_MARGIN_DEG))
        if bad.size == 0:
            return out
        out[bad] = _draw_shapes(gesture, rng, bad.size)
    raise RuntimeError(f"'none': {bad.size} draw(s) still inside another gesture after {MAX_REDRAWS} rounds")


def _draw_shapes(gesture: Gesture, rng: np.random.Generator, count: int) -> np.ndarray:
    bounds = [shape.bounds() for shape in gesture.shapes]
    low = np.stack([b[0] for b in bounds])  # (S, 5, 4)
    high = np.stack([b[1] for b in bounds])
    weights = np.ones(len(bounds)) if gesture.weights is None else np.asarray(gesture.weights, dtype=np.float64)
    which = np.searchsorted(np.cumsum(weights) / weights.sum(), rng.random(count), side="right")
    return low[which] + rng.random((count, 5, 4)) * (high[which] - low[which])
