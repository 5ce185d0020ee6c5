"""A hand over part of the face: the back of a hand, palm towards the face, and its forearm.

The hand is a palm, four fingers of three phalanges and a thumb, each finger a chain of tapered
capsules, in the proportions of an adult hand (fractions of its length, wrist to middle fingertip,
which is about one face height). It is placed in the face frame, so it turns and rolls with the head:
its fingers lie across the mouth or the chin, over one eye, or up the cheek, entering from the
subject's right or left (it is that side's hand; its thumb is where that hand's thumb is seen from
the back). Its skin is the face's own (sampled from the cheeks and forehead before anything is drawn,
so it is as lit as the face), shaded as rounded fingers, a little darker towards the wrist, with
knuckle creases, knuckle highlights, optional nails, and a soft contact shadow on the face.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from holotune.data.default.occluders.geometry import MIN_PX, Face, rotate, sided, unit
from holotune.data.default.occluders.light import composite, grey3, paint, scale
from holotune.data.default.occluders.raster import Box, shifted, soften
from holotune.data.default.variants import RIGHT, Hand
from holotune.landmarks import FaceLandmark as F

# --- Skin sampling --------------------------------------------------------------------------------
SKIN_POINTS = (F.RIGHT_CHEEKBONE, F.LEFT_CHEEKBONE, F.RIGHT_CHEEK_CENTRE, F.LEFT_CHEEK_CENTRE)
"""Bare skin on nearly every face (the cheeks, below glasses and beside a moustache), sampled with mid-forehead."""
SKIN_RADIUS = 0.06  # face widths: the patches sampled around them
FOREHEAD_SAMPLE = 0.6  # the forehead patch: 60 % of the way from FOREHEAD to NOSE_BRIDGE (below the hairline)

# --- Proportions, fractions of the hand's length --------------------------------------------------
KNUCKLES = ((0.52, 0.155), (0.55, 0.05), (0.53, -0.055), (0.48, -0.15))
"""(along the hand, towards the thumb) of the index, middle, ring and little fingers' knuckles."""
MIDDLE = 1  # the middle finger's index in KNUCKLES
FINGER_LENGTHS = (0.41, 0.45, 0.42, 0.33)  # knuckle to tip
FINGER_RADII = (0.052, 0.054, 0.05, 0.043)  # at the knuckle: neighbouring fingers touch
FINGER_LENGTH_JITTER = 0.03  # each finger's length varies by +-3 %
PHALANGES = (0.45, 0.3, 0.25)  # proximal, middle, distal share of a finger
TIP_TAPER = 0.88  # a finger's radius at its tip, fraction of its radius at the knuckle
FINGER_BEND_DEG = 4.0  # each joint bends up to +-4 degrees sideways: a relaxed hand is not a diagram
THUMB_BASE = (0.12, 0.14)  # (along, towards the thumb) of the thumb's base
THUMB_SEGMENTS = (0.17, 0.13, 0.11)  # metacarpal (inside the hand's outline), proximal and distal phalanx
THUMB_RADIUS = 0.064  # at its base
THUMB_CURL_DEG = 12.0  # each thumb joint turns back towards the fingers
PALM = ((0.0, -0.13), (0.42, -0.19), (0.52, -0.11), (0.55, 0.05), (0.53, 0.19), (0.25, 0.22), (0.03, 0.15))
"""The back of the hand's outline, (along, towards the thumb), from the wrist's little-finger side."""
FOREARM_LENGTH = 1.4  # wrist to elbow (beyond the picture, usually)
FOREARM_RADII = (0.14, 0.19)  # at the wrist and further up the arm
FOREARM_DROP = 0.6  # the forearm leaves the wrist backwards, turned this much (x down) towards the elbow below

# --- Placement per target -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placement:
    """How a hand covering one target lies: its fingers point ``angle`` degrees from the face's up
    towards its middle, and the point ``anchor`` (hand lengths from the wrist) lies on the target."""

    angle: float
    anchor: float


PLACEMENTS = {
    "cheek": _Placement(15.0, 0.35),  # palm on the cheek, fingers up towards the temple
    "mouth": _Placement(80.0, 0.68),  # fingers across the mouth from the side
    "chin": _Placement(95.0, 0.66),  # fingers across the chin
    "eye": _Placement(40.0, 0.7),  # fingers up and across one eye
}
TARGET_OUTWARD = 0.05  # face widths the cheek target lies outside the cheek centre (the palm rests on the cheekbone)

