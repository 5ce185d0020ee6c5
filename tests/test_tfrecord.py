"""TFRecord IO: CRC32C, the tf.train.Example codec, framing, errors, shards and the torch datasets.

Byte compatibility with TensorFlow is pinned three ways without TensorFlow installed: literal bytes
(derived once, checked against an independent bitwise CRC and the protobuf library), a file written by
TensorFlow (two records of an event file), and ``tf.train.Example`` messages serialized by the protobuf
runtime from a descriptor written here, independently of the module's, after TensorFlow's
``feature.proto``/``example.proto`` (the module's descriptor must equal it). The last test parses our
shards with TensorFlow itself when it is installed.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from holotune.data import tfrecord as T
from holotune.data.tfrecord import (
    NUM_KEYPOINTS,
    KeypointRecord,
    TFRecordError,
    build_index,
    crc32c,
    decode_example,
    encode_example,
    find_tfrecord_files,
    frame_record,
    framing,
    iter_tfrecord,
    masked_crc32c,
    read_records,
    write_shards,
    write_tfrecord,
)
from holotune.data.tfrecord import example as E

# --------------------------------------------------------------------------------------------------
# independent references
# --------------------------------------------------------------------------------------------------


def crc32c_bitwise(data: bytes) -> int:
    """CRC32C bit by bit (no tables): an implementation independent of the module's."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tf_frame(payload: bytes) -> bytes:
    """TFRecord framing from the spec (TensorFlow's record_writer.cc), with the bitwise CRC."""
    length = struct.pack("<Q", len(payload))
    length_crc, payload_crc = mask(crc32c_bitwise(length)), mask(crc32c_bitwise(payload))
    return length + struct.pack("<I", length_crc) + payload + struct.pack("<I", payload_crc)


