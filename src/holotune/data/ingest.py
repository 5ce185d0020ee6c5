"""The ``ingest`` stage: any mix of sources -> a validated, labelled, split manifest and a report.

Sources (``Source.kind``):

* ``labelled``: images with 543x3 keypoints in MediaPipe order, from one JSONL or CSV file, or a
  folder of images with sidecar ``<stem>.json`` files; optional ``mask`` (543), ``label`` /
  ``label_name`` and a group key (``subject`` / ``group`` / ``video``).
* ``unlabelled``: a folder (or file) of images and videos; videos are sampled at ``video_fps``;
  keypoints come from the stock Holistic teacher, parts it does not find are masked out.
* ``class_folders``: ``<root>/<class_name>/*`` images for gesture classification; class names come
  from the folders (checked against ``class_names`` when given); keypoints from the teacher.
* ``tfrecord``: a file or folder of TFRecords in the fine-tuning API's schema.
* ``default``: the embedded default dataset (:mod:`holotune.data.default`), built on the fly.
* ``poses``: the pose default data (:mod:`holotune.data.poses`), built on the fly like ``default``.

Every sample that fails a check is quarantined with its reason (or, with ``strict``, fails the
stage); the report's counts add up: ``in == kept + quarantined``. Configuration errors (a missing
source, ``class_names`` that disagree with the folders, an empty class folder) always fail.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from holotune.data.manifest import SPLITS, Sample, write_manifest
from holotune.data.validation import (
    LabelRules,
    SampleError,
    check_coordinates,
    check_label,
    parse_keypoints,
    parse_mask,
)
from holotune.landmarks import NUM_KEYPOINTS, PARTS
from holotune.runtime.image import IMAGE_SUFFIXES, VIDEO_SUFFIXES

GROUP_FIELDS = ("group", "subject", "video", "person")


class IngestError(RuntimeError):
    """The stage cannot run: bad configuration, or a bad sample in strict mode."""


@dataclass(frozen=True)
class Source:
    """One input.

    Attributes:
        kind: ``labelled`` | ``unlabelled`` | ``class_folders`` | ``tfrecord`` | ``default`` | ``poses`` | ``gestures``.
        path: file or folder (for ``default``, ``poses`` and ``gestures``: where to build the embedded data).
    """

    kind: str
    path: str


@dataclass(frozen=True, kw_only=True)
class IngestOptions:
    """The ``ingest`` stage: what to read, what to keep, how to split and how to label (``conf/ingest``).

    Attributes:
        sources: the inputs.
        out_dir: ``manifest.jsonl``, ``ingest_report.json`` and extracted images go here.
        strict: fail on the first bad sample instead of quarantining it.
        validation_split: fraction of groups (or images) for ``val``, as the fine-tuning API names it.
        test_split: fraction for ``test``.
        split_by: ``hash`` (each image on its own) or ``group`` (subject/video: never straddles splits).
        seed: salt of the split hash.
        class_names: expected classes for ``class_folders`` and named labels.
        video_fps: frames per second sampled from videos.
        teacher: ``holotune`` (the ONNX Runtime Holistic, equal to MediaPipe's first call) or
            ``mediapipe`` (``mediapipe.solutions.holistic``, a fresh instance per image).
        coordinate_tolerance: how far labelled x, y may lie outside [0, 1] (:class:`LabelRules`).
        default_data: the ``default`` source's options (:class:`holotune.data.default.DefaultDataOptions` fields).
        pose_data: the ``poses`` source's options (:class:`holotune.data.poses.PoseDataOptions` fields).
        gesture_data: the ``gestures`` source's options (:class:`holotune.data.gestures.GesturePoseOptions`
            fields): synthetic gesture hand poses, landmarks only (no images), for the landmark gesture head.
        require_test: the data must come out with a test split and a train split (not in ``conf/``; the
            service's jobs set it, as their evaluate stage scores the test split): when the hash put no
            group in ``test``, the group nearest the test range goes there, so any dataset of two or more
            groups gets one; a dataset that still has no test or no train sample fails, saying why.
    """

    sources: tuple[Source, ...]
    out_dir: str
    strict: bool
    validation_split: float
    test_split: float
    split_by: str
    seed: int
    class_names: tuple[str, ...] | None
    video_fps: float
    teacher: str
    coordinate_tolerance: float
    default_data: dict
    pose_data: dict
    gesture_data: dict
    require_test: bool = False

    @property
    def rules(self) -> LabelRules:
        return LabelRules(coordinate_tolerance=self.coordinate_tolerance)


@dataclass
class IngestReport:
    """What ingest saw: ``counts`` add up (``in == kept + quarantined``); each quarantined sample has a reason."""

    counts: dict = field(default_factory=lambda: {"in": 0, "kept": 0, "quarantined": 0})
    by_source: dict = field(default_factory=dict)
    splits: dict = field(default_factory=lambda: {s: 0 for s in SPLITS})
    classes: dict = field(default_factory=dict)
    quarantined: list = field(default_factory=list)
    split_rule: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"counts": self.counts, "by_source": self.by_source, "splits": self.splits,
                "split_rule": self.split_rule, "classes": self.classes, "quarantined": self.quarantined}

    def summary(self) -> str:
        c = self.counts
        return f"{c['in']} in, {c['kept']} kept, {c['quarantined']} quarantined; splits {self.splits}"


@dataclass
class _Candidate:
    """A sample as a source yields it, before checks. ``error`` short-circuits to quarantine."""

    source: str
    file: str
    index: int | None = None
    image_path: Path | None = None
    image_bytes: bytes | None = None
    keypoints: object = None
    mask: object = None
    label: object = None
    label_name: str | None = None
    group: str | None = None
    needs_teacher: bool = False
    needs_hand: bool = False
    landmarks_only: bool = False
    meta: dict = field(default_factory=dict)
    error: str | None = None


# ---------------------------------------------------------------- the stage
def ingest(options: IngestOptions) -> IngestReport:
    """Run the ingest stage; writes ``out_dir/manifest.jsonl``, ``out_dir/ingest_report.json`` and
    extracted images (video frames, TFRecord images) under ``out_dir/images/``.
    """
    sources, out_dir = list(options.sources), Path(options.out_dir)
    _check_options(sources, options)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    report = IngestReport()
    teacher = Teacher(options.teacher)
    samples: list[Sample] = []
    ids: dict[str, int] = {}
    try:
        for source in sources:
            stats = report.by_source.setdefault(f"{source.kind}:{source.path}", {"in": 0, "kept": 0, "quarantined": 0})
            for cand in _candidates(source, options, images_dir):
                report.counts["in"] += 1
                stats["in"] += 1
                try:
                    sample = _to_sample(cand, options, teacher)
                except SampleError as exc:
                    entry = {"source": cand.source, "file": cand.file, "index": cand.index, "reason": str(exc)}
                    if options.strict:
                        raise IngestError(f"{cand.file}{'' if cand.index is None else f' #{cand.index}'}: {exc} "
                                          "(strict mode; set ingest.strict=false to quarantine and continue)") from None
                    report.quarantined.append(entry)
                    report.counts["quarantined"] += 1
                    stats["quarantined"] += 1
                    continue
                n = ids.get(sample.sample_id, 0)
                ids[sample.sample_id] = n + 1
                if n:
                    sample.sample_id = f"{sample.sample_id}-{n}"
                samples.append(sample)
                report.counts["kept"] += 1
                stats["kept"] += 1
    finally:
        teacher.close()
    _check_class_folders(sources, samples, report)
    problem = None
    try:
        if options.require_test and not samples:
            first = f" (first: {report.quarantined[0]['reason']})" if report.quarantined else ""
            raise IngestError(f"no usable sample: {report.counts['in']} in, all quarantined{first}; "
                              f"reasons in {out_dir / 'ingest_report.json'}")
        report.split_rule = assign_splits(samples, options)
    except IngestError as error:  # the report is still written: it holds the evidence
        problem = error
    for sample in samples:
        if sample.split is None:
            sample.split = assign_split(sample, options)
        report.splits[sample.split] += 1
        if sample.label_name is not None:
            report.classes[sample.label_name] = report.classes.get(sample.label_name, 0) + 1
    (out_dir / "ingest_report.json").write_text(json.dumps(report.to_dict(), indent=2))
    if problem is not None:
        raise problem
    write_manifest(samples, out_dir / "manifest.jsonl")
    return report


def _check_class_folders(sources: list[Source], samples: list[Sample], report: IngestReport) -> None:
    """Every class folder must keep at least one image with a hand, or its class cannot be learnt."""
    for source in sources:
        if source.kind != "class_folders":
            continue
        tag = f"{source.kind}:{source.path}"
        kept = {s.label_name for s in samples if s.source == tag}
        for folder in sorted(p for p in Path(source.path).iterdir() if p.is_dir() and not p.name.startswith(".")):
            if folder.name not in kept:
                dropped = [q for q in report.quarantined if folder in Path(q["file"]).parents]
                reasons = sorted({q["reason"] for q in dropped})
                raise IngestError(f"{folder}: no image of class {folder.name!r} has a hand the teacher can find "
                                  f"({len(dropped)} quarantined: {'; '.join(reasons) or 'none'})")


def validate(path: str | os.PathLike, rules: LabelRules, class_names: tuple[str, ...] | None = None) -> dict:
    """Check every record of ``path`` without labelling or writing anything.

    ``path``: an image folder (images must decode), an annotation file (``.jsonl``/``.csv``) or a
    folder with sidecar ``.json`` labels (images and labels are checked), or a TFRecord file or
    folder. Returns ``{"records": N, "valid": N, "invalid": [{"file", "index", "reason"}]}``.

    Raises:
        FileNotFoundError: ``path`` does not exist or cannot be read.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_file() and not os.access(path, os.R_OK):
        raise FileNotFoundError(f"{path}: not readable")
    kind = _detect_kind(path)
    report: dict = {"path": str(path), "kind": kind, "records": 0, "valid": 0, "invalid": []}
    import tempfile

    options = IngestOptions(sources=(Source(kind, str(path)),), out_dir="", strict=False, validation_split=0.0,
                            test_split=0.0, split_by="hash", seed=0, class_names=class_names, video_fps=1.0,
                            teacher="holotune", coordinate_tolerance=rules.coordinate_tolerance, default_data={},
                            pose_data={}, gesture_data={})
    with tempfile.TemporaryDirectory() as scratch:
        for cand in _candidates(options.sources[0], options, Path(scratch)):
            report["records"] += 1
            try:
                _to_sample(cand, options, teacher=None)
            except SampleError as exc:
                report["invalid"].append({"file": cand.file, "index": cand.index, "reason": str(exc)})
            else:
                report["valid"] += 1
    return report


def _detect_kind(path: Path) -> str:
    if path.is_file():
        if ".tfrecord" in path.name:
            return "tfrecord"
        return "labelled" if path.suffix.lower() in (".jsonl", ".json", ".csv") else "unlabelled"
    names = [p.name for p in path.iterdir()]
    if any(".tfrecord" in n for n in names):
        return "tfrecord"
    return "labelled" if any(n.endswith(".json") for n in names) else "unlabelled"


def split_fraction(key: str, seed: int) -> float:
    """A stable number in [0, 1) for ``key``: the position that assigns it a split (same on every machine)."""
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:12], 16) / 16**12