# --- Look -----------------------------------------------------------------------------------------
AMBIENT = 0.72  # a finger's edge, turned away from the camera, is this bright relative to its crest
RIM_LINE_PX = 1.2  # a dark outline this wide separates overlapping fingers
RIM_LINE_DARKENING = 0.1
CREASE_OFFSETS = (-0.3, 0.0, 0.25)  # wrinkles on the back of a finger joint, radii from the joint
CREASE_WIDTH = 0.08  # their Gaussian width, radii
CREASE_BOW = 0.35  # they curve towards the fingertip at the finger's sides, radii
CREASE_DARKENING = (0.22, 0.14)  # at the middle and end joints
CREASE_REACH = 1.3  # radii around a joint the wrinkles are computed in
KNUCKLE_HIGHLIGHT = 0.1  # the knuckles catch the light on the back of the hand
KNUCKLE_SIZE = 0.9  # radii
NAIL_SPAN = (0.35, 0.93)  # a nail covers this part of the distal phalanx
NAIL_HALF_WIDTH = 0.6  # radii
NAIL_TINT = (1.08, 1.0, 1.0)  # a little pinker than the skin (monochrome: the skin's grey, only glossier)
NAIL_GLOSS = 0.18  # its highlight ...
NAIL_GLOSS_WIDTH = 0.25  # ... along the nail's middle, Gaussian half-width in radii
WRIST_FALLOFF = 0.12  # the wrist is 12 % darker than the fingertips
SKIN_NOISE = 0.008  # pores and fine texture, fraction of full scale
SHADOW_BLUR = 0.04  # face widths: the contact shadow's softness
SHADOW_SHIFT = 0.015  # face heights the shadow falls below the hand


def sample_skin(image: np.ndarray, face: Face) -> np.ndarray:
    """(3,) float32: the face's skin colour, the median of patches on both cheeks and the forehead."""
    p = face.p
    centres = [p[i] for i in SKIN_POINTS] + [p[F.FOREHEAD] + FOREHEAD_SAMPLE * (p[F.NOSE_BRIDGE] - p[F.FOREHEAD])]
    r = max(SKIN_RADIUS * face.face_w, 1.0)
    pixels = []
    for c in centres:
        box = Box.around(c[None], r, image.shape[:2])
        if box.empty:
            continue
        yy, xx = box.grid()
        pixels.append(image[box.slices][(xx - c[0]) ** 2 + (yy - c[1]) ** 2 <= r * r])
    pixels = np.concatenate(pixels) if pixels else image.reshape(-1, 3)
    return np.median(pixels, axis=0).astype(np.float32)


@dataclass(frozen=True)
class _Capsules:
    """A chain of tapered capsules: joints (k + 1, 2) pixels and their radii (k + 1,)."""

    joints: np.ndarray
    radii: np.ndarray


