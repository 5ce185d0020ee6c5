"""The embedded default dataset: labelled domain-shift variants of photographs shipped in packages.

``dvc repro`` must run with no user data, so :func:`build_default_data` builds a small dataset at
run time from images inside installed packages (nothing is downloaded):

* three real photographs: matplotlib's ``sample_data/grace_hopper.jpg``, scikit-image's
  ``astronaut()`` and ``camera()`` (:func:`holotune.samples.sample_images`);
* the 100 face crops of scikit-image's ``lfw_subset()`` (25x25 greyscale; its other 100 images
  are non-face background patches and are never used).

Every subject is rendered as a full factorial of four conditions, each with its own geometric
jitter (so that stock error on ``clean`` is not 0 by construction):

=============  ===========================================================================
condition      what is drawn
=============  ===========================================================================
``clean``      geometric jitter only
``mask``       jitter + a textured face mask (30 % of them also wear sunglasses)
``low_light``  jitter + low-light capture (gain, gamma, colour cast, noise, blur, low res)
``both``       jitter + mask (+ sometimes sunglasses) + low light
=============  ===========================================================================

Sunglasses are a secondary accessory of the occlusion conditions, not a condition of their own
(that keeps the factorial 2x2): each row's ``accessory`` is ``none``, ``mask`` or
``mask+sunglasses``.

Labels. Keypoints follow the 543 layout of :mod:`holotune.landmarks` (normalized image
coordinates; z as MediaPipe gives it, in units of the image width). They are *pseudo-labels*: the
stock model's output (MediaPipe Holistic on ONNX Runtime, :class:`holotune.runtime.Holistic`; for
LFW the face-mesh model alone, with MediaPipe's landmark-driven ROI refinement) on the clean,
un-jittered image, carried through the exact affine of each variant. The teacher runs once per
source image. A point's ``mask`` is 1 where the teacher found its part and the transformed point
lies inside the image, else 0; LFW subjects have only the face labelled (pose and hands mask 0).

Honest limits of this data:

* Labels are the stock model's own predictions, not human annotation: error against them measures
  agreement with stock behaviour on the clean image, and the labels inherit its mistakes (e.g. on
  the cameraman's three-quarter profile, or on the blurry LFW upscales).
* Occluders and low light are synthetic (drawn polygons and a simple camera-noise model), not
  photographs of masked people in the dark; points under the occluder keep the clean-image label
  (what the model should infer), recorded per point in ``occluded``.
* Only 3 real, sharp identities (all roughly frontal except the cameraman); the LFW faces are 25x25
  greyscale crops, upscaled with replicated (streaked) borders. LFW identities are not guaranteed
  distinct (a few people appear more than once in ``lfw_subset``), so an identity split over
  ``subject`` may leak an LFW person; no person here is annotated with hands (the teacher finds
  none), so the hand rows are always masked out.

Everything is deterministic: the same :class:`DefaultDataOptions` give a byte-identical
``labels.jsonl`` (and, with the same OpenCV build, identical JPEGs).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from holotune.landmarks import (
    FACE_SLICE,
    FACEMESH_FACE_OVAL,
    FACEMESH_LEFT_EYE,
    FACEMESH_RIGHT_EYE,
    NUM_FACE,
    NUM_KEYPOINTS,
)

log = logging.getLogger(__name__)

CONDITIONS = ("clean", "mask", "low_light", "both")
"""The 2x2 factorial: (occluder, low light) = (no, no), (yes, no), (no, yes), (yes, yes)."""
OCCLUDED_CONDITIONS = frozenset({"mask", "both"})
DARK_CONDITIONS = frozenset({"low_light", "both"})

LFW_NUM_FACES = 100
"""``skimage.data.lfw_subset()`` holds 100 faces (images 0-99), then 100 non-faces."""
LFW_CANVAS = 192
"""LFW faces are written as LFW_CANVAS x LFW_CANVAS RGB images."""
LFW_FACE_SIZE = 112
"""Side of the upscaled 25x25 face inside the canvas (the rest is replicated border)."""
JPEG_QUALITY = 92
DECIMALS = 6  # rounding of written keypoints: keeps labels.jsonl byte-stable against float noise

# Face-mesh indices used to place the occluders.
NOSE_BRIDGE, NOSE_TIP, CHIN, FOREHEAD = 168, 1, 152, 10
CHEEK_RIGHT, CHEEK_LEFT = 234, 454  # the subject's right (image left) and left face-oval points
EYE_RIGHT_OUTER, EYE_LEFT_OUTER = 33, 263
MOUTH_POINTS = (13, 14, 61, 291, 0, 17)  # lip centre top/bottom, corners, outer lip top/bottom
MASK_MIDLINE = (1, 4, 19, 94, 2, 164, 0, 13, 14, 17, 18, 200, 199, 175)  # nose tip .. chin

# Mask colours (RGB 0-255): surgical blue, white, black, grey, KN95 off-white, pink, navy, sage.
MASK_PALETTES = (
    (140, 185, 215), (238, 238, 236), (30, 30, 33), (128, 130, 134),
    (228, 224, 212), (225, 175, 186), (40, 50, 86), (165, 200, 180),
)
SUNGLASSES_PROBABILITY = 0.3


@dataclass(frozen=True)
class DefaultDataOptions:
    """What :func:`build_default_data` builds.

    Attributes:
        seed: seeds every random choice (numpy ``Generator``s derived per sample).
        variants_per_condition: rendered variants per photo subject and condition.
        lfw_faces: LFW faces to include (0-100): the first ones, in ``lfw_subset`` order, on which
            the stock face model reports a face (presence > 0.5).
        lfw_variants_per_condition: rendered variants per LFW subject and condition.
        image_size: longest side, in pixels, of the written photo variants (LFW: always 192).
    """

    seed: int = 0
    variants_per_condition: int = 3
    lfw_faces: int = 100
    lfw_variants_per_condition: int = 3
    image_size: int = 384

    def __post_init__(self):
        if not 0 <= self.lfw_faces <= LFW_NUM_FACES:
            raise ValueError(f"lfw_faces must be in [0, {LFW_NUM_FACES}] (lfw_subset holds {LFW_NUM_FACES} faces), "
                             f"got {self.lfw_faces}")
        if self.variants_per_condition < 1 or self.lfw_variants_per_condition < 1:
            raise ValueError("variants per condition must be >= 1")
        if self.image_size < 64:
            raise ValueError(f"image_size must be >= 64, got {self.image_size}")


# --- Variant parameters (sampled first, rendered second) ---------------------------------------


@dataclass(frozen=True)
class Jitter:
    """A similarity transform about the image centre.

    Attributes:
        scale: zoom factor (1 +- 0.1).
        rotation_deg: degrees, counter-clockwise on screen (OpenCV's convention), +-10.
        shift: (dx, dy) as fractions of the image width and height, +-0.05 each.
    """

    scale: float = 1.0
    rotation_deg: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Sunglasses:
    """Dark lenses over both eyes with a frame, a bridge and temple arms."""

    lens_width: float  # lens half-width / eye half-width
    lens_aspect: float  # lens half-height / lens half-width
    squareness: float  # superellipse exponent: 2 = ellipse, larger = squarer
    drop: float  # lens centre shift below the eye centre, in lens half-heights
    tint: tuple[float, float, float]  # lens RGB 0-255
    opacity: float
    frame: tuple[float, float, float]  # frame RGB 0-255


@dataclass(frozen=True)
class FaceMask:
    """A cloth or surgical face mask with ear loops.

    Attributes:
        top: where the top edge crosses the nose, 0 = bridge (168) .. 1 = tip (1).
        side_drop: how many face-oval steps below 234 / 454 the mask's sides start (right, left).
        chin_push: the lower edge lies this fraction of the face height below the chin (0.04-0.15).
        colour: base RGB 0-255 (palette colour + jitter).
        pleats: centres of the pleat folds, fractions of the mask's height.
        pleat_depth: darkening at a fold.
        gradient: (gx, gy) linear shading across the mask's width and height.
        corner_seed: seeds the +-1.5 px corner jitter and the pixel noise.
        sunglasses: also wear sunglasses, or None.
    """

    top: float
    side_drop: tuple[int, int]
    chin_push: float
    colour: tuple[float, float, float]
    pleats: tuple[float, ...]
    pleat_depth: float
    gradient: tuple[float, float]
    corner_seed: int
    sunglasses: Sunglasses | None = None


@dataclass(frozen=True)
class LowLight:
    """A dim capture: ``gain * x**gamma``, a colour cast, blur, low resolution, noise, 8 bits.

    Attributes:
        gain: 0.22-0.55.
        gamma: 1.3-2.2.
        cast: per-channel RGB multipliers (warm or cool white balance error).
        blur_sigma: Gaussian blur in pixels of a 384-px image (0 = none).
        downscale: captured at this fraction of the size, then upscaled (1 = full resolution).
        read_noise: sigma of signal-independent noise, fraction of full scale (0.006-0.02).
        shot_noise: variance per unit signal of the signal-dependent noise.
        noise_seed: seeds the noise.
    """

    gain: float
    gamma: float
    cast: tuple[float, float, float]
    blur_sigma: float
    downscale: float
    read_noise: float
    shot_noise: float
    noise_seed: int


@dataclass(frozen=True)
class VariantParams:
    """Everything random about one rendered variant."""

    condition: str
    jitter: Jitter
    occluder: FaceMask | None = None
    low_light: LowLight | None = None


def sample_params(rng: np.random.Generator, condition: str) -> VariantParams:
    """Draw one variant's parameters for ``condition`` (one of :data:`CONDITIONS`)."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; known: {CONDITIONS}")
    jitter = Jitter(scale=float(rng.uniform(0.9, 1.1)), rotation_deg=float(rng.uniform(-10, 10)),
                    shift=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))))
    occluder = low_light = None
    if condition in OCCLUDED_CONDITIONS:
        palette = np.array(MASK_PALETTES[int(rng.integers(len(MASK_PALETTES)))], dtype=float)
        colour = np.clip(palette + rng.uniform(-12, 12, 3), 0, 255)
        glasses = None
        if rng.random() < SUNGLASSES_PROBABILITY:
            dark = rng.uniform(12, 40)
            tint = np.clip(dark + rng.uniform(-8, 8, 3), 0, 255)
            if rng.random() < 0.6:  # black frame, else brown / tortoiseshell
                frame = np.full(3, rng.uniform(10, 30))
            else:
                frame = np.array([95.0, 80, 60]) * rng.uniform(0.6, 1.4)
            glasses = Sunglasses(lens_width=float(rng.uniform(1.6, 2.0)), lens_aspect=float(rng.uniform(0.7, 0.9)),
                                 squareness=float(rng.uniform(2.2, 4.0)), drop=float(rng.uniform(0.0, 0.25)),
                                 tint=_floats(tint), opacity=float(rng.uniform(0.88, 0.97)), frame=_floats(frame))
        occluder = FaceMask(
            top=float(rng.uniform(0.2, 0.8)), side_drop=(int(rng.integers(0, 3)), int(rng.integers(0, 3))),
            chin_push=float(rng.uniform(0.04, 0.15)), colour=_floats(colour),
            pleats=_floats(np.sort(rng.uniform(0.22, 0.78, 3))), pleat_depth=float(rng.uniform(0.07, 0.18)),
            gradient=(float(rng.uniform(-0.12, 0.12)), float(rng.uniform(-0.12, 0.12))),
            corner_seed=int(rng.integers(2**31)), sunglasses=glasses)
    if condition in DARK_CONDITIONS:
        c = rng.uniform(0.04, 0.15)
        cast = (1 + c, 1 + 0.3 * c, 1 - c) if rng.random() < 0.5 else (1 - c, 1 + 0.1 * c, 1 + c)
        low_light = LowLight(
            gain=float(rng.uniform(0.22, 0.55)), gamma=float(rng.uniform(1.3, 2.2)), cast=_floats(cast),
            blur_sigma=float(rng.uniform(0.4, 1.2)) if rng.random() < 0.4 else 0.0,
            downscale=float(rng.uniform(0.35, 0.6)) if rng.random() < 0.3 else 1.0,
            read_noise=float(rng.uniform(0.006, 0.02)), shot_noise=float(rng.uniform(0.002, 0.01)),
            noise_seed=int(rng.integers(2**31)))
    return VariantParams(condition, jitter, occluder, low_light)


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


