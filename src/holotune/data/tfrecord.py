"""TFRecord files of ``tf.train.Example`` records in the Holistic fine-tuning API's schema, without TensorFlow.

One record is one sample::

    feature          kind         values
    image            bytes_list   1        the JPEG bytes
    keypoints_3d     float_list   543 * 3  x, y, z of the 543 layout (:mod:`holotune.landmarks`), row-major
    num_keypoints    int64_list   1        543
    keypoints_mask   float_list   543      optional: 1 labelled, 0 not
    label            int64_list   1        optional: class index
    label_name       bytes_list   1        optional: class name, UTF-8
    sample_id        bytes_list   1        optional: UTF-8

Files are byte-compatible with ``tf.io.TFRecordWriter`` / ``tf.data.TFRecordDataset``: each record is
``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)`` (little endian),
and the Example is protobuf wire format written by hand (map entries sorted by key bytes, floats
and ints packed: what C++ protobuf's deterministic serialization gives, so
``tf.io.parse_single_example`` reads it). The decoder is liberal where protobuf is: map entries in
any order, packed or unpacked repeated fields, unknown fields skipped, features outside the schema
ignored (as ``parse_single_example`` ignores features not in its spec).

Compression: ``None`` or ``"GZIP"`` (TensorFlow's GZIP TFRecord: the whole file one gzip stream).
GZIP shards keep the ``.tfrecord`` name; readers tell them apart by content (a gzip magic that is
not a valid first record header), so TensorFlow readers must be told ``compression_type="GZIP"``.
Random access (:func:`build_index`, ``TFRecordDataset``) needs uncompressed files.

CRC32C runs in numpy (several hundred MB/s, no compiled dependency): see :func:`crc32c`.

The torch datasets ``TFRecordDataset`` (map-style, random access) and ``ShardedTFRecordIterable``
(streaming, split over DataLoader workers and distributed ranks) load torch on first use, so the
codec and the data stages stay torch-free.
"""

from __future__ import annotations

import gzip
import operator
import os
import re
import struct
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

import numpy as np

from holotune.landmarks import NUM_KEYPOINTS

__all__ = [
    "NUM_KEYPOINTS",
    "KeypointRecord",
    "TFRecordError",
    "crc32c",
    "masked_crc32c",
    "encode_example",
    "decode_example",
    "frame_record",
    "write_tfrecord",
    "write_shards",
    "iter_tfrecord",
    "find_tfrecord_files",
    "read_records",
    "build_index",
    "TFRecordDataset",
    "ShardedTFRecordIterable",
]

PathLike = str | os.PathLike
Paths = PathLike | Iterable[PathLike]

HEADER_BYTES = 12  # uint64 length + uint32 masked CRC of the length
FOOTER_BYTES = 4  # uint32 masked CRC of the data
GZIP_MAGIC = b"\x1f\x8b"
COMPRESSIONS = (None, "GZIP")
SHARD_PATTERN = "{prefix}-{index:05d}-of-{count:05d}.tfrecord"


class TFRecordError(ValueError):
    """A TFRecord file or Example that cannot be read or written; the message names file, record and feature."""


@dataclass
class KeypointRecord:
    """One sample of the fine-tuning schema.

    Attributes:
        image: the encoded image (JPEG) bytes.
        keypoints: ``(543, 3)`` float32, normalized x, y, z in the 543 layout.
        mask: ``(543,)`` float32 (1 labelled, 0 not) or None (all labelled).
        label: class index or None.
        label_name: class name or None.
        sample_id: a stable id of the sample or None.
    """

    image: bytes
    keypoints: np.ndarray  # (543, 3) float32
    mask: np.ndarray | None = None  # (543,) float32
    label: int | None = None
    label_name: str | None = None
    sample_id: str | None = None


def _where(source: str, message: str) -> str:
    return f"{source}: {message}" if source else message


# --------------------------------------------------------------------------------------------------
# CRC32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF)
#
# The CRC is linear over GF(2), which lets numpy compute it without a per-byte Python loop: the data
# is cut into lanes of _LANE bytes, every byte's contribution to its lane's CRC is one lookup in a
# per-position table (all lanes at once, then an xor-reduce), the lane CRCs of a chunk combine the
# same way through per-lane "shift by k zero bytes" tables, and the chunk CRCs fold in a short
# Python loop. Zero bytes in front leave an init-0 CRC unchanged, so data is padded at the front to
# whole chunks; the 0xFFFFFFFF init is the same as xoring the first 4 data bytes with 0xFF.
# --------------------------------------------------------------------------------------------------