@pytest.fixture(scope="module")
def pb():
    """``tf.train`` Example classes from a descriptor equal to TensorFlow's (proto3, packed floats and ints)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="holotune_test/tensorflow_example.proto", package="tensorflow", syntax="proto3"
    )
    for name, kind in (("BytesList", F.TYPE_BYTES), ("FloatList", F.TYPE_FLOAT), ("Int64List", F.TYPE_INT64)):
        field = proto.message_type.add(name=name).field.add(name="value", number=1, type=kind, label=F.LABEL_REPEATED)
        if kind != F.TYPE_BYTES:
            field.options.packed = True
    feature = proto.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, (name, type_name) in enumerate((("bytes_list", "BytesList"), ("float_list", "FloatList"),
                                                 ("int64_list", "Int64List")), 1):
        feature.field.add(name=name, number=number, type=F.TYPE_MESSAGE, type_name=f".tensorflow.{type_name}",
                          label=F.LABEL_OPTIONAL, oneof_index=0)
    features = proto.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, type_name=".tensorflow.Feature",
                    label=F.LABEL_OPTIONAL)
    features.field.add(name="feature", number=1, type=F.TYPE_MESSAGE, type_name=".tensorflow.Features.FeatureEntry",
                       label=F.LABEL_REPEATED)
    proto.message_type.add(name="Example").field.add(name="features", number=1, type=F.TYPE_MESSAGE,
                                                     type_name=".tensorflow.Features", label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    names = ("BytesList", "FloatList", "Int64List", "Feature", "Features", "Example")
    classes = {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.{n}")) for n in names}
    return type("tf_train", (), {**classes, "file": proto})


def api_example_bytes(pb, image_bytes: bytes, keypoints: np.ndarray, order=None, **extra) -> bytes:
    """The fine-tuning API's example code (``tf.train.Example`` + ``_bytes/_float/_int64_feature``), serialized.

    ``order``: the map entries in this key order; default sorted bytewise (as holotune writes them).
    Protobuf promises no order: even its "deterministic" mode differs, C++ sorting ``label`` before
    ``label_name`` and upb (Python) the other way round, so each entry is serialized by protobuf
    and the entries are concatenated in the order asked for.
    """

    def _bytes_feature(value):
        return pb.Feature(bytes_list=pb.BytesList(value=[value]))

    def _float_feature(value):
        return pb.Feature(float_list=pb.FloatList(value=value))

    def _int64_feature(value):
        return pb.Feature(int64_list=pb.Int64List(value=[value]))

    feature = {
        "image": _bytes_feature(image_bytes),
        "keypoints_3d": _float_feature(keypoints.flatten()),
        "num_keypoints": _int64_feature(NUM_KEYPOINTS),
    }
    feature.update(extra)
    example = pb.Example(features=pb.Features(feature=feature))
    order = sorted(feature) if order is None else order
    entries = b"".join(pb.Features(feature={k: feature[k]}).SerializeToString() for k in order)
    data = b"\x0a" + varint(len(entries)) + entries
    assert pb.Example.FromString(data) == example
    return data


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def make_record(i: int, rng: np.random.Generator | None = None, **kwargs) -> KeypointRecord:
    rng = rng or np.random.default_rng(i)
    image = b"\xff\xd8\xff\xe0" + rng.integers(0, 256, 200 + 37 * i, dtype=np.uint8).tobytes() + b"\xff\xd9"
    fields = dict(image=image, keypoints=rng.random((NUM_KEYPOINTS, 3), dtype=np.float32),
                  mask=(rng.random(NUM_KEYPOINTS) > 0.1).astype(np.float32), label=i % 3, label_name=f"class{i % 3}",
                  sample_id=f"sample-{i:03d}")
    fields.update(kwargs)
    return KeypointRecord(**fields)


def assert_same(a: KeypointRecord, b: KeypointRecord) -> None:
    assert a.image == b.image
    assert np.asarray(a.keypoints, np.float32).view(np.uint32).tolist() == b.keypoints.view(np.uint32).tolist()
    if a.mask is None:
        assert b.mask is None
    else:
        assert np.array_equal(a.mask, b.mask)
    assert (a.label, a.label_name, a.sample_id) == (b.label, b.label_name, b.sample_id)


# --------------------------------------------------------------------------------------------------
# CRC32C and framing
# --------------------------------------------------------------------------------------------------


def test_crc32c_known_vectors():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283
    # RFC 3720 (iSCSI) B.4
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C


@pytest.mark.parametrize("n", [0, 4, 5, 600, 16385, 300_001])
def test_crc32c_library_and_fallback_agree_with_the_bitwise_reference(n):
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()
    expected = crc32c_bitwise(data) if n < 20_000 else framing._crc32c_python(data)
    assert crc32c(data) == crc32c(memoryview(data)) == crc32c(bytearray(data)) == expected
    if n < 20_000:
        assert framing._crc32c_python(data) == expected


def test_crc32c_falls_back_to_the_table_loop_without_google_crc32c():
    import subprocess
    import sys

    code = ("import sys; sys.modules['google_crc32c'] = None; from holotune.data.tfrecord import crc32c, framing; "
            "assert framing._crc32c is framing._crc32c_python and crc32c(b'123456789') == 0xE3069283")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_crc32c_uses_google_crc32c():
    google_crc32c = pytest.importorskip("google_crc32c")
    assert framing._crc32c is google_crc32c.value


def test_masked_crc32c_matches_tensorflow():
    # TensorBoard's test vectors, taken from event files written by TensorFlow
    assert masked_crc32c(b"\x1a\x11CRC test, one two") == 0x5794D08A
    assert masked_crc32c(struct.pack("<Q", 24)) == 0x224B7FA3
    assert masked_crc32c(b"hello") == mask(crc32c_bitwise(b"hello"))


# Two records of a TensorFlow event file (tf.summary.scalar("accuracy", 0.99, step=77)), from TensorBoard's
# tf_record reader tests: framing and CRCs exactly as TensorFlow's RecordWriter wrote them.
TF_EVENT_RECORDS = [
    b"\x09\x00\x00\x80\x38\x99\xd6\xd7\x41\x1a\x0dbrain.Event:2",
    b"\x09\xc4\x05\xb7\x3d\x99\xd6\xd7\x41\x10\x4d\x2a\x25\x0a\x23\x0a\x08accuracy"
    b"\x42\x0a\x08\x01\x12\x00\x22\x04\xa4\x70\x7d\x3f\x4a\x0b\x0a\x09\x0a\x07scalars",
]
TF_EVENT_FILE = (
    b"\x18\x00\x00\x00\x00\x00\x00\x00\xa3\x7f\x4b\x22" + TF_EVENT_RECORDS[0] + b"\x12\x4b\x36\xab"
    + b"\x32\x00\x00\x00\x00\x00\x00\x00\x24\x19\x56\xec" + TF_EVENT_RECORDS[1] + b"\xa5\x5b\x64\x33"
)


def test_reads_and_reproduces_a_file_written_by_tensorflow(tmp_path):
    path = tmp_path / "events.tfrecord"
    path.write_bytes(TF_EVENT_FILE)
    assert list(iter_tfrecord(path)) == TF_EVENT_RECORDS
    assert b"".join(frame_record(r) for r in TF_EVENT_RECORDS) == TF_EVENT_FILE
    assert build_index(path).tolist() == [0, 12 + 24 + 4]


def test_frame_of_hello_pinned():
    expected = tf_frame(b"hello")
    # derived once from the framing spec and the bitwise CRC; a literal so that any change shows
    assert expected[:12] == b"\x05\x00\x00\x00\x00\x00\x00\x00\xea\xb2\x04\x3e"
    assert expected == bytes.fromhex("0500000000000000" "eab2043e" "68656c6c6f" "bb1f1c19")
    assert frame_record(b"hello") == expected


def test_written_file_is_exactly_the_spec_bytes(tmp_path, pb):
    records = [make_record(0), make_record(1, mask=None, label=None, label_name=None, sample_id=None)]
    write_tfrecord(tmp_path / "a.tfrecord", records)
    expected = b"".join(
        tf_frame(api_example_bytes(pb, r.image, r.keypoints, **extra))
        for r, extra in zip(records, [dict(keypoints_mask=pb.Feature(float_list=pb.FloatList(value=records[0].mask)),
                                           label=pb.Feature(int64_list=pb.Int64List(value=[0])),
                                           label_name=pb.Feature(bytes_list=pb.BytesList(value=[b"class0"])),
                                           sample_id=pb.Feature(bytes_list=pb.BytesList(value=[b"sample-000"]))), {}])
    )
    assert (tmp_path / "a.tfrecord").read_bytes() == expected


# --------------------------------------------------------------------------------------------------
# tf.train.Example wire format
# --------------------------------------------------------------------------------------------------

NUM_KEYPOINTS_ONLY = bytes.fromhex("0a19" "0a17" "0a0d") + b"num_keypoints" + bytes.fromhex("1206" "1a04" "0a02" "9f04")


def test_tiny_example_wire_format_pinned(pb):
    feature = pb.Feature(int64_list=pb.Int64List(value=[543]))
    example = pb.Example(features=pb.Features(feature={"num_keypoints": feature}))
    assert example.SerializeToString() == NUM_KEYPOINTS_ONLY
    assert E.serialize({"num_keypoints": E.Feature(int64_list=E.Int64List(value=[543]))}) == NUM_KEYPOINTS_ONLY
    assert list(E.Example.FromString(NUM_KEYPOINTS_ONLY).features.feature["num_keypoints"].int64_list.value) == [543]


def test_module_descriptor_equals_tensorflows(pb):
    """The module's message classes come from the same schema as the independent one above (name aside)."""
    from google.protobuf import descriptor_pb2

    ours = descriptor_pb2.FileDescriptorProto()
    E.Example.DESCRIPTOR.file.CopyToProto(ours)
    assert (ours.package, ours.syntax) == ("tensorflow", "proto3")
    assert {m.name: m for m in ours.message_type} == {m.name: m for m in pb.file.message_type}