# --- Geometry ------------------------------------------------------------------------------------


def jitter_matrix(jitter: Jitter, size: tuple[int, int]) -> np.ndarray:
    """The (2, 3) affine of ``jitter`` in continuous pixel coordinates (pixel i spans [i, i+1)).

    Normalized keypoints map to these coordinates as ``x * W``, ``y * H``.
    """
    w, h = size
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), jitter.rotation_deg, jitter.scale)
    m[0, 2] += jitter.shift[0] * w
    m[1, 2] += jitter.shift[1] * h
    return m


def warp_image(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a continuous-coordinate affine to an image (same size, bilinear, BORDER_REPLICATE)."""
    # OpenCV puts pixel centres at integers: conjugate by the half-pixel shift.
    m = matrix.copy()
    m[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5
    h, w = image.shape[:2]
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_keypoints(keypoints: np.ndarray, matrix: np.ndarray, size: tuple[int, int], scale: float) -> np.ndarray:
    """(N, 3) normalized x, y, z -> the same points after ``matrix`` (z scales with the zoom)."""
    w, h = size
    px = keypoints[:, :2] * np.array([w, h])
    moved = px @ matrix[:, :2].T + matrix[:, 2]
    out = keypoints.astype(np.float64).copy()
    out[:, :2] = moved / np.array([w, h])
    out[:, 2] = keypoints[:, 2] * scale
    return out


def in_image(keypoints: np.ndarray) -> np.ndarray:
    """(N,) bool: x and y inside [0, 1]."""
    xy = keypoints[:, :2]
    return np.all((xy >= 0.0) & (xy <= 1.0), axis=1)


# --- Occluders -----------------------------------------------------------------------------------


def _face_oval_order() -> list[int]:
    """The face oval as a loop from the forehead (10) over 454, the chin (152) and 234."""
    neighbours: dict[int, set[int]] = {}
    for a, b in FACEMESH_FACE_OVAL:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    order = [FOREHEAD, 338]  # FACEMESH_FACE_OVAL's own direction: 10 -> 338 -> ... -> 454 -> ... -> 152
    while True:
        (nxt,) = neighbours[order[-1]] - {order[-2]}
        if nxt == FOREHEAD:
            return order
        order.append(nxt)


FACE_OVAL_LOOP = tuple(_face_oval_order())
_EYE_RIGHT_IDX = tuple(sorted({i for e in FACEMESH_RIGHT_EYE for i in e}))
_EYE_LEFT_IDX = tuple(sorted({i for e in FACEMESH_LEFT_EYE for i in e}))


def _chaikin(points: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Corner cutting on a closed polygon (N, 2)."""
    for _ in range(iterations):
        nxt = np.roll(points, -1, axis=0)
        points = np.stack([0.75 * points + 0.25 * nxt, 0.25 * points + 0.75 * nxt], axis=1).reshape(-1, 2)
    return points


def _fill(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage (H, W) float32 in [0, 1] of a closed polygon in continuous pixels."""
    canvas = np.zeros(shape, np.uint8)
    pts = np.round((polygon - 0.5) * 16).astype(np.int32)  # 4 fractional bits
    cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_AA, shift=4)
    return canvas.astype(np.float32) / 255.0


def _stroke(shape: tuple[int, int], polyline: np.ndarray, thickness: int) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    pts = np.round((polyline - 0.5) * 16).astype(np.int32)
    cv2.polylines(canvas, [pts], False, 255, thickness=thickness, lineType=cv2.LINE_AA, shift=4)
    return canvas.astype(np.float32) / 255.0


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int = 24) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _luminance(image: np.ndarray) -> np.ndarray:
    return image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


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
    h, w = image.shape[:2]
    p = face_px
    oval = [int(i) for i in FACE_OVAL_LOOP]
    i_left, i_right = oval.index(CHEEK_LEFT), oval.index(CHEEK_RIGHT)
    start, stop = i_left + params.side_drop[1], i_right - params.side_drop[0]
    lower = p[oval[start:stop + 1]]  # image right (subject's left) -> chin -> image left
    centre = 0.5 * (p[CHEEK_RIGHT] + p[CHEEK_LEFT])
    face_h = float(np.linalg.norm(p[CHIN] - p[FOREHEAD]))
    face_w = max(float(np.linalg.norm(p[CHEEK_LEFT] - p[CHEEK_RIGHT])), 0.6 * face_h, 4.0)
    reach = max(float(np.linalg.norm(p[CHIN] - centre)), 1e-3)
    down = p[CHIN] - p[NOSE_BRIDGE]
    down = down / max(np.linalg.norm(down), 1e-6)
    # Push the lower edge out from the face centre: the full push * face_h below the chin, a third
    # of it at the sides (a mask is a little wider than the cheeks, much lower than the chin).
    weight = 0.35 + 0.65 * np.clip((lower - centre) @ down / reach, 0, 1)
    lower = lower + (lower - centre) / reach * (params.chin_push * face_h * weight)[:, None]
    nose = p[NOSE_BRIDGE] + params.top * (p[NOSE_TIP] - p[NOSE_BRIDGE])
    left_end, right_end = lower[0], lower[-1]
    # The top edge runs from the side over the cheekbone to the nose; it sags a little on the cheeks.
    cheek_r = 0.5 * (right_end + nose) + 0.03 * face_h * down
    cheek_l = 0.5 * (left_end + nose) + 0.03 * face_h * down
    # The midline from the nose tip to the chin, standing a little off the face: in a turned face it
    # sticks out past the oval, and the mask spans it (the hull bridges the hollows under nose and lip).
    midline = p[list(MASK_MIDLINE)]
    midline = midline + (midline - centre) / reach * 0.3 * params.chin_push * face_h
    polygon = np.concatenate([lower, [cheek_r, nose, cheek_l], midline])
    rng = np.random.default_rng(params.corner_seed)
    polygon = polygon + rng.uniform(-1.5, 1.5, polygon.shape) * max(face_w / 150, 0.5)
    polygon = _chaikin(cv2.convexHull(polygon.astype(np.float32)).reshape(-1, 2).astype(np.float64))
    alpha = _fill((h, w), polygon)

    # Ear loops: from the mask's upper and lower side to behind the ear, for each side facing the camera.
    loops = np.zeros((h, w), np.float32)
    thickness = max(1, int(round(face_w / 90)))
    half_r = np.linalg.norm(p[CHEEK_RIGHT] - p[NOSE_TIP])
    half_l = np.linalg.norm(p[CHEEK_LEFT] - p[NOSE_TIP])
    for cheek, end, top_cheek, lower_pt, half, other in (
        (p[CHEEK_RIGHT], right_end, cheek_r, lower[int(len(lower) * 0.8)], half_r, half_l),
        (p[CHEEK_LEFT], left_end, cheek_l, lower[int(len(lower) * 0.2)], half_l, half_r),
    ):
        if half < 0.45 * other:  # this side turns away from the camera: its loop is hidden
            continue
        outward = cheek - centre
        outward = outward / max(np.linalg.norm(outward), 1e-6)
        ear = cheek + 0.06 * face_w * outward - 0.02 * face_h * down
        top_start = 0.6 * end + 0.4 * top_cheek  # on the mask's top edge, near its side corner
        upper = _bezier(top_start, 0.5 * (top_start + ear) - 0.08 * face_h * down + 0.03 * face_w * outward, ear)
        below = _bezier(lower_pt, 0.5 * (lower_pt + ear) + 0.1 * face_w * outward, ear + 0.05 * face_h * down)
        loops = np.maximum(loops, _stroke((h, w), upper, thickness))
        loops = np.maximum(loops, _stroke((h, w), below, thickness))
    alpha = np.maximum(alpha, loops * 0.9)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.6)

    # Appearance: colour x exposure x scene shading x gradient x pleats, plus fabric noise.
    lum = _luminance(image)
    blur = cv2.GaussianBlur(lum, (0, 0), max(face_w / 6, 1.0))
    inside = alpha > 0.5
    ref = float(blur[inside].mean()) if inside.any() else float(blur.mean())
    exposure = float(np.clip(ref / 0.5, 0.35, 1.4))
    shading = np.clip((blur / max(ref, 1e-3)) ** 0.7, 0.5, 1.5)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    across = p[CHEEK_LEFT] - p[CHEEK_RIGHT]
    across = across / max(np.linalg.norm(across), 1e-6)
    u = ((xx - centre[0]) * across[0] + (yy - centre[1]) * across[1]) / (face_w / 2)
    proj = (polygon - centre) @ down
    v_top, v_bot = float(proj.min()), float(proj.max())
    v = ((xx - centre[0]) * down[0] + (yy - centre[1]) * down[1] - v_top) / max(v_bot - v_top, 1e-3)
    gradient = 1 + params.gradient[0] * u + params.gradient[1] * (v - 0.5) * 2
    # The mask curves away from the light towards its rim: darken the last ~12 % of the face width.
    inside_u8 = (alpha > 0.5).astype(np.uint8)
    rim = cv2.distanceTransform(inside_u8, cv2.DIST_L2, 3) / max(0.12 * face_w, 1.0)
    gradient = gradient * (1 - 0.22 * (1 - np.clip(rim, 0, 1)) ** 2)
    pleats = np.ones_like(v)
    width = 0.035
    for c in params.pleats:
        pleats -= params.pleat_depth * np.exp(-(((v - c) / width) ** 2))
        pleats += 0.5 * params.pleat_depth * np.exp(-(((v - c + 1.6 * width) / width) ** 2))  # the fold's lit side
    colour = np.array(params.colour, np.float32) / 255.0
    if grey:
        colour = np.full(3, float(colour @ np.array([0.299, 0.587, 0.114])), np.float32)
    noise = rng.normal(0, 0.012, (h, w, 1)).astype(np.float32)
    layer = colour[None, None, :] * (exposure * shading * gradient * pleats)[..., None] + noise
    layer = np.clip(layer, 0, 1)
    out = image * (1 - alpha[..., None]) + layer * alpha[..., None]
    if params.sunglasses is not None:
        out, glasses_alpha = draw_sunglasses(out, p, params.sunglasses, exposure, grey)
        alpha = np.maximum(alpha, glasses_alpha)
    return out.astype(np.float32), alpha


def draw_sunglasses(image: np.ndarray, face_px: np.ndarray, params: Sunglasses, exposure: float = 1.0,
                    grey: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Draw sunglasses on ``image`` ((H, W, 3) float32 RGB in [0, 1]; ``face_px`` (468, 2) pixels).

    Each lens is a superellipse around its eye contour, wider than the eye and aligned with the
    33 -> 263 eye line, joined by a bridge, with temple arms towards 234 / 454.

    Returns:
        ``(image, coverage)``, coverage (H, W) in [0, 1].
    """
    h, w = image.shape[:2]
    p = face_px
    axis = p[EYE_LEFT_OUTER] - p[EYE_RIGHT_OUTER]
    eye_span = max(float(np.linalg.norm(axis)), 1e-3)
    axis = axis / eye_span
    normal = np.array([-axis[1], axis[0]])  # points down the face when the face is upright
    if normal @ (p[CHIN] - p[NOSE_BRIDGE]) < 0:
        normal = -normal
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    n = params.squareness
    lenses, inner_ends, outer_ends = [], [], []
    centres = [p[list(_EYE_RIGHT_IDX)].mean(axis=0), p[list(_EYE_LEFT_IDX)].mean(axis=0)]
    max_half = 0.47 * float(np.linalg.norm(centres[1] - centres[0]))  # the lenses must not overlap
    for idx, sign, centre in ((_EYE_RIGHT_IDX, -1.0, centres[0]), (_EYE_LEFT_IDX, 1.0, centres[1])):
        eye = p[list(idx)]
        half_w = max(float(np.ptp(eye @ axis)) / 2, eye_span * 0.08)
        a = min(half_w * params.lens_width, max(max_half, 1.0))
        b = a * params.lens_aspect
        centre = centre + params.drop * b * normal
        cu = np.sign(np.cos(t)) * np.abs(np.cos(t)) ** (2 / n)
        sv = np.sign(np.sin(t)) * np.abs(np.sin(t)) ** (2 / n)
        lens = centre + (a * cu)[:, None] * axis + (b * sv)[:, None] * normal
        lenses.append(lens)
        inner_ends.append(centre - sign * a * axis - 0.3 * b * normal)
        outer_ends.append(centre + sign * a * axis - 0.4 * b * normal)
    lens_alpha = np.maximum(_fill((h, w), lenses[0]), _fill((h, w), lenses[1]))
    thick = max(1, int(round(eye_span / 60)))
    frame_alpha = np.maximum(_stroke((h, w), np.vstack([lenses[0], lenses[0][:1]]), thick),
                             _stroke((h, w), np.vstack([lenses[1], lenses[1][:1]]), thick))
    bridge_mid = 0.5 * (inner_ends[0] + inner_ends[1]) - 0.15 * eye_span * normal
    bridge = _bezier(inner_ends[0], bridge_mid, inner_ends[1], 12)
    frame_alpha = np.maximum(frame_alpha, _stroke((h, w), bridge, thick))
    for outer, cheek in ((outer_ends[0], p[CHEEK_RIGHT]), (outer_ends[1], p[CHEEK_LEFT])):
        ear = cheek - 0.15 * eye_span * normal
        frame_alpha = np.maximum(frame_alpha, _stroke((h, w), np.stack([outer, ear]), thick))
    # Lenses: dark tint, darker at the top, a faint diagonal reflection; slightly see-through.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    c0 = 0.5 * (lenses[0].mean(0) + lenses[1].mean(0))
    v = ((xx - c0[0]) * normal[0] + (yy - c0[1]) * normal[1]) / max(eye_span * 0.3, 1e-3)
    u = ((xx - c0[0]) * axis[0] + (yy - c0[1]) * axis[1]) / max(eye_span * 0.3, 1e-3)
    tint = np.array(params.tint, np.float32) / 255.0
    frame = np.array(params.frame, np.float32) / 255.0
    if grey:
        tint = np.full(3, float(tint.mean()), np.float32)
        frame = np.full(3, float(frame.mean()), np.float32)
    shade = np.clip(1.0 + 0.25 * v, 0.6, 1.4) * (0.6 + 0.4 * exposure)
    glint = 0.10 * np.exp(-(((u + v) % 2.0 - 1.0) / 0.25) ** 2)
    lens_rgb = np.clip(tint[None, None, :] * shade[..., None] + glint[..., None] * exposure, 0, 1)
    a_lens = lens_alpha * params.opacity
    out = image * (1 - a_lens[..., None]) + lens_rgb * a_lens[..., None]
    frame_rgb = frame * (0.6 + 0.4 * exposure)
    out = out * (1 - frame_alpha[..., None]) + frame_rgb[None, None, :] * frame_alpha[..., None]
    return out.astype(np.float32), np.maximum(lens_alpha, frame_alpha)


def apply_low_light(image: np.ndarray, params: LowLight, grey: bool) -> np.ndarray:
    """(H, W, 3) float32 [0, 1] -> the same scene captured in low light, uint8.

    Order as in a camera: exposure (gain, gamma), white-balance cast, optics blur, sensor
    resolution, shot + read noise, 8-bit quantisation, then the upscale back to the image size.
    A monochrome photo stays monochrome (no cast, the same noise in every channel).
    """
    h, w = image.shape[:2]
    x = params.gain * np.power(np.clip(image, 0, 1), params.gamma)
    if not grey:
        x = x * np.array(params.cast, np.float32)
    if params.blur_sigma > 0:
        x = cv2.GaussianBlur(x, (0, 0), params.blur_sigma * max(w, h) / 384)
    if params.downscale < 1:
        small = (max(2, int(round(w * params.downscale))), max(2, int(round(h * params.downscale))))
        x = cv2.resize(x, small, interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(params.noise_seed)
    noise = rng.standard_normal((*x.shape[:2], 1 if grey else 3)).astype(np.float32)
    x = x + noise * np.sqrt(params.shot_noise * np.clip(x, 0, None) + params.read_noise**2)
    x = np.clip(np.round(x * 255), 0, 255).astype(np.uint8)
    if params.downscale < 1:
        x = cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)
    return x


# --- Rendering -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """One rendered variant.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        keypoints: (543, 3) float64, normalized x, y and z (unlabelled rows 0).
        mask: (543,) float32 0/1: labelled and inside the image.
        occluded: (543,) float32 0/1: the point lies under the drawn occluder.
    """

    image: np.ndarray
    keypoints: np.ndarray
    mask: np.ndarray
    occluded: np.ndarray


def render_variant(image: np.ndarray, keypoints: np.ndarray, mask: np.ndarray, params: VariantParams,
                   grey: bool = False) -> Rendered:
    """Render one variant of a labelled clean image.

    Args:
        image: (H, W, 3) uint8 RGB, the clean source.
        keypoints: (543, 3) normalized teacher labels on ``image`` (rows with mask 0 are ignored).
        mask: (543,) 0/1, the parts the teacher found.
        params: from :func:`sample_params`.
        grey: the source is monochrome (keeps occluders and noise monochrome).
    """
    h, w = image.shape[:2]
    matrix = jitter_matrix(params.jitter, (w, h))
    warped = warp_image(image, matrix)
    kp = warp_keypoints(keypoints, matrix, (w, h), params.jitter.scale)
    labelled = mask > 0
    kp[~labelled] = 0.0
    new_mask = (labelled & in_image(kp)).astype(np.float32)
    occluded = np.zeros(NUM_KEYPOINTS, np.float32)
    pixels = warped.astype(np.float32) / 255.0
    if params.occluder is not None:
        if not labelled[FACE_SLICE].all():
            raise ValueError("an occluder needs the face labelled")
        face_px = kp[FACE_SLICE, :2] * np.array([w, h])
        pixels, alpha = draw_face_mask(pixels, face_px, params.occluder, grey)
        xy = np.clip(np.floor(kp[:, :2] * np.array([w, h])).astype(int), 0, [w - 1, h - 1])
        occluded = ((alpha[xy[:, 1], xy[:, 0]] > 0.5) & (new_mask > 0)).astype(np.float32)
    if params.low_light is not None:
        out = apply_low_light(pixels, params.low_light, grey)
    else:
        out = np.clip(np.round(pixels * 255), 0, 255).astype(np.uint8)
    return Rendered(out, kp, new_mask, occluded)


# --- Sources and teacher labels --------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A clean labelled image that variants are rendered from.

    Attributes:
        subject: identity, the group key (``grace_hopper``, ``lfw_017``...).
        source_image: where the pixels came from.
        image: (H, W, 3) uint8 RGB.
        keypoints: (543, 3) normalized teacher labels (0 where unlabelled).
        mask: (543,) float32 0/1.
        grey: monochrome source.
        key: a stable integer for seeding.
    """

    subject: str
    source_image: str
    image: np.ndarray
    keypoints: np.ndarray
    mask: np.ndarray
    grey: bool
    key: int


_PHOTO_ORIGINS = {
    "grace_hopper": "matplotlib:sample_data/grace_hopper.jpg",
    "astronaut": "skimage.data.astronaut()",
    "camera": "skimage.data.camera()",
}


def photo_sources(image_size: int) -> list[Source]:
    """The three photographs, resized to ``image_size`` on the long side, labelled by Holistic.

    A photo on which the teacher finds no face is skipped (it cannot carry a mask), with a warning.
    """
    from holotune.runtime import Holistic
    from holotune.samples import sample_images

    sources = []
    with Holistic(threads=1, parallel=False) as teacher:
        for key, (name, full) in enumerate(sample_images().items()):
            h, w = full.shape[:2]
            f = image_size / max(h, w)
            size = (max(1, int(round(w * f))), max(1, int(round(h * f))))
            image = cv2.resize(full, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
            labels = teacher.process(image).to_array()[:, :3].astype(np.float64)
            found = ~np.isnan(labels).any(axis=1)
            if not found[FACE_SLICE].all():
                log.warning("default data: the teacher finds no face on %s; skipped", name)
                continue
            labels[~found] = 0.0
            grey = bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2]))
            sources.append(Source(name, _PHOTO_ORIGINS[name], image, labels, found.astype(np.float32), grey, key))
    return sources


