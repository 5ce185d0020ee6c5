"""Face coverings: surgical, cloth and printed masks with ear loops, and knitted scarves, drawn.

Where a covering lies is its outline (:mod:`.outline`). Its look is its colour (or print) lit like
the face (:mod:`.light`), shaded as a surface that curves away at its rim, with the style's own relief:

* ``surgical``: pleats that follow the top and bottom edges, a bound hem, and a nose wire that bends
  the top edge over the nose (the edge hugs the nose's sides) with a lit ridge and a crease below it;
* ``cloth``: a plain weave, a stitched hem and a centre seam down the nose-chin profile between two
  panels that face slightly different ways;
* ``printed``: a cloth mask with dots, stripes, checks or flowers wrapped around the face;
* ``scarf``: a rib knit in soft folds, from just below the eyes over the nose to well below the chin
  and out past the cheeks, its top edge rolled over; no ear loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from holotune.data.default.occluders.fabric import fibre_noise, folds, knit, weave
from holotune.data.default.occluders.geometry import MIN_PX, Face, unit
from holotune.data.default.occluders.light import Light, colour01, composite, paint
from holotune.data.default.occluders.outline import Outline, ear_loops, mask_outline, scarf_outline
from holotune.data.default.occluders.prints import print_coverage
from holotune.data.default.occluders.raster import Box, densify, soften
from holotune.data.default.variants import FaceCovering

# --- Edges ----------------------------------------------------------------------------------------
EDGE_BLUR_PX = 0.6  # Gaussian sigma of the outline: fabric edges are not razor sharp
PROFILE_BIN_PX = 3.0  # the covering's top and bottom edges are tabulated in columns ~3 px wide ...
MIN_PROFILE_BINS, MAX_PROFILE_BINS = 8, 64  # ... at least 8, at most 64 of them
DENSIFY_BINS = 0.4  # outline points <= 0.4 columns apart: every column holds points of both edges
PROFILE_SMOOTHING = 3  # columns: a moving average keeps the pleats free of kinks
LOOP_THICKNESS_DIVISOR = 90  # loops are face_w / 90 px thick (>= 1 px): a ~2 mm cord on a 15 cm face
LOOP_OPACITY = 0.9  # a thin cord's anti-aliased stroke lets a little of the skin through

# --- Surgical: nose wire, hem ---------------------------------------------------------------------
WIRE_HALF_SPAN = 0.4  # the wire reaches 40 % of the way from the nose to each cheek point ...
WIRE_END_SOFTNESS = 0.1  # ... and its relief fades out over the last 10 %
WIRE_RIDGE = 0.022  # face heights below the top edge: the wire's lit ridge
WIRE_CREASE = 0.045  # face heights below the top edge: the crease where the fabric bends under the wire
WIRE_LINE = 0.008  # face heights: width (Gaussian sigma) of the ridge and the crease
WIRE_HIGHLIGHT = 0.35  # the ridge brightens by this x nose_wire
WIRE_SHADOW = 0.3  # the crease darkens by this x nose_wire
HEM_WIDTH = 0.03  # face widths: the bound or stitched strip along a mask's edge
HEM_BRIGHTNESS = 1.04  # a binding strip is flat and catches a little more light than the pleats
STITCH_DARKENING = 0.2  # the stitch line at the hem's inner edge
STITCH_WIDTH_PX = 0.6  # its Gaussian half-width, pixels (a thread)

# --- Cloth: seam ----------------------------------------------------------------------------------
SEAM_WIDTH = 0.01  # face widths: the seam's dark line (>= 1 px)
SEAM_BLUR_PX = 0.5  # the seam is a soft fold, not a drawn line
SEAM_SMOOTHING = 3  # corner-cutting rounds that turn the nose-chin profile into the seam's curve
PANEL_CONTRAST = 0.07  # the two panels meet at an angle: the one facing the light is 7 % brighter
PANEL_EDGE = 0.08  # over 8 % of the face width from the seam

# --- Scarf: its rolled top edge -------------------------------------------------------------------
ROLL_WIDTH = 0.05  # face heights: the rolled-over top edge of a scarf
ROLL_HIGHLIGHT = 0.2  # the roll's lit top
ROLL_SHADOW = 0.3  # its shadow on the fabric below

# --- Appearance -----------------------------------------------------------------------------------
RIM_WIDTH = 0.12  # face widths over which the covering curves away from the light at its rim
RIM_DARKENING = 0.22  # how much darker the very rim is
PLEAT_WIDTH = 0.035  # fold width, fraction of the mask's height
PLEAT_HIGHLIGHT = 0.5  # a fold's lit side brightens half as much as the fold darkens
PLEAT_HIGHLIGHT_OFFSET = 1.6  # fold widths above the fold its lit side lies
SURFACE_BULGE = 0.04  # face heights: lines on the fabric sag this much more in the middle than at the sides
MAX_SURFACE_ANGLE = 0.97  # sin of the steepest surface angle (the sides are not seen edge-on)
MIN_HALF_WIDTH = 0.15  # face widths: the narrowest half-face the surface coordinates stretch over
SURFACE_MARGIN = 1.05  # the surface's sides lie 5 % beyond the covering's: its edge is not seen edge-on
FABRIC_NOISE = 0.025  # sigma of the per-pixel fibre noise, relative to the fabric's brightness
KNIT_NOISE = 0.035  # a knit's yarn is hairier


def draw_covering(image: np.ndarray, face: Face, light: Light, params: FaceCovering, grey: bool) -> np.ndarray:
    """Draw a face covering into ``image`` ((H, W, 3) float32 RGB in [0, 1], in place).

    Returns:
        (H, W) float32: the covering's coverage (body and ear loops) in [0, 1].
    """
    rng = np.random.default_rng(params.seed)
    outline = scarf_outline(face, params, rng) if params.style == "scarf" else mask_outline(face, params, rng)
    loops = [] if params.style == "scarf" else ear_loops(face, outline)
    points = np.concatenate(outline.polygons + loops)
    box = Box.around(points, 3 * EDGE_BLUR_PX + 2, image.shape[:2])
    alpha = np.zeros(image.shape[:2], np.float32)
    if box.empty:
        return alpha
    shading = light.shading(box)
    colour = colour01(params.colour, grey)
    if loops:
        thickness = max(1, round(face.face_w / LOOP_THICKNESS_DIVISOR))
        loop_alpha = soften(box.stroke(loops, thickness), EDGE_BLUR_PX) * LOOP_OPACITY
        composite(image, box, paint(colour, light.exposure * shading), loop_alpha)
        box.paste(alpha, loop_alpha)
    body = soften(box.fill(outline.polygons), EDGE_BLUR_PX)
    composite(image, box, _look(box, body, outline, face, light, shading, params, rng, grey), body)
    box.paste(alpha, body)
    return alpha


@dataclass(frozen=True)
class _Surface:
    """Per-pixel coordinates of a box on the covering.

    Attributes:
        s: across the surface from the nose-chin profile, pixels of arc (the sides are foreshortened).
        t: down the surface, pixels (lines sag a little in the middle, as on a rounded surface).
        u: across the face, -1 at the covering's right side, 0 on the profile, +1 at its left side.
        v: down the covering, 0 on its top edge, 1 on its lower edge (per column).
        below_top: pixels below the top edge (per column).
    """

    s: np.ndarray
    t: np.ndarray
    u: np.ndarray
    v: np.ndarray
    below_top: np.ndarray


def _surface(box: Box, outline: Outline, face: Face) -> _Surface:
    yy, xx = box.grid()
    cx, cy = face.centre
    lateral = (xx - cx) * face.axis[0] + (yy - cy) * face.axis[1]
    level = (xx - cx) * face.down[0] + (yy - cy) * face.down[1]
    profile = np.concatenate([outline.nose[None], outline.midline])
    order = np.argsort(face.level(profile))
    mid = np.interp(level, face.level(profile)[order], face.lateral(profile)[order]).astype(np.float32)
    # The surface wraps around the face from the profile to the covering's sides.
    min_half = MIN_HALF_WIDTH * face.face_w
    extent = face.lateral(np.concatenate(outline.polygons))
    half_r = max(float(np.median(mid)) - float(extent.min()), min_half) * SURFACE_MARGIN
    half_l = max(float(extent.max()) - float(np.median(mid)), min_half) * SURFACE_MARGIN
    u = np.where(lateral >= mid, (lateral - mid) / half_l, (lateral - mid) / half_r)
    theta = np.arcsin(np.clip(u, -MAX_SURFACE_ANGLE, MAX_SURFACE_ANGLE))
    s = theta * (0.5 * face.face_w)
    t = level + SURFACE_BULGE * face.face_h * (1 - np.cos(theta))
    # The covering's top and bottom edges per column (along the face's axis), from its outline
    # sampled densely enough that each column holds points of both edges.
    corners = np.concatenate(outline.polygons)
    c_lat = face.lateral(corners)
    n_bins = int(np.clip((c_lat.max() - c_lat.min()) / PROFILE_BIN_PX, MIN_PROFILE_BINS, MAX_PROFILE_BINS))
    bin_width = max(float(c_lat.max() - c_lat.min()) / n_bins, MIN_PX)
    edge = np.concatenate([densify(poly, DENSIFY_BINS * bin_width) for poly in outline.polygons])
    e_lat, e_lev = face.lateral(edge), face.level(edge)
    which = np.clip(((e_lat - c_lat.min()) / bin_width).astype(int), 0, n_bins - 1)
    centres = c_lat.min() + (np.arange(n_bins) + 0.5) * bin_width
    top = np.full(n_bins, np.inf)
    bottom = np.full(n_bins, -np.inf)
    np.minimum.at(top, which, e_lev)
    np.maximum.at(bottom, which, e_lev)
    ok = np.isfinite(top)
    kernel = np.ones(PROFILE_SMOOTHING) / PROFILE_SMOOTHING
    top = np.convolve(np.pad(np.interp(centres, centres[ok], top[ok]), PROFILE_SMOOTHING // 2, mode="edge"),
                      kernel, mode="valid")
    bottom = np.convolve(np.pad(np.interp(centres, centres[ok], bottom[ok]), PROFILE_SMOOTHING // 2, mode="edge"),
                         kernel, mode="valid")
    top_at = np.interp(lateral, centres, top).astype(np.float32)
    bottom_at = np.interp(lateral, centres, bottom).astype(np.float32)
    v = (level - top_at) / np.maximum(bottom_at - top_at, MIN_PX)
    return _Surface(s.astype(np.float32), t.astype(np.float32), u.astype(np.float32), v.astype(np.float32),
                    (level - top_at).astype(np.float32))


def _look(box: Box, body: np.ndarray, outline: Outline, face: Face, light: Light, shading: np.ndarray,
          params: FaceCovering, rng: np.random.Generator, grey: bool) -> np.ndarray:
    """The covering's pixels in ``box``: (h, w, 3) float32 in [0, 1]."""
    surface = _surface(box, outline, face)
    u, v = surface.u, surface.v
    shade = light.exposure * shading * (1 + params.gradient[0] * u + params.gradient[1] * (v - 0.5) * 2)
    # The covering curves away from the light towards its rim.
    inside = (body > 0.5).astype(np.uint8)
    rim_distance = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_3)
    shade *= 1 - RIM_DARKENING * (1 - np.clip(rim_distance / max(RIM_WIDTH * face.face_w, 1.0), 0, 1)) ** 2
    noise = FABRIC_NOISE
    inks: list[tuple[np.ndarray, np.ndarray]] = []  # printed: (colour, coverage) over the base colour
    if params.style == "surgical":
        shade *= _pleats(v, params) * _hem(rim_distance, face, HEM_BRIGHTNESS) * _nose_wire(surface, face, params)
    elif params.style in ("cloth", "printed"):
        shade *= weave(surface.s, surface.t, params.texture_period * face.face_w, params.texture, rng)
        shade *= _hem(rim_distance, face, 1.0)
        if params.style == "cloth":
            shade *= _seam(box, outline, face, params, surface.u)
        else:
            ink, accent = print_coverage(params.pattern, surface.s, surface.t, face.face_w, params.seed)
            inks = [(colour01(params.pattern.ink, grey), ink * (1 - accent)),
                    (colour01(params.pattern.accent, grey), accent)]
    else:
        shade *= knit(surface.s, surface.t, params.texture_period * face.face_w, params.texture)
        shade *= folds(surface.s, surface.t, face.face_w, params.wrinkles, rng)
        shade *= _roll(surface.below_top, face)
        noise = KNIT_NOISE
    shade *= 1 + fibre_noise(rng, box.shape, noise)
    base = 1 - sum((cover for _, cover in inks), np.zeros_like(shade))
    layer = paint(colour01(params.colour, grey), shade * base)
    for ink_colour, cover in inks:
        layer += paint(ink_colour, shade * cover)
    return np.clip(layer, 0, 1)


