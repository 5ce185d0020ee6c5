"""Glasses: dark sunglasses, or clear glasses with a thin frame and nearly transparent lenses.

Each lens is a superellipse around its eye contour, wider than the eye and aligned with the
``RIGHT_EYE_OUTER`` -> ``LEFT_EYE_OUTER`` line, joined by a bridge, with temple arms towards the ears.
Both kinds reflect the room: a soft bright window or a few diagonal streaks, at the same place in
each lens (one light source). Clear lenses darken a little towards their thick rim.

What hides the eye: sunglasses lenses and every frame are opaque (their coverage is returned);
a clear lens is not (the eye stays visible through it), so its coverage is left out.
"""

from __future__ import annotations

import cv2
import numpy as np

from holotune.data.default.occluders.geometry import LEFT_EYE_POINTS, MIN_PX, RIGHT_EYE_POINTS, Face
from holotune.data.default.occluders.light import Light, colour01, composite, grey3, paint, scale
from holotune.data.default.occluders.raster import Box, bezier
from holotune.data.default.variants import Glasses
from holotune.landmarks import FaceLandmark as F

LENS_VERTICES = 64  # points on each superellipse lens outline
LENS_MAX_HALF = 0.47  # lens half-width <= 0.47 eye-centre distances, so the lenses never overlap
MIN_EYE_HALF_WIDTH = 0.08  # eye half-width >= 0.08 eye spans (a squinting or mis-detected eye contour)
BRIDGE_END_RISE = 0.3  # the bridge leaves each lens 0.3 lens half-heights above its centre
TEMPLE_END_RISE = 0.4  # the temple arms leave the lenses 0.4 lens half-heights above their centre
BRIDGE_ARCH = 0.15  # eye spans the bridge arches above its ends
BRIDGE_POINTS = 12  # points on the bridge curve
TEMPLE_RISE = 0.15  # eye spans above the cheek point the temple arms meet the ear
LENS_SHADE_UNIT = 0.3  # lens shading coordinates are in 0.3 eye spans (about one lens height)
LENS_SHADE_SLOPE = 0.25  # gradient lenses: darker at the top, lighter at the bottom
LENS_SHADE_RANGE = (0.6, 1.4)  # clamp of that gradient
AMBIENT = 0.6  # lens and frame brightness = 0.6 + 0.4 * exposure: dark in a dark scene, never black
GLINT_STRENGTH = 0.10  # a faint diagonal reflection band across sunglasses lenses
GLINT_PERIOD = 2.0  # its repeat, in lens shading units
GLINT_WIDTH = 0.25  # its width, in lens shading units
WINDOW_HALF = (0.32, 0.4)  # the reflected window's half-width and half-height, lens half-sizes
WINDOW_SOFTNESS = 0.2  # its edges blur over this, lens half-sizes (a reflection is out of focus)
WINDOW_MULLION = 0.05  # the window's cross bars, half-width in lens half-sizes ...
WINDOW_MULLION_DEPTH = 0.35  # ... and how much of the window's light they block
STREAK_TILT_DEG = 50.0  # streaks run diagonally: 50 degrees from the lens's axis, plus the drawn tilt
STREAKS = ((-0.35, 0.07, 0.7), (0.0, 0.16, 1.0), (0.3, 0.05, 0.6))  # (offset, half-width, brightness), lens half-sizes
HIGHLIGHT_EXPOSURE = 0.5  # reflections follow the scene's exposure halfway: a reflected window stays bright
EDGE_BAND = 0.3  # a clear lens darkens over its outer 30 % (lens half-heights)
MIN_FRAME_PX = 1.0  # frames are drawn at least 1 px thick; a thinner frame is drawn fainter instead