def split_key(sample: Sample, options: IngestOptions) -> str:
    """What a sample's split is drawn from: its group (``split_by=group``, when it has one), else its image."""
    return sample.group if options.split_by == "group" and sample.group else sample.sha256


def assign_split(sample: Sample, options: IngestOptions) -> str:
    """Deterministic split from a hash of the group (``split_by=group``) or the image content."""
    u = split_fraction(split_key(sample, options), options.seed)
    if u < options.test_split:
        return "test"
    if u < options.test_split + options.validation_split:
        return "val"
    return "train"


def assign_splits(samples: list[Sample], options: IngestOptions) -> dict:
    """Set every sample's split (:func:`assign_split`); with ``require_test``, make sure there is a test
    and a train split (see :class:`IngestOptions`). Returns the rule applied, for the report.

    Raises:
        IngestError: ``require_test`` and no test or no train sample can be had.
    """
    keys = {split_key(s, options) for s in samples}
    rule = {"test_split": options.test_split, "validation_split": options.validation_split,
            "split_by": options.split_by, "seed": options.seed, "keys": len(keys), "test_key_added": None}
    for sample in samples:
        sample.split = assign_split(sample, options)
    if not options.require_test or not samples:
        return rule
    unit = ("split unit(s): a group (subject, video) never straddles splits, a sample without one is a unit "
            "of its own" if options.split_by == "group" else "distinct image(s)")
    where = (f"ingest.test_split={options.test_split:g}, split_by={options.split_by}: {len(samples)} sample(s) "
             f"in {len(keys)} {unit}")
    if options.test_split <= 0:
        raise IngestError(f"no test split: {where}; the test split must be > 0")
    if len(keys) < 2:
        raise IngestError(f"no usable test split: {where}; one unit cannot be both trained on and tested on: "
                          "add samples from more subjects or videos" + (", or split by image (split_by=hash)"
                                                                        if options.split_by == "group" else ""))
    if not any(s.split == "test" for s in samples):
        nearest = min(keys, key=lambda k: split_fraction(k, options.seed))
        for sample in samples:
            if split_key(sample, options) == nearest:
                sample.split = "test"
        rule["test_key_added"] = nearest
    if not any(s.split == "train" for s in samples):
        raise IngestError(f"no sample left for training: {where}, every one went to test or val; add samples "
                          "from more subjects or videos, or lower the test split")
    return rule