def hand_parts(face: Face, params: Hand, rng: np.random.Generator) -> tuple[list[_Capsules], np.ndarray, np.ndarray]:
    """The hand in pixels: [forearm, thumb, little, ring, middle, index] capsule chains (painter's order),
    the palm's outline (N, 2), and the knuckles (4, 2)."""
    place = PLACEMENTS[params.target]
    inward = -face.outward(params.side)
    up = -face.down
    a = np.radians(place.angle + params.angle_deg)
    fingers_dir = unit(np.cos(a) * up + np.sin(a) * inward)
    length = params.length * face.face_h
    # The back of a right hand with its fingers up shows its thumb on the image's left (mirrored for the left).
    thumb_side = np.array([fingers_dir[1], -fingers_dir[0]])
    if params.side != RIGHT:
        thumb_side = -thumb_side
    target = _target(face, params)
    # The target lies on the middle finger's line (between two fingers it could show through a gap).
    wrist = (target - (place.anchor + params.offset) * length * fingers_dir
             - KNUCKLES[MIDDLE][1] * length * params.width * thumb_side)

    def at(along: float, towards_thumb: float) -> np.ndarray:
        return wrist + length * (along * fingers_dir + towards_thumb * params.width * thumb_side)

    cross = fingers_dir[0] * thumb_side[1] - fingers_dir[1] * thumb_side[0]
    towards_thumb = 1.0 if cross > 0 else -1.0  # the rotate() sign that turns towards the thumb
    chains, knuckles = [], []
    spread = np.radians(params.spread_deg)
    for i in (3, 2, 1, 0):  # little, ring, middle, index: the index finger is drawn last, on top
        knuckle = at(*KNUCKLES[i])
        direction = rotate(fingers_dir, towards_thumb * (1.5 - i) * spread)
        finger = FINGER_LENGTHS[i] * length * (1 + rng.uniform(-FINGER_LENGTH_JITTER, FINGER_LENGTH_JITTER))
        joints = [knuckle]
        for share in PHALANGES:
            direction = rotate(direction, np.radians(rng.uniform(-FINGER_BEND_DEG, FINGER_BEND_DEG)))
            joints.append(joints[-1] + share * finger * direction)
        r = FINGER_RADII[i] * length * params.width
        chains.append(_Capsules(np.stack(joints), r * np.linspace(1, TIP_TAPER, len(joints))))
        knuckles.append(knuckle)
    direction = rotate(fingers_dir, towards_thumb * np.radians(params.thumb_deg))
    joints = [at(*THUMB_BASE)]
    for segment in THUMB_SEGMENTS:
        joints.append(joints[-1] + segment * length * direction)
        direction = rotate(direction, -towards_thumb * np.radians(THUMB_CURL_DEG))
    thumb = _Capsules(np.stack(joints), THUMB_RADIUS * length * params.width * np.linspace(1, TIP_TAPER, len(joints)))
    elbow_dir = unit(-fingers_dir + FOREARM_DROP * face.down)
    forearm = _Capsules(np.stack([wrist, wrist + FOREARM_LENGTH * length * elbow_dir]),
                        np.array(FOREARM_RADII) * length * params.width)
    palm = np.stack([at(*corner) for corner in PALM])
    return [forearm, thumb, *chains], palm, np.stack(knuckles)


def _target(face: Face, params: Hand) -> np.ndarray:
    p, side = face.p, params.side
    if params.target == "cheek":
        return p[sided(side, F.RIGHT_CHEEK_CENTRE, F.LEFT_CHEEK_CENTRE)] + TARGET_OUTWARD * face.face_w * face.outward(side)
    if params.target == "mouth":
        return 0.5 * (p[F.RIGHT_MOUTH_CORNER] + p[F.LEFT_MOUTH_CORNER])
    if params.target == "chin":
        return p[F.CHIN_CENTRE]
    return face.eye(side)


def draw_hand(image: np.ndarray, face: Face, params: Hand, skin: np.ndarray, grey: bool) -> np.ndarray:
    """Draw a hand into ``image`` ((H, W, 3) float32 RGB in [0, 1], in place).

    Args:
        skin: (3,) the face's skin colour (:func:`sample_skin`, taken before anything was drawn).

    Returns:
        (H, W) float32: the hand's coverage in [0, 1].
    """
    rng = np.random.default_rng(params.seed)
    chains, palm, knuckles = hand_parts(face, params, rng)
    margin = 3 * SHADOW_BLUR * face.face_w + 2
    points = np.concatenate([palm] + [c.joints for c in chains])
    box = Box.around(points, max(float(c.radii.max()) for c in chains) + margin, image.shape[:2])
    coverage = np.zeros(image.shape[:2], np.float32)
    if box.empty:
        return coverage
    colour = _skin(skin, params, grey)
    maps = _Maps.empty(box.shape)
    forearm, thumb, *fingers = chains
    maps.paint(box, forearm.joints, float(forearm.radii.max()), lambda part: _capsule_part(part, forearm))
    finger_r = float(fingers[-1].radii[0])
    maps.paint(box, palm, 1.0, lambda part: _palm_part(part, palm, knuckles, finger_r))
    for chain, creases in [(thumb, False)] + [(f, True) for f in fingers]:
        maps.paint(box, chain.joints, float(chain.radii.max()),
                   lambda part, c=chain, k=creases: _capsule_part(part, c, creases=k, nails=params.nails))
    # The skin was sampled from the lit face, so it carries the scene's exposure; the light falls a
    # little less on the wrist than on the fingers (the hand is tilted towards the face).
    light_map = _tilt(box, chains[-1].joints[-1], chains[0].joints[0]) * (
        1 + np.float32(SKIN_NOISE) * rng.standard_normal(box.shape, dtype=np.float32))
    skin_part = maps.brightness * light_map
    nail_colour = colour if grey else colour * np.array(NAIL_TINT, np.float32)
    layer = paint(colour, skin_part * (1 - maps.nail)) + paint(nail_colour, skin_part * maps.nail) + grey3(maps.gloss)
    # A soft contact shadow on the face, a little below the hand.
    shadow = soften(maps.cover, SHADOW_BLUR * face.face_w)
    shadow = shifted(shadow, SHADOW_SHIFT * face.face_h * face.down)
    scale(image, box, 1 - params.shadow * shadow)
    composite(image, box, np.clip(layer, 0, 1), maps.cover)
    box.paste(coverage, maps.cover)
    return coverage