_POLY = 0x82F63B78
_LANE = 256  # bytes per lane
_LANES = 64  # lanes per chunk
_CHUNK = _LANE * _LANES  # 16 KiB
_BLOCK = 4 * _CHUNK  # bytes per vectorised step: bounds the (8 bytes per data byte) index temporaries
_NUMPY_MIN = 512  # below this the table loop wins over the numpy set-up


def _byte_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _byte_table()


def _crc32c_python(data: bytes | memoryview) -> int:
    """CRC32C by the classic byte-table loop (about 10 MB/s): short inputs and the reference for tests."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class _NumpyCrc:
    """The tables of the lane-parallel CRC (about 0.6 MB, built once in a few ms)."""

    def __init__(self) -> None:
        table = np.array(_TABLE, dtype=np.uint32)

        def zero_byte(x: np.ndarray) -> np.ndarray:  # the CRC register after one more zero byte
            return table[x & 0xFF] ^ (x >> 8)

        def byte_tables(columns: np.ndarray) -> np.ndarray:  # (4, 256): a linear map of 32-bit words
            out = np.zeros((4, 256), dtype=np.uint32)
            for b in range(4):
                t = np.zeros(1, dtype=np.uint32)
                for k in range(8):
                    t = np.concatenate([t, t ^ columns[8 * b + k]])
                out[b] = t
            return out

        def apply(tables: np.ndarray, x: np.ndarray) -> np.ndarray:
            return tables[0][x & 0xFF] ^ tables[1][(x >> 8) & 0xFF] ^ tables[2][(x >> 16) & 0xFF] ^ tables[3][x >> 24]

        # lane[i][v]: what byte v at position i of a lane adds to the lane's CRC (i zero bytes follow it)
        lane = np.empty((_LANE, 256), dtype=np.uint32)
        lane[-1] = table
        for i in range(_LANE - 2, -1, -1):
            lane[i] = zero_byte(lane[i + 1])
        basis = np.uint32(1) << np.arange(32, dtype=np.uint32)
        columns = basis.copy()
        for _ in range(_LANE):
            columns = zero_byte(columns)
        shift_lane = byte_tables(columns)
        # chunk[s][b][v]: what byte b (= v) of lane s's CRC adds to the chunk's CRC
        chunk = np.empty((_LANES, 4, 256), dtype=np.uint32)
        chunk[-1] = np.arange(256, dtype=np.uint32)[None, :] << (8 * np.arange(4, dtype=np.uint32))[:, None]
        for s in range(_LANES - 2, -1, -1):
            chunk[s] = apply(shift_lane, chunk[s + 1])
        columns = basis.copy()
        for _ in range(_LANES):
            columns = apply(shift_lane, columns)
        self.lane = lane.ravel()
        self.lane_offsets = np.arange(_LANE, dtype=np.intp) * 256
        self.chunk = chunk.ravel()
        self.chunk_offsets = (np.arange(_LANES * 4, dtype=np.intp) * 256).reshape(_LANES, 4)
        self.shift_chunk = [t.tolist() for t in byte_tables(columns)]  # one chunk of zero bytes, as Python lists

    def chunk_crcs(self, data: np.ndarray) -> np.ndarray:
        """``(n * _CHUNK,)`` uint8 -> ``(n,)`` uint32 init-0 CRCs of each chunk."""
        chunks = data.reshape(-1, _LANES, _LANE)
        lanes = np.bitwise_xor.reduce(self.lane[chunks + self.lane_offsets], axis=2)  # (n, _LANES)
        lane_bytes = lanes.astype("<u4").view(np.uint8).reshape(-1, _LANES, 4)
        return np.bitwise_xor.reduce(self.chunk[lane_bytes + self.chunk_offsets].reshape(len(chunks), -1), axis=1)

    def __call__(self, data: bytes | memoryview) -> int:
        n = len(data)
        pad = -n % _CHUNK
        buf = np.zeros(pad + n, dtype=np.uint8)
        buf[pad:] = np.frombuffer(data, dtype=np.uint8)
        buf[pad : pad + 4] ^= 0xFF
        crcs = np.concatenate([self.chunk_crcs(buf[i : i + _BLOCK]) for i in range(0, len(buf), _BLOCK)])
        t0, t1, t2, t3 = self.shift_chunk
        crc = 0
        for c in crcs.tolist():
            crc = t0[crc & 0xFF] ^ t1[(crc >> 8) & 0xFF] ^ t2[(crc >> 16) & 0xFF] ^ t3[crc >> 24] ^ c
        return crc ^ 0xFFFFFFFF


@cache
def _numpy_crc() -> _NumpyCrc:
    return _NumpyCrc()


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """The CRC32C (Castagnoli) of ``data``: ``crc32c(b"123456789") == 0xE3069283``."""
    if len(data) < _NUMPY_MIN:
        return _crc32c_python(data)
    return _numpy_crc()(data)


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """TFRecord's checksum: the CRC32C rotated right by 15 bits plus 0xA282EAD8 (mod 2**32)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --------------------------------------------------------------------------------------------------
# tf.train.Example wire format
#
#   Example   { Features features = 1; }
#   Features  { map<string, Feature> feature = 1; }      entry: { string key = 1; Feature value = 2; }
#   Feature   { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
#   BytesList { repeated bytes value = 1; }
#   FloatList { repeated float value = 1 [packed]; }
#   Int64List { repeated int64 value = 1 [packed]; }
# --------------------------------------------------------------------------------------------------

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_KINDS = {1: "bytes_list", 2: "float_list", 3: "int64_list"}
_KIND_FIELD = {kind: number for number, kind in _KINDS.items()}
_U64 = (1 << 64) - 1


