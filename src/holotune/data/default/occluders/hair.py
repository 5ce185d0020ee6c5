"""Hair across the face: a bundle of strands from the hairline down across one eye and cheek.

Each strand is a cubic Bezier curve from a root above the hairline to a tip below the eye, the bundle
narrower at its roots than at its tips and bowed sideways; strands hang in clumps that share a path,
and a few stray from the bundle. Strands are
anti-aliased strokes that taper (fainter towards the tip), vary in shade, catch a highlight band
(the sheen of hair) and cast a soft shadow on the skin. Where the bundle is dense its coverage
exceeds one half and the points below count as occluded; between sparse strands they stay visible.
"""

from __future__ import annotations

import numpy as np

from holotune.data.default.occluders.geometry import Face, sided, unit
from holotune.data.default.occluders.light import Light, colour01, composite, grey3, paint, scale
from holotune.data.default.occluders.raster import Box, shifted, soften
from holotune.data.default.variants import Hair
from holotune.landmarks import FaceLandmark as F

ROOT_LIFT = 0.18  # face heights above the hairline the strands start (inside the hair: they grow from the scalp)
ROOT_SPREAD = 0.7  # the bundle is 70 % as wide at its roots as at its tips
TIP_OUTWARD = 0.06  # face widths outside the eye centre the bundle's tips are centred
EYE_DROP = 0.08  # reach 0 ends this many face heights below the eye centre (the bundle crosses the eye)
FALL = 0.35  # the strands leave the roots downwards: the first control point lies 0.35 lengths below the root ...
ARRIVE = 0.35  # ... and they arrive at the tips from above: the second lies 0.35 lengths above the tip
BOW_SECOND = 0.6  # the second control point bows 60 % as far sideways as the first: the bow eases out at the tips
STRANDS_PER_CLUMP = 15  # hair hangs in clumps of about 15 strands that share a path
CLUMP_WIDTH = 0.5  # a clump's strands lie within +-0.5 of the bundle's half-width of its centre (clumps overlap)
CLUMP_WANDER = 0.05  # face widths each clump's control points wander
STRAND_WANDER = 0.02  # face widths each strand wanders from its clump
STRAY_FRACTION = 0.1  # strands that stray from the bundle ...
STRAY_JITTER = 0.1  # ... by this many face widths ...
STRAY_OPACITY = 0.5  # ... and are fainter
LENGTH_RANGE = (0.75, 1.0)  # strands end 75-100 % of the way to the bundle's tip
ROOT_FADE = 0.25  # strands fade in over their first 25 % (their roots are hidden in the hair above)
MIN_STRAND_COVER = 0.75  # a strand thinner than a pixel is drawn fainter, but it is a clump of hairs: >= 75 % opaque
SEGMENTS = 6  # a strand is drawn in 6 pieces, each with its own shade and alpha (taper, sheen)
POINTS_PER_SEGMENT = 5  # points per piece: 31 per strand, smooth at the curvature of a hair bundle
SHADE_RANGE = (0.7, 1.2)  # per-strand brightness
SHEEN_POSITION = (0.25, 0.5)  # where along the bundle its highlight band lies
SHEEN_SCATTER = 0.04  # each strand's band is shifted a little (strands are not aligned)
SHEEN_WIDTH = 0.1  # the band's Gaussian width, fraction of a strand
TAPER = 0.6  # a strand's alpha falls by 60 % from root to tip
HIGHLIGHT_PALING = 0.6  # brightness above 1 blends 0.6 x (level - 1) of the way to white
MIN_WEIGHT = 1e-6  # guards the shade's weighted mean where no strand is
SHADE_LEVELS = 5  # strand pieces are drawn in 5 shade groups x 3 alpha groups: one polylines call each ...
ALPHA_LEVELS = 3  # ... (a few dozen calls, not hundreds)
SHADOW_BLUR = 0.015  # face widths: the shadow's softness
SHADOW_SHIFT = 0.008  # face heights the shadow falls below the strands
SHADOW_DARKENING = 0.3  # a dense bundle darkens the skin below by 30 %


def draw_hair(image: np.ndarray, face: Face, light: Light, params: Hair, grey: bool) -> np.ndarray:
    """Draw a hair bundle into ``image`` ((H, W, 3) float32 RGB in [0, 1], in place).

    Returns:
        (H, W) float32: the strands' combined coverage in [0, 1].
    """
    rng = np.random.default_rng(params.seed)
    curves, shade, alpha_of = _strands(face, params, rng)
    width_px = params.width * face.face_w
    thickness = max(1, round(width_px))
    alpha_of = alpha_of * float(np.clip(width_px, MIN_STRAND_COVER, 1.0))
    box = Box.around(curves.reshape(-1, 2), thickness + 3 * SHADOW_BLUR * face.face_w + 2, image.shape[:2])
    coverage = np.zeros(image.shape[:2], np.float32)
    if box.empty:
        return coverage
    shade_level = _quantize(shade, SHADE_LEVELS)
    alpha_level = _quantize(alpha_of, ALPHA_LEVELS)
    groups = []
    for si in np.unique(shade_level[1]):
        for ai in np.unique(alpha_level[1]):
            pick = (shade_level[1] == si) & (alpha_level[1] == ai)
            if pick.any():
                cover = box.stroke(curves[pick], thickness)
                groups.append((shade_level[0][si], alpha_level[0][ai] * cover))
    # Overlapping strands: the bundle's coverage is 1 - prod(1 - a); its shade, the coverage-weighted
    # mean of the groups' (strands are drawn as one layer, not one by one: the order of thin
    # overlapping strands is invisible).
    clear = np.ones(box.shape, np.float32)
    weighted = np.zeros(box.shape, np.float32)
    weights = np.zeros(box.shape, np.float32)
    for level, a in groups:
        clear *= 1 - a
        weighted += level * a
        weights += a
    total = 1 - clear
    level = weighted / np.maximum(weights, MIN_WEIGHT)
    # The strands' soft shadow on the skin, a little below them.
    shadow = soften(total, SHADOW_BLUR * face.face_w)
    shadow = shifted(shadow, SHADOW_SHIFT * face.face_h * face.down)
    scale(image, box, 1 - SHADOW_DARKENING * shadow)
    base = colour01(params.colour, grey) * light.exposure
    composite(image, box, np.clip(_shaded(base, level, light.shading(box)), 0, 1), total)
    box.paste(coverage, total)
    return coverage


