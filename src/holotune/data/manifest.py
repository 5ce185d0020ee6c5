"""The manifest: one JSON line per sample, the contract between ``ingest`` and ``tfrecord``.

Keypoints follow the 543 layout (:mod:`holotune.landmarks`): pose 33, face 468, left hand 21,
right hand 21, normalized image coordinates; ``mask`` is 1 where a point is labelled (and counts
in the loss), 0 where it is not.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass
class Sample:
    """One manifest row.

    Attributes:
        sample_id: stable id: the first 16 hex digits of ``sha256`` (plus ``-<n>`` if one image is
            labelled twice).
        source: where it came from, ``<kind>:<path>[#index]``.
        sha256: content hash of the image file's bytes.
        image: path of the image file (as given, or under the ingest images folder); ``None`` for a
            landmarks-only row (the synthetic ``gestures`` source), which only the landmark gesture head reads.
        keypoints: (543, 3) float32, or ``None`` for an unlabelled (classification-only) sample.
        mask: (543,) float32 of 0/1.
        label: class index, or ``None``.
        label_name: class name, or ``None``.
        group: the key that must not straddle splits (subject, video), or ``None``.
        split: ``train`` | ``val`` | ``test``.
        meta: anything else a source knows (condition, frame index...).
    """

    sample_id: str
    source: str
    sha256: str
    image: str | None
    keypoints: np.ndarray | None = None
    mask: np.ndarray | None = None
    label: int | None = None
    label_name: str | None = None
    group: str | None = None
    split: str | None = None
    meta: dict = field(default_factory=dict)

    def to_json(self) -> str:
        row = asdict(self)
        row["keypoints"] = None if self.keypoints is None else np.round(self.keypoints.astype(float), 7).tolist()
        row["mask"] = None if self.mask is None else self.mask.astype(float).tolist()
        return json.dumps(row, allow_nan=False)

    @classmethod
    def from_json(cls, line: str) -> "Sample":
        row = json.loads(line)
        for key in ("keypoints", "mask"):
            if row.get(key) is not None:
                row[key] = np.asarray(row[key], dtype=np.float32)
        return cls(**row)


def write_manifest(samples: Iterable[Sample], path: str | Path) -> int:
    """Write ``samples`` as JSON lines (atomically); returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    n = 0
    with tmp.open("w") as f:
        for sample in samples:
            f.write(sample.to_json() + "\n")
            n += 1
    tmp.replace(path)
    return n


def read_manifest(path: str | Path) -> Iterator[Sample]:
    """Read a manifest written by :func:`write_manifest`."""
    with Path(path).open() as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield Sample.from_json(line)
                except (json.JSONDecodeError, TypeError) as exc:
                    raise ValueError(f"{path} line {number}: not a manifest row: {exc}") from None
