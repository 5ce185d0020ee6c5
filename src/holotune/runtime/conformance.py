"""holotune's video mode against MediaPipe's, frame by frame, on the same frames.

The reference is mediapipe 0.10.21's own Holistic graph in video mode (what
``mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1)`` runs), asked for
two more of the graph's outputs: ``pose_landmarks_roi`` (the ROI the next frame's pose model
uses) and ``pose_detection`` (present on frames where the pose detector ran and found a person).

Two comparisons (``docs/mediapipe_video.md`` §9):

* **free-running**: both systems track on their own. Which parts are found and when the detector
  runs are comparable exactly; landmark coordinates only as long as the tracking loops have not
  drifted apart: the pose ROI is rebuilt from the model's own output every frame, and on some
  clips a 1e-5 change of that ROI grows to centimetres within a few frames (the loop amplifies
  float noise; it does so between two holotune runs as much as against MediaPipe);
* **lock-step**: before each frame, holotune's pose ROI is set to MediaPipe's ROI from the
  previous frame, which cuts the loop, so every step of the video graph (pose model on a tracked
  ROI, filters, face and hand tracking) is compared on equal inputs.

mediapipe is imported only when a comparison runs (it is a test and benchmark dependency).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from holotune.runtime.geometry import Rect
from holotune.runtime.holistic import Holistic

PARTS = ("pose", "face", "left_hand", "right_hand")
TOLERANCE = 5e-3  # normalized image units
VISIBLE = 0.5  # pose landmarks compared in "visible" mode: MediaPipe visibility above this, inside the frame


def mediapipe_parts(results) -> dict[str, np.ndarray | None]:
    """MediaPipe Holistic results -> holotune's arrays by part: pose (33, 4) with visibility, face
    (468, 3), hands (21, 3), float32; ``None`` where MediaPipe found nothing."""

    def points(landmarks, visibility: bool) -> np.ndarray | None:
        if landmarks is None:
            return None
        rows = [[p.x, p.y, p.z, p.visibility] if visibility else [p.x, p.y, p.z] for p in landmarks.landmark]
        return np.array(rows, dtype=np.float32)

    return {"pose": points(results.pose_landmarks, True), "face": points(results.face_landmarks, False),
            "left_hand": points(results.left_hand_landmarks, False),
            "right_hand": points(results.right_hand_landmarks, False)}


class MediaPipeVideo:
    """mediapipe 0.10.21 Holistic in video mode, returning its pose ROI and detection too.

    Same graph, side packets and thresholds as ``mp.solutions.holistic.Holistic(static_image_mode=False,
    model_complexity=1, smooth_landmarks=smooth_landmarks)``.
    """

    def __init__(self, smooth_landmarks: bool = True, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5):
        from mediapipe.python.solution_base import SolutionBase
        from mediapipe.python.solutions import holistic

        self._solution = SolutionBase(
            binary_graph_path=holistic._BINARYPB_FILE_PATH,
            side_inputs={"model_complexity": 1, "smooth_landmarks": smooth_landmarks, "enable_segmentation": False,
                         "smooth_segmentation": False, "refine_face_landmarks": False, "use_prev_landmarks": True},
            calculator_params={
                "poselandmarkcpu__posedetectioncpu__TensorsToDetectionsCalculator.min_score_thresh":
                    min_detection_confidence,
                "poselandmarkcpu__poselandmarkbyroicpu__tensorstoposelandmarksandsegmentation"
                "__ThresholdingCalculator.threshold": min_tracking_confidence,
            },
            outputs=["pose_landmarks", "face_landmarks", "left_hand_landmarks", "right_hand_landmarks",
                     "pose_landmarks_roi", "pose_detection"])

    def process(self, image: np.ndarray) -> tuple[dict[str, np.ndarray | None], Rect | None, bool]:
        """One RGB frame -> (landmarks by part as arrays like holotune's, next frame's pose ROI, detector found)."""
        out = self._solution.process(input_data={"image": image})
        parts = mediapipe_parts(out)
        roi = out.pose_landmarks_roi
        rect = None if roi is None else Rect(roi.x_center, roi.y_center, roi.width, roi.height, roi.rotation)
        return parts, rect, out.pose_detection is not None

    def close(self) -> None:
        self._solution.close()


@dataclass
class PartAgreement:
    """How one part's landmarks agree over the frames where both systems found it.

    Attributes:
        frames: frames where both found the part.
        max_diff: the largest |Δx| or |Δy| over those frames and landmarks (normalized), NaN if none.
        p95_diff: 95th percentile of the per-frame maxima.
        within: fraction of those frames whose every compared landmark is within the tolerance.
    """

    frames: int = 0
    max_diff: float = float("nan")
    p95_diff: float = float("nan")
    within: float = float("nan")
    per_frame: list[float] = field(default_factory=list, repr=False)

    def add(self, diff: float) -> None:
        self.per_frame.append(diff)

    def finish(self, tolerance: float) -> "PartAgreement":
        if self.per_frame:
            d = np.asarray(self.per_frame)
            self.frames, self.max_diff = len(d), float(d.max())
            self.p95_diff, self.within = float(np.percentile(d, 95)), float(np.mean(d <= tolerance))
        return self


@dataclass
class VideoComparison:
    """The frame-by-frame comparison of one clip (see :func:`compare_video`).

    Attributes:
        frames: frames compared.
        same_parts: fraction of frames where exactly the same parts were found.
        differing_frames: ``(frame, part, who found it)`` for every disagreement.
        parts: agreement per part; ``pose`` over every landmark, ``pose_visible`` over the landmarks
            MediaPipe calls visible (> 0.5) inside the frame.
        detector_frames: the frames where each system's pose detector found a person.
        roi_max_diff: largest difference of the next-frame pose ROI (centre, size; normalized).
    """

    frames: int
    same_parts: float
    differing_frames: list[tuple[int, str, str]]
    parts: dict[str, PartAgreement]
    detector_frames: dict[str, list[int]]
    roi_max_diff: float

    def to_dict(self) -> dict:
        return {"frames": self.frames, "same_parts": self.same_parts,
                "differing_frames": [list(x) for x in self.differing_frames],
                "parts": {k: {f: getattr(v, f) for f in ("frames", "max_diff", "p95_diff", "within")}
                          for k, v in self.parts.items()},
                "detector_frames": self.detector_frames, "roi_max_diff": self.roi_max_diff}


def compare_video(frames: np.ndarray, holistic: Holistic, *, lockstep: bool = False, smooth_landmarks: bool = True,
                  tolerance: float = TOLERANCE) -> VideoComparison:
    """Run a new holotune stream and a new MediaPipe video-mode graph on ``frames``, frame by frame.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        holistic: the models and thresholds (a new stream is made on them).
        lockstep: before each frame, give holotune MediaPipe's pose ROI of the previous frame.
        smooth_landmarks: both systems' ``smooth_landmarks``.
        tolerance: normalized units for the ``within`` fractions.
    """
    stream = holistic.stream(smooth_landmarks=smooth_landmarks, face_smoothing=None, hand_smoothing=None)
    reference = MediaPipeVideo(smooth_landmarks, holistic.min_detection_confidence, holistic.min_tracking_confidence)
    agreement = {name: PartAgreement() for name in (*PARTS, "pose_visible")}
    differing, detector = [], {"holotune": [], "mediapipe": []}
    same, roi_diff = 0, 0.0
    mp_roi = None
    try:
        for t, frame in enumerate(frames):
            if lockstep:
                stream.pose_roi = mp_roi
            detections_before = stream.pose_detections
            ours = stream.process(frame)
            theirs, mp_roi, mp_detected = reference.process(frame)
            if stream.pose_detections > detections_before and ours.pose is not None:
                detector["holotune"].append(t)
            if mp_detected:
                detector["mediapipe"].append(t)
            if (stream.pose_roi is None) != (mp_roi is None):
                differing.append((t, "pose_roi", "holotune" if stream.pose_roi is not None else "mediapipe"))
            elif mp_roi is not None:
                roi_diff = max(roi_diff, *(abs(getattr(stream.pose_roi, f) - getattr(mp_roi, f))
                                           for f in ("x_center", "y_center", "width", "height")))
            agree = True
            for part in PARTS:
                a, b = getattr(ours, part), theirs[part]
                if (a is None) != (b is None):
                    agree = False
                    differing.append((t, part, "holotune" if a is not None else "mediapipe"))
                elif a is not None:
                    diff = np.abs(a[:, :2] - b[:, :2]).max(axis=1)
                    agreement[part].add(float(diff.max()))
                    if part == "pose":
                        inside = (b[:, 0] > 0) & (b[:, 0] < 1) & (b[:, 1] > 0) & (b[:, 1] < 1)
                        visible = inside & (b[:, 3] > VISIBLE)
                        agreement["pose_visible"].add(float(diff[visible].max()) if visible.any() else 0.0)
            same += agree
    finally:
        reference.close()
    return VideoComparison(
        frames=len(frames), same_parts=same / max(len(frames), 1), differing_frames=differing,
        parts={k: v.finish(tolerance) for k, v in agreement.items()}, detector_frames=detector,
        roi_max_diff=roi_diff)
