"""Which photographs the default data is rendered from, and their teacher labels.

* three real photographs: matplotlib's ``sample_data/grace_hopper.jpg``, scikit-image's
  ``astronaut()`` and ``camera()`` (:func:`holotune.samples.sample_images`), labelled by the stock
  Holistic pipeline;
* the 100 face crops of scikit-image's ``lfw_subset()`` (25x25 greyscale; its other 100 images
  are non-face background patches, never used as subjects), labelled by the face-mesh teacher.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import cv2
import numpy as np

from holotune.landmarks import FACE_IOD_POINTS, FACE_SLICE, NUM_KEYPOINTS

log = logging.getLogger(__name__)

PHOTO_ORIGINS = {
    "grace_hopper": "matplotlib:sample_data/grace_hopper.jpg",
    "astronaut": "skimage.data.astronaut()",
    "camera": "skimage.data.camera()",
}
"""The photographs' names (the subject key) and where their pixels come from."""

LFW_NUM_FACES = 100
"""``skimage.data.lfw_subset()`` holds 100 faces (images 0-99), then 100 non-faces."""
LFW_CANVAS = 192
"""LFW faces are written as LFW_CANVAS x LFW_CANVAS RGB images."""
LFW_FACE_SIZE = 112
"""Side of the upscaled 25x25 face inside the canvas (the rest is replicated border)."""
LFW_KEY_OFFSET = 1000
"""LFW face i seeds its variants with key LFW_KEY_OFFSET + i, apart from the photos' keys 0, 1, 2."""
LFW_TEACHER_CHUNK = 25
"""LFW faces are labelled in fixed chunks, so a face's labels do not depend on how many are asked for."""
FACE_PRESENCE_THRESHOLD = 0.5
"""An LFW face is used when the stock face model's presence probability exceeds this."""


@dataclass(frozen=True)
class PhotoSource:
    """A clean labelled image that variants are rendered from.

    Attributes:
        subject: identity, the group key (``grace_hopper``, ``lfw_017``...).
        source_image: where the pixels came from.
        image: (H, W, 3) uint8 RGB.
        keypoints: (543, 3) normalized teacher labels (0 where unlabelled).
        mask: (543,) float32 0/1.
        grey: monochrome source.
        key: a stable integer for seeding.
        name: names the source's samples (``<name>_<condition>_<variant>``); unique per source,
            where several sources share a ``subject`` (a person's photos); empty: ``subject``.
        domain: which kind of face it is, reported apart by the evaluate stage: ``sharp`` (outer
            eye corners >= :data:`MEDIA_MIN_EYE_PX` apart: every media face, and sample photos
            whose face is that large), ``photo`` (a sample photo with a smaller face) or ``lfw``
            (25-px LFW faces, upscaled).
    """

    subject: str
    source_image: str
    image: np.ndarray
    keypoints: np.ndarray
    mask: np.ndarray
    grey: bool
    key: int
    name: str = ""
    domain: str = "photo"