def _check_options(sources: list[Source], options: IngestOptions) -> None:
    if not sources:
        raise IngestError("ingest: no sources configured")
    for name in ("validation_split", "test_split"):
        value = getattr(options, name)
        if not 0.0 <= value < 1.0:
            raise IngestError(f"ingest.{name} must be in [0, 1), got {value}")
    if options.validation_split + options.test_split >= 1.0:
        raise IngestError("ingest.validation_split + ingest.test_split must leave samples for training")
    if options.split_by not in ("hash", "group"):
        raise IngestError(f"ingest.split_by must be 'hash' or 'group', got {options.split_by!r}")
    if options.teacher not in ("holotune", "mediapipe"):
        raise IngestError(f"ingest.teacher must be 'holotune' or 'mediapipe', got {options.teacher!r}")
    kinds = {"labelled", "unlabelled", "class_folders", "tfrecord", "default", "poses", "gestures"}
    for source in sources:
        if source.kind not in kinds:
            raise IngestError(f"source {source.path!r}: unknown kind {source.kind!r}; one of {sorted(kinds)}")
        if source.kind not in ("default", "poses", "gestures") and not Path(source.path).exists():
            raise IngestError(f"source {source.kind}:{source.path}: no such file or folder")


# ---------------------------------------------------------------- sample checks
def _to_sample(cand: _Candidate, options: IngestOptions, teacher: "Teacher | None") -> Sample:
    """Check a candidate and build its manifest row; without a teacher, unlabelled images are only decoded."""
    if cand.error:
        raise SampleError(cand.error)
    if cand.landmarks_only:
        return _landmarks_sample(cand, options)
    from holotune.runtime.image import ImageError, load_image

    data = cand.image_bytes if cand.image_bytes is not None else cand.image_path.read_bytes()
    try:
        image = load_image(cand.image_path)
    except ImageError as exc:
        raise SampleError(str(exc).split(": ", 1)[-1]) from None
    if cand.needs_teacher:
        if teacher is None:
            keypoints, mask = None, None
        else:
            keypoints, mask = teacher.label(image)
            hands = [mask[PARTS[f"{side}_hand"]].all() for side in ("left", "right")]
            if cand.needs_hand and not any(hands):
                raise SampleError(f"the teacher ({options.teacher} Holistic) finds no hand in this image "
                                  f"(class {cand.label_name!r}): nothing for a gesture head to read")
    elif cand.keypoints is None:
        raise SampleError("keypoints: missing")
    else:
        keypoints = parse_keypoints(cand.keypoints, options.rules)
        mask = parse_mask(cand.mask) if cand.mask is not None else np.ones(NUM_KEYPOINTS, np.float32)
        check_coordinates(keypoints, mask, options.rules)
    label, label_name = check_label(cand.label, cand.label_name, list(options.class_names) if options.class_names else None)
    sha = hashlib.sha256(data).hexdigest()
    return Sample(sample_id=sha[:16], source=cand.source, sha256=sha, image=str(cand.image_path),
                  keypoints=keypoints, mask=mask, label=label, label_name=label_name, group=cand.group,
                  meta=dict(cand.meta, width=int(image.shape[1]), height=int(image.shape[0])))


