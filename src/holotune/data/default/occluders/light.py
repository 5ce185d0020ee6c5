"""The scene's light, which every occluder's shading follows, and colours as a photo shows them.

An occluder in a photo is lit like the face it covers: as bright overall as the face (within limits,
so a white mask stays visible in a dim photo) and brighter or darker where the face is (the luminance
blurred to the scale of the light, not of the skin's texture).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from holotune.data.default.camera import LUMA, grey3
from holotune.data.default.occluders.geometry import FACE_OVAL_LOOP, MIN_PX, Face
from holotune.data.default.occluders.raster import Box

SHADING_BLUR_DIVISOR = 6  # scene light = luminance blurred at face_w / 6 px: the light, not the skin texture
MIN_SHADING_BLUR_PX = 1.0  # the blur's smallest sigma
BLUR_WORK_SIGMA_PX = 3.0  # the blur runs on the image shrunk so that its sigma is ~3 px there (speed)
MID_GREY = 0.5  # exposure 1 where the face is mid-grey
EXPOSURE_RANGE = (0.35, 1.4)  # occluders follow the face's brightness within limits: a white mask stays visible
SHADING_GAMMA = 0.7  # fabric scatters light: local shading modulates it less than it does skin
SHADING_RANGE = (0.5, 1.5)  # and never more than this


@dataclass(frozen=True)
class Light:
    """The scene's light around a face.

    Attributes:
        small: (h, w) float32, the image's luminance shrunk by ``shrink`` and blurred at the scale of
            the light (the light varies slowly: it is kept small and enlarged per box).
        shrink: image pixels per pixel of ``small``.
        ref: the blurred luminance's mean over the face oval.
        exposure: ``ref`` relative to mid-grey, clipped to ``EXPOSURE_RANGE``: scales occluder colours.
    """

    small: np.ndarray
    shrink: float
    ref: float
    exposure: float

    @classmethod
    def of(cls, image: np.ndarray, face: Face) -> Light:
        """The light of ``image`` ((H, W, 3) float32 RGB in [0, 1]) around ``face``."""
        h, w = image.shape[:2]
        sigma = max(face.face_w / SHADING_BLUR_DIVISOR, MIN_SHADING_BLUR_PX)
        shrink = max(1.0, sigma / BLUR_WORK_SIGMA_PX)
        size = (max(1, round(w / shrink)), max(1, round(h / shrink)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if shrink > 1 else image
        small = cv2.GaussianBlur(cv2.transform(small, LUMA[None]), (0, 0), sigma / shrink)
        oval = face.p[list(FACE_OVAL_LOOP)]
        box = Box.around(oval, 0, (h, w))
        light = cls(small, shrink, 1.0, 1.0)
        inside = box.fill([oval]) > 0.5
        blurred = light.blurred(box)
        ref = float(blurred[inside].mean()) if inside.any() else float(small.mean())
        return cls(small, shrink, ref, float(np.clip(ref / MID_GREY, *EXPOSURE_RANGE)))

    def blurred(self, box: Box) -> np.ndarray:
        """(h, w) float32: the blurred luminance over ``box`` (bilinear from ``small``)."""
        if box.empty:
            return np.zeros(box.shape, np.float32)
        # Box pixel (i, j) has its centre at image (x0 + j + 0.5, ...), i.e. small (that / shrink - 0.5).
        f = 1 / self.shrink
        matrix = np.array([[f, 0, (box.x0 + 0.5) * f - 0.5], [0, f, (box.y0 + 0.5) * f - 0.5]], np.float64)
        return cv2.warpAffine(self.small, matrix, (box.shape[1], box.shape[0]),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)

    def shading(self, box: Box, gamma: float = SHADING_GAMMA) -> np.ndarray:
        """(h, w) float32: the light in ``box`` relative to the face's, ``(blurred / ref) ** gamma``, clipped."""
        relative = self.blurred(box) * np.float32(1 / max(self.ref, MIN_PX))
        return np.clip(cv2.pow(np.maximum(relative, 0), gamma), *SHADING_RANGE).astype(np.float32)


def colour01(rgb: tuple[float, ...] | np.ndarray, grey: bool) -> np.ndarray:
    """An RGB 0-255 colour as float32 [0, 1]; on a monochrome photo, its grey (Rec. 601 luma) in all channels."""
    c = np.asarray(rgb, np.float32) / 255.0
    return np.full(3, float(c @ LUMA), np.float32) if grey else c


def paint(colour: np.ndarray | tuple[float, ...], brightness: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32: ``colour`` (3,) scaled by ``brightness`` (h, w).

    Built channel by channel: numpy broadcasting over a last axis of length 3 runs ~15x slower than
    plain elementwise arithmetic, and these images are composited many times per variant.
    """
    b = np.asarray(brightness, np.float32)
    return cv2.merge([b * np.float32(c) for c in colour])



def composite(image: np.ndarray, box: Box, layer: np.ndarray, alpha: np.ndarray) -> None:
    """``image[box] = image[box] * (1 - alpha) + layer * alpha``, in place (layer (h, w, 3), or (3,) a flat colour)."""
    region = image[box.slices]
    a = grey3(alpha)
    region *= 1 - a
    region += paint(layer, alpha) if np.ndim(layer) == 1 else layer * a


def scale(image: np.ndarray, box: Box, factor: np.ndarray) -> None:
    """``image[box] *= factor`` (h, w), in place: a shadow, a darkening."""
    image[box.slices] *= grey3(factor)