@dataclass
class _Maps:
    """The hand drawn so far, as per-pixel maps of its box (h, w): skin brightness, nail coverage,
    nail gloss and the hand's coverage (one RGB image is painted from them at the end: cheaper than
    compositing RGB part by part)."""

    brightness: np.ndarray
    nail: np.ndarray
    gloss: np.ndarray
    cover: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> _Maps:
        return cls(*(np.zeros(shape, np.float32) for _ in range(4)))

    def paint(self, box: Box, points: np.ndarray, radius: float, draw) -> None:
        """Painter's compositing of one part over the hand drawn so far, computed only around the part.

        Args:
            box: the hand's box (the maps' pixels).
            points: the part's skeleton (N, 2); ``radius``: how far the part reaches from it.
            draw: ``draw(part_box) -> (brightness, nail, gloss, alpha)``, each (h, w) on the part's own box.
        """
        part = Box.around(points, radius + 2, (box.y1, box.x1))
        part = Box(max(part.x0, box.x0), max(part.y0, box.y0), part.x1, part.y1)
        if part.empty:
            return
        *values, alpha = draw(part)
        local = slice(part.y0 - box.y0, part.y1 - box.y0), slice(part.x0 - box.x0, part.x1 - box.x0)
        keep = 1 - alpha
        for target, value in zip((self.brightness, self.nail, self.gloss), values):
            region = target[local]
            region *= keep
            region += value * alpha
        np.maximum(self.cover[local], alpha, out=self.cover[local])


def _tilt(box: Box, fingertip: np.ndarray, wrist: np.ndarray) -> np.ndarray:
    """(h, w) brightness falling linearly from 1 at the fingertips to ``1 - WRIST_FALLOFF`` at the wrist."""
    yy, xx = box.grid()
    axis = fingertip - wrist
    t = ((xx - wrist[0]) * axis[0] + (yy - wrist[1]) * axis[1]) / max(float(axis @ axis), MIN_PX)
    return (1 - WRIST_FALLOFF * (1 - np.clip(t, 0, 1))).astype(np.float32)


def _skin(skin: np.ndarray, params: Hand, grey: bool) -> np.ndarray:
    """The hand's skin: the face's, scaled, warmer or cooler (monochrome: only scaled)."""
    warmth = 0.0 if grey else params.skin_warmth
    return np.clip(skin * params.skin_gain * np.array([1 + warmth, 1.0, 1 - warmth], np.float32), 0, 1)