def test_map_entries_sorted_bytewise_whatever_the_backend():
    """``label`` before ``label_name`` (C++/TensorFlow order), although upb's deterministic mode swaps them."""
    record = make_record(1)
    data = encode_example(record)
    assert data.index(b"\x0a\x05label\x12") < data.index(b"\x0a\x0alabel_name")
    features = E._features(record)
    assert E.Example.FromString(data) == E.Example(features=E.Features(feature=features))


def test_minimal_record_wire_format_pinned(pb):
    record = KeypointRecord(image=b"\xff\xd8", keypoints=np.zeros((NUM_KEYPOINTS, 3), np.float32))
    expected = (
        b"\x0a\xb8\x33"  # Example.features, 6584 bytes
        + b"\x0a\x0f" + b"\x0a\x05image" + b"\x12\x06" + b"\x0a\x04" + b"\x0a\x02\xff\xd8"
        + b"\x0a\x8b\x33" + b"\x0a\x0ckeypoints_3d" + b"\x12\xfa\x32" + b"\x12\xf7\x32" + b"\x0a\xf4\x32" + bytes(6516)
        + NUM_KEYPOINTS_ONLY[2:]  # the num_keypoints map entry
    )
    assert encode_example(record) == expected
    assert api_example_bytes(pb, record.image, record.keypoints) == expected
    assert_same(record, decode_example(expected))


