"""The outline of a face covering, from the face mesh: where a mask or a scarf lies, and its ear loops.

A mask is the lower face oval pushed out below the chin, a top edge from the sides over the
cheekbones to the nose (a surgical mask's wire bends it down beside the nose, so it hugs the nose;
a cloth mask arches over it), and the nose-chin profile, which stands off a turned face. A scarf is
a wider band: from just below the eyes over the nose, out past the cheeks, hanging well below the
chin. Outline points jitter a little in the face's own frame, so no two coverings share an outline
and the jitter turns with the head.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from holotune.data.default.occluders.geometry import FACE_OVAL_LOOP, Face, unit
from holotune.data.default.occluders.raster import bezier, chaikin
from holotune.data.default.variants import LEFT, RIGHT, FaceCovering
from holotune.landmarks import FaceLandmark as F

# --- Where: face-mesh points ----------------------------------------------------------------------
MOUTH_POINTS = (F.UPPER_LIP_INNER, F.LOWER_LIP_INNER, F.RIGHT_MOUTH_CORNER, F.LEFT_MOUTH_CORNER,
                F.UPPER_LIP_TOP, F.LOWER_LIP_BOTTOM)
"""The mouth, which every covering covers (the tests check it is ``occluded``)."""
MASK_MIDLINE = (F.NOSE_TIP, F.NOSE_APEX, F.NOSE_UNDERSIDE, F.COLUMELLA, F.SUBNASALE, F.PHILTRUM,
                F.UPPER_LIP_TOP, F.UPPER_LIP_INNER, F.LOWER_LIP_INNER, F.LOWER_LIP_BOTTOM, F.LABIOMENTAL_FOLD,
                F.CHIN_UPPER, F.CHIN_CENTRE, F.CHIN_LOWER)
"""The profile from the nose tip to the chin, which a covering spans and a cloth mask's seam follows."""

# --- Masks ----------------------------------------------------------------------------------------
SIDE_PUSH = 0.35  # at its sides a mask's lower edge gets 35 % of the chin push: a little wider than the cheeks
CHEEK_SAG = 0.03  # face heights the top edge sags over each cheek between the nose and the side
MIDLINE_LIFT = 0.3  # the nose-chin profile stands 0.3 chin pushes off the face (it sticks out on a turned face)
CORNER_JITTER = 0.01  # outline points move up to 1 % of the face width: no two coverings share an outline
MIN_CORNER_JITTER_PX = 0.75  # ... and at least 0.75 px on a small face
SCARF_JITTER = 0.025  # a bulky knit scarf's outline is lumpier: 2.5 % of the face width
CHAIKIN_ITERATIONS = 3  # corner-cutting rounds: turn the polygon into a soft, fabric-like curve
WIRE_NOSE_DROP = 0.06  # face heights: beside the nose the wire bends the top edge this far down the nose's side

# --- Scarf ----------------------------------------------------------------------------------------
SCARF_EYE_CLEARANCE = 0.04  # face heights the scarf's top edge stays below the lower eyelids
SCARF_SIDE_SAG = 0.04  # face heights the top edge drops from the cheekbone to the side (it wraps round the head)
SCARF_TOP_PUSH = 0.8  # at the top edge the sides lie a little less far out than below (the scarf is tighter there)
SCARF_FLARE = 0.12  # face widths the sides spread outwards by the hem (it drapes over the shoulders)
SCARF_SIDE_STEPS = (0.15, 0.6, 1.0)  # points down each side, fractions of the way from the top edge to the hem
SCARF_DRAPE = 0.06  # face heights the hem sags below its corners under the chin

# --- Ear loops ------------------------------------------------------------------------------------
LOOP_HIDDEN_RATIO = 0.45  # a side whose nose-to-cheek span is < 0.45 of the other's faces away: loop hidden
LOOP_TOP_START = 0.4  # the upper loop leaves the top edge 40 % of the way from the side corner to the cheek
LOOP_LOWER_START = 0.2  # the lower loop leaves the lower edge 20 % along it from its side
EAR_OUT = 0.06  # face widths the ear (where both loops end) lies outside the cheek point
EAR_UP = 0.02  # face heights the ear lies above the cheek point
UPPER_LOOP_RISE = 0.08  # face heights the upper loop arcs up over the cheekbone
UPPER_LOOP_OUT = 0.03  # face widths the upper loop bulges outward
LOWER_LOOP_OUT = 0.1  # face widths the lower loop bulges outward around the jaw
LOWER_LOOP_DROP = 0.05  # face heights below the ear point the lower loop ends (behind the earlobe)
LOOP_POINTS = 24  # points per loop curve



