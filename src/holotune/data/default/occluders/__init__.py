"""Synthetic occluders drawn over a face: a face covering, and sometimes glasses, hair and a hand.

Everything is placed from the 468 face-mesh points (in continuous pixels, :mod:`.geometry`), lit like
the face (:mod:`.light`) and composited on a float RGB image in [0, 1]; :func:`draw_occluders`
returns the opaque coverage, so that the caller can mark the points it hides. Modules, one idea each:
:mod:`.geometry` (the face frame), :mod:`.raster` (anti-aliased coverage in a pixel box),
:mod:`.light` (the scene's light, colours), :mod:`.fabric` and :mod:`.prints` (textures),
:mod:`.outline` (where a mask or scarf lies) and :mod:`.covering` (how it looks), :mod:`.glasses`,
:mod:`.hair`, :mod:`.hand`.
"""

from __future__ import annotations

import numpy as np

from holotune.data.default.occluders.covering import draw_covering
from holotune.data.default.occluders.geometry import FACE_OVAL_LOOP, Face
from holotune.data.default.occluders.glasses import draw_glasses
from holotune.data.default.occluders.hair import draw_hair
from holotune.data.default.occluders.hand import draw_hand, sample_skin
from holotune.data.default.occluders.light import Light
from holotune.data.default.occluders.outline import MASK_MIDLINE, MOUTH_POINTS
from holotune.data.default.variants import Occluders

__all__ = ["FACE_OVAL_LOOP", "MASK_MIDLINE", "MOUTH_POINTS", "Face", "Light", "draw_covering", "draw_glasses",
           "draw_hair", "draw_hand", "draw_occluders", "sample_skin"]


def draw_occluders(image: np.ndarray, face_px: np.ndarray, params: Occluders, grey: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Draw the occluders of ``params`` on ``image``: the covering, then glasses, hair and a hand on top.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1] (not modified).
        face_px: (468, 2) face-mesh points in continuous pixels.
        params: what to draw.
        grey: the photo is monochrome: everything is drawn in grey too.

    Returns:
        ``(image, alpha)``: the composited image, (H, W, 3) float32, and the opaque coverage (H, W)
        in [0, 1] (clear lenses are not opaque: the eye stays visible through them).
    """
    face = Face.of(face_px)
    out = np.array(image, np.float32, copy=True)
    light = Light.of(out, face)
    skin = sample_skin(out, face) if params.hand is not None else None  # before anything covers the face
    alpha = draw_covering(out, face, light, params.covering, grey)
    if params.glasses is not None:
        np.maximum(alpha, draw_glasses(out, face, light, params.glasses, grey), out=alpha)
    if params.hair is not None:
        np.maximum(alpha, draw_hair(out, face, light, params.hair, grey), out=alpha)
    if params.hand is not None:
        np.maximum(alpha, draw_hand(out, face, params.hand, skin, grey), out=alpha)
    return np.clip(out, 0, 1, out=out), alpha