def _varint(value: int) -> bytes:
    value &= _U64  # negative int64 -> two's complement, 10 bytes, as protobuf writes it
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | _LEN) + _varint(len(payload)) + payload


def _bytes_feature(values: Iterable[bytes]) -> bytes:
    return _len_field(1, b"".join(_len_field(1, v) for v in values))


def _float_feature(values: np.ndarray) -> bytes:
    packed = np.ascontiguousarray(values, dtype="<f4").tobytes()
    return _len_field(2, _len_field(1, packed) if packed else b"")  # proto3 omits an empty packed field


def _int64_feature(values: Iterable[int]) -> bytes:
    packed = b"".join(_varint(v) for v in values)
    return _len_field(3, _len_field(1, packed) if packed else b"")


def _example(features: dict[str, bytes]) -> bytes:
    """An Example from encoded Features; entries sorted by key bytes (C++ protobuf's deterministic order)."""
    entries = b"".join(
        _len_field(1, _len_field(1, key.encode()) + _len_field(2, feature)) for key, feature in sorted(features.items())
    )
    return _len_field(1, entries)


def encode_example(record: KeypointRecord, *, source: str = "") -> bytes:
    """Serialize ``record`` as a ``tf.train.Example`` (what C++ protobuf's deterministic serialization gives).

    Raises:
        TFRecordError: keypoints not ``(543, 3)``, mask not ``(543,)``, empty image, or a label that is
            not an integer; the message starts with ``source`` when given.
    """
    image = record.image
    if not isinstance(image, (bytes, bytearray, memoryview)):
        raise TFRecordError(_where(source, f"image must be bytes (the encoded JPEG), got {type(image).__name__}"))
    if len(image) == 0:
        raise TFRecordError(_where(source, "image is empty (0 bytes)"))
    try:
        keypoints = np.asarray(record.keypoints, dtype=np.float32)
        mask = None if record.mask is None else np.asarray(record.mask, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise TFRecordError(_where(source, f"keypoints/mask are not float arrays: {exc}")) from None
    if keypoints.shape != (NUM_KEYPOINTS, 3):
        raise TFRecordError(_where(source, f"keypoints have shape {keypoints.shape}, expected ({NUM_KEYPOINTS}, 3)"))
    features = {
        "image": _bytes_feature([bytes(image)]),
        "keypoints_3d": _float_feature(keypoints.reshape(-1)),
        "num_keypoints": _int64_feature([NUM_KEYPOINTS]),
    }
    if mask is not None:
        if mask.shape != (NUM_KEYPOINTS,):
            raise TFRecordError(_where(source, f"mask has shape {mask.shape}, expected ({NUM_KEYPOINTS},)"))
        features["keypoints_mask"] = _float_feature(mask)
    if record.label is not None:
        if isinstance(record.label, bool):
            raise TFRecordError(_where(source, f"label must be an integer, got {record.label!r}"))
        try:
            label = operator.index(record.label)
        except TypeError:
            raise TFRecordError(_where(source, f"label must be an integer, got {record.label!r}")) from None
        if not -(1 << 63) <= label < 1 << 63:
            raise TFRecordError(_where(source, f"label {label} does not fit in int64"))
        features["label"] = _int64_feature([label])
    for name in ("label_name", "sample_id"):
        value = getattr(record, name)
        if value is not None:
            if not isinstance(value, str):
                raise TFRecordError(_where(source, f"{name} must be a str, got {type(value).__name__}"))
            features[name] = _bytes_feature([value.encode()])
    return _example(features)


class _WireError(Exception):
    """Malformed protobuf; decode_example adds the source."""


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end:
            raise _WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise _WireError("varint longer than 10 bytes")


def _fields(buf: bytes, pos: int, end: int, message: str) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(field, wire_type, a, b)``: for varints ``a`` is the value, else ``buf[a:b]`` is the payload."""
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise _WireError(f"malformed {message}: field number 0")
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos, end)
            yield field, wire, value, pos
            continue
        if wire == _LEN:
            size, pos = _read_varint(buf, pos, end)
            stop = pos + size
        elif wire == _FIXED32:
            stop = pos + 4
        elif wire == _FIXED64:
            stop = pos + 8
        else:
            raise _WireError(f"malformed {message}: unsupported wire type {wire} (field {field})")
        if stop > end:
            raise _WireError(f"malformed {message}: field {field} runs {stop - end} bytes past the end")
        yield field, wire, pos, stop
        pos = stop


def _expect(wire: int, want: int, field: int, message: str) -> None:
    if wire != want:
        raise _WireError(f"malformed {message}: field {field} has wire type {wire}, expected {want}")


def _decode_floats(buf: bytes, start: int, end: int) -> np.ndarray:
    packed = end - start >= 2 and buf[start] == 0x0A  # field 1, wire type 2: the packed form
    if packed:
        size, pos = _read_varint(buf, start + 1, end)
        if pos + size == end:  # a single packed run: the form TensorFlow writes
            if size % 4:
                raise _WireError(f"malformed FloatList: packed run of {size} bytes is not a multiple of 4")
            return np.frombuffer(buf, dtype="<f4", count=size // 4, offset=pos).astype(np.float32)
    elif (end - start) % 5 == 0:  # unpacked floats: (tag 0x0D, 4 bytes) repeated; take them with one strided copy
        rows = np.frombuffer(buf, dtype=np.uint8, count=end - start, offset=start).reshape(-1, 5)
        if (rows[:, 0] == 0x0D).all():
            return np.ascontiguousarray(rows[:, 1:]).view("<f4").reshape(-1).astype(np.float32)
    parts: list[np.ndarray] = []
    for field, wire, a, b in _fields(buf, start, end, "FloatList"):
        if field != 1:
            continue
        if wire == _LEN:
            if (b - a) % 4:
                raise _WireError(f"malformed FloatList: packed run of {b - a} bytes is not a multiple of 4")
            parts.append(np.frombuffer(buf, dtype="<f4", count=(b - a) // 4, offset=a))
        elif wire == _FIXED32:
            parts.append(np.frombuffer(buf, dtype="<f4", count=1, offset=a))
        else:
            raise _WireError(f"malformed FloatList: value has wire type {wire}")
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_int64s(buf: bytes, start: int, end: int) -> list[int]:
    values: list[int] = []
    for field, wire, a, b in _fields(buf, start, end, "Int64List"):
        if field != 1:
            continue
        if wire == _VARINT:
            values.append(_signed(a))
        elif wire == _LEN:
            pos = a
            while pos < b:
                value, pos = _read_varint(buf, pos, b)
                values.append(_signed(value))
        else:
            raise _WireError(f"malformed Int64List: value has wire type {wire}")
    return values


def _decode_bytes(buf: bytes, start: int, end: int) -> list[bytes]:
    values = []
    for field, wire, a, b in _fields(buf, start, end, "BytesList"):
        if field == 1:
            _expect(wire, _LEN, field, "BytesList")
            values.append(buf[a:b])
    return values


def _decode_feature(buf: bytes, start: int, end: int) -> tuple[str | None, Any]:
    """``(kind, values)`` of one Feature; kind None when no oneof member is set."""
    kind: str | None = None
    spans: list[tuple[int, int]] = []
    for field, wire, a, b in _fields(buf, start, end, "Feature"):
        if field not in _KINDS:
            continue
        _expect(wire, _LEN, field, "Feature")
        if _KINDS[field] != kind:  # a later oneof member replaces the earlier one, as in protobuf
            kind, spans = _KINDS[field], []
        spans.append((a, b))  # the same member again: protobuf merges, i.e. concatenates the values
    if kind is None:
        return None, None
    decode = {"bytes_list": _decode_bytes, "float_list": _decode_floats, "int64_list": _decode_int64s}[kind]
    parts = [decode(buf, a, b) for a, b in spans]
    if kind == "float_list":
        return kind, parts[0] if len(parts) == 1 else np.concatenate(parts)
    return kind, [v for part in parts for v in part]


def _decode_features(buf: bytes) -> dict[str, tuple[str | None, Any]]:
    """The feature map of a serialized Example, in any entry order (a repeated key: the last one wins)."""
    features: dict[str, tuple[str | None, Any]] = {}
    for field, wire, a, b in _fields(buf, 0, len(buf), "Example"):
        if field != 1:
            continue
        _expect(wire, _LEN, field, "Example")
        for efield, ewire, ea, eb in _fields(buf, a, b, "Features"):
            if efield != 1:
                continue
            _expect(ewire, _LEN, efield, "Features")
            key, value = "", (None, None)
            for kfield, kwire, ka, kb in _fields(buf, ea, eb, "feature map entry"):
                if kfield == 1:
                    _expect(kwire, _LEN, kfield, "feature map entry")
                    try:
                        key = buf[ka:kb].decode()
                    except UnicodeDecodeError:
                        raise _WireError(f"feature name {buf[ka:kb]!r} is not UTF-8") from None
                elif kfield == 2:
                    _expect(kwire, _LEN, kfield, "feature map entry")
                    value = _decode_feature(buf, ka, kb)
            features[key] = value
    return features


def _feature(features: dict, name: str, kind: str, required: bool) -> Any:
    if name not in features:
        if required:
            raise _WireError(f"missing feature {name!r}")
        return None
    got, values = features[name]
    if got is None:  # a Feature with no list set: nothing to read, like an empty list
        got, values = kind, []
    if got != kind:
        raise _WireError(f"feature {name!r} is a {got}, expected a {kind}")
    if len(values) == 0:
        if required:
            raise _WireError(f"feature {name!r} has no values")
        return None
    return values


def _single(features: dict, name: str, kind: str, required: bool) -> Any:
    values = _feature(features, name, kind, required)
    if values is None:
        return None
    if len(values) != 1:
        raise _WireError(f"feature {name!r} has {len(values)} values, expected 1")
    return values[0]


def _text(features: dict, name: str) -> str | None:
    value = _single(features, name, "bytes_list", False)
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise _WireError(f"feature {name!r} is not UTF-8: {value[:40]!r}") from None


def decode_example(data: bytes, *, source: str = "") -> KeypointRecord:
    """Parse a serialized ``tf.train.Example`` of the schema into a :class:`KeypointRecord`.

    Checks structure only: required features present with the right kinds, ``num_keypoints == 543``,
    ``keypoints_3d`` of 543 * 3 floats, ``keypoints_mask`` of 543. Values (NaN, range) are the
    ingest layer's business and pass through bit-exactly.

    Args:
        data: the record payload.
        source: where the record came from, e.g. ``"shard.tfrecord record 12"``; starts error messages.

    Returns:
        The record; ``keypoints`` ``(543, 3)`` and ``mask`` ``(543,)`` are float32 arrays of their own.

    Raises:
        TFRecordError: e.g. ``"shard.tfrecord record 12: keypoints_3d has 1500 floats, expected 1629 (543 x 3)"``.
    """
    try:
        buf = bytes(data)
        features = _decode_features(buf)
        image = _single(features, "image", "bytes_list", True)
        if len(image) == 0:
            raise _WireError("image is empty (0 bytes)")
        count = _single(features, "num_keypoints", "int64_list", True)
        keypoints = _feature(features, "keypoints_3d", "float_list", True)
        if len(keypoints) != NUM_KEYPOINTS * 3:
            note = f" (num_keypoints is {count})" if count != NUM_KEYPOINTS else ""
            raise _WireError(
                f"keypoints_3d has {len(keypoints)} floats, expected {NUM_KEYPOINTS * 3} ({NUM_KEYPOINTS} x 3){note}"
            )
        if count != NUM_KEYPOINTS:
            raise _WireError(f"num_keypoints is {count}, expected {NUM_KEYPOINTS}")
        mask = _feature(features, "keypoints_mask", "float_list", False)
        if mask is not None and len(mask) != NUM_KEYPOINTS:
            raise _WireError(f"keypoints_mask has {len(mask)} floats, expected {NUM_KEYPOINTS}")
        label = _single(features, "label", "int64_list", False)
        label_name = _text(features, "label_name")
        sample_id = _text(features, "sample_id")
    except _WireError as exc:
        raise TFRecordError(_where(source, str(exc))) from None
    return KeypointRecord(
        image=image,
        keypoints=keypoints.reshape(NUM_KEYPOINTS, 3),
        mask=mask,
        label=label,
        label_name=label_name,
        sample_id=sample_id,
    )


# --------------------------------------------------------------------------------------------------
# TFRecord files
# --------------------------------------------------------------------------------------------------


def frame_record(data: bytes) -> bytes:
    """One record as it lies in the file: ``length | masked_crc(length) | data | masked_crc(data)``."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def _check_compression(compression: str | None) -> str | None:
    if compression == "":  # TensorFlow's spelling of "none"
        compression = None
    if compression not in COMPRESSIONS:
        raise TFRecordError(f"compression must be None or 'GZIP', got {compression!r}")
    return compression


def _temp_path(path: Path) -> Path:
    # hidden (readers skip dot files) and per-process, so concurrent writers never share a temp file
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


class _Writer:
    """Records into a temp file, renamed onto ``path`` by :meth:`commit` (readers never see half a file).

    ``name`` is what error messages call the file (a shard's final name is not known while it is written).
    """

    def __init__(self, path: Path | None, temp: Path, compression: str | None, name: str | None = None) -> None:
        self.path, self.temp, self.count, self.closed = path, temp, 0, False
        self.name = name or str(path)
        self._raw = open(temp, "wb")
        # mtime=0 and no file name in the gzip header: the same records give the same bytes (DVC caches)
        self._out: BinaryIO = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, compresslevel=6, mtime=0)
            if compression == "GZIP"
            else self._raw
        )

    def write(self, record: KeypointRecord) -> None:
        payload = encode_example(record, source=f"{self.name} record {self.count}")
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