def _landmarks_sample(cand: _Candidate, options: IngestOptions) -> Sample:
    """A landmarks-only row (the ``gestures`` source): checked keypoints, no image; its id hashes the keypoints."""
    keypoints = parse_keypoints(cand.keypoints, options.rules)
    mask = parse_mask(cand.mask) if cand.mask is not None else np.ones(NUM_KEYPOINTS, np.float32)
    check_coordinates(keypoints, mask, options.rules)
    for key in ("width", "height"):
        if not isinstance(cand.meta.get(key), int) or cand.meta[key] < 1:
            raise SampleError(f"{key}: a landmarks-only row needs the image's {key} in pixels, got {cand.meta.get(key)!r}")
    label, label_name = check_label(cand.label, cand.label_name, list(options.class_names) if options.class_names else None)
    sha = hashlib.sha256(keypoints.tobytes() + mask.tobytes() + str(label_name).encode()).hexdigest()
    return Sample(sample_id=sha[:16], source=cand.source, sha256=sha, image=None, keypoints=keypoints, mask=mask,
                  label=label, label_name=label_name, group=cand.group, meta=dict(cand.meta))


class Teacher:
    """Stock Holistic as a labeller: (543, 3) keypoints and a mask that is 0 for parts it did not find."""

    def __init__(self, kind: str):
        self.kind = kind
        self._holistic = None

    def label(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.kind == "mediapipe":
            arr = _mediapipe_holistic(image)
        else:
            if self._holistic is None:
                from holotune.runtime import Holistic
                from holotune.runtime.sessions import ensure_stock_models

                ensure_stock_models()
                self._holistic = Holistic()
            arr = self._holistic.process(image).to_array()
        found = ~np.isnan(arr[:, 0])
        return np.where(found[:, None], arr[:, :3], 0.0).astype(np.float32), found.astype(np.float32)

    def close(self) -> None:
        if self._holistic is not None:
            self._holistic.close()


def _mediapipe_holistic(image: np.ndarray) -> np.ndarray:
    import mediapipe as mp

    out = np.full((NUM_KEYPOINTS, 3), np.nan, dtype=np.float32)
    # A fresh instance per image: MediaPipe's "static" mode still tracks face/hand ROIs across calls.
    with mp.solutions.holistic.Holistic(static_image_mode=True, model_complexity=1) as holistic:
        r = holistic.process(image)
    for part, lms in (("pose", r.pose_landmarks), ("face", r.face_landmarks),
                      ("left_hand", r.left_hand_landmarks), ("right_hand", r.right_hand_landmarks)):
        if lms is not None:
            out[PARTS[part]] = [[p.x, p.y, p.z] for p in lms.landmark]
    return out


# ---------------------------------------------------------------- sources
def _candidates(source: Source, options: IngestOptions, images_dir: Path) -> Iterator[_Candidate]:
    path = Path(source.path)
    tag = f"{source.kind}:{source.path}"
    if source.kind == "labelled":
        if path.is_dir():
            yield from _sidecar_folder(path, tag)
        elif path.suffix.lower() == ".csv":
            yield from _annotation_rows(path, tag, _csv_rows(path))
        else:
            yield from _annotation_rows(path, tag, _jsonl_rows(path))
    elif source.kind == "unlabelled":
        yield from _unlabelled(path, tag, options, images_dir)
    elif source.kind == "class_folders":
        yield from _class_folders(path, tag, options)
    elif source.kind == "tfrecord":
        yield from _tfrecords(path, tag, images_dir)
    elif source.kind == "gestures":
        from holotune.config import build
        from holotune.data.gestures import GesturePoseOptions, build_gesture_poses

        labels = build_gesture_poses(path, build(GesturePoseOptions, options.gesture_data, "ingest.gesture_data"))
        for number, row in _jsonl_rows(labels):
            if isinstance(row, str):
                yield _Candidate(tag, str(labels), number, error=row)
                continue
            meta = {k: v for k, v in row.items() if k not in {"keypoints", "mask", "label_name", "group"}}
            yield _Candidate(tag, str(labels), number, keypoints=row.get("keypoints"), mask=row.get("mask"),
                             label_name=row.get("label_name"), group=row.get("group"), meta=meta, landmarks_only=True)
    elif source.kind == "poses":
        from holotune.config import build
        from holotune.data.poses import PoseDataOptions, build_pose_data

        labels = build_pose_data(path, build(PoseDataOptions, options.pose_data, "ingest.pose_data"))
        yield from _annotation_rows(labels, tag, _jsonl_rows(labels))
    else:  # default
        from holotune.config import build
        from holotune.data.default import DefaultDataOptions, build_default_data

        labels = build_default_data(path, build(DefaultDataOptions, options.default_data, "ingest.default_data"))
        yield from _annotation_rows(labels, tag, _jsonl_rows(labels))


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict | str]]:
    with path.open() as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"line {number}: not valid JSON ({exc.msg})"
                continue
            yield number, row if isinstance(row, dict) else f"line {number}: expected a JSON object"