def _pleats(v: np.ndarray, params: FaceCovering) -> np.ndarray:
    """A surgical mask's folds across its height: a dark fold line with a lit band above it."""
    out = np.ones_like(v)
    for c in params.pleats:
        out -= params.pleat_depth * np.exp(-(((v - c) / PLEAT_WIDTH) ** 2))
        out += PLEAT_HIGHLIGHT * params.pleat_depth * np.exp(
            -(((v - c + PLEAT_HIGHLIGHT_OFFSET * PLEAT_WIDTH) / PLEAT_WIDTH) ** 2))
    return out


def _hem(rim_distance: np.ndarray, face: Face, brightness: float) -> np.ndarray:
    """The strip along the edge: a little brighter (a binding) and a stitch line at its inner edge."""
    width = HEM_WIDTH * face.face_w
    stitch = np.exp(-(((rim_distance - width) / max(STITCH_WIDTH_PX, 0.1 * width)) ** 2))
    return np.where(rim_distance < width, brightness, 1.0).astype(np.float32) * (1 - STITCH_DARKENING * stitch)


def _nose_wire(surface: _Surface, face: Face, params: FaceCovering) -> np.ndarray:
    """The wire along the top edge over the nose: a lit ridge just below the edge and a crease below it."""
    h = face.face_h
    sigma = max(WIRE_LINE * h, 0.5)
    span = np.clip((WIRE_HALF_SPAN - np.abs(surface.u)) / WIRE_END_SOFTNESS, 0, 1)
    ridge = np.exp(-(((surface.below_top - WIRE_RIDGE * h) / sigma) ** 2))
    crease = np.exp(-(((surface.below_top - WIRE_CREASE * h) / sigma) ** 2))
    return 1 + params.nose_wire * span * (WIRE_HIGHLIGHT * ridge - WIRE_SHADOW * crease)