def write_tfrecord(path: PathLike, records: Iterable[KeypointRecord], compression: str | None = None) -> int:
    """Write ``records`` to one TFRecord file, atomically (temp file, then rename). Returns the count.

    Args:
        compression: None or ``"GZIP"`` (the file name is kept as given).

    Raises:
        TFRecordError: a record that cannot be encoded (the message names file and record index);
            nothing is left at ``path`` then.
    """
    compression = _check_compression(compression)
    path = Path(path)
    writer = _Writer(path, _temp_path(path), compression)
    try:
        for record in records:
            writer.write(record)
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
    so the folder holds one consistent set. GZIP shards keep the ``.tfrecord`` name (see module doc).

    Returns:
        The shard paths in order; empty when there are no records (no file is written).
    """
    compression = _check_compression(compression)
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise TFRecordError(f"shard_size must be an integer >= 1, got {shard_size!r}")
    if not prefix or "/" in prefix or os.sep in prefix or prefix.startswith("."):
        raise TFRecordError(f"prefix must be a plain, non-hidden file name prefix, got {prefix!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers: list[_Writer] = []
    try:
        writer: _Writer | None = None
        for record in records:
            if writer is None or writer.count == shard_size:
                if writer is not None:
                    writer.close()
                index = len(writers)
                temp = out_dir / f".{prefix}-{index:05d}.{os.getpid()}.tmp"
                writer = _Writer(None, temp, compression, name=str(out_dir / f"{prefix}-{index:05d}-of-?????.tfrecord"))
                writers.append(writer)
            writer.write(record)
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


def _is_gzip(head: bytes) -> bool:
    # An uncompressed file could begin with 1f 8b too (a first record of 0x8b1f + k * 65536 bytes), but
    # then its first 12 bytes are a header with a valid length CRC; a gzip stream's almost never are.
    if not head.startswith(GZIP_MAGIC):
        return False
    return not (len(head) >= HEADER_BYTES and struct.unpack("<I", head[8:12])[0] == masked_crc32c(head[:8]))


def _open(path: Path) -> tuple[BinaryIO, bool]:
    raw = open(path, "rb")
    head = raw.read(HEADER_BYTES)
    raw.seek(0)
    if _is_gzip(head):
        return gzip.GzipFile(fileobj=raw, mode="rb"), True
    return raw, False


def _record_error(path: PathLike, index: int, offset: int, gz: bool, message: str) -> TFRecordError:
    where = "uncompressed byte offset" if gz else "byte offset"
    return TFRecordError(f"{path} record {index} ({where} {offset}): {message}")


def _check_length_crc(path: PathLike, index: int, offset: int, gz: bool, header: bytes) -> int:
    length, stored = struct.unpack("<QI", header)
    computed = masked_crc32c(header[:8])
    if stored != computed:
        hint = "; not a TFRecord file (or compressed other than GZIP)?" if index == 0 else ""
        raise _record_error(
            path, index, offset, gz, f"length CRC mismatch (stored 0x{stored:08x}, computed 0x{computed:08x}){hint}"
        )
    return length


def _check_data_crc(path: PathLike, index: int, offset: int, gz: bool, data: bytes | memoryview, stored: int) -> None:
    computed = masked_crc32c(data)
    if stored != computed:
        raise _record_error(
            path, index, offset, gz, f"data CRC mismatch (stored 0x{stored:08x}, computed 0x{computed:08x})"
        )


def _iter_frames(path: PathLike) -> Iterator[tuple[int, int, bool, bytes, int]]:
    """``(index, offset, gzipped, data, stored data crc)`` per record; framing and length CRC checked."""
    path = Path(path)
    stream, gz = _open(path)
    index = offset = 0
    try:
        with stream:
            while True:
                try:
                    header = stream.read(HEADER_BYTES)
                    if not header:
                        return
                    if len(header) < HEADER_BYTES:
                        raise _record_error(
                            path, index, offset, gz, f"truncated header: {len(header)} of {HEADER_BYTES} bytes"
                        )
                    length = _check_length_crc(path, index, offset, gz, header)
                    body = stream.read(length + FOOTER_BYTES)
                except (OSError, EOFError, zlib.error) as exc:  # gzip: corrupt or cut-off stream
                    raise _record_error(path, index, offset, gz, f"cannot decompress: {exc}") from None
                if len(body) < length + FOOTER_BYTES:
                    what = "data" if len(body) < length else "data CRC"
                    got = len(body) if len(body) < length else len(body) - length
                    need = length if len(body) < length else FOOTER_BYTES
                    raise _record_error(path, index, offset, gz, f"truncated {what}: {got} of {need} bytes")
                (stored,) = struct.unpack_from("<I", body, length)
                yield index, offset, gz, body[:length], stored
                index += 1
                offset += HEADER_BYTES + length + FOOTER_BYTES
    finally:
        stream.close()


def iter_tfrecord(path: PathLike, *, verify_crc: bool = True) -> Iterator[bytes]:
    """Yield the raw record payloads of one TFRecord file (uncompressed or GZIP, detected).

    Args:
        verify_crc: check each record's data CRC. The length CRC is always checked: a corrupt length
            would misframe the rest of the file.

    Raises:
        TFRecordError: naming file, record index and byte offset, on a truncated header, data or CRC,
            a length or data CRC mismatch, or a corrupt GZIP stream. Records before it were yielded.
    """
    for index, offset, gz, data, stored in _iter_frames(path):
        if verify_crc:
            _check_data_crc(path, index, offset, gz, data, stored)
        yield data


def find_tfrecord_files(paths: Paths) -> list[Path]:
    """The TFRecord files named by ``paths``: a file, a folder (its ``*.tfrecord*`` files, sorted), or a list of these.

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
            found = sorted(
                p for p in path.iterdir() if ".tfrecord" in p.name and not p.name.startswith(".") and p.is_file()
            )
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