def test_encode_equals_protobuf_serialization(pb):
    record = make_record(5, label=-7)  # a negative int64: ten-byte varint
    extra = dict(keypoints_mask=pb.Feature(float_list=pb.FloatList(value=record.mask)),
                 label=pb.Feature(int64_list=pb.Int64List(value=[-7])),
                 label_name=pb.Feature(bytes_list=pb.BytesList(value=[record.label_name.encode()])),
                 sample_id=pb.Feature(bytes_list=pb.BytesList(value=[record.sample_id.encode()])))
    data = encode_example(record)
    assert data == api_example_bytes(pb, record.image, record.keypoints, **extra)
    assert_same(record, decode_example(data))


@pytest.mark.parametrize(
    "order", [None, ["num_keypoints", "keypoints_3d", "image"], ["keypoints_3d", "image", "num_keypoints"]]
)
def test_reads_the_fine_tuning_api_example_code_output(tmp_path, pb, order):
    rng = np.random.default_rng(1)
    keypoints = rng.random((NUM_KEYPOINTS, 3), dtype=np.float32)
    image = b"\xff\xd8\xff\xe0fake jpeg\xff\xd9"
    path = tmp_path / "api.tfrecord"
    path.write_bytes(tf_frame(api_example_bytes(pb, image, keypoints, order=order)))  # tf.io.TFRecordWriter
    (record,) = list(read_records(path))
    assert_same(KeypointRecord(image=image, keypoints=keypoints), record)


def test_decodes_unpacked_and_split_repeated_fields():
    keypoints = np.random.default_rng(2).random((NUM_KEYPOINTS, 3), dtype=np.float32)
    flat = keypoints.reshape(-1)
    unpacked_floats = b"".join(b"\x0d" + struct.pack("<f", v) for v in flat)
    two_packed_runs = b"".join(b"\x0a" + varint(4 * len(part)) + part.tobytes() for part in (flat[:1000], flat[1000:]))
    mixed = (b"\x0a" + varint(4 * 1000) + flat[:1000].tobytes()
             + b"".join(b"\x0d" + struct.pack("<f", v) for v in flat[1000:]))

    def example(float_list: bytes, int64_list: bytes) -> bytes:
        entries = [(b"image", b"\x0a" + varint(4) + b"\x0a\x02\xff\xd8"),
                   (b"keypoints_3d", b"\x12" + varint(len(float_list)) + float_list),
                   (b"num_keypoints", b"\x1a" + varint(len(int64_list)) + int64_list)]
        body = b""
        for key, feature in reversed(entries):
            entry = b"\x0a" + varint(len(key)) + key + b"\x12" + varint(len(feature)) + feature
            body += b"\x0a" + varint(len(entry)) + entry
        return b"\x0a" + varint(len(body)) + body

    for floats in (unpacked_floats, two_packed_runs, mixed):
        for ints in (b"\x08\x9f\x04", b"\x0a\x02\x9f\x04"):  # unpacked and packed int64
            record = decode_example(example(floats, ints))
            assert record.keypoints.view(np.uint32).tolist() == keypoints.view(np.uint32).tolist()
            assert record.image == b"\xff\xd8"


def test_unknown_fields_and_extra_features_are_skipped(pb):
    record = make_record(3)
    extra = {"image/height": pb.Feature(int64_list=pb.Int64List(value=[256]))}
    data = api_example_bytes(pb, record.image, record.keypoints, **extra)
    data = data + b"\x10\x2a" + b"\x1d\x00\x00\x80\x3f"  # unknown Example fields 2 (varint) and 3 (fixed32)
    decoded = decode_example(data)
    assert decoded.image == record.image and np.array_equal(decoded.keypoints, record.keypoints)