def _csv_rows(path: Path) -> Iterator[tuple[int, dict | str]]:
    with path.open(newline="") as f:
        for number, row in enumerate(csv.DictReader(f), 2):  # line 1 is the header
            parsed: dict = dict(row)
            for key in ("keypoints", "mask"):
                if parsed.get(key):
                    try:
                        parsed[key] = json.loads(parsed[key])
                    except json.JSONDecodeError:
                        yield number, f"line {number}: column {key!r} is not a JSON list"
                        break
            else:
                if parsed.get("label") in ("", None):
                    parsed.pop("label", None)
                yield number, parsed


def _annotation_rows(path: Path, tag: str, rows) -> Iterator[_Candidate]:
    for number, row in rows:
        if isinstance(row, str):
            yield _Candidate(tag, str(path), number, error=row)
            continue
        if "image" not in row:
            yield _Candidate(tag, str(path), number, error=f"line {number}: no 'image' field")
            continue
        image = Path(row["image"])
        image = image if image.is_absolute() else path.parent / image
        yield _labelled_candidate(tag, str(path), number, image, row)


def _labelled_candidate(tag: str, file: str, index, image: Path, row: dict) -> _Candidate:
    group = next((str(row[k]) for k in GROUP_FIELDS if row.get(k) not in (None, "")), None)
    label, label_name = row.get("label"), row.get("label_name")
    if isinstance(label, str) and not label.lstrip("-").isdigit():
        label, label_name = None, label
    meta = {k: v for k, v in row.items()
            if k not in {"image", "keypoints", "mask", "label", "label_name", *GROUP_FIELDS}}
    if not image.is_file():
        return _Candidate(tag, file, index, image_path=image, error=f"image {image}: no such file")
    return _Candidate(tag, file, index, image_path=image, keypoints=row.get("keypoints"), mask=row.get("mask"),
                      label=None if label is None else int(label), label_name=label_name, group=group, meta=meta)


