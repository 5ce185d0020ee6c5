"""Synthetic occluders drawn over a face: a textured face mask with ear loops, and sunglasses.

Both are placed from the 468 face-mesh points (in continuous pixels) and composited on a float
RGB image in [0, 1]; each returns its coverage so that the caller can mark occluded points.
Lengths are in face heights (``face_h``: forehead to chin), face widths (``face_w``: cheek to
cheek) or eye spans (outer eye corner to outer eye corner), so the look does not depend on the
image size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from holotune.data.default.variants import FaceMask, Sunglasses
from holotune.landmarks import FACEMESH_FACE_OVAL, FACEMESH_LEFT_EYE, FACEMESH_RIGHT_EYE
from holotune.landmarks import FaceLandmark as F

# --- Where: face-mesh points ----------------------------------------------------------------------
MOUTH_POINTS = (F.UPPER_LIP_INNER, F.LOWER_LIP_INNER, F.RIGHT_MOUTH_CORNER, F.LEFT_MOUTH_CORNER,
                F.UPPER_LIP_TOP, F.LOWER_LIP_BOTTOM)
"""The mouth, which every mask covers (the tests check it is ``occluded``)."""
MASK_MIDLINE = (F.NOSE_TIP, F.NOSE_APEX, F.NOSE_UNDERSIDE, F.COLUMELLA, F.SUBNASALE, F.PHILTRUM,
                F.UPPER_LIP_TOP, F.UPPER_LIP_INNER, F.LOWER_LIP_INNER, F.LOWER_LIP_BOTTOM, F.LABIOMENTAL_FOLD,
                F.CHIN_UPPER, F.CHIN_CENTRE, F.CHIN_LOWER)
"""The profile from the nose tip to the chin, which the mask spans (order fixes the corner jitter)."""

# --- Mask outline ---------------------------------------------------------------------------------
MIN_FACE_WIDTH = 0.6  # face_w >= 0.6 face_h: a turned face's cheek-to-cheek span collapses, a mask's does not
MIN_FACE_WIDTH_PX = 4.0  # face_w >= 4 px, so the sizes derived from it stay usable on a tiny face
SIDE_PUSH = 0.35  # at its sides the lower edge gets 35 % of the chin push: a little wider than the cheeks
CHEEK_SAG = 0.03  # face heights the top edge sags over each cheek between the nose and the side
MIDLINE_LIFT = 0.3  # the nose-chin profile stands 0.3 chin pushes off the face (it sticks out on a turned face)
CORNER_JITTER_PX = 1.5  # corners move up to +-1.5 px at a 150-px face: no two masks share an outline
CORNER_JITTER_FACE_PX = 150.0  # the face width CORNER_JITTER_PX is given at (it scales with the face)
MIN_CORNER_JITTER_SCALE = 0.5  # small faces keep at least half of the jitter
CHAIKIN_ITERATIONS = 3  # corner-cutting rounds: turns the hull into a soft, fabric-like curve
EDGE_BLUR_PX = 0.6  # Gaussian sigma of the outline: fabric edges are not razor sharp

# --- Ear loops ------------------------------------------------------------------------------------
LOOP_THICKNESS_DIVISOR = 90  # loops are face_w / 90 px thick (>= 1 px): a ~2 mm cord on a 15 cm face
LOOP_HIDDEN_RATIO = 0.45  # a side whose nose-to-cheek span is < 0.45 of the other's faces away: loop hidden
LOOP_TOP_START = 0.4  # the upper loop leaves the top edge 40 % of the way from the side corner to the cheek
LOOP_LOWER_START = 0.2  # the lower loop leaves the lower edge 20 % along it from its side
EAR_OUT = 0.06  # face widths the ear (where both loops end) lies outside the cheek point
EAR_UP = 0.02  # face heights the ear lies above the cheek point
UPPER_LOOP_RISE = 0.08  # face heights the upper loop arcs up over the cheekbone
UPPER_LOOP_OUT = 0.03  # face widths the upper loop bulges outward
LOWER_LOOP_OUT = 0.1  # face widths the lower loop bulges outward around the jaw
LOWER_LOOP_DROP = 0.05  # face heights below the ear point the lower loop ends (behind the earlobe)
LOOP_OPACITY = 0.9  # a thin cord's anti-aliased stroke lets a little of the skin through

# --- Mask appearance ------------------------------------------------------------------------------
SHADING_BLUR_DIVISOR = 6  # scene light = luminance blurred at face_w / 6 px: the light, not the skin texture
MIN_SHADING_BLUR_PX = 1.0  # the blur's smallest sigma
MID_GREY = 0.5  # exposure 1 where the scene around the mask is mid-grey
EXPOSURE_RANGE = (0.35, 1.4)  # the mask follows the scene's brightness within limits: a white mask stays visible
SHADING_GAMMA = 0.7  # fabric scatters light: local shading modulates it less than it does skin
SHADING_RANGE = (0.5, 1.5)  # and never more than this
RIM_WIDTH = 0.12  # face widths over which the mask curves away from the light at its rim
RIM_DARKENING = 0.22  # how much darker the very rim is
PLEAT_WIDTH = 0.035  # fold width, fraction of the mask's height
PLEAT_HIGHLIGHT = 0.5  # a fold's lit side brightens half as much as the fold darkens
PLEAT_HIGHLIGHT_OFFSET = 1.6  # fold widths above the fold its lit side lies
FABRIC_NOISE = 0.012  # sigma of the per-pixel fabric texture, fraction of full scale
LUMA = (0.299, 0.587, 0.114)  # Rec. 601 weights: the grey a monochrome photo shows a colour as

# --- Sunglasses -----------------------------------------------------------------------------------
LENS_VERTICES = 64  # points on each superellipse lens outline
LENS_MAX_HALF = 0.47  # lens half-width <= 0.47 eye-centre distances, so the lenses never overlap
MIN_EYE_HALF_WIDTH = 0.08  # eye half-width >= 0.08 eye spans (a squinting or mis-detected eye contour)
BRIDGE_END_RISE = 0.3  # the bridge leaves each lens 0.3 lens half-heights above its centre
TEMPLE_END_RISE = 0.4  # the temple arms leave the lenses 0.4 lens half-heights above their centre
FRAME_THICKNESS_DIVISOR = 60  # frames are eye_span / 60 px thick (>= 1 px)
BRIDGE_ARCH = 0.15  # eye spans the bridge arches above its ends
TEMPLE_RISE = 0.15  # eye spans above the cheek point the temple arms meet the ear
LENS_SHADE_UNIT = 0.3  # lens shading coordinates are in 0.3 eye spans (about one lens height)
LENS_SHADE_SLOPE = 0.25  # gradient lenses: darker at the top, lighter at the bottom
LENS_SHADE_RANGE = (0.6, 1.4)  # clamp of that gradient
AMBIENT = 0.6  # lens and frame brightness = 0.6 + 0.4 * exposure: dark in a dark scene, never black
GLINT_STRENGTH = 0.10  # a faint diagonal reflection band across the lenses
GLINT_PERIOD = 2.0  # its repeat, in lens shading units
GLINT_WIDTH = 0.25  # its width, in lens shading units

# --- Numerics -------------------------------------------------------------------------------------
_MIN_PX = 1e-3  # guards divisions by a length in pixels (or a luminance) on a degenerate face
_MIN_NORM = 1e-6  # guards the normalisation of a direction vector
_FRACTION_BITS = 4  # OpenCV draws with 4 fractional bits of sub-pixel precision


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
_EYE_RIGHT_IDX = tuple(sorted({i for e in FACEMESH_RIGHT_EYE for i in e}))
_EYE_LEFT_IDX = tuple(sorted({i for e in FACEMESH_LEFT_EYE for i in e}))


# --- Drawing primitives ---------------------------------------------------------------------------


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(np.linalg.norm(v), _MIN_NORM)


def _chaikin(points: np.ndarray, iterations: int = CHAIKIN_ITERATIONS) -> np.ndarray:
    """Corner cutting on a closed polygon (N, 2): each edge is replaced by its quarter points."""
    for _ in range(iterations):
        nxt = np.roll(points, -1, axis=0)
        points = np.stack([0.75 * points + 0.25 * nxt, 0.25 * points + 0.75 * nxt], axis=1).reshape(-1, 2)
    return points


def _fixed_point(points: np.ndarray) -> np.ndarray:
    """Continuous pixels (pixel i spans [i, i+1)) -> OpenCV's fixed-point pixel-centre coordinates."""
    return np.round((points - 0.5) * (1 << _FRACTION_BITS)).astype(np.int32)