def test_nan_and_signed_zero_survive_bit_exactly(tmp_path):
    bits = np.random.default_rng(4).random((NUM_KEYPOINTS, 3), dtype=np.float32).view(np.uint32).copy()
    bits[0] = [0x7FC00000, 0x7FC00001, 0xFFC12345]  # quiet NaNs with payloads, one negative
    bits[1] = [0x7F800001, 0x80000000, 0x7F800000]  # a signalling NaN, -0.0, inf
    record = make_record(0, keypoints=bits.view(np.float32))
    write_tfrecord(tmp_path / "nan.tfrecord", [record])
    (back,) = list(read_records(tmp_path / "nan.tfrecord"))
    assert back.keypoints.view(np.uint32).tolist() == bits.tolist()
    assert back.keypoints.dtype == np.float32 and back.keypoints.flags.writeable


# --------------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def three(tmp_path) -> tuple[Path, list[int]]:
    path = tmp_path / "three.tfrecord"
    write_tfrecord(path, [make_record(i) for i in range(3)])
    return path, build_index(path).tolist()


def test_truncated_file(three):
    path, offsets = three
    data = path.read_bytes()
    for cut, what in ((offsets[1] + 100, "truncated data"), (offsets[1] + 5, "truncated header: 5 of 12 bytes"),
                      (len(data) - 2, "truncated data CRC: 2 of 4 bytes")):
        path.write_bytes(data[:cut])
        got = []
        with pytest.raises(TFRecordError) as info:
            got.extend(iter_tfrecord(path))
        record = 1 if cut < offsets[2] else 2
        assert f"{path} record {record} (byte offset {offsets[record]})" in str(info.value)
        assert what in str(info.value)
        assert len(got) == record  # the good records before it were read
        with pytest.raises(TFRecordError, match=f"record {record}"):
            build_index(path)


def test_data_and_length_crc_mismatch(three):
    path, offsets = three
    data = bytearray(path.read_bytes())
    data[offsets[1] + 12 + 20] ^= 0x01  # a payload byte of record 1
    path.write_bytes(bytes(data))
    with pytest.raises(TFRecordError, match=rf"record 1 \(byte offset {offsets[1]}\): data CRC mismatch") as info:
        list(iter_tfrecord(path))
    assert str(path) in str(info.value)
    assert len(list(iter_tfrecord(path, verify_crc=False))) == 3
    ds = T.TFRecordDataset(path)
    ds[0]
    with pytest.raises(TFRecordError, match="record 1 .*data CRC mismatch"):
        ds[1]
    data[offsets[1] + 12 + 20] ^= 0x01
    data[offsets[2] + 3] ^= 0x40  # the length of record 2
    path.write_bytes(bytes(data))
    with pytest.raises(TFRecordError, match=rf"{path} record 2 .*length CRC mismatch"):
        list(iter_tfrecord(path, verify_crc=False))


def test_not_a_tfrecord_file(tmp_path):
    path = tmp_path / "x.tfrecord"
    path.write_bytes(b"this is not a TFRecord file at all")
    with pytest.raises(TFRecordError, match="record 0 .*length CRC mismatch.*not a TFRecord file"):
        list(iter_tfrecord(path))


def example_with(pb, **changes) -> bytes:
    features = {
        "image": pb.Feature(bytes_list=pb.BytesList(value=[b"\xff\xd8"])),
        "keypoints_3d": pb.Feature(float_list=pb.FloatList(value=np.zeros(NUM_KEYPOINTS * 3))),
        "num_keypoints": pb.Feature(int64_list=pb.Int64List(value=[NUM_KEYPOINTS])),
    }
    for key, value in changes.items():
        if value is None:
            del features[key]
        else:
            features[key] = value
    return pb.Example(features=pb.Features(feature=features)).SerializeToString()


