"""Holistic's video mode: one stream's tracks and filters across frames.

mediapipe 0.10.21's ``Holistic(static_image_mode=False, model_complexity=1, smooth_landmarks=True)``,
step by step (``docs/mediapipe_video.md``):

* pose (§3): the ROI of frame t is built from frame t−1's smoothed auxiliary landmarks; the pose
  detector runs only when there is none (first frame, after a loss). A pose presence not above
  ``min_tracking_confidence`` empties the frame and the next one re-detects;
* smoothing (§4): visibility low-pass (α 0.1) then one-euro in pixels for the pose landmarks
  (0.05 / 80 / 1.0), the auxiliary landmarks (0.01 / 10 / 1.0, always on) and the world landmarks
  (0.1 / 40 / 1.0, metres); the value scale is 1 / the auxiliary ROI's side. The one-euro filters
  of image landmarks restart when the pose is lost; the visibility and world filters, which see no
  packet on such a frame, keep their state (§4.4);
* face and hands (§5): each frame's re-crop ROI (face detector / hand re-crop model) is replaced by
  the ROI of the part's previous landmarks while ``RoiTrackingCalculator``'s checks pass.

New (off by default, for parity): one-euro smoothing of the face and hand landmarks. It filters
the output only; tracking reads the raw landmarks, so the tracked path is the same either way.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from holotune.runtime.geometry import Rect, alignment_rect
from holotune.runtime.holistic import Holistic, HolisticResult, check_image
from holotune.runtime.motion import estimate_motion, to_gray
from holotune.runtime.smoothing import (
    POSE_AUXILIARY,
    POSE_LANDMARKS,
    POSE_WORLD,
    LandmarksSmoother,
    OneEuroParams,
    VisibilitySmoother,
)
from holotune.runtime.tracking import (
    FACE_TRACKING,
    HAND_TRACKING,
    RoiTrackingLimits,
    face_tracking_rect,
    hand_tracking_rect,
    keeps_tracking,
    pose_rect_from_keypoints,
)

FRAME_INTERVAL_US = 33333  # the legacy Python solution stamps frame k at k·33333 µs, whatever the real rate
SIDES = ("left", "right")


@dataclass
class _PoseFilters:
    """``PoseLandmarkFiltering``'s state."""

    visibility: VisibilitySmoother = field(default_factory=VisibilitySmoother)
    auxiliary_visibility: VisibilitySmoother = field(default_factory=VisibilitySmoother)
    world_visibility: VisibilitySmoother = field(default_factory=VisibilitySmoother)
    landmarks: LandmarksSmoother = field(default_factory=lambda: LandmarksSmoother(POSE_LANDMARKS))
    auxiliary: LandmarksSmoother = field(default_factory=lambda: LandmarksSmoother(POSE_AUXILIARY))
    world: LandmarksSmoother = field(default_factory=lambda: LandmarksSmoother(POSE_WORLD))


@dataclass(frozen=True)
class _PartRule:
    """What tracks a face or a hand: its tracking ROI rule, RoiTracking limits and landmark model (a
    :class:`Holistic` method name), and which landmarks the motion estimate follows."""

    tracking_rect: Callable[[np.ndarray, tuple[int, int]], Rect]
    limits: RoiTrackingLimits
    model: str
    motion_points: slice


FACE_RULE = _PartRule(face_tracking_rect, FACE_TRACKING, "face_landmarks", slice(None, None, 8))  # 59 of 468 points
HAND_RULE = _PartRule(hand_tracking_rect, HAND_TRACKING, "hand_output", slice(None))