def read_records(paths: Paths, *, verify_crc: bool = True) -> Iterator[KeypointRecord]:
    """Decode every record of ``paths`` (see :func:`find_tfrecord_files`), file by file, in order.

    Raises:
        TFRecordError: the first unreadable record, naming file and record index.
    """
    for file in find_tfrecord_files(paths):
        for index, payload in enumerate(iter_tfrecord(file, verify_crc=verify_crc)):
            yield decode_example(payload, source=f"{file} record {index}")


def build_index(path: PathLike) -> np.ndarray:
    """``(n,)`` int64 byte offsets of the records of an uncompressed TFRecord file.

    Reads only the 12-byte headers (length CRCs checked); data CRCs are checked when a record is read.

    Raises:
        TFRecordError: a GZIP file (a gzip stream has no random access: read it with
            :func:`iter_tfrecord` / ``ShardedTFRecordIterable``, or write shards uncompressed), a
            truncated record or a length CRC mismatch, naming file, record index and byte offset.
    """
    path = Path(path)
    size = path.stat().st_size
    offsets: list[int] = []
    with open(path, "rb") as f:
        head = f.read(HEADER_BYTES)
        if _is_gzip(head):
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
                raise _record_error(path, index, offset, False, message)
            length = _check_length_crc(path, index, offset, False, header)
            end = offset + HEADER_BYTES + length + FOOTER_BYTES
            if end > size:
                have = size - offset - HEADER_BYTES
                raise _record_error(
                    path, index, offset, False, f"truncated record: {have} of {length + FOOTER_BYTES} data+CRC bytes"
                )
            offsets.append(offset)
            offset = end
    return np.asarray(offsets, dtype=np.int64)