def lfw_canvas(face: np.ndarray) -> np.ndarray:
    """A 25x25 float greyscale LFW face -> (192, 192, 3) uint8: upscaled to 112 px, border replicated."""
    u8 = np.clip(np.round(face * 255), 0, 255).astype(np.uint8)
    big = cv2.resize(u8, (LFW_FACE_SIZE, LFW_FACE_SIZE), interpolation=cv2.INTER_CUBIC)
    pad = (LFW_CANVAS - LFW_FACE_SIZE) // 2
    big = cv2.copyMakeBorder(big, pad, LFW_CANVAS - LFW_FACE_SIZE - pad, pad, LFW_CANVAS - LFW_FACE_SIZE - pad,
                             cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(np.stack([big] * 3, axis=-1))


def lfw_nonface_canvases() -> np.ndarray:
    """(100, 192, 192, 3) uint8: the 100 non-face patches of ``skimage.data.lfw_subset()`` (images
    100-199, never part of the default data), rendered exactly like the LFW faces (:func:`lfw_canvas`).

    A presence head must say "no face" on them: the false-presence check of the evaluate stage.
    """
    import skimage.data

    return np.stack([lfw_canvas(p) for p in skimage.data.lfw_subset()[LFW_NUM_FACES:]])


def face_mesh_teacher(images: np.ndarray, session, refinements: int = 3, start_size: float = 0.85
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Face-mesh labels for images that each hold one centred face (no detector, no pose).

    Starts from a centred square ROI, then re-crops ``refinements`` times from the landmarks as
    MediaPipe's face tracking does (landmark box, square on the long side, x1.5, rotation from
    landmark 33 to 263 with target 0), and returns the last run's landmarks.

    Args:
        images: (N, H, W, 3) uint8 RGB, all the same size.
        session: the stock ``face_landmark`` session (:func:`holotune.runtime.sessions.open_stock`).

    Returns:
        ``(points, presence)``: (N, 468, 3) normalized to the image (z in units of its width), and
        (N,) face presence probabilities of the last run.
    """
    from holotune.models.spec import MODEL_SPECS
    from holotune.runtime.geometry import (Rect, crop_image, landmarks_box_rect, pad_roi, project_to_image,
                                           remove_letterbox, rotation_between, transform_rect)

    spec = MODEL_SPECS["face_landmark"]
    th, tw = spec.input_size
    n, h, w = images.shape[:3]
    size = (w, h)
    rects = [Rect(0.5, 0.5, start_size, start_size * w / h, 0.0)] * n
    points = np.zeros((n, NUM_FACE, 3))
    presence = np.zeros(n)
    for it in range(refinements + 1):
        crops = [pad_roi(r, size, spec.input_size, spec.keep_aspect_ratio) for r in rects]
        pixels = np.stack([crop_image(images[i], crops[i], spec.input_size, border_zero=False) for i in range(n)])
        x = np.ascontiguousarray((pixels.astype(np.float32) / np.float32(255.0)).transpose(0, 3, 1, 2))
        out = session.run(x)
        raw = out["landmarks"].reshape(n, NUM_FACE, 3).astype(np.float64)
        presence = 1.0 / (1.0 + np.exp(-out["face_flag"].reshape(n).astype(np.float64)))
        for i in range(n):
            local = raw[i] / np.array([tw, th, tw])
            points[i] = project_to_image(remove_letterbox(local, crops[i].padding), crops[i].rect)
        if it < refinements:
            rects = [transform_rect(landmarks_box_rect(points[i, :, :2], rotation_between(
                points[i, EYE_RIGHT_OUTER], points[i, EYE_LEFT_OUTER], 0.0, size)), size, scale=1.5)
                for i in range(n)]
    return points, presence


def lfw_sources(count: int, chunk: int = 25) -> list[Source]:
    """The first ``count`` LFW faces on which the stock face model reports a face (presence > 0.5).

    Faces are labelled in fixed chunks of ``chunk`` (indices 0-24, 25-49...), so a face's labels
    do not depend on ``count``.
    """
    if count <= 0:
        return []
    import skimage.data

    from holotune.runtime.sessions import open_stock

    faces = skimage.data.lfw_subset()[:LFW_NUM_FACES]
    session = open_stock("face_landmark", threads=1)
    sources: list[Source] = []
    for lo in range(0, LFW_NUM_FACES, chunk):
        idx = range(lo, min(lo + chunk, LFW_NUM_FACES))
        images = np.stack([lfw_canvas(faces[i]) for i in idx])
        points, presence = face_mesh_teacher(images, session)
        for j, i in enumerate(idx):
            if presence[j] <= 0.5:
                log.info("default data: lfw_subset()[%d]: face presence %.2f, skipped", i, presence[j])
                continue
            keypoints = np.zeros((NUM_KEYPOINTS, 3))
            keypoints[FACE_SLICE] = points[j]
            mask = np.zeros(NUM_KEYPOINTS, np.float32)
            mask[FACE_SLICE] = 1.0
            sources.append(Source(f"lfw_{i:03d}", f"skimage.data.lfw_subset()[{i}]", images[j], keypoints, mask,
                                  True, 1000 + i))
            if len(sources) == count:
                return sources
    log.warning("default data: only %d LFW faces pass the presence check (asked for %d)", len(sources), count)
    return sources


# --- The build -----------------------------------------------------------------------------------


def _variant_rng(seed: int, source_key: int, condition: str, variant: int) -> np.random.Generator:
    """A generator per sample, so adding samples never changes the others."""
    return np.random.default_rng(np.random.SeedSequence([seed, source_key, CONDITIONS.index(condition), variant]))


def _round(values: np.ndarray) -> list:
    return np.round(values.astype(np.float64), DECIMALS).tolist()


def _jsonable(params: VariantParams) -> dict:
    def clean(v):
        if isinstance(v, float):
            return round(v, 4)
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if not k.endswith("seed")}
        return v

    return clean({k: v for k, v in asdict(params).items() if k != "condition"})


def build_default_data(out_dir: str | os.PathLike, options: DefaultDataOptions = DefaultDataOptions()) -> Path:
    """Build the embedded default dataset (see the module docstring for what it is and its limits).

    Writes ``out_dir/images/<id>.jpg`` (JPEG quality 92; photos ``image_size`` px on the long side,
    LFW 192x192) and ``out_dir/labels.jsonl``, one JSON object per image, in a fixed order::

        {"id": "<subject>_<condition>_<variant>", "image": "images/<id>.jpg",
         "keypoints": [[x, y, z] * 543],   # normalized to the image; z in units of its width; 0 if unlabelled
         "mask": [543 x 0/1],              # 1 = labelled and inside the image
         "occluded": [543 x 0/1],          # 1 = under the drawn mask / sunglasses
         "subject": "grace_hopper" | "astronaut" | "camera" | "lfw_017" ...,   # the identity group key
         "condition": "clean" | "mask" | "low_light" | "both",
         "accessory": "none" | "mask" | "mask+sunglasses",
         "source_image": "skimage.data.astronaut()" ..., "width": W, "height": H,
         "augment": {"jitter": {...}, "occluder": {...} | null, "low_light": {...} | null}}

    Each subject has every condition ``variants_per_condition`` times (LFW:
    ``lfw_variants_per_condition``). Stale ``.jpg`` files in ``images/`` are removed. The teacher
    runs once per source image (the stock ONNX models are exported first if missing).

    Returns:
        The path of ``labels.jsonl``.
    """
    from holotune.runtime.sessions import ensure_stock_models

    ensure_stock_models()
    out = Path(out_dir)
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    sources = [(s, options.variants_per_condition) for s in photo_sources(options.image_size)]
    sources += [(s, options.lfw_variants_per_condition) for s in lfw_sources(options.lfw_faces)]

    rows, written = [], set()
    for source, variants in sources:
        for condition in CONDITIONS:
            for v in range(variants):
                params = sample_params(_variant_rng(options.seed, source.key, condition, v), condition)
                r = render_variant(source.image, source.keypoints, source.mask, params, source.grey)
                sample_id = f"{source.subject}_{condition}_{v:02d}"
                name = f"{sample_id}.jpg"
                ok, buf = cv2.imencode(".jpg", cv2.cvtColor(r.image, cv2.COLOR_RGB2BGR),
                                       [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise RuntimeError(f"JPEG encoding failed for {name}")
                (images_dir / name).write_bytes(buf.tobytes())
                written.add(name)
                accessory = "none"
                if params.occluder is not None:
                    accessory = "mask+sunglasses" if params.occluder.sunglasses is not None else "mask"
                h, w = r.image.shape[:2]
                rows.append(json.dumps({
                    "id": sample_id, "image": f"images/{name}", "keypoints": _round(r.keypoints),
                    "mask": r.mask.astype(float).tolist(), "occluded": r.occluded.astype(float).tolist(),
                    "subject": source.subject, "condition": condition, "accessory": accessory,
                    "source_image": source.source_image, "width": w, "height": h, "augment": _jsonable(params),
                }, allow_nan=False, separators=(",", ":")))
    for stale in images_dir.glob("*.jpg"):
        if stale.name not in written:
            stale.unlink()
    labels = out / "labels.jsonl"
    tmp = labels.with_suffix(".jsonl.partial")
    tmp.write_text("".join(row + "\n" for row in rows))
    tmp.replace(labels)
    log.info("default data: %d images of %d subjects in %s", len(rows), len(sources), out)
    return labels


__all__ = [
    "CONDITIONS", "DefaultDataOptions", "VariantParams", "Jitter", "FaceMask", "Sunglasses", "LowLight",
    "Rendered", "Source", "build_default_data", "sample_params", "render_variant", "jitter_matrix",
    "warp_image", "warp_keypoints", "photo_sources", "lfw_sources", "face_mesh_teacher", "lfw_canvas",
    "draw_face_mask", "draw_sunglasses", "apply_low_light",
]