def _sidecar_folder(folder: Path, tag: str) -> Iterator[_Candidate]:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        suffix = path.suffix.lower()
        if suffix == ".json":
            if not any(path.with_suffix(s).is_file() for s in _all_case(IMAGE_SUFFIXES)):
                yield _Candidate(tag, str(path), error="sidecar label file without a matching image")
            continue
        if suffix not in IMAGE_SUFFIXES:
            yield _Candidate(tag, str(path), error=f"unsupported file type {path.suffix or '(none)'!r}")
            continue
        sidecar = path.with_suffix(".json")
        if not sidecar.is_file():
            yield _Candidate(tag, str(path), image_path=path, error=f"no sidecar label file {sidecar.name}")
            continue
        try:
            row = json.loads(sidecar.read_text())
        except json.JSONDecodeError as exc:
            yield _Candidate(tag, str(sidecar), image_path=path, error=f"{sidecar.name}: not valid JSON ({exc.msg})")
            continue
        yield _labelled_candidate(tag, str(path), None, path, row)


def _all_case(suffixes: set[str]) -> list[str]:
    return [s for suffix in suffixes for s in (suffix, suffix.upper())]


def _media_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())


def _unlabelled(path: Path, tag: str, options: IngestOptions, images_dir: Path) -> Iterator[_Candidate]:
    for file in _media_files(path):
        suffix = file.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            yield _Candidate(tag, str(file), image_path=file, needs_teacher=True,
                             group=file.parent.name if file.parent != path else None)
        elif suffix in VIDEO_SUFFIXES:
            yield from _video_frames(file, tag, options.video_fps, images_dir)
        else:
            yield _Candidate(tag, str(file), error=f"unsupported file type {file.suffix or '(none)'!r}")