# --------------------------------------------------------------------------------------------------
# torch datasets: built on first access (module __getattr__) so that importing the codec needs no torch
# --------------------------------------------------------------------------------------------------


class _IndexedFiles:
    """Random access to the records of uncompressed TFRecord files, one lazily opened handle per file and process."""

    def __init__(self, paths: Paths, verify_crc: bool) -> None:
        self.files = find_tfrecord_files(paths)
        self.verify_crc = verify_crc
        self.offsets = [build_index(f) for f in self.files]
        self.ends = [
            np.append(o[1:], f.stat().st_size).astype(np.int64) for f, o in zip(self.files, self.offsets)
        ]
        self.cumulative = np.cumsum([len(o) for o in self.offsets], dtype=np.int64)
        self._handles: dict[int, Any] = {}
        self._pid: int | None = None

    def __len__(self) -> int:
        return int(self.cumulative[-1]) if len(self.cumulative) else 0

    def __getstate__(self) -> dict:
        # file handles do not travel to DataLoader workers: each process opens its own
        return {**self.__dict__, "_handles": {}, "_pid": None}

    def _handle(self, file_index: int):
        if self._pid != os.getpid():  # a forked worker: never share (an offset with) the parent's handles
            self._handles, self._pid = {}, os.getpid()
        handle = self._handles.get(file_index)
        if handle is None:
            handle = self._handles[file_index] = open(self.files[file_index], "rb", buffering=0)
        return handle

    def _pread(self, file_index: int, size: int, offset: int) -> bytes:
        handle = self._handle(file_index)
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
            message = f"file shrank since indexing: read {len(buf)} of {span} bytes"
            raise _record_error(path, record, offset, False, message)
        length = _check_length_crc(path, record, offset, False, buf[:HEADER_BYTES])
        if length != span - HEADER_BYTES - FOOTER_BYTES:
            raise _record_error(path, record, offset, False, "file changed since indexing: record length differs")
        data = buf[HEADER_BYTES : HEADER_BYTES + length]
        if self.verify_crc:
            (stored,) = struct.unpack_from("<I", buf, HEADER_BYTES + length)
            _check_data_crc(path, record, offset, False, data, stored)
        return data

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles = {}