def _fill(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage (H, W) float32 in [0, 1] of a closed polygon in continuous pixels."""
    canvas = np.zeros(shape, np.uint8)
    cv2.fillPoly(canvas, [_fixed_point(polygon)], 255, lineType=cv2.LINE_AA, shift=_FRACTION_BITS)
    return canvas.astype(np.float32) / 255.0


def _stroke(shape: tuple[int, int], polyline: np.ndarray, thickness: int) -> np.ndarray:
    """Anti-aliased coverage (H, W) float32 in [0, 1] of an open polyline in continuous pixels."""
    canvas = np.zeros(shape, np.uint8)
    cv2.polylines(canvas, [_fixed_point(polyline)], False, 255, thickness=thickness, lineType=cv2.LINE_AA,
                  shift=_FRACTION_BITS)
    return canvas.astype(np.float32) / 255.0


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int = 24) -> np.ndarray:
    """``n`` points on the quadratic Bezier curve p0 -> p2 with control point p1."""
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _pixel_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(yy, xx): the continuous coordinates of the pixel centres."""
    h, w = shape
    return np.mgrid[0:h, 0:w].astype(np.float32) + 0.5


def _along(xx: np.ndarray, yy: np.ndarray, origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Each pixel's coordinate along ``direction`` (a unit vector) from ``origin``."""
    return (xx - origin[0]) * direction[0] + (yy - origin[1]) * direction[1]


# --- Face mask ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Face:
    """The face frame an occluder is laid out in (pixels)."""

    p: np.ndarray  # (468, 2) face-mesh points
    centre: np.ndarray  # between the cheek points
    face_h: float
    face_w: float
    reach: float  # centre to chin
    down: np.ndarray  # unit vector, nose bridge -> chin

    @classmethod
    def of(cls, p: np.ndarray) -> _Face:
        centre = 0.5 * (p[F.RIGHT_CHEEK] + p[F.LEFT_CHEEK])
        face_h = float(np.linalg.norm(p[F.CHIN] - p[F.FOREHEAD]))
        face_w = max(float(np.linalg.norm(p[F.LEFT_CHEEK] - p[F.RIGHT_CHEEK])), MIN_FACE_WIDTH * face_h,
                     MIN_FACE_WIDTH_PX)
        reach = max(float(np.linalg.norm(p[F.CHIN] - centre)), _MIN_PX)
        return cls(p, centre, face_h, face_w, reach, _unit(p[F.CHIN] - p[F.NOSE_BRIDGE]))


@dataclass(frozen=True)
class _Outline:
    """A mask's outline and the points its ear loops start from."""

    polygon: np.ndarray  # closed, smoothed
    lower: np.ndarray  # the lower edge, image right (subject's left) -> chin -> image left
    cheek_r: np.ndarray  # the top edge's points over the cheeks
    cheek_l: np.ndarray


def draw_face_mask(image: np.ndarray, face_px: np.ndarray, params: FaceMask, grey: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Draw a face mask on ``image``.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1] (modified copy returned).
        face_px: (468, 2) face-mesh points in continuous pixels.
        params: the mask's shape and look.
        grey: the photo is monochrome: draw the mask in grey too.

    Returns:
        ``(image, alpha)``: the composited image and the occluder's coverage (H, W) in [0, 1].
    """
    shape = image.shape[:2]
    face = _Face.of(face_px)
    rng = np.random.default_rng(params.corner_seed)
    outline = _mask_outline(face, params, rng)
    alpha = np.maximum(_fill(shape, outline.polygon), _ear_loops(shape, face, outline) * LOOP_OPACITY)
    alpha = cv2.GaussianBlur(alpha, (0, 0), EDGE_BLUR_PX)
    layer, exposure = _mask_layer(image, alpha, outline.polygon, face, params, rng, grey)
    out = image * (1 - alpha[..., None]) + layer * alpha[..., None]
    if params.sunglasses is not None:
        out, glasses_alpha = draw_sunglasses(out, face.p, params.sunglasses, exposure, grey)
        alpha = np.maximum(alpha, glasses_alpha)
    return out.astype(np.float32), alpha


def _mask_outline(face: _Face, params: FaceMask, rng: np.random.Generator) -> _Outline:
    """The mask polygon: the lower face oval pushed out, a top edge over the nose, the nose-chin profile."""
    p, centre, down, reach = face.p, face.centre, face.down, face.reach
    oval = list(FACE_OVAL_LOOP)
    start = oval.index(F.LEFT_CHEEK) + params.side_drop[1]
    stop = oval.index(F.RIGHT_CHEEK) - params.side_drop[0]
    lower = p[oval[start:stop + 1]]
    # Push the lower edge out from the face centre: the full push * face_h below the chin, less at
    # the sides (a mask is a little wider than the cheeks, much lower than the chin).
    weight = SIDE_PUSH + (1 - SIDE_PUSH) * np.clip((lower - centre) @ down / reach, 0, 1)
    lower = lower + (lower - centre) / reach * (params.chin_push * face.face_h * weight)[:, None]
    nose = p[F.NOSE_BRIDGE] + params.top * (p[F.NOSE_TIP] - p[F.NOSE_BRIDGE])
    # The top edge runs from the side over the cheekbone to the nose; it sags a little on the cheeks.
    cheek_r = 0.5 * (lower[-1] + nose) + CHEEK_SAG * face.face_h * down
    cheek_l = 0.5 * (lower[0] + nose) + CHEEK_SAG * face.face_h * down
    # The profile stands a little off the face: in a turned face it sticks out past the oval, and
    # the mask spans it (the hull bridges the hollows under nose and lip).
    midline = p[list(MASK_MIDLINE)]
    midline = midline + (midline - centre) / reach * MIDLINE_LIFT * params.chin_push * face.face_h
    polygon = np.concatenate([lower, [cheek_r, nose, cheek_l], midline])
    polygon = polygon + rng.uniform(-CORNER_JITTER_PX, CORNER_JITTER_PX, polygon.shape) * max(
        face.face_w / CORNER_JITTER_FACE_PX, MIN_CORNER_JITTER_SCALE)
    polygon = _chaikin(cv2.convexHull(polygon.astype(np.float32)).reshape(-1, 2).astype(np.float64))
    return _Outline(polygon, lower, cheek_r, cheek_l)


def _ear_loops(shape: tuple[int, int], face: _Face, outline: _Outline) -> np.ndarray:
    """Coverage of the ear loops: from the mask's upper and lower side to behind the ear, for each
    side facing the camera."""
    p, lower, down, face_w, face_h = face.p, outline.lower, face.down, face.face_w, face.face_h
    loops = np.zeros(shape, np.float32)
    thickness = max(1, round(face_w / LOOP_THICKNESS_DIVISOR))
    half_r = np.linalg.norm(p[F.RIGHT_CHEEK] - p[F.NOSE_TIP])
    half_l = np.linalg.norm(p[F.LEFT_CHEEK] - p[F.NOSE_TIP])
    for cheek, end, top_cheek, lower_pt, half, other in (
        (p[F.RIGHT_CHEEK], lower[-1], outline.cheek_r, lower[int(len(lower) * (1 - LOOP_LOWER_START))], half_r, half_l),
        (p[F.LEFT_CHEEK], lower[0], outline.cheek_l, lower[int(len(lower) * LOOP_LOWER_START)], half_l, half_r),
    ):
        if half < LOOP_HIDDEN_RATIO * other:  # this side turns away from the camera: its loop is hidden
            continue
        outward = _unit(cheek - face.centre)
        ear = cheek + EAR_OUT * face_w * outward - EAR_UP * face_h * down
        top_start = (1 - LOOP_TOP_START) * end + LOOP_TOP_START * top_cheek  # near the top edge's side corner
        upper = _bezier(top_start, 0.5 * (top_start + ear) - UPPER_LOOP_RISE * face_h * down
                        + UPPER_LOOP_OUT * face_w * outward, ear)
        below = _bezier(lower_pt, 0.5 * (lower_pt + ear) + LOWER_LOOP_OUT * face_w * outward,
                        ear + LOWER_LOOP_DROP * face_h * down)
        loops = np.maximum(loops, _stroke(shape, upper, thickness))
        loops = np.maximum(loops, _stroke(shape, below, thickness))
    return loops


def _mask_layer(image: np.ndarray, alpha: np.ndarray, polygon: np.ndarray, face: _Face, params: FaceMask,
                rng: np.random.Generator, grey: bool) -> tuple[np.ndarray, float]:
    """The mask's pixels: colour x exposure x scene shading x gradient x pleats, plus fabric noise.

    Returns:
        ``(layer, exposure)``: (H, W, 3) in [0, 1], and the scene's exposure the sunglasses reuse.
    """
    p, centre, down, face_w = face.p, face.centre, face.down, face.face_w
    lum = image @ np.array(LUMA, dtype=np.float32)
    blur = cv2.GaussianBlur(lum, (0, 0), max(face_w / SHADING_BLUR_DIVISOR, MIN_SHADING_BLUR_PX))
    inside = alpha > 0.5
    ref = float(blur[inside].mean()) if inside.any() else float(blur.mean())
    exposure = float(np.clip(ref / MID_GREY, *EXPOSURE_RANGE))
    shading = np.clip((blur / max(ref, _MIN_PX)) ** SHADING_GAMMA, *SHADING_RANGE)
    yy, xx = _pixel_grid(image.shape[:2])
    u = _along(xx, yy, centre, _unit(p[F.LEFT_CHEEK] - p[F.RIGHT_CHEEK])) / (face_w / 2)
    proj = (polygon - centre) @ down
    v_top, v_bot = float(proj.min()), float(proj.max())
    v = (_along(xx, yy, centre, down) - v_top) / max(v_bot - v_top, _MIN_PX)
    gradient = 1 + params.gradient[0] * u + params.gradient[1] * (v - 0.5) * 2
    # The mask curves away from the light towards its rim.
    rim = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3) / max(RIM_WIDTH * face_w, 1.0)
    gradient = gradient * (1 - RIM_DARKENING * (1 - np.clip(rim, 0, 1)) ** 2)
    pleats = np.ones_like(v)
    for c in params.pleats:
        pleats -= params.pleat_depth * np.exp(-(((v - c) / PLEAT_WIDTH) ** 2))
        pleats += PLEAT_HIGHLIGHT * params.pleat_depth * np.exp(
            -(((v - c + PLEAT_HIGHLIGHT_OFFSET * PLEAT_WIDTH) / PLEAT_WIDTH) ** 2))  # the fold's lit side
    colour = np.array(params.colour, np.float32) / 255.0
    if grey:
        colour = np.full(3, float(colour @ np.array(LUMA)), np.float32)
    noise = rng.normal(0, FABRIC_NOISE, (*image.shape[:2], 1)).astype(np.float32)
    layer = colour[None, None, :] * (exposure * shading * gradient * pleats)[..., None] + noise
    return np.clip(layer, 0, 1), exposure


# --- Sunglasses -----------------------------------------------------------------------------------


def draw_sunglasses(image: np.ndarray, face_px: np.ndarray, params: Sunglasses, exposure: float = 1.0,
                    grey: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Draw sunglasses on ``image`` ((H, W, 3) float32 RGB in [0, 1]; ``face_px`` (468, 2) pixels).

    Each lens is a superellipse around its eye contour, wider than the eye and aligned with the
    ``RIGHT_EYE_OUTER`` -> ``LEFT_EYE_OUTER`` line, joined by a bridge, with temple arms towards
    ``RIGHT_CHEEK`` / ``LEFT_CHEEK``.

    Returns:
        ``(image, coverage)``, coverage (H, W) in [0, 1].
    """
    shape = image.shape[:2]
    p = face_px
    axis = p[F.LEFT_EYE_OUTER] - p[F.RIGHT_EYE_OUTER]
    eye_span = max(float(np.linalg.norm(axis)), _MIN_PX)
    axis = axis / eye_span
    normal = np.array([-axis[1], axis[0]])  # points down the face when the face is upright
    if normal @ (p[F.CHIN] - p[F.NOSE_BRIDGE]) < 0:
        normal = -normal
    t = np.linspace(0, 2 * np.pi, LENS_VERTICES, endpoint=False)
    n = params.squareness
    lenses, inner_ends, outer_ends = [], [], []
    centres = [p[list(_EYE_RIGHT_IDX)].mean(axis=0), p[list(_EYE_LEFT_IDX)].mean(axis=0)]
    max_half = LENS_MAX_HALF * float(np.linalg.norm(centres[1] - centres[0]))
    for idx, sign, centre in ((_EYE_RIGHT_IDX, -1.0, centres[0]), (_EYE_LEFT_IDX, 1.0, centres[1])):
        eye = p[list(idx)]
        half_w = max(float(np.ptp(eye @ axis)) / 2, eye_span * MIN_EYE_HALF_WIDTH)
        a = min(half_w * params.lens_width, max(max_half, 1.0))
        b = a * params.lens_aspect
        centre = centre + params.drop * b * normal
        cu = np.sign(np.cos(t)) * np.abs(np.cos(t)) ** (2 / n)
        sv = np.sign(np.sin(t)) * np.abs(np.sin(t)) ** (2 / n)
        lens = centre + (a * cu)[:, None] * axis + (b * sv)[:, None] * normal
        lenses.append(lens)
        inner_ends.append(centre - sign * a * axis - BRIDGE_END_RISE * b * normal)
        outer_ends.append(centre + sign * a * axis - TEMPLE_END_RISE * b * normal)
    lens_alpha = np.maximum(_fill(shape, lenses[0]), _fill(shape, lenses[1]))
    thick = max(1, round(eye_span / FRAME_THICKNESS_DIVISOR))
    frame_alpha = np.maximum(_stroke(shape, np.vstack([lenses[0], lenses[0][:1]]), thick),
                             _stroke(shape, np.vstack([lenses[1], lenses[1][:1]]), thick))
    bridge_mid = 0.5 * (inner_ends[0] + inner_ends[1]) - BRIDGE_ARCH * eye_span * normal
    bridge = _bezier(inner_ends[0], bridge_mid, inner_ends[1], 12)
    frame_alpha = np.maximum(frame_alpha, _stroke(shape, bridge, thick))
    for outer, cheek in ((outer_ends[0], p[F.RIGHT_CHEEK]), (outer_ends[1], p[F.LEFT_CHEEK])):
        ear = cheek - TEMPLE_RISE * eye_span * normal
        frame_alpha = np.maximum(frame_alpha, _stroke(shape, np.stack([outer, ear]), thick))
    # Lenses: dark tint, darker at the top, a faint diagonal reflection; slightly see-through.
    yy, xx = _pixel_grid(shape)
    c0 = 0.5 * (lenses[0].mean(0) + lenses[1].mean(0))
    v = _along(xx, yy, c0, normal) / max(eye_span * LENS_SHADE_UNIT, _MIN_PX)
    u = _along(xx, yy, c0, axis) / max(eye_span * LENS_SHADE_UNIT, _MIN_PX)
    tint = np.array(params.tint, np.float32) / 255.0
    frame = np.array(params.frame, np.float32) / 255.0
    if grey:
        tint = np.full(3, float(tint.mean()), np.float32)
        frame = np.full(3, float(frame.mean()), np.float32)
    ambient = AMBIENT + (1 - AMBIENT) * exposure
    shade = np.clip(1.0 + LENS_SHADE_SLOPE * v, *LENS_SHADE_RANGE) * ambient
    glint = GLINT_STRENGTH * np.exp(-(((u + v) % GLINT_PERIOD - GLINT_PERIOD / 2) / GLINT_WIDTH) ** 2)
    lens_rgb = np.clip(tint[None, None, :] * shade[..., None] + glint[..., None] * exposure, 0, 1)
    a_lens = lens_alpha * params.opacity
    out = image * (1 - a_lens[..., None]) + lens_rgb * a_lens[..., None]
    out = out * (1 - frame_alpha[..., None]) + (frame * ambient)[None, None, :] * frame_alpha[..., None]
    return out.astype(np.float32), np.maximum(lens_alpha, frame_alpha)
