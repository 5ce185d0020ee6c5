"""torch datasets over TFRecord shards: ``TFRecordDataset`` (map-style, indexed) and ``ShardedTFRecordIterable``.

The pipeline does not use them (training reads every record through :func:`read_records`); they are
for a streaming or random-access reader. This module imports torch; ``holotune.data.tfrecord``
loads it only when one of the two classes is asked for.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch.distributed as dist
from torch.utils import data as torch_data

from holotune.data.tfrecord.example import KeypointRecord, decode_example
from holotune.data.tfrecord.framing import (
    FOOTER_BYTES,
    HEADER_BYTES,
    Frame,
    Paths,
    build_index,
    check_length_crc,
    find_tfrecord_files,
    iter_frames,
    record_error,
)

__all__ = ["ShardedTFRecordIterable", "TFRecordDataset"]

Transform = Callable[[KeypointRecord], Any]


class _IndexedFiles:
    """Random access to the records of uncompressed TFRecord files, one lazily opened handle per file and process."""

    def __init__(self, paths: Paths, verify_crc: bool) -> None:
        self.files = find_tfrecord_files(paths)
        self.verify_crc = verify_crc
        self.offsets = [build_index(f) for f in self.files]
        self.ends = [np.append(o[1:], f.stat().st_size).astype(np.int64) for f, o in zip(self.files, self.offsets)]
        self.cumulative = np.cumsum([len(o) for o in self.offsets], dtype=np.int64)
        self._handles: dict[int, BinaryIO] = {}
        self._pid: int | None = None

    def __len__(self) -> int:
        return int(self.cumulative[-1]) if len(self.cumulative) else 0

    def __getstate__(self) -> dict:
        # file handles do not travel to DataLoader workers: each process opens its own
        return {**self.__dict__, "_handles": {}, "_pid": None}

    def _pread(self, file_index: int, size: int, offset: int) -> bytes:
        if self._pid != os.getpid():  # a forked worker: never share (an offset with) the parent's handles
            self._handles, self._pid = {}, os.getpid()
        handle = self._handles.get(file_index)
        if handle is None:
            handle = open(self.files[file_index], "rb", buffering=0)  # noqa: SIM115 (closed by close())
            self._handles[file_index] = handle
        if hasattr(os, "pread"):
            return os.pread(handle.fileno(), size, offset)
        handle.seek(offset)
        return handle.read(size)

    def locate(self, index: int) -> tuple[int, int]:
        """Global index -> (file index, record index in the file)."""
        n = len(self)
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"record index must be an integer, got {type(index).__name__}") from None
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"record index {index} out of range for {n} records")
        f = int(np.searchsorted(self.cumulative, i, side="right"))
        return f, i - (int(self.cumulative[f - 1]) if f else 0)

    def payload(self, file_index: int, record: int) -> bytes:
        path = self.files[file_index]
        offset = int(self.offsets[file_index][record])
        span = int(self.ends[file_index][record]) - offset
        buf = self._pread(file_index, span, offset)
        if len(buf) < span:
            raise record_error(
                path, record, offset, False, f"file shrank since indexing: read {len(buf)} of {span} bytes"
            )
        length = check_length_crc(path, record, offset, False, buf[:HEADER_BYTES])
        if length != span - HEADER_BYTES - FOOTER_BYTES:
            raise record_error(path, record, offset, False, "file changed since indexing: record length differs")
        frame = Frame(
            path,
            record,
            offset,
            False,
            buf[HEADER_BYTES : HEADER_BYTES + length],
            int.from_bytes(buf[HEADER_BYTES + length :], "little"),
        )
        return frame.verified() if self.verify_crc else frame.data

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles = {}


def _distributed(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is None or world_size is None:
        initialised = dist.is_available() and dist.is_initialized()
        rank = (dist.get_rank() if initialised else 0) if rank is None else rank
        world_size = (dist.get_world_size() if initialised else 1) if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
    return rank, world_size


class TFRecordDataset(torch_data.Dataset):
    """Map-style dataset over uncompressed TFRecord shards: ``dataset[i]`` seeks straight to record ``i``.

    Records are numbered across ``paths`` in :func:`find_tfrecord_files` order. The byte offsets
    are indexed once (headers only); every read checks the length and, with ``verify_crc``, the
    data CRC. File handles open lazily in each process (DataLoader workers never share one).

    Args:
        paths: a file, a folder or a list of them (uncompressed: GZIP has no random access).
        transform: ``transform(record)`` is returned instead of the :class:`KeypointRecord`.
        verify_crc: check data CRCs on read.
    """

    def __init__(self, paths: Paths, transform: Transform | None = None, *, verify_crc: bool = True) -> None:
        self._files = _IndexedFiles(paths, verify_crc)
        self.transform = transform

    @property
    def files(self) -> list[Path]:
        return list(self._files.files)

    def __len__(self) -> int:
        return len(self._files)

    def __getitem__(self, index: int) -> Any:
        f, j = self._files.locate(index)
        record = decode_example(self._files.payload(f, j), source=f"{self._files.files[f]} record {j}")
        return self.transform(record) if self.transform is not None else record

    def close(self) -> None:
        """Close this process's file handles (they reopen on the next read)."""
        self._files.close()