def test_schema_errors_name_file_record_and_feature(tmp_path, pb):
    floats = lambda n: pb.Feature(float_list=pb.FloatList(value=np.zeros(n)))  # noqa: E731
    ints = lambda *v: pb.Feature(int64_list=pb.Int64List(value=v))  # noqa: E731
    cases = [
        (dict(keypoints_3d=floats(1500), num_keypoints=ints(500)),
         "keypoints_3d has 1500 floats, expected 1629 (543 x 3) (num_keypoints is 500)"),
        (dict(keypoints_3d=floats(1500)), "keypoints_3d has 1500 floats, expected 1629 (543 x 3)"),
        (dict(num_keypoints=ints(500)), "num_keypoints is 500, expected 543"),
        (dict(keypoints_mask=floats(542)), "keypoints_mask has 542 floats, expected 543"),
        (dict(image=None), "missing feature 'image'"),
        (dict(image=floats(3)), "feature 'image' is a float_list, expected a bytes_list"),
        (dict(image=pb.Feature(bytes_list=pb.BytesList(value=[b""]))), "image is empty (0 bytes)"),
        (dict(num_keypoints=ints(543, 543)), "feature 'num_keypoints' has 2 values, expected 1"),
        (dict(label_name=pb.Feature(bytes_list=pb.BytesList(value=[b"\xff\xfe"]))),
         "feature 'label_name' is not UTF-8: b'\\xff\\xfe'"),
    ]
    for changes, message in cases:
        path = tmp_path / "bad.tfrecord"
        good = encode_example(make_record(0))
        path.write_bytes(tf_frame(good) + tf_frame(example_with(pb, **changes)))
        records = read_records(path)
        next(records)
        with pytest.raises(TFRecordError) as info:
            next(records)
        assert str(info.value) == f"{path} record 1: {message}"
    with pytest.raises(TFRecordError, match=r"^malformed tf.train.Example \(.+\)$"):  # a field past the end
        decode_example(b"\x0a\x05\x00\x00")
    with pytest.raises(TFRecordError, match="^x.tfrecord record 7: malformed tf.train.Example"):  # truncated varint
        decode_example(b"\x0a\x80", source="x.tfrecord record 7")
    with pytest.raises(TFRecordError, match="malformed tf.train.Example"):  # a feature name that is not UTF-8
        decode_example(b"\x0a\x06\x0a\x04\x0a\x02\xff\xfe")


def test_encode_errors_leave_no_file(tmp_path):
    path = tmp_path / "out.tfrecord"
    bad = [make_record(0), make_record(1, keypoints=np.zeros((500, 3), np.float32))]
    with pytest.raises(TFRecordError, match=rf"{path} record 1: keypoints have shape \(500, 3\), expected \(543, 3\)"):
        write_tfrecord(path, bad)
    assert list(tmp_path.iterdir()) == []
    for record, message in ((make_record(0, mask=np.ones(542)), r"mask has shape \(542,\)"),
                            (make_record(0, image=b""), r"image is empty \(0 bytes\)"),
                            (make_record(0, label=1.5), "label must be an integer"),
                            (make_record(0, sample_id=b"x"), "sample_id must be a str")):
        with pytest.raises(TFRecordError, match=message):
            encode_example(record)
    with pytest.raises(TFRecordError, match="compression"):
        write_tfrecord(path, [], compression="ZLIB")


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "g.tfrecord"
    write_tfrecord(path, [make_record(i) for i in range(3)], compression="GZIP")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TFRecordError, match=rf"{path} record \d \(uncompressed byte offset \d+\)"):
        list(iter_tfrecord(path))


# --------------------------------------------------------------------------------------------------
# files, shards, datasets
# --------------------------------------------------------------------------------------------------


def test_shards_names_order_gzip_and_stale_files(tmp_path):
    records = [make_record(i) for i in range(25)]
    old = tmp_path / "train-00000-of-00005.tfrecord"
    old.write_bytes(b"")  # from an earlier, larger run
    other = tmp_path / "val-00000-of-00001.tfrecord"
    other.write_bytes(b"")
    paths = write_shards(iter(records), tmp_path, "train", shard_size=10)
    assert [p.name for p in paths] == [f"train-0000{i}-of-00003.tfrecord" for i in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in paths] + [other.name])
    assert [len(build_index(p)) for p in paths] == [10, 10, 5]
    back = list(read_records(paths))
    for a, b in zip(records, back, strict=True):
        assert_same(a, b)
    gz = write_shards(records, tmp_path / "gz", "train", shard_size=10, compression="GZIP")
    assert all(p.read_bytes()[:2] == b"\x1f\x8b" for p in gz)
    assert gzip.decompress(gz[0].read_bytes()) == paths[0].read_bytes()  # TF's GZIP TFRecord: one gzip stream
    assert [r.sample_id for r in read_records(tmp_path / "gz")] == [r.sample_id for r in records]
    with pytest.raises(TFRecordError, match="no random access"):
        build_index(gz[0])
    assert write_shards([], tmp_path / "empty", "train") == []