@dataclass
class _Part:
    """One face or hand track: the previous frame's raw landmarks and the optional output filter."""

    rule: _PartRule
    smoother: LandmarksSmoother | None = None
    previous: np.ndarray | None = None

    def update(self, points: np.ndarray | None, timestamp_us: int, size: tuple[int, int],
               frames: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray | None:
        """Record this frame's raw landmarks; return them, smoothed if a filter is set.

        ``frames``: the previous and this frame in grey, for motion-compensated smoothing.
        """
        if points is None:
            self.drop()
            return None
        previous, self.previous = self.previous, points
        if self.smoother is None:
            return points
        motion = None
        if frames is not None and previous is not None:
            motion = estimate_motion(*frames, previous[self.rule.motion_points, :2] * size)
        return self.smoother.apply(points, timestamp_us, size, motion=motion)

    def drop(self) -> None:
        """The part is gone: no track for the next frame, and its filter starts afresh."""
        self.previous = None
        if self.smoother is not None:
            self.smoother.reset()


@dataclass
class _LookAhead:
    """Landmark runs started on the tracked parts' previous-landmark ROIs, by part (``face``, ``left``, ``right``)."""

    rects: dict[str, Rect]
    jobs: dict[str, Future | None]

    def cancel(self, name: str | None = None) -> None:
        """Drop the runs no one will read (all, or one part's); a run already going finishes unread."""
        for key, job in self.jobs.items():
            if job is not None and name in (None, key):
                job.cancel()


class HolisticStream:
    """The tracking state of one video stream, on the models of a :class:`Holistic`.

    Frames must come in order. Several streams may share one ``Holistic`` (its sessions are
    thread-safe); one stream must not be fed from two threads at once.

    Args:
        holistic: the models, thresholds and thread pool; a model swapped in with
            :meth:`Holistic.set_model` is used from the next frame on.
        smooth_landmarks: filter pose and world landmarks (MediaPipe's ``smooth_landmarks``).
        face_smoothing, hand_smoothing: one-euro filters for face / hand landmarks, or ``None``.
    """

    def __init__(self, holistic: Holistic, *, smooth_landmarks: bool, face_smoothing: OneEuroParams | None,
                 hand_smoothing: OneEuroParams | None):
        self.holistic = holistic
        self.smooth_landmarks = smooth_landmarks
        self.face_smoothing = face_smoothing
        self.hand_smoothing = hand_smoothing
        self._busy = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next frame runs the pose detector and every filter starts afresh.

        Attributes it (re)sets: ``pose_roi``, the ROI the next frame's pose landmark model will use
        (``None``: run the detector), and ``pose_detections``, how many frames ran the detector.
        """
        self.pose_roi = None
        self._last_us: int | None = None  # no frame yet
        self._pose = _PoseFilters()
        self._face = _Part(FACE_RULE, _smoother(self.face_smoothing))
        self._gray = None  # the previous frame in grey, kept while face or hand smoothing is on
        self._hands = {side: _Part(HAND_RULE, _smoother(self.hand_smoothing)) for side in SIDES}
        self.pose_detections = 0

    def process(self, image: np.ndarray, timestamp_ms: float | None = None) -> HolisticResult:
        """The next frame: (H, W, 3) uint8 RGB at ``timestamp_ms`` (ms, strictly increasing; ``None``:
        the previous one + 33.333 ms)."""
        image = check_image(image)
        with self._owned():
            t_us = self._stamp(timestamp_ms)
            sessions, gesture = self.holistic.models(), self.holistic.gesture_head()
            frames = self._grey_pair(image)
            # Tracked face and hands will most likely keep their previous-landmark ROI (RoiTracking), which
            # needs nothing from this frame's pose: their landmark models start now, beside the pose model.
            ahead = self._look_ahead(image, sessions)
            pose = self._pose_stage(image, t_us, sessions)
            if pose is None:
                ahead.cancel()
                return self._lose_pose()
            return self._branch_stage(image, t_us, sessions, gesture, frames, pose, ahead)

    def process_pose(self, image: np.ndarray, timestamp_ms: float | None = None) -> np.ndarray | None:
        """The next frame's pose only: the ``result.pose`` :meth:`process` gives ((33, 4) normalized x, y,
        z, visibility; ``None``: no pose), without the face and hand branches, which never feed back into
        the pose (so a stream fed only by this tracks the pose exactly as one fed by :meth:`process`)."""
        image = check_image(image)
        with self._owned():
            pose = self._pose_stage(image, self._stamp(timestamp_ms), self.holistic.models())
            if pose is None:
                self._lose_pose()
                return None
            return pose[0]

    def process_pipelined(self, frames: Iterable[tuple[np.ndarray, float | None]]) -> Iterator[HolisticResult]:
        """Results for ``(image, timestamp_ms)`` pairs in order, the same as :meth:`process` gives, with
        frame t+1's pose stage running while frame t's face and hands finish.

        Frame t+1's pose ROI needs only frame t's pose, so the two overlap: more frames per second on a
        file, at the cost of about one pose stage of latency (a result comes out once the next frame's
        pose is done). For live sources where latency matters, call :meth:`process`.
        """
        driver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="holistic-pipeline")
        pending = None
        try:
            with self._owned():
                for image, timestamp_ms in frames:
                    image = check_image(image)
                    t_us = self._stamp(timestamp_ms)
                    sessions, gesture = self.holistic.models(), self.holistic.gesture_head()
                    grey = self._grey_pair(image)
                    pose = self._pose_stage(image, t_us, sessions)  # beside the previous frame's branches
                    if pending is not None:
                        yield pending.result()
                        pending = None
                    if pose is None:
                        yield self._lose_pose()
                        continue
                    pending = driver.submit(self._branch_stage, image, t_us, sessions, gesture, grey, pose,
                                            self._look_ahead(image, sessions))
                if pending is not None:
                    yield pending.result()
        finally:
            driver.shutdown(wait=True)

    @contextmanager
    def _owned(self):
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("a HolisticStream is fed from two threads at once; use one stream per thread")
        try:
            yield
        finally:
            self._busy.release()

    def _stamp(self, timestamp_ms: float | None) -> int:
        """This frame's time in µs, checked to increase; it becomes the last timestamp."""
        if timestamp_ms is None:
            timestamp_us = (self._last_us or 0) + FRAME_INTERVAL_US
        else:
            if not math.isfinite(timestamp_ms):
                raise ValueError(f"timestamp_ms must be a finite number, got {timestamp_ms}")
            timestamp_us = int(round(timestamp_ms * 1000.0))
            if self._last_us is not None and timestamp_us <= self._last_us:
                raise ValueError(f"timestamp_ms must increase: got {timestamp_ms} after {self._last_us / 1000.0}")
        self._last_us = timestamp_us
        return timestamp_us

    def _grey_pair(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(previous, this) frame in grey for motion-compensated smoothing; ``None`` when it is off or first."""
        if self.face_smoothing is None and self.hand_smoothing is None:
            return None
        grey = to_gray(image)
        pair = None if self._gray is None else (self._gray, grey)
        self._gray = grey
        return pair

    @property
    def _parts(self) -> dict[str, _Part]:
        return {"face": self._face, **self._hands}

    def _look_ahead(self, image: np.ndarray, sessions) -> _LookAhead:
        """Start the tracked parts' landmark models on their previous-landmark ROIs (used if RoiTracking keeps them)."""
        holistic, size = self.holistic, (image.shape[1], image.shape[0])
        rects = {name: part.rule.tracking_rect(part.previous, size)
                 for name, part in self._parts.items() if part.previous is not None}
        jobs = {name: holistic.run_ahead(getattr(holistic, self._parts[name].rule.model), image, size, rect, sessions)
                for name, rect in rects.items()}
        return _LookAhead(rects, jobs)

    def _pose_stage(self, image: np.ndarray, t_us: int, sessions) -> tuple[np.ndarray, np.ndarray] | None:
        """Pose ROI -> pose model -> filters; sets the next frame's ROI. ``(landmarks, world)`` or ``None``: no pose."""
        holistic, size = self.holistic, (image.shape[1], image.shape[0])
        roi = self.pose_roi
        if roi is None:
            self.pose_detections += 1
            roi = holistic.detect_pose(image, size, sessions)
        pose = None if roi is None else holistic.pose_landmarks(image, size, roi, sessions)
        if pose is None:
            return None
        # The landmark filters' value scale: the side of the raw auxiliary ROI (no x1.25), in pixels.
        aux_rect = alignment_rect(pose.auxiliary[0, :2], pose.auxiliary[1, :2], math.pi / 2, size)
        object_scale = (aux_rect.width * size[0] + aux_rect.height * size[1]) / 2.0
        filters = self._pose
        auxiliary = filters.auxiliary.apply(filters.auxiliary_visibility.apply(pose.auxiliary), t_us, size, object_scale)
        self.pose_roi = pose_rect_from_keypoints(auxiliary[0, :2], auxiliary[1, :2], size)
        landmarks, world = pose.landmarks, pose.world
        if self.smooth_landmarks:
            landmarks = filters.landmarks.apply(filters.visibility.apply(landmarks), t_us, size, object_scale)
            world = filters.world.apply(filters.world_visibility.apply(world), t_us, size, normalized=False)
        return landmarks, world

    def _branch_stage(self, image: np.ndarray, t_us: int, sessions, gesture, frames,
                      pose: tuple[np.ndarray, np.ndarray], ahead: _LookAhead) -> HolisticResult:
        """Face and hands from this frame's filtered pose, with RoiTracking; the frame's result.

        ``gesture``: this frame's :meth:`Holistic.gesture_head`; gestures are read from the output landmarks
        (smoothed when hand smoothing is on) or the hand model's image head."""
        holistic, size = self.holistic, (image.shape[1], image.shape[0])
        landmarks, world = pose
        parts = self._parts

        def landmarks_in(name: str, recrop: Rect):
            """The part's landmarks on the ROI RoiTracking picks: the look-ahead result if it ran on that ROI."""
            part, previous_rect = parts[name], ahead.rects.get(name)
            run = getattr(holistic, part.rule.model)
            if previous_rect is not None and keeps_tracking(part.previous, previous_rect, recrop, size, part.rule.limits):
                job = ahead.jobs[name]
                return job.result() if job is not None else run(image, size, previous_rect, sessions)
            return run(image, size, recrop, sessions)

        def face() -> np.ndarray | None:
            recrop = holistic.face_recrop_rect(image, size, landmarks, sessions)
            return self._face.update(None if recrop is None else landmarks_in("face", recrop), t_us, size, frames)

        def hand(side: str) -> tuple[np.ndarray | None, np.ndarray | None]:
            recrop = holistic.hand_recrop_rect(image, size, landmarks, side, sessions)
            out = landmarks_in(side, recrop)
            points = self._hands[side].update(None if out is None else out.points, t_us, size, frames)
            return points, None if out is None else out.logits

        sides = holistic.visible_sides(landmarks)
        for side in SIDES:
            if side not in sides:  # no re-crop ROI: no hand, and no track to continue next frame
                self._hands[side].drop()
                ahead.cancel(side)
        face_points, hands = holistic.run_branches(face, hand, sides)
        points = {side: out[0] for side, out in hands.items()}
        gestures = holistic.gestures(points, {side: out[1] for side, out in hands.items()}, size, gesture, sessions)
        return HolisticResult(pose=landmarks, pose_world=world, face=face_points, left_hand=points.get("left"),
                              right_hand=points.get("right"), left_gesture=gestures.get("left"),
                              right_gesture=gestures.get("right"))

    def _lose_pose(self) -> HolisticResult:
        """A frame without a pose: nothing is output, the next frame re-detects, and the image-landmark
        one-euro filters restart (an empty packet resets them); visibility and world filters keep state."""
        self.pose_roi = None
        self._pose.landmarks.reset()
        self._pose.auxiliary.reset()
        for part in self._parts.values():
            part.drop()
        return HolisticResult()


def _smoother(params: OneEuroParams | None) -> LandmarksSmoother | None:
    return None if params is None else LandmarksSmoother(params)