def _strands(face: Face, params: Hair, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The strands' pieces: (n * SEGMENTS, POINTS_PER_SEGMENT + 1, 2) polylines, and each piece's shade and alpha."""
    side, down, face_w = params.side, face.down, face.face_w
    outward = face.outward(side)
    line = face.hairline(side)
    steps = np.r_[0, np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))]
    at = params.start * steps[-1]
    root = np.array([np.interp(at, steps, line[:, 0]), np.interp(at, steps, line[:, 1])]) - ROOT_LIFT * face.face_h * down
    eye = face.eye(side)
    eye_level = float(face.level(eye)) + EYE_DROP * face.face_h
    jaw_level = float(face.level(face.p[sided(side, F.RIGHT_JAW, F.LEFT_JAW)]))
    tip = face.at_level(eye + TIP_OUTWARD * face_w * outward, eye_level + params.reach * (jaw_level - eye_level))
    direction = unit(tip - root)
    across = np.array([-direction[1], direction[0]])
    span = float(np.linalg.norm(tip - root))
    n = params.strands
    clumps = max(1, round(n / STRANDS_PER_CLUMP))
    clump = rng.integers(clumps, size=n)
    clump_k = rng.uniform(-1, 1, clumps)
    k = np.clip(clump_k[clump] + rng.uniform(-CLUMP_WIDTH, CLUMP_WIDTH, n), -1, 1)
    stray = rng.random(n) < STRAY_FRACTION
    half = 0.5 * params.spread * face_w
    roots = root + (k * ROOT_SPREAD * half)[:, None] * across
    tips = tip + (k * half)[:, None] * across
    # Each control point wanders in the face's frame (so the hair turns with the head): (n, 2 points, 2 axes).
    wander = (CLUMP_WANDER * rng.uniform(-1, 1, (clumps, 2, 2))[clump]
              + np.where(stray, STRAY_JITTER, STRAND_WANDER)[:, None, None] * rng.uniform(-1, 1, (n, 2, 2))) * face_w
    wander = wander[..., :1] * face.axis + wander[..., 1:] * down
    bow = params.bend * face_w * outward
    c1 = roots + FALL * span * down + bow + wander[:, 0]
    c2 = tips - ARRIVE * span * down + BOW_SECOND * bow + wander[:, 1]
    length = rng.uniform(*LENGTH_RANGE, n)
    m = SEGMENTS * POINTS_PER_SEGMENT + 1
    t = np.linspace(0, 1, m)[None, :] * length[:, None]  # (n, m)
    b = [(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3]
    points = sum(w[..., None] * c[:, None, :] for w, c in zip(b, (roots, c1, c2, tips)))  # (n, m, 2)
    starts = np.arange(SEGMENTS) * POINTS_PER_SEGMENT
    pieces = np.stack([points[:, s:s + POINTS_PER_SEGMENT + 1] for s in starts], axis=1)  # (n, SEGMENTS, P+1, 2)
    t_mid = (starts + POINTS_PER_SEGMENT / 2) / (m - 1) * length[:, None]  # (n, SEGMENTS)
    sheen_at = rng.uniform(*SHEEN_POSITION) + rng.normal(0, SHEEN_SCATTER, n)
    shade = rng.uniform(*SHADE_RANGE, n)[:, None] * (
        1 + params.sheen * np.exp(-(((t_mid - sheen_at[:, None]) / SHEEN_WIDTH) ** 2)))
    alpha = params.opacity * np.where(stray, STRAY_OPACITY, 1.0)[:, None] * (1 - TAPER * t_mid)
    alpha = alpha * np.clip(t_mid / ROOT_FADE, 0, 1)
    return pieces.reshape(-1, POINTS_PER_SEGMENT + 1, 2), shade.ravel(), alpha.ravel()


def _shaded(colour: np.ndarray, level: np.ndarray, lit: np.ndarray) -> np.ndarray:
    """(h, w, 3) hair of ``colour`` at brightness ``level`` (h, w) in light ``lit`` (h, w): darker below 1;
    above 1 it blends towards white (a highlight on hair is a paler, less saturated tone, not a brighter
    saturated one)."""
    paling = np.clip((level - 1) * HIGHLIGHT_PALING, 0, 1)
    return paint(colour, np.minimum(level, 1) * (1 - paling) * lit) + grey3(paling * lit)


def _quantize(values: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(level values, each value's level index): ``values`` binned into ``levels`` equal bins, each
    represented by its members' mean (one draw call per bin)."""
    lo, hi = float(values.min()), float(values.max())
    index = np.minimum(((values - lo) / max(hi - lo, 1e-9) * levels).astype(int), levels - 1)
    means = np.array([values[index == i].mean() if np.any(index == i) else 0.0 for i in range(levels)])
    return means, index
