"""TFRecord files as bytes: framing, masked CRC32C, atomic writes, CRC-verified reads, the record index.

Each record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``
(little endian), byte-compatible with ``tf.io.TFRecordWriter`` / ``tf.data.TFRecordDataset``. This
layer moves payloads; :mod:`holotune.data.tfrecord.example` gives them meaning.

Compression: ``None`` or ``"GZIP"`` (TensorFlow's GZIP TFRecord: the whole file one gzip stream).
GZIP files keep the ``.tfrecord`` name; readers tell them apart by content (a gzip magic that is
not a valid first record header), so TensorFlow readers must be told ``compression_type="GZIP"``.
Random access (:func:`build_index`) needs uncompressed files.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

PathLike = str | os.PathLike
Paths = PathLike | Iterable[PathLike]

HEADER_BYTES = 12  # uint64 length + uint32 masked CRC of the length
FOOTER_BYTES = 4  # uint32 masked CRC of the data
GZIP_MAGIC = b"\x1f\x8b"
COMPRESSIONS = (None, "GZIP")


class TFRecordError(ValueError):
    """A TFRecord file or Example that cannot be read or written; the message names file, record and feature."""


# CRC32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF)


def _crc32c_python(data: bytes) -> int:
    """CRC32C by the byte-table loop (about 10 MB/s): the fallback when ``google-crc32c`` is missing."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _table_entry(n: int) -> int:
    for _ in range(8):
        n = (n >> 1) ^ 0x82F63B78 if n & 1 else n >> 1
    return n


_TABLE = [_table_entry(n) for n in range(256)]

try:
    from google_crc32c import value as _crc32c
except ImportError:  # the pinned dependency is not installed: slow, but files stay readable and writable
    _crc32c = _crc32c_python


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """The CRC32C (Castagnoli) of ``data``: ``crc32c(b"123456789") == 0xE3069283``."""
    return _crc32c(data if type(data) is bytes else bytes(data))  # google_crc32c takes bytes only


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """TFRecord's checksum: the CRC32C rotated right by 15 bits plus 0xA282EAD8 (mod 2**32)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# writing


def frame_record(data: bytes) -> bytes:
    """One record as it lies in the file: ``length | masked_crc(length) | data | masked_crc(data)``."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def check_compression(compression: str | None) -> str | None:
    """``None`` or ``"GZIP"`` (``""``, TensorFlow's spelling of none, gives None); else TFRecordError."""
    if compression == "":
        compression = None
    if compression not in COMPRESSIONS:
        raise TFRecordError(f"compression must be None or 'GZIP', got {compression!r}")
    return compression


