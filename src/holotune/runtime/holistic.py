"""MediaPipe Holistic rebuilt on ONNX Runtime (no torch), for still images and video.

The graph is mediapipe 0.10.21's ``HolisticLandmarkCpu`` as the stock Python solution runs it
with ``model_complexity=1``. With ``static_image_mode=True`` each image is processed as by a fresh
instance (see ``docs/mediapipe_holistic.md`` §2, §12.1): 8 model runs per person,

    pose_detection -> pose ROI -> pose_landmark_full (+ heatmap refinement, kernel 9)
      -> face: ROI from pose -> face_detection_short_range -> face-mesh ROI -> face_landmark
      -> hands (per side): wrist-visibility gate -> ROI from pose -> hand_recrop -> hand_landmark_full

The face branch and each hand run as concurrent tasks, as MediaPipe's graph scheduler runs them;
the pose stage, which runs alone, gets the spare cores instead. With ``static_image_mode=False``
frames are tracked and smoothed as in MediaPipe's video mode (:mod:`holotune.runtime.stream`,
``docs/mediapipe_video.md``): the same stages, composed with tracking ROIs and filters.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from holotune.gesture import (
    GESTURE_OUTPUT,
    SCORE_THRESHOLD,
    Gesture,
    GestureError,
    GestureModel,
    decide,
    softmax,
)
from holotune.landmarks import NUM_FACE, NUM_HAND, NUM_KEYPOINTS, NUM_POSE, PoseLandmark
from holotune.models.spec import MODEL_SPECS, MODULE_MODELS, MODULE_SPECS
from holotune.runtime.detection import (
    FACE_DETECTOR,
    POSE_DETECTOR,
    decode_detections,
    ssd_anchors,
    weighted_nms,
)
from holotune.runtime.geometry import (
    Crop,
    Rect,
    alignment_rect,
    box_rect,
    crop_image,
    landmarks_box_rect,
    normalize_radians,
    pad_roi,
    project_detection_points,
    project_to_image,
    remove_letterbox,
    rotation_between,
    transform_rect,
)
from holotune.runtime.sessions import ModelLoadError, ModelSession, open_stock, resolve_model_source
from holotune.runtime.smoothing import OneEuroParams
from holotune.runtime.tracking import pose_rect_from_keypoints

if TYPE_CHECKING:
    from holotune.runtime.stream import HolisticStream

# MediaPipe's fixed thresholds (strict '>' for presence/visibility, '>=' for detector scores).
FACE_DETECTION_MIN_SCORE = 0.5
FACE_PRESENCE_THRESHOLD = 0.5
HAND_PRESENCE_THRESHOLD = 0.5
WRIST_VISIBILITY_THRESHOLD = 0.1
HEATMAP_KERNEL = 9  # the graph says 7, but stock Python drops that option (docs/mediapipe_holistic.md §6.3)
HEATMAP_MIN_CONFIDENCE = 0.5
INHERIT = object()  # Holistic.stream(): "this option as the Holistic instance has it"
NUM_POSE_AUXILIARY = 2  # pose model landmarks 33 (hip centre) and 34 (body-circle point): the tracking ROI's source
# These run one after the other with nothing beside them, so they get the spare cores.
POSE_STAGE_MODELS = ("pose_detection", "pose_landmark_full")
# Outputs Holistic reads, where a model has others: the rest are pruned from the graph, not computed
# (pose segmentation is off in Holistic by default and was half of pose_landmark_full's time).
USED_OUTPUTS = {
    "pose_landmark_full": ["landmarks", "pose_flag", "heatmap", "world_landmarks"],
    "hand_landmark_full": ["landmarks", "hand_flag"],
}
# Outputs a fine-tuned model may add, computed when present: the hand model's image gesture head.
OPTIONAL_OUTPUTS = {"hand_landmark_full": (GESTURE_OUTPUT,)}
# Pose landmarks per hand side: (wrist, pinky, index), the subject's left and right.
HAND_POSE_POINTS = {
    "left": (PoseLandmark.LEFT_WRIST, PoseLandmark.LEFT_PINKY, PoseLandmark.LEFT_INDEX),
    "right": (PoseLandmark.RIGHT_WRIST, PoseLandmark.RIGHT_PINKY, PoseLandmark.RIGHT_INDEX),
}


class HandOutput(NamedTuple):
    """The hand model's decoded outputs on one hand.

    Attributes:
        points: (21, 3) landmarks in normalized image coordinates.
        logits: (C,) the image gesture head's logits when the hand model has one, else ``None``.
    """

    points: np.ndarray
    logits: np.ndarray | None = None


class PoseOutput(NamedTuple):
    """The pose landmark model's decoded outputs on one image.

    Attributes:
        landmarks: (33, 4) x, y, z (normalized), visibility.
        auxiliary: (2, 4) landmarks 33 and 34, the next frame's ROI source in video mode.
        world: (33, 4) x, y, z in metres (hip-centred), visibility.
    """

    landmarks: np.ndarray
    auxiliary: np.ndarray
    world: np.ndarray


@dataclass
class HolisticResult:
    """The 543 keypoints of one image, in MediaPipe's normalized image coordinates.

    Attributes:
        pose: (33, 4) x, y, z, visibility, or ``None``.
        pose_world: (33, 4) x, y, z in metres (hip-centred), visibility; or ``None``.
        face: (468, 3) x, y, z, or ``None``.
        left_hand: (21, 3), the subject's left hand, or ``None``.
        right_hand: (21, 3), the subject's right hand, or ``None``.
        left_gesture, right_gesture: that hand's :class:`~holotune.gesture.Gesture` (label, score), or
            ``None`` when the hand is missing or no gesture head is served.
    """

    pose: np.ndarray | None = None
    pose_world: np.ndarray | None = None
    face: np.ndarray | None = None
    left_hand: np.ndarray | None = None
    right_hand: np.ndarray | None = None
    left_gesture: Gesture | None = None
    right_gesture: Gesture | None = None

    def to_array(self) -> np.ndarray:
        """(543, 4) float32: pose, face, left hand, right hand.

        Rows of a missing part are all NaN; column 3 is the pose visibility and NaN for face and
        hands, which MediaPipe gives no visibility.
        """
        out = np.full((NUM_KEYPOINTS, 4), np.nan, dtype=np.float32)
        start = 0
        for part, count in ((self.pose, NUM_POSE), (self.face, NUM_FACE), (self.left_hand, NUM_HAND),
                            (self.right_hand, NUM_HAND)):
            if part is not None:
                out[start : start + count, : part.shape[1]] = part
            start += count
        return out

    def to_dict(self) -> dict:
        """JSON-ready: each part as a list of rows, each gesture as ``{"label", "score"}``; or ``None``."""
        return {k: (None if v is None else v.to_dict() if isinstance(v, Gesture) else np.round(v.astype(float), 6).tolist())
                for k, v in vars(self).items()}


class Holistic:
    """MediaPipe Holistic on ONNX Runtime, for still images or video.

    Args:
        min_detection_confidence: [0, 1], the pose detector's minimum score (MediaPipe's option).
        min_tracking_confidence: [0, 1], the pose-presence threshold (MediaPipe's option).
        static_image_mode: MediaPipe's option. ``True`` (holotune's default, unlike MediaPipe's):
            every call is an independent image. ``False``: calls are the frames of one video,
            tracked and smoothed as MediaPipe's video mode does (:meth:`process`, :meth:`reset`;
            :meth:`stream` gives more independent streams on the same models).
        smooth_landmarks: MediaPipe's option: in video mode, filter pose and world landmarks.
        face_smoothing, hand_smoothing: in video mode, one-euro filters for the face and hand
            landmarks, which MediaPipe does not smooth (``None``: off, MediaPipe's behaviour; see
            :data:`holotune.runtime.smoothing.FACE_SMOOTHING` and ``HAND_SMOOTHING``).
        face_mesh, hands, pose: replace that landmark model with a fine-tuned one: a local ``.onnx``
            file (or a folder holding one) or an MLflow URI ``models:/<name>@<alias>``. It must
            have the stock model's signature. A hand model exported with an image gesture head
            (a ``gesture`` output) gives each hand a gesture.
        gesture: a landmark gesture head (``gesture.onnx``, a folder, or ``models:/holotune-gesture@<alias>``);
            it gives each hand a gesture, and takes precedence over a hand model's image head.
        gesture_threshold: [0, 1], the score below which a gesture is reported as ``none`` (MediaPipe's 0.5).
        threads: intra-op threads of the two pose models, which run alone (default: up to 2, the
            cores MediaPipe's scheduler uses here). The face and hand models run on 1 thread each,
            concurrently, so at most ``max(threads, 2)`` threads compute at any time.
        parallel: run the face branch and the hands concurrently.
    """

    def __init__(
        self,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        *,
        static_image_mode: bool = True,
        smooth_landmarks: bool = True,
        face_smoothing: OneEuroParams | None = None,
        hand_smoothing: OneEuroParams | None = None,
        face_mesh: str | os.PathLike | None = None,
        hands: str | os.PathLike | None = None,
        pose: str | os.PathLike | None = None,
        gesture: str | os.PathLike | None = None,
        gesture_threshold: float = SCORE_THRESHOLD,
        threads: int | None = None,
        parallel: bool = True,
    ):
        for name, value in (("min_detection_confidence", min_detection_confidence),
                            ("min_tracking_confidence", min_tracking_confidence), ("gesture_threshold", gesture_threshold)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        overrides = {"face_mesh": face_mesh, "hands": hands, "pose": pose}
        pose_threads = threads or min(2, os.cpu_count() or 1)
        self.sources: dict[str, str] = {}
        self._sessions: dict[str, ModelSession] = {}
        for name in MODEL_SPECS:
            module = MODEL_SPECS[name].module
            n_threads = pose_threads if name in POSE_STAGE_MODELS else 1
            outputs = USED_OUTPUTS.get(name)
            if module and overrides.get(module) is not None:
                path = resolve_model_source(overrides[module])
                self._sessions[name] = ModelSession(MODEL_SPECS[name], path, n_threads, outputs,
                                                    OPTIONAL_OUTPUTS.get(name, ()))
                self.sources[module] = os.fspath(overrides[module])
            else:
                self._sessions[name] = open_stock(name, n_threads, outputs)
        self.gesture_threshold = float(gesture_threshold)
        self._gesture: GestureModel | None = None
        if gesture is not None:
            try:
                self._gesture = GestureModel(resolve_model_source(gesture), self.gesture_threshold)
            except GestureError as exc:
                raise ModelLoadError(str(exc)) from None
            self.sources["gesture"] = os.fspath(gesture)
        self._pose_anchors = ssd_anchors(POSE_DETECTOR)
        self._face_anchors = ssd_anchors(FACE_DETECTOR)
        # Face, left hand and right hand are independent: one task each.
        self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="holistic") if parallel else None
        # Video mode's look-ahead runs (see runtime.stream); a pool of its own, since branch tasks wait on them.
        self._ahead = ThreadPoolExecutor(max_workers=3, thread_name_prefix="holistic-ahead") if parallel else None
        self.static_image_mode = bool(static_image_mode)
        self.smooth_landmarks = bool(smooth_landmarks)
        self.face_smoothing, self.hand_smoothing = face_smoothing, hand_smoothing
        self._stream = None if self.static_image_mode else self.stream()

    def set_model(self, module: str, session: ModelSession) -> None:
        """Swap the landmark model of ``module`` (face_mesh | hands | pose); the swap is one assignment."""
        name = MODULE_MODELS[module]
        if session.spec.name != name:
            raise ValueError(f"a {session.spec.name} session cannot serve {module}")
        missing = set(USED_OUTPUTS.get(name, session.spec.output_names)) - set(session.output_names)
        if missing:
            raise ValueError(f"the {name} session does not compute {sorted(missing)}, which Holistic reads")
        self._sessions[name] = session

    def set_gesture(self, model: GestureModel | None) -> None:
        """Serve ``model`` as the landmark gesture head (``None``: none); the swap is one assignment."""
        self._gesture = model

    @property
    def gesture_classes(self) -> list[str] | None:
        """The served gesture head's class names (landmark head first, else the hand model's image head)."""
        if self._gesture is not None:
            return list(self._gesture.class_names)
        return self._sessions["hand_landmark_full"].gesture_classes

    def close(self) -> None:
        for pool in (self._pool, self._ahead):
            if pool is not None:
                pool.shutdown(wait=True)
        self._pool = self._ahead = None

    def __enter__(self) -> "Holistic":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ pipeline
    def process(self, image: np.ndarray, timestamp_ms: float | None = None) -> HolisticResult:
        """Run Holistic on one (H, W, 3) uint8 RGB image.

        In static-image mode each call is independent and ``timestamp_ms`` is ignored. In video
        mode the call is the next frame of one stream (see :class:`HolisticStream`): timestamps in
        milliseconds must increase; ``None`` steps 33.333 ms (MediaPipe's synthetic 30 fps).
        """
        if self._stream is not None:
            return self._stream.process(image, timestamp_ms)
        image = check_image(image)
        size = (image.shape[1], image.shape[0])
        sessions, gesture = self.models(), self.gesture_head()
        roi = self.detect_pose(image, size, sessions)
        pose = None if roi is None else self.pose_landmarks(image, size, roi, sessions)
        if pose is None:
            return HolisticResult()

        def face() -> np.ndarray | None:
            recrop = self.face_recrop_rect(image, size, pose.landmarks, sessions)
            return None if recrop is None else self.face_landmarks(image, size, recrop, sessions)

        def hand(side: str) -> HandOutput | None:
            recrop = self.hand_recrop_rect(image, size, pose.landmarks, side, sessions)
            return self.hand_output(image, size, recrop, sessions)

        face_points, hands = self.run_branches(face, hand, self.visible_sides(pose.landmarks))
        points = {side: None if out is None else out.points for side, out in hands.items()}
        gestures = self.gestures(points, {side: None if out is None else out.logits for side, out in hands.items()},
                                 size, gesture, sessions)
        return HolisticResult(pose=pose.landmarks, pose_world=pose.world, face=face_points,
                              left_hand=points.get("left"), right_hand=points.get("right"),
                              left_gesture=gestures.get("left"), right_gesture=gestures.get("right"))

    def process_pipelined(self, frames):
        """Video mode: results for an iterable of ``(image, timestamp_ms)``, in order and equal to
        :meth:`process`'s, with each frame's pose overlapping the previous frame's face and hands
        (more frames/s, about one pose stage more latency; :meth:`HolisticStream.process_pipelined`)."""
        if self._stream is None:
            raise ValueError("process_pipelined needs video mode: Holistic(static_image_mode=False)")
        return self._stream.process_pipelined(frames)

    def stream(self, *, smooth_landmarks: bool | object = INHERIT, face_smoothing: OneEuroParams | None | object = INHERIT,
               hand_smoothing: OneEuroParams | None | object = INHERIT) -> "HolisticStream":
        """A new video-mode tracking state on these models (a hot swap reaches it at its next frame).

        Options left at :data:`INHERIT` are this instance's; pass them to override for this stream.
        """
        from holotune.runtime.stream import HolisticStream

        given = {"smooth_landmarks": smooth_landmarks, "face_smoothing": face_smoothing,
                 "hand_smoothing": hand_smoothing}
        return HolisticStream(self, **{k: getattr(self, k) if v is INHERIT else v for k, v in given.items()})

    def reset(self) -> None:
        """Video mode: forget the tracks and filters (the next frame runs the pose detector). Static: no-op."""
        if self._stream is not None:
            self._stream.reset()

    # ------------------------------------------------------------------ graph stages
    # Both modes compose these; ``sessions`` is one frame's snapshot of the models (see models()).
    def models(self) -> dict[str, ModelSession]:
        """The current model sessions, by model name: one consistent set for one frame."""
        return dict(self._sessions)

    def gesture_head(self) -> GestureModel | None:
        """The current landmark gesture head, for one frame (an image head travels with its hand session)."""
        return self._gesture

    def gestures(self, hands: dict[str, np.ndarray | None], logits: dict[str, np.ndarray | None],
                 size: tuple[int, int], head: GestureModel | None, sessions) -> dict[str, Gesture | None]:
        """A gesture per side: from the landmark head if one is served, else from the hand model's image
        head logits; ``None`` for a missing hand or when neither is served.

        Args:
            hands: side -> (21, 3) landmarks or ``None``.
            logits: side -> the image head's (C,) logits or ``None``.
            head: this frame's :meth:`gesture_head`.
            sessions: this frame's :meth:`models` (the hand session's image head class names).
        """
        if head is not None:
            return head.classify(hands, size)
        classes = sessions["hand_landmark_full"].gesture_classes
        return {side: None if points is None or logits.get(side) is None or classes is None
                else decide(softmax(logits[side].tolist()), classes, self.gesture_threshold)
                for side, points in hands.items()}

    def run_branches(self, face, hand, sides: list[str]) -> tuple[np.ndarray | None, dict[str, np.ndarray | None]]:
        """Run ``face()`` and ``hand(side)`` for each side, concurrently when ``parallel``."""
        if self._pool is None:
            return face(), {side: hand(side) for side in sides}
        face_job = self._pool.submit(face)
        hand_jobs = {side: self._pool.submit(hand, side) for side in sides}
        return face_job.result(), {side: job.result() for side, job in hand_jobs.items()}

    def run_ahead(self, fn, *args) -> Future | None:
        """Start ``fn(*args)`` now, beside whatever runs next (video mode's look-ahead); ``None`` if not parallel."""
        return None if self._ahead is None else self._ahead.submit(fn, *args)

    @staticmethod
    def visible_sides(pose: np.ndarray) -> list[str]:
        """The hands whose pose wrist visibility passes MediaPipe's gate (> 0.1): ``left``, ``right``."""
        return [s for s, (wrist, _, _) in HAND_POSE_POINTS.items() if pose[wrist, 3] > WRIST_VISIBILITY_THRESHOLD]

    def _run(self, sessions: dict[str, ModelSession], name: str, crops_u8: list[np.ndarray]) -> dict[str, np.ndarray]:
        batch = MODEL_SPECS[name].to_input(np.stack(crops_u8))
        return sessions[name].run(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))

    def _crop(self, image: np.ndarray, rect: Rect, size: tuple[int, int], name: str) -> tuple[np.ndarray, Crop]:
        spec = MODEL_SPECS[name]
        crop = pad_roi(rect, size, spec.input_size, spec.keep_aspect_ratio)
        return crop_image(image, crop, spec.input_size, border_zero=spec.border == "zero"), crop

    def detect_pose(self, image: np.ndarray, size: tuple[int, int], sessions) -> Rect | None:
        """``PoseDetectionCpu`` + ``PoseDetectionToRoi``: the pose ROI of the first detection, or ``None``."""
        pixels, crop = self._crop(image, Rect(0.5, 0.5, 1.0, 1.0), size, "pose_detection")
        out = self._run(sessions, "pose_detection", [pixels])
        scores, boxes, kps = decode_detections(out["boxes"][0], out["scores"][0], self._pose_anchors, POSE_DETECTOR,
                                               self.min_detection_confidence)
        detections = weighted_nms(scores, boxes, kps, POSE_DETECTOR.min_suppression_threshold, max_detections=1)
        if not detections:
            return None
        keypoints = remove_letterbox(detections[0].keypoints, crop.padding)
        return pose_rect_from_keypoints(keypoints[0], keypoints[1], size)

    def pose_landmarks(self, image: np.ndarray, size: tuple[int, int], roi: Rect, sessions) -> PoseOutput | None:
        """``PoseLandmarkByRoiCpu``: the pose in ``roi``, or ``None`` when its presence is not above
        ``min_tracking_confidence``."""
        pixels, crop = self._crop(image, roi, size, "pose_landmark_full")
        out = self._run(sessions, "pose_landmark_full", [pixels])
        if not float(out["pose_flag"][0, 0]) > self.min_tracking_confidence:
            return None
        h, w = MODEL_SPECS["pose_landmark_full"].input_size
        raw = out["landmarks"][0].reshape(-1, 5)[: NUM_POSE + NUM_POSE_AUXILIARY].astype(np.float32)
        points = np.stack([raw[:, 0] / w, raw[:, 1] / h, raw[:, 2] / w, _sigmoid(raw[:, 3])], axis=1)
        heatmap = out["heatmap"][0][:, :, : NUM_POSE + NUM_POSE_AUXILIARY]
        points[:, :2] = refine_from_heatmap(points[:, :2], heatmap)
        points = project_to_image(remove_letterbox(points, crop.padding), roi).astype(np.float32)
        world = out["world_landmarks"][0].reshape(-1, 3)[:NUM_POSE].astype(np.float32)
        cos, sin = math.cos(roi.rotation), math.sin(roi.rotation)
        world = np.stack([cos * world[:, 0] - sin * world[:, 1], sin * world[:, 0] + cos * world[:, 1], world[:, 2],
                          points[:NUM_POSE, 3]], axis=1)
        return PoseOutput(points[:NUM_POSE], points[NUM_POSE:], world.astype(np.float32))

    def face_recrop_rect(self, image: np.ndarray, size: tuple[int, int], pose: np.ndarray, sessions) -> Rect | None:
        """The face-mesh ROI from the face detector, run in the ROI around pose landmarks 0-10; ``None``: no face."""
        head = pose[: PoseLandmark.MOUTH_RIGHT + 1, :2].astype(np.float64)  # nose .. mouth: landmarks 0-10
        rotation = rotation_between(head[PoseLandmark.RIGHT_EYE], head[PoseLandmark.LEFT_EYE], 0.0, size)
        region = transform_rect(landmarks_box_rect(head, rotation), size, scale=3.0)
        pixels, crop = self._crop(image, region, size, "face_detection_short_range")
        out = self._run(sessions, "face_detection_short_range", [pixels])
        scores, boxes, kps = decode_detections(out["regressors"][0], out["classificators"][0], self._face_anchors,
                                               FACE_DETECTOR, FACE_DETECTION_MIN_SCORE)
        detections = weighted_nms(scores, boxes, kps, FACE_DETECTOR.min_suppression_threshold, max_detections=1)
        if not detections:
            return None
        keypoints = project_detection_points(detections[0].keypoints.astype(np.float64), crop.rect, size)
        rotation = rotation_between(keypoints[0], keypoints[1], 0.0, size)  # right eye -> left eye
        return transform_rect(box_rect(keypoints, rotation), size, scale=2.0, shift_y=-0.1)

    def face_landmarks(self, image: np.ndarray, size: tuple[int, int], roi: Rect, sessions) -> np.ndarray | None:
        """(468, 3) face mesh in ``roi``, or ``None`` when the face presence is not above 0.5."""
        pixels, crop = self._crop(image, roi, size, "face_landmark")
        out = self._run(sessions, "face_landmark", [pixels])
        if not _sigmoid(float(out["face_flag"].reshape(-1)[0])) > FACE_PRESENCE_THRESHOLD:
            return None
        h, w = MODEL_SPECS["face_landmark"].input_size
        raw = out["landmarks"].reshape(-1, 3).astype(np.float32)
        points = np.stack([raw[:, 0] / w, raw[:, 1] / h, raw[:, 2] / w], axis=1)
        return project_to_image(remove_letterbox(points, crop.padding), roi).astype(np.float32)

    def hand_recrop_rect(self, image: np.ndarray, size: tuple[int, int], pose: np.ndarray, side: str,
                         sessions) -> Rect:
        """The hand ROI of ``side`` (the subject's ``left`` or ``right``) from the re-crop model, run in
        the ROI MediaPipe derives from the pose wrist, pinky and index."""
        roi = transform_rect(hand_rect_from_pose(pose, side, size), size, scale=2.7, shift_y=-0.1)
        pixels, crop = self._crop(image, roi, size, "hand_recrop")
        out = self._run(sessions, "hand_recrop", [pixels])
        h, w = MODEL_SPECS["hand_recrop"].input_size
        points = out["crop"][0].reshape(2, 2).astype(np.float64) / np.array([w, h])
        points = project_to_image(remove_letterbox(points, crop.padding), roi)
        return transform_rect(alignment_rect(points[0], points[1], -math.pi / 2, size), size, scale=1.0, shift_y=-0.1)

    def hand_output(self, image: np.ndarray, size: tuple[int, int], roi: Rect, sessions) -> HandOutput | None:
        """The hand in ``roi``: landmarks and image-head gesture logits; ``None`` when its presence is not above 0.5."""
        pixels, crop = self._crop(image, roi, size, "hand_landmark_full")
        out = self._run(sessions, "hand_landmark_full", [pixels])
        if not float(out["hand_flag"][0, 0]) > HAND_PRESENCE_THRESHOLD:
            return None
        h, w = MODEL_SPECS["hand_landmark_full"].input_size
        raw = out["landmarks"][0].reshape(-1, 3).astype(np.float32)
        points = np.stack([raw[:, 0] / w, raw[:, 1] / h, raw[:, 2] / w / MODULE_SPECS["hands"].z_normalize], axis=1)
        logits = out[GESTURE_OUTPUT][0] if GESTURE_OUTPUT in out else None
        return HandOutput(project_to_image(remove_letterbox(points, crop.padding), roi).astype(np.float32), logits)


def hand_rect_from_pose(pose: np.ndarray, side: str, size: tuple[int, int]) -> Rect:
    """``HandDetectionsFromPoseToRectsCalculator``: a hand ROI from pose wrist, pinky and index.

    Centre at the estimated middle finger ``(2·index + pinky) / 3``, side 2·|middle − wrist|,
    rotated so the wrist -> middle vector points up; all in pixels.
    """
    w_img, h_img = size
    wrist, pinky, index = (pose[i, :2].astype(np.float64) * (w_img, h_img) for i in HAND_POSE_POINTS[side])
    middle = (2.0 * index + pinky) / 3.0
    side_px = 2.0 * math.hypot(*(middle - wrist))
    rotation = math.pi / 2 - math.atan2(-(middle[1] - wrist[1]), middle[0] - wrist[0])
    return Rect(middle[0] / w_img, middle[1] / h_img, side_px / w_img, side_px / h_img, normalize_radians(rotation))


def refine_from_heatmap(points: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """``RefineLandmarksFromHeatmapCalculator``: move (N, 2) crop-normalized points to the heatmap's
    local confidence-weighted centroid where the heatmap is confident.

    Args:
        points: (N, 2) x, y in [0, 1] of the crop.
        heatmap: (H, W, N) logits.
    """
    hm_h, hm_w, n = heatmap.shape
    offset = (HEATMAP_KERNEL - 1) // 2
    cols = np.trunc(points[:, 0] * hm_w).astype(np.int64)  # C++ float->int truncates toward zero
    rows = np.trunc(points[:, 1] * hm_h).astype(np.int64)
    # MediaPipe checks `center_col >= hm_height` where it means the row; kept for parity.
    inside = (cols >= 0) & (cols < hm_w) & (rows >= 0) & (cols < hm_h)
    # Windows are clipped at the map's edges: out-of-map cells count as zero confidence. (A row
    # past the bottom that slips through the check above gets a partial or empty window.)
    window = np.arange(HEATMAP_KERNEL) - offset
    r, c = rows[:, None] + window, cols[:, None] + window  # (N, K) in heatmap coordinates
    valid = ((r >= 0) & (r < hm_h))[:, :, None] & ((c >= 0) & (c < hm_w))[:, None, :]  # (N, K, K)
    logits = heatmap[np.clip(r, 0, hm_h - 1)[:, :, None], np.clip(c, 0, hm_w - 1)[:, None, :], np.arange(n)[:, None, None]]
    conf = np.where(valid, _sigmoid(logits.astype(np.float32)), np.float32(0.0))
    total = conf.sum(axis=(1, 2), dtype=np.float32)
    refine = inside & (conf.max(axis=(1, 2)) >= HEATMAP_MIN_CONFIDENCE) & (total > 0)
    out = points.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        x = (conf * c[:, None, :]).sum(axis=(1, 2), dtype=np.float32) / hm_w / total
        y = (conf * r[:, :, None]).sum(axis=(1, 2), dtype=np.float32) / hm_h / total
    out[refine, 0], out[refine, 1] = x[refine], y[refine]
    return out


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image of {image.shape[1]}x{image.shape[0]} pixels is too small to process")
    return np.ascontiguousarray(image)