@dataclass(frozen=True)
class Outline:
    """A covering's outline, in pixels.

    Attributes:
        polygons: closed, smoothed polygons (N, 2) whose union is the covering.
        top: the top edge, subject's right -> nose -> subject's left (unsmoothed).
        lower: the lower edge, subject's left -> chin -> subject's right.
        nose: where the top edge crosses the nose.
        midline: the nose-chin profile, lifted off the face.
    """

    polygons: list[np.ndarray]
    top: np.ndarray
    lower: np.ndarray
    nose: np.ndarray
    midline: np.ndarray


def mask_outline(face: Face, params: FaceCovering, rng: np.random.Generator) -> Outline:
    """A mask: the lower face oval pushed out, a top edge over the cheeks and the nose, the nose-chin profile.

    A surgical mask's wire bends its top edge down beside the nose (the edge hugs the nose); a cloth
    mask arches over it.
    """
    p, centre, down, reach, face_h = face.p, face.centre, face.down, face.reach, face.face_h
    oval = list(FACE_OVAL_LOOP)
    start = oval.index(F.LEFT_CHEEK) + params.side_drop[1]
    stop = oval.index(F.RIGHT_CHEEK) - params.side_drop[0]
    lower = p[oval[start:stop + 1]]
    # Push the lower edge out from the face centre: the full push * face_h below the chin, less at
    # the sides (a mask is a little wider than the cheeks, much lower than the chin).
    weight = SIDE_PUSH + (1 - SIDE_PUSH) * np.clip(face.level(lower) / reach, 0, 1)
    lower = lower + (lower - centre) / reach * (params.chin_push * face_h * weight)[:, None]
    nose = p[F.NOSE_BRIDGE] + params.top * (p[F.NOSE_TIP] - p[F.NOSE_BRIDGE])
    cheek_r = 0.5 * (lower[-1] + nose) + CHEEK_SAG * face_h * down
    cheek_l = 0.5 * (lower[0] + nose) + CHEEK_SAG * face_h * down
    midline = _lifted_midline(face, params)
    if params.style == "surgical":
        wire_level = float(face.level(nose)) + WIRE_NOSE_DROP * face_h
        side_r = face.at_level(p[F.RIGHT_NOSE_SIDE], wire_level)
        side_l = face.at_level(p[F.LEFT_NOSE_SIDE], wire_level)
        # Beside the nose the edge runs level with the wire's ends, no higher: it hugs the nose.
        cheek_r = face.at_level(cheek_r, max(float(face.level(cheek_r)), wire_level))
        cheek_l = face.at_level(cheek_l, max(float(face.level(cheek_l)), wire_level))
        top = np.stack([cheek_r, side_r, nose, side_l, cheek_l])
        body = _jitter(np.concatenate([lower, top]), face, rng, CORNER_JITTER)
        profile = _hull(_jitter(np.concatenate([lower, midline]), face, rng, CORNER_JITTER))
        polygons = [chaikin(body, CHAIKIN_ITERATIONS), chaikin(profile, CHAIKIN_ITERATIONS)]
    else:
        top = np.stack([cheek_r, nose, cheek_l])
        hull = _hull(_jitter(np.concatenate([lower, top, midline]), face, rng, CORNER_JITTER))
        polygons = [chaikin(hull, CHAIKIN_ITERATIONS)]
    return Outline(polygons, top, lower, nose, midline)