def temp_path(path: Path) -> Path:
    """A hidden (readers skip it), per-process (concurrent writers never share one) temp name next to ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


class AtomicWriter:
    """Framed payloads into a temp file, renamed onto the target by :meth:`commit` (readers never see half a file).

    ``name`` is what error messages call the file (a shard's final name is not known while it is written).
    """

    def __init__(self, path: Path | None, temp: Path, compression: str | None, name: str | None = None) -> None:
        self.path, self.temp, self.count, self.closed = path, temp, 0, False
        self.name = name or str(path)
        self._raw = open(temp, "wb")  # noqa: SIM115 (closed by close/commit/abort)
        # mtime=0 and no file name in the gzip header: the same records give the same bytes (DVC caches)
        self._out: BinaryIO = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, compresslevel=6, mtime=0)
            if compression == "GZIP"
            else self._raw
        )

    @property
    def source(self) -> str:
        """How error messages name the next record: ``"<file> record <n>"``."""
        return f"{self.name} record {self.count}"

    def write(self, payload: bytes) -> None:
        self._out.write(frame_record(payload))
        self.count += 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if self._out is not self._raw:
                self._out.close()  # writes the gzip trailer
        finally:
            self._raw.close()

    def commit(self, path: Path | None = None) -> Path:
        self.close()
        target = path or self.path
        assert target is not None
        os.replace(self.temp, target)
        return target

    def abort(self) -> None:
        try:
            self.close()
        finally:
            self.temp.unlink(missing_ok=True)


# reading


def record_error(path: PathLike, index: int, offset: int, gzipped: bool, message: str) -> TFRecordError:
    where = "uncompressed byte offset" if gzipped else "byte offset"
    return TFRecordError(f"{path} record {index} ({where} {offset}): {message}")


class Frame(NamedTuple):
    """One framed record as read: where it lies (``offset`` in the uncompressed stream) and its stored data CRC."""

    path: Path
    index: int
    offset: int
    gzipped: bool
    data: bytes
    stored_crc: int

    def verified(self) -> bytes:
        """The payload, after checking its data CRC."""
        computed = masked_crc32c(self.data)
        if computed != self.stored_crc:
            message = f"data CRC mismatch (stored 0x{self.stored_crc:08x}, computed 0x{computed:08x})"
            raise record_error(self.path, self.index, self.offset, self.gzipped, message)
        return self.data


def check_length_crc(path: PathLike, index: int, offset: int, gzipped: bool, header: bytes) -> int:
    """The record length from a 12-byte header, after checking its CRC."""
    length, stored = struct.unpack("<QI", header)
    computed = masked_crc32c(header[:8])
    if stored != computed:
        hint = "; not a TFRecord file (or compressed other than GZIP)?" if index == 0 else ""
        message = f"length CRC mismatch (stored 0x{stored:08x}, computed 0x{computed:08x}){hint}"
        raise record_error(path, index, offset, gzipped, message)
    return length


def _is_gzip(head: bytes) -> bool:
    # An uncompressed file could begin with 1f 8b too (a first record of 0x8b1f + k * 65536 bytes), but
    # then its first 12 bytes are a header with a valid length CRC; a gzip stream's almost never are.
    if not head.startswith(GZIP_MAGIC):
        return False
    return not (len(head) >= HEADER_BYTES and struct.unpack("<I", head[8:12])[0] == masked_crc32c(head[:8]))


def _open(path: Path) -> tuple[BinaryIO, bool]:
    raw = open(path, "rb")  # noqa: SIM115 (the caller closes the stream)
    head = raw.read(HEADER_BYTES)
    raw.seek(0)
    if _is_gzip(head):
        return gzip.GzipFile(fileobj=raw, mode="rb"), True
    return raw, False


def iter_frames(path: PathLike) -> Iterator[Frame]:
    """The records of one file (uncompressed or GZIP, detected), framing and length CRCs checked, data CRCs not."""
    path = Path(path)
    stream, gz = _open(path)
    index = offset = 0
    with stream:
        while True:
            try:
                header = stream.read(HEADER_BYTES)
                if not header:
                    return
                if len(header) < HEADER_BYTES:
                    message = f"truncated header: {len(header)} of {HEADER_BYTES} bytes"
                    raise record_error(path, index, offset, gz, message)
                length = check_length_crc(path, index, offset, gz, header)
                body = stream.read(length + FOOTER_BYTES)
            except (OSError, EOFError, zlib.error) as exc:  # gzip: corrupt or cut-off stream
                raise record_error(path, index, offset, gz, f"cannot decompress: {exc}") from None
            if len(body) < length:
                raise record_error(path, index, offset, gz, f"truncated data: {len(body)} of {length} bytes")
            if len(body) < length + FOOTER_BYTES:
                have = len(body) - length
                raise record_error(path, index, offset, gz, f"truncated data CRC: {have} of {FOOTER_BYTES} bytes")
            (stored,) = struct.unpack_from("<I", body, length)
            yield Frame(path, index, offset, gz, body[:length], stored)
            index += 1
            offset += HEADER_BYTES + length + FOOTER_BYTES


def iter_tfrecord(path: PathLike, *, verify_crc: bool = True) -> Iterator[bytes]:
    """Yield the raw record payloads of one TFRecord file (uncompressed or GZIP, detected).

    Args:
        verify_crc: check each record's data CRC. The length CRC is always checked: a corrupt length
            would misframe the rest of the file.

    Raises:
        TFRecordError: naming file, record index and byte offset, on a truncated header, data or CRC,
            a length or data CRC mismatch, or a corrupt GZIP stream. Records before it were yielded.
    """
    for frame in iter_frames(path):
        yield frame.verified() if verify_crc else frame.data


def is_tfrecord_name(name: str) -> bool:
    """``*.tfrecord*`` but not hidden and not a temp file (``.x.tfrecord.<pid>.tmp`` of a crashed writer)."""
    return ".tfrecord" in name and not name.startswith(".") and not name.endswith(".tmp")


def find_tfrecord_files(paths: Paths) -> list[Path]:
    """The TFRecord files named by ``paths``: a file, a folder (its ``*.tfrecord*`` files, sorted), or a list of these.

    In a folder, hidden and ``*.tmp`` files (a writer's temp files) are skipped.

    Raises:
        FileNotFoundError: a path that does not exist.
        TFRecordError: a folder without TFRecord files, nothing given, or a file named twice.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if is_tfrecord_name(p.name) and p.is_file())
            if not found:
                raise TFRecordError(f"{path}: no *.tfrecord* files in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such TFRecord file or folder")
    if not files:
        raise TFRecordError("no TFRecord files given")
    seen: dict[Path, Path] = {}
    for file in files:
        key = file.resolve()
        if key in seen:  # its records would be read twice
            raise TFRecordError(f"{file}: TFRecord file named twice (also as {seen[key]})")
        seen[key] = file
    return files


def build_index(path: PathLike) -> np.ndarray:
    """``(n,)`` int64 byte offsets of the records of an uncompressed TFRecord file.

    Reads only the 12-byte headers (length CRCs checked); data CRCs are checked when a record is read.

    Raises:
        TFRecordError: a GZIP file (a gzip stream has no random access: read it with
            :func:`iter_tfrecord`, or write shards uncompressed), a truncated record or a length CRC
            mismatch, naming file, record index and byte offset.
    """
    path = Path(path)
    size = path.stat().st_size
    offsets: list[int] = []
    with open(path, "rb") as f:
        if _is_gzip(f.read(HEADER_BYTES)):
            raise TFRecordError(
                f"{path}: GZIP-compressed TFRecord has no random access; read it sequentially "
                "(iter_tfrecord, ShardedTFRecordIterable) or write the shards with compression=None"
            )
        offset = 0
        while offset < size:
            index = len(offsets)
            f.seek(offset)
            header = f.read(HEADER_BYTES)
            if len(header) < HEADER_BYTES:
                message = f"truncated header: {len(header)} of {HEADER_BYTES} bytes"
                raise record_error(path, index, offset, False, message)
            length = check_length_crc(path, index, offset, False, header)
            end = offset + HEADER_BYTES + length + FOOTER_BYTES
            if end > size:
                have = size - offset - HEADER_BYTES
                message = f"truncated record: {have} of {length + FOOTER_BYTES} data+CRC bytes"
                raise record_error(path, index, offset, False, message)
            offsets.append(offset)
            offset = end
    return np.asarray(offsets, dtype=np.int64)