def draw_glasses(image: np.ndarray, face: Face, light: Light, params: Glasses, grey: bool) -> np.ndarray:
    """Draw glasses into ``image`` ((H, W, 3) float32 RGB in [0, 1], in place).

    Returns:
        (H, W) float32: the opaque coverage (frame; sunglasses also their lenses) in [0, 1].
    """
    p, axis, eye_span = face.p, face.axis, face.eye_span
    normal = np.array([-axis[1], axis[0]])  # points down the face when the face is upright
    if normal @ face.down < 0:
        normal = -normal
    t = np.linspace(0, 2 * np.pi, LENS_VERTICES, endpoint=False)
    n = params.squareness
    cu = np.sign(np.cos(t)) * np.abs(np.cos(t)) ** (2 / n)
    sv = np.sign(np.sin(t)) * np.abs(np.sin(t)) ** (2 / n)
    max_half = LENS_MAX_HALF * float(np.linalg.norm(face.eyes[1] - face.eyes[0]))
    lenses, centres, halves, inner_ends, outer_ends = [], [], [], [], []
    for idx, sign, centre in ((RIGHT_EYE_POINTS, -1.0, face.eyes[0]), (LEFT_EYE_POINTS, 1.0, face.eyes[1])):
        half_w = max(float(np.ptp(p[list(idx)] @ axis)) / 2, eye_span * MIN_EYE_HALF_WIDTH)
        a = min(half_w * params.lens_width, max(max_half, 1.0))
        b = a * params.lens_aspect
        centre = centre + params.drop * b * normal
        lenses.append(centre + (a * cu)[:, None] * axis + (b * sv)[:, None] * normal)
        centres.append(centre)
        halves.append((a, b))
        inner_ends.append(centre - sign * a * axis - BRIDGE_END_RISE * b * normal)
        outer_ends.append(centre + sign * a * axis - TEMPLE_END_RISE * b * normal)
    bridge = bezier(np.stack([inner_ends[0], 0.5 * (inner_ends[0] + inner_ends[1]) - BRIDGE_ARCH * eye_span * normal,
                              inner_ends[1]]), BRIDGE_POINTS)
    temples = [np.stack([outer, p[cheek] - TEMPLE_RISE * eye_span * normal])
               for outer, cheek in ((outer_ends[0], F.RIGHT_CHEEK), (outer_ends[1], F.LEFT_CHEEK))]
    box = Box.around(np.concatenate(lenses + temples + [bridge]), 3, image.shape[:2])
    alpha = np.zeros(image.shape[:2], np.float32)
    if box.empty:
        return alpha
    width_px = params.frame_width * eye_span
    frame_alpha = (box.stroke([np.vstack([lens, lens[:1]]) for lens in lenses] + [bridge] + temples,
                              max(1, round(width_px))) * min(1.0, width_px / MIN_FRAME_PX))
    lens_alpha = box.fill(lenses[:1]), box.fill(lenses[1:])
    both = np.maximum(*lens_alpha)
    yy, xx = box.grid()
    exposure = light.exposure
    ambient = AMBIENT + (1 - AMBIENT) * exposure
    tint = colour01(params.tint, grey)
    if params.kind == "sunglasses":
        c0 = 0.5 * (centres[0] + centres[1])
        unit_px = max(eye_span * LENS_SHADE_UNIT, MIN_PX)
        v = ((xx - c0[0]) * normal[0] + (yy - c0[1]) * normal[1]) / unit_px
        u = ((xx - c0[0]) * axis[0] + (yy - c0[1]) * axis[1]) / unit_px
        shade = np.clip(1.0 + LENS_SHADE_SLOPE * v, *LENS_SHADE_RANGE) * ambient
        glint = GLINT_STRENGTH * np.exp(-(((u + v) % GLINT_PERIOD - GLINT_PERIOD / 2) / GLINT_WIDTH) ** 2)
        lens_rgb = np.clip(paint(tint, shade) + grey3(glint * exposure), 0, 1)
        composite(image, box, lens_rgb, both * params.opacity)
    else:
        composite(image, box, paint(tint, light.shading(box) * exposure), both * params.opacity)
        inside = (both > 0.5).astype(np.uint8)
        rim = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_3) / max(EDGE_BAND * min(h for _, h in halves), MIN_PX)
        scale(image, box, 1 - params.edge_darkening * both * (1 - np.clip(rim, 0, 1)) ** 2)
    reflection = np.zeros(box.shape, np.float32)
    for cover, centre, (a, b) in zip(lens_alpha, centres, halves):
        x = ((xx - centre[0]) * axis[0] + (yy - centre[1]) * axis[1]) / a
        y = ((xx - centre[0]) * normal[0] + (yy - centre[1]) * normal[1]) / b
        reflection = np.maximum(reflection, cover * _highlight(x, y, params))
    region = image[box.slices]
    strength = params.highlight * (1 - HIGHLIGHT_EXPOSURE + HIGHLIGHT_EXPOSURE * exposure)
    region += (1 - region) * grey3(strength * reflection)  # screen blend: a reflection adds light
    composite(image, box, colour01(params.frame, grey) * ambient, frame_alpha)
    box.paste(alpha, frame_alpha if params.kind == "clear" else np.maximum(frame_alpha, both))
    return alpha


def _highlight(x: np.ndarray, y: np.ndarray, params: Glasses) -> np.ndarray:
    """The reflection's brightness (0..1) at lens coordinates ``x``, ``y`` (lens half-sizes from its centre)."""
    angle = np.radians(params.highlight_angle_deg + (STREAK_TILT_DEG if params.highlight_shape == "streaks" else 0.0))
    dx, dy = x - params.highlight_at[0], y - params.highlight_at[1]
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle)
    if params.highlight_shape == "window":
        inside = _soft_step(WINDOW_HALF[0] - np.abs(along)) * _soft_step(WINDOW_HALF[1] - np.abs(across))
        bars = np.maximum(_soft_step(WINDOW_MULLION - np.abs(along)), _soft_step(WINDOW_MULLION - np.abs(across)))
        return (inside * (1 - WINDOW_MULLION_DEPTH * bars)).astype(np.float32)
    out = np.zeros_like(x)
    for offset, half, brightness in STREAKS:
        out = np.maximum(out, brightness * _soft_step(half - np.abs(along - offset)))
    return out.astype(np.float32)


def _soft_step(signed: np.ndarray) -> np.ndarray:
    """0 outside, 1 inside, a smooth ramp of ``WINDOW_SOFTNESS`` across the edge (signed > 0 inside)."""
    x = np.clip(signed / WINDOW_SOFTNESS + 0.5, 0, 1)
    return x * x * (3 - 2 * x)