def _capsule_part(box: Box, chain: _Capsules, creases: bool = False, nails: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(brightness, nail, gloss, coverage) in ``box`` of a rounded, tapered finger (or thumb, or forearm)."""
    yy, xx = box.grid()
    # Per pixel, of the nearest segment: signed distance to the skin (best), distance from the axis
    # (across, in radii), position along the segment (along, 0..1), which segment, its radius there.
    segment = np.zeros(box.shape, np.int8)
    for j in range(len(chain.joints) - 1):
        a, b = chain.joints[j], chain.joints[j + 1]
        ba = (b - a).astype(np.float32)
        px, py = xx - np.float32(a[0]), yy - np.float32(a[1])
        h = np.clip((px * ba[0] + py * ba[1]) * np.float32(1 / max(float(ba @ ba), MIN_PX)), 0, 1)
        r = np.float32(chain.radii[j]) + np.float32(chain.radii[j + 1] - chain.radii[j]) * h
        d = np.hypot(px - ba[0] * h, py - ba[1] * h)
        sdf = d - r
        if j == 0:  # the first segment is the nearest so far everywhere
            best, across, along, radius = sdf, d / np.maximum(r, MIN_PX), h, r
            continue
        closer = sdf < best
        best = np.where(closer, sdf, best)
        across = np.where(closer, d / np.maximum(r, MIN_PX), across)
        along = np.where(closer, h, along)
        segment = np.where(closer, np.int8(j), segment)
        radius = np.where(closer, r, radius)
    alpha = np.clip(0.5 - best, 0, 1)
    crest = np.sqrt(np.clip(1 - across**2, 0, 1))
    shade = AMBIENT + (1 - AMBIENT) * np.sqrt(crest)
    shade *= 1 - RIM_LINE_DARKENING * np.clip(1 + best / RIM_LINE_PX, 0, 1)  # the outline
    shade = shade.astype(np.float32)
    nail_map = np.zeros_like(shade)
    gloss_map = np.zeros_like(shade)
    if creases:  # computed only around each joint: the wrinkles are short
        for joint, darkening in zip((1, 2), CREASE_DARKENING):
            if joint >= len(chain.joints) - 1:
                continue
            c, direction = chain.joints[joint], unit(chain.joints[joint + 1] - chain.joints[joint])
            r = float(chain.radii[joint])
            win = _window(box, c[None], CREASE_REACH * r)
            if win is None:
                continue
            wy, wx = yy[win[0]], xx[:, win[1]]
            rel = ((wx - c[0]) * direction[0] + (wy - c[1]) * direction[1]) / r - CREASE_BOW * across[win] ** 2
            lines = sum(np.exp(-(((rel - o) / CREASE_WIDTH) ** 2)) for o in CREASE_OFFSETS)
            shade[win] *= 1 - darkening * np.clip(lines, 0, 1) * crest[win]
    win = _window(box, chain.joints[-2:], float(chain.radii[-2])) if nails else None
    if win is not None:  # computed only around the fingertip
        last = len(chain.joints) - 2
        seg_len = float(np.linalg.norm(chain.joints[-1] - chain.joints[-2]))
        w_along, w_across, w_radius = along[win], across[win], radius[win]
        end = np.clip((NAIL_SPAN[1] - w_along) * seg_len, -1, 1)  # pixels before the nail's free edge
        nail = ((segment[win] == last) & (w_along > NAIL_SPAN[0])) * np.clip(
            0.5 + (NAIL_HALF_WIDTH - w_across) * w_radius, 0, 1) * np.clip(0.5 + end, 0, 1)
        nail *= np.clip((w_along - NAIL_SPAN[0]) * seg_len, 0, 1)
        nail_map[win] = nail
        gloss_map[win] = NAIL_GLOSS * np.exp(-((w_across / NAIL_GLOSS_WIDTH) ** 2)) * nail
    return shade, nail_map, gloss_map, alpha.astype(np.float32)


def _window(box: Box, points: np.ndarray, reach: float) -> tuple[slice, slice] | None:
    """The slices of ``box``'s arrays within ``reach`` pixels of ``points`` (N, 2), or None if none are."""
    win = Box.around(points, reach + 1, (box.y1, box.x1))
    win = Box(max(win.x0, box.x0), max(win.y0, box.y0), win.x1, win.y1)
    if win.empty:
        return None
    return slice(win.y0 - box.y0, win.y1 - box.y0), slice(win.x0 - box.x0, win.x1 - box.x0)


def _palm_part(box: Box, palm: np.ndarray, knuckles: np.ndarray, finger_r: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(brightness, nail, gloss, coverage) in ``box`` of the back of the hand: flat in the middle,
    rounding off at its edges, lit knuckles (no nails)."""
    yy, xx = box.grid()
    alpha = box.fill([palm])
    depth = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_3)
    crest = np.clip(depth / max(2 * finger_r, 1.0), 0, 1)
    shade = AMBIENT + (1 - AMBIENT) * np.sqrt(crest)
    for k in knuckles:
        shade += KNUCKLE_HIGHLIGHT * np.exp(-((np.hypot(xx - k[0], yy - k[1]) / (KNUCKLE_SIZE * finger_r)) ** 2))
    none = np.zeros_like(alpha)
    return shade.astype(np.float32), none, none, alpha
