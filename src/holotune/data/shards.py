"""The ``tfrecord`` stage: the manifest's splits -> sharded TFRecords in the fine-tuning API's schema."""

from __future__ import annotations

import io
import json
import os
from collections import defaultdict
from pathlib import Path

from holotune.data.manifest import SPLITS, Sample, read_manifest
from holotune.data.tfrecord import KeypointRecord, write_shards

JPEG_MAGIC = b"\xff\xd8\xff"


def jpeg_bytes(path: str | os.PathLike, quality: int = 95) -> bytes:
    """The file's bytes if it is a JPEG (no re-compression), else the image re-encoded as JPEG."""
    data = Path(path).read_bytes()
    if data.startswith(JPEG_MAGIC):
        return data
    from holotune.runtime.image import load_image
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(load_image(path)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def to_record(sample: Sample) -> KeypointRecord:
    """A manifest row as a TFRecord record (the image as JPEG bytes)."""
    return KeypointRecord(image=jpeg_bytes(sample.image), keypoints=sample.keypoints, mask=sample.mask,
                          label=sample.label, label_name=sample.label_name, sample_id=sample.sample_id)


def write_dataset_shards(
    manifest: str | os.PathLike, out_dir: str | os.PathLike, shard_size: int = 1000, compression: str | None = None
) -> dict:
    """Write ``{train,val,test}-NNNNN-of-NNNNN.tfrecord`` under ``out_dir`` and ``out_dir/index.json``.

    Returns the index: per split, the shard file names and record count.
    """
    if shard_size < 1:
        raise ValueError(f"tfrecord.shard_size must be >= 1, got {shard_size}")
    if compression not in (None, "GZIP"):
        raise ValueError(f"tfrecord.compression must be null or 'GZIP', got {compression!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.tfrecord*"):
        old.unlink()  # a re-run must not leave shards of an earlier, larger dataset behind
    by_split: dict[str, list[Sample]] = defaultdict(list)
    for sample in read_manifest(manifest):
        by_split[sample.split].append(sample)
    index = {}
    for split in SPLITS:
        samples = by_split.get(split, [])
        paths = write_shards((to_record(s) for s in samples), out_dir, split, shard_size, compression) if samples else []
        index[split] = {"records": len(samples), "shards": [p.name for p in paths]}
    (out_dir / "index.json").write_text(json.dumps(index, indent=2))
    return index