def photo_sources(image_size: int) -> list[PhotoSource]:
    """The three photographs, resized to ``image_size`` on the long side, labelled by Holistic.

    Their ``domain`` is ``sharp`` where the face's outer eye corners are >= :data:`MEDIA_MIN_EYE_PX`
    apart at that size, else ``photo``.

    A photo on which the teacher finds no face is skipped (it cannot carry a mask), with a warning.
    """
    from holotune.runtime import Holistic
    from holotune.samples import sample_images

    sources = []
    with Holistic(threads=1, parallel=False) as teacher:
        for key, (name, full) in enumerate(sample_images().items()):
            h, w = full.shape[:2]
            f = image_size / max(h, w)
            size = (max(1, round(w * f)), max(1, round(h * f)))
            image = cv2.resize(full, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
            labels = teacher.process(image).to_array()[:, :3].astype(np.float64)
            found = ~np.isnan(labels).any(axis=1)
            if not found[FACE_SLICE].all():
                log.warning("default data: the teacher finds no face on %s; skipped", name)
                continue
            labels[~found] = 0.0
            sharp = _eye_distance_px(labels[FACE_SLICE, :2] * size) >= MEDIA_MIN_EYE_PX
            sources.append(PhotoSource(name, PHOTO_ORIGINS[name], image, labels, found.astype(np.float32),
                                       _is_monochrome(image), key, domain="sharp" if sharp else "photo"))
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


def lfw_sources(count: int, chunk: int = LFW_TEACHER_CHUNK) -> list[PhotoSource]:
    """The first ``count`` LFW faces on which the stock face model reports a face (presence > 0.5).

    Faces are labelled in fixed chunks of ``chunk`` (indices 0-24, 25-49...), so a face's labels
    do not depend on ``count``.
    """
    if count <= 0:
        return []
    import skimage.data

    from holotune.data.default.teacher import face_mesh_teacher
    from holotune.runtime.sessions import open_stock

    faces = skimage.data.lfw_subset()[:LFW_NUM_FACES]
    session = open_stock("face_landmark", threads=1)
    sources: list[PhotoSource] = []
    for lo in range(0, LFW_NUM_FACES, chunk):
        idx = range(lo, min(lo + chunk, LFW_NUM_FACES))
        images = np.stack([lfw_canvas(faces[i]) for i in idx])
        points, presence = face_mesh_teacher(images, session)
        for j, i in enumerate(idx):
            if presence[j] <= FACE_PRESENCE_THRESHOLD:
                log.info("default data: lfw_subset()[%d]: face presence %.2f, skipped", i, presence[j])
                continue
            keypoints = np.zeros((NUM_KEYPOINTS, 3))
            keypoints[FACE_SLICE] = points[j]
            mask = np.zeros(NUM_KEYPOINTS, np.float32)
            mask[FACE_SLICE] = 1.0
            sources.append(PhotoSource(f"lfw_{i:03d}", f"skimage.data.lfw_subset()[{i}]", images[j], keypoints, mask,
                                       True, LFW_KEY_OFFSET + i, domain="lfw"))
            if len(sources) == count:
                return sources
    log.warning("default data: only %d LFW faces pass the presence check (asked for %d)", len(sources), count)
    return sources


MEDIA_MIN_EYE_PX = 60.0
"""A media face is used when its outer eye corners (``RIGHT_EYE_OUTER``, ``LEFT_EYE_OUTER``) are at least
this far apart; the same bound makes a face ``sharp``."""
MEDIA_CROP_SCALE = 3.0
"""A media face's canvas: a square this many times the face mesh's box, around it (head and shoulders)."""
MEDIA_KEY_OFFSET = 5000
"""Media face k seeds its variants with key MEDIA_KEY_OFFSET + k."""


def media_face_sources(image_size: int) -> list[PhotoSource]:
    """Sharp real faces from the optional media (:data:`holotune.media.SOURCES`, ``make media``).

    Every face in a fetched photo whose outer eye corners are at least :data:`MEDIA_MIN_EYE_PX`
    apart (found by mediapipe's FaceMesh, up to 10 per photo) becomes a square canvas around it
    (:data:`MEDIA_CROP_SCALE`, edges replicated), ``image_size`` px, labelled by the stock Holistic
    like the sample photos. The subject (the group key that keeps a person on one side of a split)
    is the person's group (:func:`person_groups`: people who share a photo share a group, since
    which face is whose is not recorded). Missing media give no sources, with a warning naming them.
    """
    import mediapipe as mp

    from holotune.media import SOURCES, find, missing
    from holotune.runtime import Holistic
    from holotune.runtime.image import load_image
    from holotune.runtime.sessions import ensure_stock_models

    ensure_stock_models()
    for line in missing():
        log.warning("default data: optional media missing: %s", line)
    groups = media_person_groups()
    sources: list[PhotoSource] = []
    with Holistic(threads=1, parallel=False) as teacher, \
            mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=10) as finder:
        for media in (m for s in SOURCES for m in s.files if m.kind == "photo"):
            path = find(media)
            if path is None:
                continue
            photo = load_image(path)
            h, w = photo.shape[:2]
            found = finder.process(photo).multi_face_landmarks or []
            faces = [np.array([(p.x * w, p.y * h) for p in f.landmark]) for f in found]
            faces = [f for f in faces if _eye_distance_px(f) >= MEDIA_MIN_EYE_PX]
            faces.sort(key=lambda f: (f[:, 0].min(), f[:, 1].min()))  # a stable order: left to right
            subject = groups[media.people[0]]
            for k, face in enumerate(faces):
                canvas, _ = face_canvas(photo, face, image_size)
                labels = teacher.process(canvas).to_array()[:, :3].astype(np.float64)
                ok = ~np.isnan(labels).any(axis=1)
                if not ok[FACE_SLICE].all():
                    log.info("default data: %s face %d: the teacher finds no face on its canvas; skipped", path, k)
                    continue
                labels[~ok] = 0.0
                key = MEDIA_KEY_OFFSET + len(sources)
                sources.append(PhotoSource(subject, f"{path.parent.name}/{path.name}#{k}", canvas, labels,
                                           ok.astype(np.float32), _is_monochrome(canvas), key, name=f"media{key - MEDIA_KEY_OFFSET:03d}",
                                           domain="sharp"))
    return sources


def face_canvas(photo: np.ndarray, face_px: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A (size, size, 3) square around (N, 2) face points in pixels, MEDIA_CROP_SCALE x their box,
    edges replicated; and the (2, 3) matrix from photo pixels to canvas pixels."""
    lo, hi = face_px.min(axis=0), face_px.max(axis=0)
    centre, side = (lo + hi) / 2, float((hi - lo).max()) * MEDIA_CROP_SCALE
    scale = size / side
    matrix = np.array([[scale, 0.0, size / 2 - centre[0] * scale], [0.0, scale, size / 2 - centre[1] * scale]])
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    canvas = cv2.warpAffine(photo, matrix, (size, size), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
    return canvas, matrix


def _is_monochrome(image: np.ndarray) -> bool:
    """(H, W, 3) RGB whose three channels are equal (a greyscale photo stored as RGB)."""
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2]))


def _eye_distance_px(face_px: np.ndarray) -> float:
    """The outer-eye-corner distance (:data:`~holotune.landmarks.FACE_IOD_POINTS`) of (468, 2) face points in pixels."""
    right, left = FACE_IOD_POINTS
    return float(np.linalg.norm(face_px[right] - face_px[left]))


def media_person_groups() -> dict[str, str]:
    """Each person of the optional media's photos -> their group key (:func:`person_groups`)."""
    from holotune.media import SOURCES

    return person_groups([m.people for s in SOURCES for m in s.files if m.kind == "photo"])


def person_groups(files_people: list[tuple[str, ...]]) -> dict[str, str]:
    """Each person's group key: people shown together in any file end up in one group (transitively).

    Returns:
        person -> key: the group's names, sorted, lower-case, joined by ``+`` (characters other than
        letters, digits and ``_`` dropped), e.g. ``aaron_paul+bryan_cranston``.
    """
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    for people in files_people:
        if not people:
            continue
        first = root(people[0])
        for other in people[1:]:
            parent[root(other)] = first
    members: dict[str, list[str]] = {}
    for name in parent:
        members.setdefault(root(name), []).append(name)
    return {name: "+".join(sorted(re.sub(r"[^a-z0-9_]", "", m.lower().replace(" ", "_")) for m in members[root(name)]))
            for name in parent}