def test_failed_write_leaves_earlier_shards_alone(tmp_path):
    paths = write_shards([make_record(i) for i in range(5)], tmp_path, "train", shard_size=2)
    before = {p.name: p.read_bytes() for p in paths}

    def records():
        yield from (make_record(i) for i in range(7))
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError, match="source failed"):
        write_shards(records(), tmp_path, "train", shard_size=2)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    with pytest.raises(TFRecordError, match=r"train-00001-of-\?\?\?\?\?.tfrecord record 0: keypoints have shape"):
        write_shards([make_record(0), make_record(1, keypoints=np.zeros(3))], tmp_path, "train", shard_size=1)
    assert {p.name for p in tmp_path.iterdir()} == set(before)


def test_uncompressed_file_starting_with_the_gzip_magic(tmp_path):
    path = tmp_path / "x.tfrecord"
    payload = b"z" * 0x8B1F  # the length field starts 1f 8b
    path.write_bytes(frame_record(payload))
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert list(iter_tfrecord(path)) == [payload]
    assert build_index(path).tolist() == [0]


def test_find_tfrecord_files(tmp_path):
    (tmp_path / "b.tfrecord").write_bytes(b"")
    (tmp_path / "a.tfrecord.gz").write_bytes(b"")
    (tmp_path / ".c.tfrecord.123.tmp").write_bytes(b"")  # a writer's temp file
    (tmp_path / "d.tfrecord.123.tmp").write_bytes(b"")  # a temp file not hidden (another writer)
    (tmp_path / "notes.txt").write_bytes(b"")
    assert [p.name for p in find_tfrecord_files(tmp_path)] == ["a.tfrecord.gz", "b.tfrecord"]
    with pytest.raises(TFRecordError, match="named twice"):
        find_tfrecord_files([tmp_path, tmp_path / "b.tfrecord"])
    with pytest.raises(FileNotFoundError, match="missing"):
        find_tfrecord_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TFRecordError, match="no \\*.tfrecord\\* files"):
        find_tfrecord_files(tmp_path / "empty")


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[list[Path], list[KeypointRecord]]:
    records = [make_record(i) for i in range(25)]
    return write_shards(records, tmp_path_factory.mktemp("shards"), "train", shard_size=10), records


def test_dataset_random_access_equals_sequential_read(shards):
    paths, records = shards
    ds = T.TFRecordDataset(paths[0].parent, transform=None)
    assert len(ds) == 25
    sequential = list(read_records(paths))
    for i in np.random.default_rng(0).permutation(25):
        assert_same(sequential[i], ds[int(i)])
    assert ds[-1].sample_id == records[-1].sample_id
    with pytest.raises(IndexError):
        ds[25]
    ids = T.TFRecordDataset(paths, transform=lambda r: r.sample_id)
    assert [ids[i] for i in range(len(ids))] == [r.sample_id for r in records]
    copy = pickle.loads(pickle.dumps(ds))  # DataLoader workers under spawn get a pickled copy, no handles
    assert copy._files._handles == {} and copy[3].sample_id == records[3].sample_id
    assert type(copy).__module__ == "holotune.data.tfrecord.datasets"
    ds.close()


def split_ids(paths, consumers_per_rank: int, world_size: int, monkeypatch, **kwargs) -> list[list[str]]:
    import torch.utils.data

    out = []
    for rank in range(world_size):
        for worker in range(consumers_per_rank):
            info = type("WorkerInfo", (), {"id": worker, "num_workers": consumers_per_rank})
            monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: info)
            ds = T.ShardedTFRecordIterable(paths, transform=lambda r: r.sample_id, rank=rank, world_size=world_size,
                                           **kwargs)
            out.append(list(ds))
    return out