def _video_frames(video: Path, tag: str, fps: float, images_dir: Path) -> Iterator[_Candidate]:
    import cv2

    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        yield _Candidate(tag, str(video), error="cannot open the video (corrupt or unsupported codec)")
        return
    native = capture.get(cv2.CAP_PROP_FPS) or fps
    step = max(1, round(native / fps))
    index = kept = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % step == 0:
                target = images_dir / f"{video.stem}_{index:06d}.jpg"
                cv2.imwrite(str(target), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
                yield _Candidate(tag, str(video), index, image_path=target, needs_teacher=True,
                                 group=video.stem, meta={"frame": index, "time_s": index / native})
                kept += 1
            index += 1
    finally:
        capture.release()
    if kept == 0:
        yield _Candidate(tag, str(video), error="the video has no readable frames")


def _class_folders(root: Path, tag: str, options: IngestOptions) -> Iterator[_Candidate]:
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise IngestError(f"{root}: no class folders (expected <root>/<class_name>/*.jpg)")
    if options.class_names is not None and sorted(options.class_names) != folders:
        missing = sorted(set(options.class_names) - set(folders))
        extra = sorted(set(folders) - set(options.class_names))
        raise IngestError(f"{root}: class_names {list(options.class_names)} do not match the class folders {folders}"
                          f"{f'; no folder for {missing}' if missing else ''}{f'; not in class_names: {extra}' if extra else ''}")
    names = list(options.class_names) if options.class_names is not None else folders
    for name in folders:
        files = sorted(p for p in (root / name).rglob("*") if p.is_file())
        if not files:
            raise IngestError(f"{root / name}: class folder {name!r} is empty")
        for file in files:
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                yield _Candidate(tag, str(file), error=f"unsupported file type {file.suffix or '(none)'!r}")
                continue
            yield _Candidate(tag, str(file), image_path=file, needs_teacher=True, needs_hand=True,
                             label=names.index(name), label_name=name)


def _tfrecords(path: Path, tag: str, images_dir: Path) -> Iterator[_Candidate]:
    from holotune.data.tfrecord import TFRecordError, decode_example, iter_tfrecord

    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if ".tfrecord" in p.name)
    for file in files:
        index = -1
        try:
            for index, payload in enumerate(iter_tfrecord(file)):
                try:
                    record = decode_example(payload, source=f"{file} record {index}")
                except TFRecordError as exc:
                    yield _Candidate(tag, str(file), index, error=str(exc).split(": ", 1)[-1])
                    continue
                sha = hashlib.sha256(record.image).hexdigest()
                target = images_dir / f"{sha[:16]}.jpg"
                target.write_bytes(record.image)
                yield _Candidate(tag, str(file), index, image_path=target, image_bytes=record.image,
                                 keypoints=record.keypoints, mask=record.mask, label=record.label,
                                 label_name=record.label_name, meta={"tfrecord_id": record.sample_id})
        except TFRecordError as exc:
            # Framing is lost after a corrupt record: say so, with what could not be read.
            yield _Candidate(tag, str(file), index + 1, error=f"{exc}; the rest of this file cannot be read")