class ShardedTFRecordIterable(torch_data.IterableDataset):
    """Stream TFRecord shards (uncompressed or GZIP), split over DataLoader workers and distributed ranks.

    Consumer ``rank * num_workers + worker_id`` of ``world_size * num_workers`` gets:

    * ``split="shards"``: whole shards ``k, k + consumers, ...`` (no shard is read twice);
    * ``split="records"``: records ``k, k + consumers, ...`` in global order (every consumer scans
      every shard but decodes and CRC-checks only its own records; counts differ by at most 1);
    * ``split="auto"`` (default): shards when there are at least as many shards as consumers,
      else records.

    Either way every record is yielded exactly once over all consumers, in a deterministic
    order. Note for DDP: with ``split="shards"`` ranks can get different record counts (up to
    a shard), which the training loop must tolerate; ``split="records"`` keeps them within one.

    Args:
        paths: a file, a folder or a list of them.
        transform: ``transform(record)`` is yielded instead of the :class:`KeypointRecord`.
        rank, world_size: this process's place; default: ``torch.distributed`` if initialised
            (read at iteration time), else 0 of 1.
        split: ``"auto"``, ``"shards"`` or ``"records"``.
        shuffle: permute the shard order each epoch (seeded by ``seed`` and :meth:`set_epoch`;
            the same permutation on every consumer).
        verify_crc: check data CRCs.
    """

    def __init__(
        self,
        paths: Paths,
        transform: Transform | None = None,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        split: str = "auto",
        shuffle: bool = False,
        seed: int = 0,
        verify_crc: bool = True,
    ) -> None:
        super().__init__()
        if split not in ("auto", "shards", "records"):
            raise ValueError(f"split must be 'auto', 'shards' or 'records', got {split!r}")
        if rank is not None and world_size is not None:
            _distributed(rank, world_size)  # fail here, not in a worker
        self.files = find_tfrecord_files(paths)
        self.transform = transform
        self.rank, self.world_size = rank, world_size
        self.split, self.shuffle, self.seed, self.verify_crc = split, shuffle, seed, verify_crc
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the shard permutation of ``epoch`` (with ``shuffle``); call before creating the iterator."""
        self.epoch = epoch

    def consumer(self) -> tuple[int, int]:
        """``(this consumer's index, number of consumers)`` in the calling process/worker."""
        rank, world_size = _distributed(self.rank, self.world_size)
        info = torch_data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world_size * workers

    def shard_order(self) -> list[Path]:
        if not self.shuffle:
            return list(self.files)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.files))
        return [self.files[i] for i in order]

    def __iter__(self) -> Iterator[Any]:
        k, consumers = self.consumer()
        files = self.shard_order()
        if self.split == "shards" or (self.split == "auto" and len(files) >= consumers):
            frames: Iterator[Frame] = (frame for path in files[k::consumers] for frame in iter_frames(path))
        else:
            every = (frame for path in files for frame in iter_frames(path))
            frames = (frame for n, frame in enumerate(every) if n % consumers == k)
        for frame in frames:
            data = frame.verified() if self.verify_crc else frame.data
            record = decode_example(data, source=f"{frame.path} record {frame.index}")
            yield self.transform(record) if self.transform is not None else record