@pytest.mark.parametrize("split", ["auto", "shards", "records"])
@pytest.mark.parametrize("workers,ranks", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_iterable_covers_every_record_exactly_once(shards, monkeypatch, split, workers, ranks):
    paths, records = shards
    parts = split_ids(paths, workers, ranks, monkeypatch, split=split)
    flat = [i for part in parts for i in part]
    assert sorted(flat) == sorted(r.sample_id for r in records)  # none twice, none skipped
    assert parts == split_ids(paths, workers, ranks, monkeypatch, split=split)  # deterministic
    if split == "records" or (split == "auto" and workers * ranks > len(paths)):
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    if workers * ranks == 1:
        assert flat == [r.sample_id for r in records]


def test_iterable_shuffles_shards_per_epoch(shards, monkeypatch):
    paths, records = shards
    ds = T.ShardedTFRecordIterable(paths, transform=lambda r: r.sample_id, shuffle=True, seed=3)
    orders = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        ids = list(ds)
        assert sorted(ids) == sorted(r.sample_id for r in records)
        orders.append(ids)
    assert len({tuple(o) for o in orders}) > 1
    parts = split_ids(paths, 2, 2, monkeypatch, shuffle=True, seed=3, split="records")
    assert sorted(i for p in parts for i in p) == sorted(r.sample_id for r in records)


def test_real_dataloader_workers(shards):
    import torch.utils.data

    paths, records = shards
    ids = sorted(r.sample_id for r in records)
    ctx = "fork" if "fork" in torch.multiprocessing.get_all_start_methods() else None
    loader = torch.utils.data.DataLoader(T.ShardedTFRecordIterable(paths, transform=lambda r: r.sample_id),
                                         batch_size=None, num_workers=2, multiprocessing_context=ctx)
    assert sorted(loader) == ids
    ds = T.TFRecordDataset(paths, transform=lambda r: r.sample_id)
    ds[0]  # a handle opened in the parent must not be used by the workers
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True, num_workers=2, multiprocessing_context=ctx,
                                         collate_fn=list)
    assert sorted(i for batch in loader for i in batch) == ids


def test_iterable_rejects_bad_arguments(shards):
    paths, _ = shards
    with pytest.raises(ValueError, match="rank"):
        T.ShardedTFRecordIterable(paths, rank=2, world_size=2)
    with pytest.raises(ValueError, match="split"):
        T.ShardedTFRecordIterable(paths, split="files")


def test_import_needs_no_torch():
    import subprocess
    import sys

    code = ("import sys, holotune.data.tfrecord as t; t.read_records; t.crc32c(bytes(1000)); "
            "assert 'torch' not in sys.modules; t.TFRecordDataset; assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_tensorflow_parses_our_shards(tmp_path):
    tf = pytest.importorskip("tensorflow")
    records = [make_record(i) for i in range(5)]
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "keypoints_3d": tf.io.FixedLenFeature([NUM_KEYPOINTS * 3], tf.float32),
        "num_keypoints": tf.io.FixedLenFeature([], tf.int64),
        "keypoints_mask": tf.io.FixedLenFeature([NUM_KEYPOINTS], tf.float32),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "label_name": tf.io.FixedLenFeature([], tf.string),
        "sample_id": tf.io.FixedLenFeature([], tf.string),
    }
    for compression in (None, "GZIP"):
        paths = write_shards(records, tmp_path / str(compression), "train", shard_size=2, compression=compression)
        dataset = tf.data.TFRecordDataset([str(p) for p in paths], compression_type=compression or "")
        parsed = [tf.io.parse_single_example(x, spec) for x in dataset]
        assert len(parsed) == len(records)
        for record, got in zip(records, parsed):
            assert got["image"].numpy() == record.image
            assert np.array_equal(got["keypoints_3d"].numpy().reshape(NUM_KEYPOINTS, 3), record.keypoints)
            assert int(got["num_keypoints"]) == NUM_KEYPOINTS
            assert np.array_equal(got["keypoints_mask"].numpy(), record.mask)
            assert int(got["label"]) == record.label
            assert got["label_name"].numpy().decode() == record.label_name
            assert got["sample_id"].numpy().decode() == record.sample_id
