"""``tf.train.Example`` in the Holistic fine-tuning API's schema, with protobuf's own message classes.

One record is one sample::

    feature          kind         values
    image            bytes_list   1        the JPEG bytes
    keypoints_3d     float_list   543 * 3  x, y, z of the 543 layout (:mod:`holotune.landmarks`), row-major
    num_keypoints    int64_list   1        543
    keypoints_mask   float_list   543      optional: 1 labelled, 0 not
    label            int64_list   1        optional: class index
    label_name       bytes_list   1        optional: class name, UTF-8
    sample_id        bytes_list   1        optional: UTF-8

The message classes (:data:`Example`, :data:`Features`, :data:`Feature`, :data:`BytesList`,
:data:`FloatList`, :data:`Int64List`) are built at import from TensorFlow's schema
(``tensorflow/core/example/{example,feature}.proto``) in a private descriptor pool: no TensorFlow, no
generated module, no clash with TensorFlow's classes when both are imported. Parsing is protobuf's:
map entries in any order, packed or unpacked repeated fields, unknown fields skipped; features
outside the schema are ignored (as ``tf.io.parse_single_example`` ignores features not in its spec).
On top of it, :func:`encode_example` and :func:`decode_example` check the schema and say which
feature is wrong and how.

Float lists move in and out of protobuf as packed little-endian float32 bytes (see
:func:`_as_field1`), not one Python float per value: 100 times faster, and bit-exact (NaN
payloads, signalling NaNs, -0.0).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from holotune.data.tfrecord.framing import TFRecordError
from holotune.landmarks import NUM_KEYPOINTS

KINDS = ("bytes_list", "float_list", "int64_list")  # Feature's oneof ``kind``, field numbers 1, 2, 3


def _message_classes() -> dict[str, type]:
    """The ``tensorflow.*`` Example messages, from a descriptor equal to TensorFlow's (proto3, packed numbers)."""
    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="holotune/tensorflow_example.proto", package="tensorflow", syntax="proto3"
    )

    def field(message, name: str, number: int, kind: int, type_name: str | None = None, **options):
        options.setdefault("label", F.LABEL_OPTIONAL)
        return message.field.add(name=name, number=number, type=kind, type_name=type_name, **options)

    lists = {"BytesList": F.TYPE_BYTES, "FloatList": F.TYPE_FLOAT, "Int64List": F.TYPE_INT64}
    for name, scalar in lists.items():  # message XList { repeated x value = 1 [packed = true]; }
        value = field(file.message_type.add(name=name), "value", 1, scalar, label=F.LABEL_REPEATED)
        if scalar != F.TYPE_BYTES:
            value.options.packed = True
    feature = file.message_type.add(name="Feature")  # oneof kind { BytesList bytes_list = 1; ... }
    feature.oneof_decl.add(name="kind")
    for number, (kind, list_name) in enumerate(zip(KINDS, lists), 1):
        field(feature, kind, number, F.TYPE_MESSAGE, f".tensorflow.{list_name}", oneof_index=0)
    features = file.message_type.add(name="Features")  # map<string, Feature> feature = 1;
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    field(entry, "key", 1, F.TYPE_STRING)
    field(entry, "value", 2, F.TYPE_MESSAGE, ".tensorflow.Feature")
    field(features, "feature", 1, F.TYPE_MESSAGE, ".tensorflow.Features.FeatureEntry", label=F.LABEL_REPEATED)
    field(file.message_type.add(name="Example"), "features", 1, F.TYPE_MESSAGE, ".tensorflow.Features")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.{m.name}"))
        for m in file.message_type
    }


_classes = _message_classes()
BytesList, FloatList, Int64List = _classes["BytesList"], _classes["FloatList"], _classes["Int64List"]
Feature, Features, Example = _classes["Feature"], _classes["Features"], _classes["Example"]


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


class _Invalid(Exception):
    """A schema violation; the public functions add the source and raise TFRecordError."""


def _where(source: str, message: str) -> str:
    return f"{source}: {message}" if source else message


# A message whose only content is field 1, length-delimited, serializes as ``0x0a varint(len) payload``:
# a BytesList of one value, an Example (``features = 1``) and a FloatList (``value = 1``, packed, one
# run) all do. So a one-value BytesList moves such a payload in and out of protobuf unchanged.


def _as_field1(payload: bytes) -> bytes:
    """The serialized message whose only content is ``payload`` as length-delimited field 1."""
    return BytesList(value=[payload]).SerializeToString()


def _field1_of(message) -> bytes:
    """The payload of a message whose only content is length-delimited field 1 (``b""`` when empty)."""
    values = BytesList.FromString(message.SerializeToString()).value
    return values[0] if values else b""


def serialize(features: dict[str, Feature]) -> bytes:
    """An Example of ``features``, map entries in bytewise key order: the bytes TensorFlow (C++ protobuf) writes.

    ``Example.SerializeToString(deterministic=True)`` would depend on the protobuf backend (upb sorts
    ``label_name`` before ``label``, C++ and pure Python the other way round), and shard bytes are
    DVC-hashed. So each map entry is serialized by protobuf on its own (one-entry ``Features``
    messages concatenate to their union) and the entries are joined in sorted order.
    """
    entries = b"".join(Features(feature={key: features[key]}).SerializeToString() for key in sorted(features))
    return _as_field1(entries)  # Example.features; sorted(str) is bytewise order for UTF-8 keys


