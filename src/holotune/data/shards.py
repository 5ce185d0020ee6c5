"""The ``tfrecord`` stage: the manifest's splits -> sharded TFRecords in the fine-tuning API's schema."""

from __future__ import annotations

import io
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from holotune.data.manifest import SPLITS, Sample, read_manifest
from holotune.data.tfrecord import KeypointRecord, write_shards
from holotune.runtime.image import load_image, orientation

JPEG_MAGIC = b"\xff\xd8\xff"


def jpeg_bytes(path: str | os.PathLike, quality: int = 95) -> bytes:
    """JPEG bytes whose pixels, decoded as stored, are the upright image the labels describe.

    An upright JPEG (no EXIF orientation, or orientation 1) is copied as is (no re-compression).
    Anything else is decoded with the EXIF orientation applied (as ingest labelled it) and
    re-encoded at ``quality`` without EXIF: ``tf.io.decode_jpeg`` ignores EXIF, so a phone photo
    copied with orientation 6 would show a TensorFlow reader (and any plain decoder) an image
    rotated against its labels.
    """
    data = Path(path).read_bytes()
    if data.startswith(JPEG_MAGIC):
        with Image.open(io.BytesIO(data)) as img:
            if orientation(img) == 1:
                return data
    buffer = io.BytesIO()
    Image.fromarray(load_image(path)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def to_record(sample: Sample) -> KeypointRecord:
    """A manifest row as a TFRecord record (the image as JPEG bytes)."""
    return KeypointRecord(image=jpeg_bytes(sample.image), keypoints=sample.keypoints, mask=sample.mask,
                          label=sample.label, label_name=sample.label_name, sample_id=sample.sample_id)


@dataclass(frozen=True, kw_only=True)
class ShardOptions:
    """The ``tfrecord`` stage (``conf/tfrecord``).

    Attributes:
        manifest: the ingest stage's ``manifest.jsonl``.
        out_dir: where ``{train,val,test}-NNNNN-of-NNNNN.tfrecord`` and ``index.json`` go.
        shard_size: records per shard (>= 1).
        compression: ``None`` or ``"GZIP"``.
    """

    manifest: str
    out_dir: str
    shard_size: int
    compression: str | None


def write_dataset_shards(options: ShardOptions) -> dict:
    """Write ``{train,val,test}-NNNNN-of-NNNNN.tfrecord`` under ``out_dir`` and ``out_dir/index.json``.

    Returns the index: per split, the shard file names and record count.
    """
    if options.shard_size < 1:
        raise ValueError(f"tfrecord.shard_size must be >= 1, got {options.shard_size}")
    if options.compression not in (None, "GZIP"):
        raise ValueError(f"tfrecord.compression must be null or 'GZIP', got {options.compression!r}")
    out_dir = Path(options.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.tfrecord*"):
        old.unlink()  # a re-run must not leave shards of an earlier, larger dataset behind
    by_split: dict[str, list[Sample]] = defaultdict(list)
    for number, sample in enumerate(read_manifest(options.manifest), 1):
        if sample.image is None:
            raise ValueError(f"{options.manifest} line {number}: sample {sample.sample_id} ({sample.source}) has no "
                             "image: landmarks-only data (the gestures source) trains task.input=landmarks from the "
                             "manifest and has no TFRecord shards")
        by_split[sample.split].append(sample)
    index = {}
    for split in SPLITS:
        samples = by_split.get(split, [])
        paths = (write_shards((to_record(s) for s in samples), out_dir, split, options.shard_size, options.compression)
                 if samples else [])
        index[split] = {"records": len(samples), "shards": [p.name for p in paths]}
    (out_dir / "index.json").write_text(json.dumps(index, indent=2))
    return index


def summary(index: dict) -> str:
    """``train 900 records in 1 shard(s), ...`` for the stage's output."""
    return ", ".join(f"{split} {v['records']} records in {len(v['shards'])} shard(s)" for split, v in index.items())
