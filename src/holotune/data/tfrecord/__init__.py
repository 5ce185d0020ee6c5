"""TFRecord files of ``tf.train.Example`` records in the Holistic fine-tuning API's schema, without TensorFlow.

Files are byte-compatible with ``tf.io.TFRecordWriter`` / ``tf.data.TFRecordDataset`` and
``tf.io.parse_single_example``. The layers:

* :mod:`~holotune.data.tfrecord.example`: the schema (:class:`KeypointRecord`) and the
  ``tf.train.Example`` codec (protobuf's message classes plus a schema check);
* :mod:`~holotune.data.tfrecord.framing`: record framing and masked CRC32C (``google-crc32c``),
  atomic writes, CRC-verified reads, the record index, finding shards;
* :mod:`~holotune.data.tfrecord.records`: records to and from files and shards;
* :mod:`~holotune.data.tfrecord.datasets`: the torch datasets ``TFRecordDataset`` and
  ``ShardedTFRecordIterable``; imports torch, so it loads only when one of them is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from holotune.data.tfrecord.example import NUM_KEYPOINTS, KeypointRecord, decode_example, encode_example
from holotune.data.tfrecord.framing import (
    TFRecordError,
    build_index,
    crc32c,
    find_tfrecord_files,
    frame_record,
    iter_tfrecord,
    masked_crc32c,
)
from holotune.data.tfrecord.records import read_records, write_shards, write_tfrecord

__all__ = [
    "NUM_KEYPOINTS",
    "KeypointRecord",
    "TFRecordError",
    "build_index",
    "crc32c",
    "decode_example",
    "encode_example",
    "find_tfrecord_files",
    "frame_record",
    "iter_tfrecord",
    "masked_crc32c",
    "read_records",
    "write_shards",
    "write_tfrecord",
]

_TORCH_DATASETS = ("TFRecordDataset", "ShardedTFRecordIterable")


def __getattr__(name: str) -> Any:  # the torch datasets, imported on first use (PEP 562)
    if name in _TORCH_DATASETS:
        return getattr(importlib.import_module("holotune.data.tfrecord.datasets"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
