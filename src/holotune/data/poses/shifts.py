"""The conditions: one variant's random parameters (:func:`sample_shift`) and its rendering (:func:`render_shift`).

Every variant has a small geometric jitter (one affine, applied to the pixels and the labels alike);
then its condition: ``low_res`` (the person captured 48-96 px tall, upscaled back), ``motion_blur``
(a linear kernel), ``low_light`` (:func:`holotune.data.default.camera.apply_low_light`: gain, gamma,
sensor noise, JPEG), ``cutoff`` (a tighter framing: a frame edge cuts the body), ``occluded`` (a
patch of a real photo's texture over part of the body) and ``combined`` (low_res + blur + low light).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from holotune.data.default.camera import apply_low_light
from holotune.data.default.render import warp_image, warp_keypoints
from holotune.data.default.variants import LowLight
from holotune.data.poses.options import CUTOFF_SIDES, ShiftDistribution
from holotune.data.poses.sources import person_height_px
from holotune.landmarks import POSE_SLICE

CONDITIONS = ("clean", "low_res", "motion_blur", "low_light", "cutoff", "occluded", "combined")
"""The conditions, each rendered ``variants_per_condition`` times per person."""
CUTOFF_MARGIN = 0.45
"""In ``cutoff``, points the frame edge cut off keep their label (mask 1, occluded 1) up to this far
outside [0, 1] (the ingest stage's coordinate tolerance is 0.5); beyond it they are masked 0."""
TEXTURES = ("coffee", "rocket", "chelsea", "brick", "grass", "gravel")
"""scikit-image photographs whose regions are the occluding patches (a real texture, not a flat colour)."""
REFERENCE_SIZE = 384
"""``blur_length`` is in pixels of a canvas this large (it scales with the canvas)."""


@dataclass(frozen=True)
class Shift:
    """One variant's parameters (recorded in each row's ``augment``)."""

    condition: str
    scale: float
    rotation_deg: float
    shift: tuple[float, float]
    low_res_height: float | None = None
    cubic: bool = False
    blur_length: float | None = None
    blur_angle_deg: float | None = None
    low_light: LowLight | None = None
    cutoff_side: str | None = None
    cutoff_keep: float | None = None
    occluder: dict | None = None


def _u(rng: np.random.Generator, r) -> float:
    return float(rng.uniform(r[0], r[1]))


def sample_shift(rng: np.random.Generator, condition: str, d: ShiftDistribution) -> Shift:
    """Draw one variant of ``condition`` (in a fixed order: jitter, then the condition's own draws)."""
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
    jitter = dict(scale=_u(rng, d.scale), rotation_deg=_u(rng, d.rotation_deg),
                  shift=(_u(rng, d.shift), _u(rng, d.shift)))
    extra: dict = {}
    if condition in ("low_res", "combined"):
        extra.update(low_res_height=_u(rng, d.low_res_height), cubic=bool(rng.random() < d.low_res_cubic_probability))
    if condition in ("motion_blur", "combined"):
        extra.update(blur_length=_u(rng, d.blur_length), blur_angle_deg=_u(rng, d.blur_angle_deg))
    if condition in ("low_light", "combined"):
        extra["low_light"] = LowLight(gain=_u(rng, d.gain), gamma=_u(rng, d.gamma), cast=(1.0, 1.0, 1.0), blur_sigma=0.0,
                                      downscale=1.0, read_noise=_u(rng, d.read_noise), shot_noise=_u(rng, d.shot_noise),
                                      chroma_noise=_u(rng, d.chroma_noise),
                                      jpeg_quality=int(rng.integers(d.jpeg_quality[0], d.jpeg_quality[1] + 1)),
                                      noise_seed=int(rng.integers(2**31)))
    if condition == "cutoff":
        weights = np.array(d.cutoff_weights, float)
        extra.update(cutoff_side=CUTOFF_SIDES[int(rng.choice(len(CUTOFF_SIDES), p=weights / weights.sum()))],
                     cutoff_keep=_u(rng, d.cutoff_keep))
    if condition == "occluded":
        extra["occluder"] = {"texture": TEXTURES[int(rng.integers(len(TEXTURES)))], "size": _u(rng, d.occluder_size),
                             "aspect": _u(rng, d.occluder_aspect), "rotation_deg": _u(rng, d.occluder_rotation_deg),
                             "target": float(rng.random()), "tx": float(rng.random()), "ty": float(rng.random())}
    return Shift(condition, **jitter, **extra)


@dataclass(frozen=True)
class RenderedPose:
    """One rendered variant: ``image`` (S, S, 3) uint8; ``keypoints`` (543, 3); ``mask`` and
    ``occluded`` (543,) 0/1; ``person_px``: the whole person's height (every teacher pose point,
    seen or beyond the photo's edge) in the low-resolution capture (``low_res``/``combined``), else
    the visible body's height (labelled pose points in the image) in the written image."""

    image: np.ndarray
    keypoints: np.ndarray
    mask: np.ndarray
    occluded: np.ndarray
    person_px: float


def _jitter(size: int, s: Shift) -> np.ndarray:
    m = cv2.getRotationMatrix2D((size / 2.0, size / 2.0), s.rotation_deg, s.scale)
    m[0, 2] += s.shift[0] * size
    m[1, 2] += s.shift[1] * size
    return m


def _cutoff_matrix(kp: np.ndarray, mask: np.ndarray, size: int, side: str, keep: float) -> np.ndarray:
    """A zoom (crop and scale back) whose ``side`` edge cuts the labelled pose extent at ``keep``."""
    pose = kp[POSE_SLICE, :2][mask[POSE_SLICE] > 0] * size
    lo, hi = pose.min(axis=0), pose.max(axis=0)
    ext = hi - lo
    axis = 1 if side in ("bottom", "top") else 0
    if side in ("bottom", "right"):
        edge, far = lo[axis] + keep * ext[axis], min(lo[axis] - 0.1 * ext[axis], lo[axis])
    else:
        edge, far = hi[axis] - keep * ext[axis], max(hi[axis] + 0.1 * ext[axis], hi[axis])
    span = max(abs(edge - far), 1.0)
    zoom = max(1.0, size / (span / 0.9))  # the kept part fills ~90% of the frame across the cut
    zoom = min(zoom, 3.0)
    centre_other = (lo[1 - axis] + hi[1 - axis]) / 2
    # Place the cut edge exactly on the frame edge, centre the body along the other axis.
    target = size if side in ("bottom", "right") else 0.0
    t = np.zeros(2)
    t[axis] = target - zoom * edge
    t[1 - axis] = size / 2 - zoom * centre_other
    return np.array([[zoom, 0.0, t[0]], [0.0, zoom, t[1]]])


def _texture(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    return np.ascontiguousarray(np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3])


def _motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    n = int(math.ceil(length)) | 1
    k = np.zeros((n, n), np.float32)
    c = (n - 1) / 2
    dx, dy = math.cos(math.radians(angle_deg)) * (length - 1) / 2, -math.sin(math.radians(angle_deg)) * (length - 1) / 2
    cv2.line(k, (round(c - dx * 16), round(c - dy * 16)), (round(c + dx * 16), round(c + dy * 16)), 1.0, 1, cv2.LINE_AA,
             shift=4)
    return k / max(k.sum(), 1e-6)


def render_shift(image: np.ndarray, keypoints: np.ndarray, mask: np.ndarray, s: Shift, grey: bool = False) -> RenderedPose:
    """Render one variant of a person's clean canvas (labels carried through every geometric step)."""
    size = image.shape[0]
    labelled = mask > 0
    m = _jitter(size, s)
    if s.cutoff_side is not None:
        jittered = warp_keypoints(keypoints, m, (size, size), s.scale)
        c = _cutoff_matrix(jittered, labelled.astype(np.float32), size, s.cutoff_side, s.cutoff_keep)
        m = np.vstack([c, [0, 0, 1]])[:2] @ np.vstack([m, [0, 0, 1]])
    zoom = float(math.sqrt(abs(np.linalg.det(m[:, :2]))))
    pixels = warp_image(image, m)
    kp = warp_keypoints(keypoints, m, (size, size), zoom)
    # The whole person's height: every pose point the teacher gave, on the photo or beyond its edge.
    stature = float(np.ptp(kp[POSE_SLICE, 1])) * size if np.any(keypoints[POSE_SLICE]) else 0.0
    kp[~labelled] = 0.0
    inside = np.all((kp[:, :2] >= 0) & (kp[:, :2] <= 1), axis=1)
    occluded = np.zeros(len(kp), np.float32)
    new_mask = labelled & inside
    if s.cutoff_side is not None:  # the frame edge cut them; they were seen on the clean canvas
        near = np.all((kp[:, :2] >= -CUTOFF_MARGIN) & (kp[:, :2] <= 1 + CUTOFF_MARGIN), axis=1)
        cut = labelled & ~inside & near
        occluded[cut] = 1.0
        new_mask = new_mask | cut
    kp[~new_mask] = 0.0
    height = person_height_px(kp, new_mask.astype(np.float32), (size, size))
    if s.occluder is not None:
        pixels, covered = _occlude(pixels, kp, new_mask, s.occluder, height)
        xy = np.clip(np.floor(kp[:, :2] * size).astype(int), 0, size - 1)
        occluded = np.maximum(occluded, (covered[xy[:, 1], xy[:, 0]] & new_mask).astype(np.float32))
    person_px = height
    if s.blur_length is not None:
        pixels = cv2.filter2D(pixels, -1, _motion_kernel(s.blur_length * size / REFERENCE_SIZE, s.blur_angle_deg),
                              borderType=cv2.BORDER_REPLICATE)
    if s.low_res_height is not None and stature > 0:
        f = min(1.0, s.low_res_height / stature)
        small = (max(2, round(size * f)),) * 2
        pixels = cv2.resize(pixels, small, interpolation=cv2.INTER_AREA)
        person_px = stature * small[0] / size
        if s.low_light is not None:  # captured small and dim: the noise is at the capture's resolution
            pixels = apply_low_light(pixels, s.low_light, grey)
        pixels = cv2.resize(pixels, (size, size), interpolation=cv2.INTER_CUBIC if s.cubic else cv2.INTER_LINEAR)
    elif s.low_light is not None:
        pixels = apply_low_light(pixels, s.low_light, grey)
    return RenderedPose(pixels, kp, new_mask.astype(np.float32), occluded, person_px)


def _occlude(pixels: np.ndarray, kp: np.ndarray, mask: np.ndarray, occ: dict, height: float):
    """Paste a rotated rectangle of a real photo's texture over a labelled pose point; the covered pixels."""
    size = pixels.shape[0]
    pose = np.flatnonzero(mask[POSE_SLICE])
    covered = np.zeros((size, size), bool)
    if pose.size == 0:
        return pixels, covered
    centre = kp[pose[min(int(occ["target"] * pose.size), pose.size - 1)], :2] * size
    h = max(8.0, occ["size"] * max(height, size * 0.2))
    w = h * occ["aspect"]
    texture = _texture(occ["texture"])
    th, tw = texture.shape[:2]
    pw, ph = int(min(tw - 1, math.ceil(w))), int(min(th - 1, math.ceil(h)))
    x0, y0 = int(occ["tx"] * (tw - pw)), int(occ["ty"] * (th - ph))
    patch = texture[y0:y0 + ph, x0:x0 + pw]
    box = cv2.boxPoints(((float(centre[0]), float(centre[1])), (float(pw), float(ph)), occ["rotation_deg"]))
    src = np.array([[0, ph], [0, 0], [pw, 0], [pw, ph]], np.float32)
    warp = cv2.getPerspectiveTransform(src, box.astype(np.float32))
    layer = cv2.warpPerspective(patch, warp, (size, size), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(np.ones((ph, pw), np.uint8), warp, (size, size), flags=cv2.INTER_NEAREST) > 0
    out = pixels.copy()
    out[alpha] = layer[alpha]
    return out, alpha