def encode_example(record: KeypointRecord, *, source: str = "") -> bytes:
    """Serialize ``record`` as a ``tf.train.Example`` (the bytes TensorFlow would write: see :func:`serialize`).

    Raises:
        TFRecordError: keypoints not ``(543, 3)``, mask not ``(543,)``, empty image, or a label that is
            not an integer; the message starts with ``source`` when given.
    """
    try:
        return serialize(_features(record))
    except _Invalid as exc:
        raise TFRecordError(_where(source, str(exc))) from None


def _floats(values: np.ndarray) -> Feature:
    return Feature(float_list=FloatList.FromString(_as_field1(values.astype("<f4").tobytes())))


def _int(value: int) -> Feature:
    return Feature(int64_list=Int64List(value=[value]))


def _text(value: str) -> Feature:
    return Feature(bytes_list=BytesList(value=[value.encode()]))


def _features(record: KeypointRecord) -> dict[str, Feature]:
    image = record.image
    if not isinstance(image, (bytes, bytearray, memoryview)):
        raise _Invalid(f"image must be bytes (the encoded JPEG), got {type(image).__name__}")
    if len(image) == 0:
        raise _Invalid("image is empty (0 bytes)")
    try:
        keypoints = np.asarray(record.keypoints, dtype=np.float32)
        mask = None if record.mask is None else np.asarray(record.mask, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"keypoints/mask are not float arrays: {exc}") from None
    if keypoints.shape != (NUM_KEYPOINTS, 3):
        raise _Invalid(f"keypoints have shape {keypoints.shape}, expected ({NUM_KEYPOINTS}, 3)")
    features = {
        "image": Feature(bytes_list=BytesList(value=[bytes(image)])),
        "keypoints_3d": _floats(keypoints),
        "num_keypoints": _int(NUM_KEYPOINTS),
    }
    if mask is not None:
        if mask.shape != (NUM_KEYPOINTS,):
            raise _Invalid(f"mask has shape {mask.shape}, expected ({NUM_KEYPOINTS},)")
        features["keypoints_mask"] = _floats(mask)
    if record.label is not None:
        try:
            if isinstance(record.label, bool):
                raise TypeError
            label = operator.index(record.label)
        except TypeError:
            raise _Invalid(f"label must be an integer, got {record.label!r}") from None
        if not -(1 << 63) <= label < 1 << 63:
            raise _Invalid(f"label {label} does not fit in int64")
        features["label"] = _int(label)
    for name in ("label_name", "sample_id"):
        value = getattr(record, name)
        if value is not None:
            if not isinstance(value, str):
                raise _Invalid(f"{name} must be a str, got {type(value).__name__}")
            features[name] = _text(value)
    return features


def _list(features, name: str, kind: str, required: bool):
    """Feature ``name``'s ``kind`` message (e.g. a FloatList), or None when it is optional and absent or empty."""
    if name not in features:  # test first: indexing a message map inserts the key
        if required:
            raise _Invalid(f"missing feature {name!r}")
        return None
    feature = features[name]
    got = feature.WhichOneof("kind") or kind  # no list set: nothing to read, like an empty list
    if got != kind:
        raise _Invalid(f"feature {name!r} is a {got}, expected a {kind}")
    values = getattr(feature, kind)
    if len(values.value) == 0:
        if required:
            raise _Invalid(f"feature {name!r} has no values")
        return None
    return values


def _single(features, name: str, kind: str, required: bool):
    values = _list(features, name, kind, required)
    if values is None:
        return None
    if len(values.value) != 1:
        raise _Invalid(f"feature {name!r} has {len(values.value)} values, expected 1")
    return values.value[0]


def _string(features, name: str) -> str | None:
    value = _single(features, name, "bytes_list", False)
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise _Invalid(f"feature {name!r} is not UTF-8: {value[:40]!r}") from None


def _float32(float_list) -> np.ndarray:
    return np.frombuffer(_field1_of(float_list), dtype="<f4").astype(np.float32)  # a copy of its own


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
        try:
            features = Example.FromString(bytes(data)).features.feature
        except DecodeError as exc:
            raise _Invalid(f"malformed tf.train.Example ({exc})") from None
        image = _single(features, "image", "bytes_list", True)
        if len(image) == 0:
            raise _Invalid("image is empty (0 bytes)")
        count = _single(features, "num_keypoints", "int64_list", True)
        keypoints = _list(features, "keypoints_3d", "float_list", True)
        if len(keypoints.value) != NUM_KEYPOINTS * 3:
            note = f" (num_keypoints is {count})" if count != NUM_KEYPOINTS else ""
            raise _Invalid(
                f"keypoints_3d has {len(keypoints.value)} floats, expected {NUM_KEYPOINTS * 3} ({NUM_KEYPOINTS} x 3){note}"
            )
        if count != NUM_KEYPOINTS:
            raise _Invalid(f"num_keypoints is {count}, expected {NUM_KEYPOINTS}")
        mask = _list(features, "keypoints_mask", "float_list", False)
        if mask is not None and len(mask.value) != NUM_KEYPOINTS:
            raise _Invalid(f"keypoints_mask has {len(mask.value)} floats, expected {NUM_KEYPOINTS}")
        return KeypointRecord(
            image=image,
            keypoints=_float32(keypoints).reshape(NUM_KEYPOINTS, 3),
            mask=None if mask is None else _float32(mask),
            label=_single(features, "label", "int64_list", False),
            label_name=_string(features, "label_name"),
            sample_id=_string(features, "sample_id"),
        )
    except _Invalid as exc:
        raise TFRecordError(_where(source, str(exc))) from None
