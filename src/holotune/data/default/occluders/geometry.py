"""The face frame every occluder is laid out in: directions and sizes from the 468 face-mesh points.

Lengths are in face heights (``face_h``: ``FOREHEAD`` to ``CHIN``), face widths (``face_w``: cheek to
cheek) or eye spans (outer eye corner to outer eye corner), so an occluder looks the same at any image
size, and every direction comes from the points, so it turns, rolls and tilts with the head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from holotune.data.default.variants import RIGHT
from holotune.landmarks import FACEMESH_FACE_OVAL, FACEMESH_LEFT_EYE, FACEMESH_RIGHT_EYE
from holotune.landmarks import FaceLandmark as F

MIN_FACE_WIDTH = 0.6  # face_w >= 0.6 face_h: a turned face's cheek-to-cheek span collapses, an occluder's does not
MIN_FACE_WIDTH_PX = 4.0  # face_w >= 4 px, so the sizes derived from it stay usable on a tiny face
MIN_PX = 1e-3  # guards divisions by a length in pixels on a degenerate face
MIN_NORM = 1e-6  # guards the normalisation of a direction vector


def _face_oval_order() -> list[int]:
    """The face oval as a loop from the forehead over ``LEFT_CHEEK``, the chin and ``RIGHT_CHEEK``."""
    neighbours: dict[int, set[int]] = {}
    for a, b in FACEMESH_FACE_OVAL:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    order = [int(F.FOREHEAD), int(F.FOREHEAD_LEFT)]  # FACEMESH_FACE_OVAL's own direction
    while True:
        (nxt,) = neighbours[order[-1]] - {order[-2]}
        if nxt == F.FOREHEAD:
            return order
        order.append(nxt)


FACE_OVAL_LOOP = tuple(_face_oval_order())
"""The 36 face-oval points from ``FOREHEAD`` over the subject's left cheek, the chin and the right cheek."""
RIGHT_EYE_POINTS = tuple(sorted({i for e in FACEMESH_RIGHT_EYE for i in e}))
LEFT_EYE_POINTS = tuple(sorted({i for e in FACEMESH_LEFT_EYE for i in e}))


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to length 1 (a zero vector stays ~0)."""
    return v / max(float(np.linalg.norm(v)), MIN_NORM)


def rotate(v: np.ndarray, radians: float) -> np.ndarray:
    """``v`` rotated by ``radians`` (clockwise on screen: image y points down)."""
    c, s = np.cos(radians), np.sin(radians)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def sided(side: int, right: int, left: int) -> int:
    """The landmark of a left/right pair on ``side`` (:data:`~holotune.data.default.variants.RIGHT` or ``LEFT``)."""
    return right if side == RIGHT else left


@dataclass(frozen=True)
class Face:
    """The face frame, in continuous pixels (pixel i spans [i, i+1)).

    Attributes:
        p: (468, 2) face-mesh points.
        centre: (2,) between the cheek points.
        axis: (2,) unit vector from ``RIGHT_EYE_OUTER`` to ``LEFT_EYE_OUTER`` (towards the subject's left).
        down: (2,) unit vector from ``NOSE_BRIDGE`` to ``CHIN``.
        face_w: cheek to cheek, at least ``MIN_FACE_WIDTH`` face heights.
        face_h: ``FOREHEAD`` to ``CHIN``.
        reach: ``centre`` to ``CHIN``.
        eye_span: outer eye corner to outer eye corner.
        eyes: (2, 2) the centres of the right and left eye contours.
    """

    p: np.ndarray
    centre: np.ndarray
    axis: np.ndarray
    down: np.ndarray
    face_w: float
    face_h: float
    reach: float
    eye_span: float
    eyes: np.ndarray

    @classmethod
    def of(cls, p: np.ndarray) -> Face:
        p = np.asarray(p, np.float64)
        centre = 0.5 * (p[F.RIGHT_CHEEK] + p[F.LEFT_CHEEK])
        face_h = max(float(np.linalg.norm(p[F.CHIN] - p[F.FOREHEAD])), MIN_PX)
        face_w = max(float(np.linalg.norm(p[F.LEFT_CHEEK] - p[F.RIGHT_CHEEK])), MIN_FACE_WIDTH * face_h,
                     MIN_FACE_WIDTH_PX)
        reach = max(float(np.linalg.norm(p[F.CHIN] - centre)), MIN_PX)
        eye_axis = p[F.LEFT_EYE_OUTER] - p[F.RIGHT_EYE_OUTER]
        eyes = np.stack([p[list(RIGHT_EYE_POINTS)].mean(axis=0), p[list(LEFT_EYE_POINTS)].mean(axis=0)])
        return cls(p, centre, unit(eye_axis), unit(p[F.CHIN] - p[F.NOSE_BRIDGE]), face_w, face_h, reach,
                   max(float(np.linalg.norm(eye_axis)), MIN_PX), eyes)

    def outward(self, side: int) -> np.ndarray:
        """(2,) unit vector from the face's middle towards ``side``."""
        return self.axis * side

    def eye(self, side: int) -> np.ndarray:
        """(2,) the centre of the eye on ``side``."""
        return self.eyes[0 if side == RIGHT else 1]

    def level(self, points: np.ndarray) -> np.ndarray:
        """How far down the face ``points`` (..., 2) lie: their coordinate along ``down`` from ``centre``."""
        return (np.asarray(points) - self.centre) @ self.down

    def lateral(self, points: np.ndarray) -> np.ndarray:
        """How far towards the subject's left ``points`` (..., 2) lie: along ``axis`` from ``centre``."""
        return (np.asarray(points) - self.centre) @ self.axis

    def at_level(self, point: np.ndarray, level: float) -> np.ndarray:
        """``point`` moved along ``down`` to ``level``."""
        return point + (level - float(self.level(point))) * self.down

    def eye_bottom(self, side: int) -> float:
        """The level of the lowest point of the eye contour on ``side``."""
        return float(self.level(self.p[list(RIGHT_EYE_POINTS if side == RIGHT else LEFT_EYE_POINTS)]).max())

    def hairline(self, side: int) -> np.ndarray:
        """(k, 2) the face oval from ``FOREHEAD`` to the temple on ``side`` (the upper forehead's edge)."""
        loop = list(FACE_OVAL_LOOP)
        if side == RIGHT:
            return self.p[[loop[0]] + loop[:loop.index(F.RIGHT_TEMPLE) - 1:-1]]
        return self.p[loop[:loop.index(F.LEFT_TEMPLE) + 1]]