def _smooth_open(points: np.ndarray) -> np.ndarray:
    """An open polyline's corners rounded (Chaikin, ends kept)."""
    for _ in range(SEAM_SMOOTHING):
        a, b = points[:-1], points[1:]
        inner = np.stack([0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b], axis=1).reshape(-1, 2)
        points = np.concatenate([points[:1], inner, points[-1:]])
    return points


def _seam(box: Box, outline: Outline, face: Face, params: FaceCovering, u: np.ndarray) -> np.ndarray:
    """A cloth mask's centre seam down the nose-chin profile, between two panels facing apart."""
    below_chin = outline.midline[-1] + unit(outline.midline[-1] - outline.midline[-2]) * params.chin_push * face.face_h
    seam = _smooth_open(np.concatenate([outline.nose[None], outline.midline, below_chin[None]]))
    line = soften(box.stroke([seam], max(1, round(SEAM_WIDTH * face.face_w))), SEAM_BLUR_PX)
    panel = 1 + PANEL_CONTRAST * np.sign(params.gradient[0]) * np.tanh(u * face.face_w / 2 / (PANEL_EDGE * face.face_w))
    return (1 - params.seam * line) * panel


def _roll(below_top: np.ndarray, face: Face) -> np.ndarray:
    """A scarf's rolled top edge: a lit band along the top and its shadow below."""
    x = below_top / (ROLL_WIDTH * face.face_h)
    band = np.clip(1 - np.abs(2 * x - 1), 0, 1)  # 0 at the edge and at ROLL_WIDTH, 1 halfway
    shadow = np.exp(-(((x - 1.1) / 0.2) ** 2))
    return 1 + ROLL_HIGHLIGHT * band - ROLL_SHADOW * shadow
