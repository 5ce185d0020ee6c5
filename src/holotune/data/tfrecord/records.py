"""KeypointRecords to and from TFRecord files: one file, streamed shards, and reading them back."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from holotune.data.tfrecord.example import KeypointRecord, decode_example, encode_example
from holotune.data.tfrecord.framing import (
    AtomicWriter,
    PathLike,
    Paths,
    TFRecordError,
    check_compression,
    find_tfrecord_files,
    iter_tfrecord,
    temp_path,
)

SHARD_PATTERN = "{prefix}-{index:05d}-of-{count:05d}.tfrecord"


def _write(writer: AtomicWriter, record: KeypointRecord) -> None:
    writer.write(encode_example(record, source=writer.source))


def write_tfrecord(path: PathLike, records: Iterable[KeypointRecord], compression: str | None = None) -> int:
    """Write ``records`` to one TFRecord file, atomically (temp file, then rename). Returns the count.

    Args:
        compression: None or ``"GZIP"`` (the file name is kept as given).

    Raises:
        TFRecordError: a record that cannot be encoded (the message names file and record index);
            nothing is left at ``path`` then.
    """
    compression = check_compression(compression)
    path = Path(path)
    writer = AtomicWriter(path, temp_path(path), compression)
    try:
        for record in records:
            _write(writer, record)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return writer.count


def write_shards(
    records: Iterable[KeypointRecord],
    out_dir: PathLike,
    prefix: str,
    shard_size: int = 1000,
    compression: str | None = None,
) -> list[Path]:
    """Stream ``records`` into shards ``{prefix}-00000-of-0000N.tfrecord`` of ``shard_size`` records each.

    The shard count is only known at the end, so shards are written under temp names and renamed
    when the input is exhausted; on any error no new shard is left behind. Shards of the same
    prefix from an earlier run with another count (``{prefix}-NNNNN-of-MMMMM.tfrecord``) are removed,
    so the folder holds one consistent set. GZIP shards keep the ``.tfrecord`` name.

    Returns:
        The shard paths in order; empty when there are no records (no file is written).
    """
    compression = check_compression(compression)
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise TFRecordError(f"shard_size must be an integer >= 1, got {shard_size!r}")
    if not prefix or "/" in prefix or os.sep in prefix or prefix.startswith("."):
        raise TFRecordError(f"prefix must be a plain, non-hidden file name prefix, got {prefix!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers: list[AtomicWriter] = []
    try:
        writer: AtomicWriter | None = None
        for record in records:
            if writer is None or writer.count == shard_size:
                if writer is not None:
                    writer.close()
                index = len(writers)
                temp = out_dir / f".{prefix}-{index:05d}.{os.getpid()}.tmp"
                name = str(out_dir / f"{prefix}-{index:05d}-of-?????.tfrecord")
                writer = AtomicWriter(None, temp, compression, name=name)
                writers.append(writer)
            _write(writer, record)
        count = len(writers)
        paths = [out_dir / SHARD_PATTERN.format(prefix=prefix, index=i, count=count) for i in range(count)]
        for w, path in zip(writers, paths):
            w.commit(path)
    except BaseException:
        for w in writers:
            w.abort()
        raise
    stale = re.compile(rf"{re.escape(prefix)}-\d{{5,}}-of-\d{{5,}}\.tfrecord")
    keep = {p.name for p in paths}
    for old in out_dir.iterdir():
        if stale.fullmatch(old.name) and old.name not in keep:
            old.unlink()
    return paths


def read_records(paths: Paths, *, verify_crc: bool = True) -> Iterator[KeypointRecord]:
    """Decode every record of ``paths`` (see :func:`find_tfrecord_files`), file by file, in order.

    Raises:
        TFRecordError: the first unreadable record, naming file and record index.
    """
    for file in find_tfrecord_files(paths):
        for index, payload in enumerate(iter_tfrecord(file, verify_crc=verify_crc)):
            yield decode_example(payload, source=f"{file} record {index}")