def _distributed(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is None or world_size is None:
        import torch.distributed as dist

        initialised = dist.is_available() and dist.is_initialized()
        rank = (dist.get_rank() if initialised else 0) if rank is None else rank
        world_size = (dist.get_world_size() if initialised else 1) if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
    return rank, world_size


@cache
def _torch_classes() -> dict[str, type]:
    from torch.utils import data as torch_data

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

        def __init__(
            self,
            paths: Paths,
            transform: Callable[[KeypointRecord], Any] | None = None,
            *,
            verify_crc: bool = True,
        ) -> None:
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
            transform: Callable[[KeypointRecord], Any] | None = None,
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
            by_shards = self.split == "shards" or (self.split == "auto" and len(files) >= consumers)
            if by_shards:
                frames = (frame for path in files[k::consumers] for frame in _frames_of(path))
            else:
                frames = (
                    frame
                    for n, frame in enumerate(f for path in files for f in _frames_of(path))
                    if n % consumers == k
                )
            for path, index, offset, gz, data, stored in frames:
                if self.verify_crc:
                    _check_data_crc(path, index, offset, gz, data, stored)
                record = decode_example(data, source=f"{path} record {index}")
                yield self.transform(record) if self.transform is not None else record

    for cls in (TFRecordDataset, ShardedTFRecordIterable):
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__  # pickle (DataLoader spawn) finds it through __getattr__
    return {"TFRecordDataset": TFRecordDataset, "ShardedTFRecordIterable": ShardedTFRecordIterable}


def _frames_of(path: Path) -> Iterator[tuple[Path, int, int, bool, bytes, int]]:
    for index, offset, gz, data, stored in _iter_frames(path):
        yield path, index, offset, gz, data, stored


def __getattr__(name: str) -> Any:
    if name in ("TFRecordDataset", "ShardedTFRecordIterable"):
        return _torch_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