def scarf_outline(face: Face, params: FaceCovering, rng: np.random.Generator) -> Outline:
    """A scarf: a wide band of cloth from just below the eyes over the nose, out past the cheeks, hanging
    well below the chin (it is wrapped around the neck, so its sides fall straight and flare a little)."""
    p, face_h, face_w = face.p, face.face_h, face.face_w
    nose = p[F.NOSE_BRIDGE] + params.top * (p[F.NOSE_TIP] - p[F.NOSE_BRIDGE])
    bottom = float(face.level(p[F.CHIN])) + params.chin_push * face_h
    top, sides_r, sides_l = [nose], [], []
    for side, cheekbone, cheek in ((RIGHT, F.RIGHT_CHEEKBONE, F.RIGHT_CHEEK), (LEFT, F.LEFT_CHEEKBONE, F.LEFT_CHEEK)):
        level = max(float(face.level(nose)) + CHEEK_SAG * face_h, face.eye_bottom(side) + SCARF_EYE_CLEARANCE * face_h)
        over_cheek = face.at_level(p[cheekbone], level)
        out = face.outward(side) * face_w
        at_side = face.at_level(p[cheek] + SCARF_TOP_PUSH * params.side_push * out, level + SCARF_SIDE_SAG * face_h)
        top = [at_side, over_cheek, *top] if side == RIGHT else [*top, over_cheek, at_side]
        down_side = [face.at_level(p[cheek] + (params.side_push + f * SCARF_FLARE) * out, level + f * (bottom - level))
                     for f in SCARF_SIDE_STEPS]
        (sides_r if side == RIGHT else sides_l).extend(down_side)
    hem = face.at_level(p[F.CHIN], bottom + SCARF_DRAPE * face_h)
    top = np.stack(top)
    lower = np.stack([*sides_l[::-1], hem, *sides_r])  # subject's left -> chin -> right, like a mask's
    midline = _lifted_midline(face, params)
    hull = _hull(_jitter(np.concatenate([lower, top, midline]), face, rng, SCARF_JITTER))
    return Outline([chaikin(hull, CHAIKIN_ITERATIONS)], top, lower, nose, midline)


def _lifted_midline(face: Face, params: FaceCovering) -> np.ndarray:
    """The nose-chin profile, standing a little off the face (in a turned face it sticks out past the oval)."""
    midline = face.p[list(MASK_MIDLINE)]
    return midline + (midline - face.centre) / face.reach * MIDLINE_LIFT * params.chin_push * face.face_h


def _jitter(points: np.ndarray, face: Face, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Points moved up to ``amount`` face widths, in the face's own frame (so the jitter turns with the face)."""
    r = max(amount * face.face_w, MIN_CORNER_JITTER_PX)
    offsets = rng.uniform(-r, r, points.shape)
    return points + offsets[:, :1] * face.axis + offsets[:, 1:] * face.down


def _hull(points: np.ndarray) -> np.ndarray:
    return cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def ear_loops(face: Face, outline: Outline) -> list[np.ndarray]:
    """The ear loops (polylines): from the mask's upper and lower side to behind the ear, for each side
    facing the camera."""
    p, lower, down, face_w, face_h = face.p, outline.lower, face.down, face.face_w, face.face_h
    half_r = np.linalg.norm(p[F.RIGHT_CHEEK] - p[F.NOSE_TIP])
    half_l = np.linalg.norm(p[F.LEFT_CHEEK] - p[F.NOSE_TIP])
    loops = []
    for cheek, end, top_cheek, lower_pt, half, other in (
        (p[F.RIGHT_CHEEK], lower[-1], outline.top[0], lower[int(len(lower) * (1 - LOOP_LOWER_START))], half_r, half_l),
        (p[F.LEFT_CHEEK], lower[0], outline.top[-1], lower[int(len(lower) * LOOP_LOWER_START)], half_l, half_r),
    ):
        if half < LOOP_HIDDEN_RATIO * other:  # this side turns away from the camera: its loop is hidden
            continue
        outward = unit(cheek - face.centre)
        ear = cheek + EAR_OUT * face_w * outward - EAR_UP * face_h * down
        top_start = (1 - LOOP_TOP_START) * end + LOOP_TOP_START * top_cheek  # near the top edge's side corner
        loops.append(bezier(np.stack([top_start, 0.5 * (top_start + ear) - UPPER_LOOP_RISE * face_h * down
                                      + UPPER_LOOP_OUT * face_w * outward, ear]), LOOP_POINTS))
        loops.append(bezier(np.stack([lower_pt, 0.5 * (lower_pt + ear) + LOWER_LOOP_OUT * face_w * outward,
                                      ear + LOWER_LOOP_DROP * face_h * down]), LOOP_POINTS))
    return loops
