"""The few facts holotune's runtime needs from an ONNX file, read without the ``onnx`` package.

The lean serving install has no ``onnx`` (110 MiB); ONNX Runtime loads the bytes, and this module
reads the graph's inputs, outputs and metadata (:func:`read_model`) and drops the nodes an unwanted
output needs (:func:`prune_outputs`, what ``onnx.utils.Extractor`` does for the model's own input) from
the protobuf wire format directly. Tests compare both with the ``onnx`` package on real exports.
"""

from __future__ import annotations

from dataclasses import dataclass

# Field numbers from onnx.proto:
# ModelProto: graph 7, metadata_props 14. GraphProto: node 1, initializer 5, input 11, output 12,
# value_info 13. NodeProto: input 1, output 2, attribute 5. AttributeProto: g 6, graphs 11.
# TensorProto: name 8. ValueInfoProto: name 1, type 2. TypeProto: tensor_type 1. TypeProto.Tensor:
# shape 2. TensorShapeProto: dim 1. Dimension: dim_value 1, dim_param 2. StringStringEntryProto:
# key 1, value 2.


@dataclass(frozen=True)
class OnnxModelInfo:
    """What :func:`read_model` reads from an ONNX file: graph inputs and outputs as ``(name, dims)``
    (a symbolic dimension as its name, an unknown one as ``''``) and the metadata properties."""

    inputs: list[tuple[str, list[int | str]]]
    outputs: list[tuple[str, list[int | str]]]
    metadata: dict[str, str]


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated protobuf varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("protobuf varint longer than 10 bytes")


def _fields(buf: memoryview):
    """Each field of one protobuf message: ``(number, wire type, value, start, end)``; ``value`` is
    the int of a varint, the bytes (a memoryview) of a length-delimited field, else ``None``;
    ``buf[start:end]`` is the whole field, key included."""
    pos, size = 0, len(buf)
    while pos < size:
        start = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value = None
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        else:
            raise ValueError(f"protobuf wire type {wire} at byte {start} (not an ONNX model)")
        if pos > size or number == 0:
            raise ValueError(f"truncated or corrupt protobuf field at byte {start}")
        yield number, wire, value, start, pos


def _text(buf: memoryview) -> str:
    return bytes(buf).decode("utf-8")


def _strings(buf: memoryview, number: int) -> list[str]:
    """The values of repeated string field ``number`` of a message."""
    return [_text(v) for n, w, v, _, _ in _fields(buf) if n == number and w == 2]


def _message(buf: memoryview, number: int) -> memoryview | None:
    """The (last) embedded message ``number`` of a message, or ``None``."""
    found = None
    for n, w, v, _, _ in _fields(buf):
        if n == number and w == 2:
            found = v
    return found


def _value_info(buf: memoryview) -> tuple[str, list[int | str]]:
    name = "".join(_strings(buf, 1)[-1:])
    dims: list[int | str] = []
    tensor = _message(buf, 2)
    tensor = _message(tensor, 1) if tensor is not None else None
    shape = _message(tensor, 2) if tensor is not None else None
    for n, w, dim, _, _ in _fields(shape) if shape is not None else ():
        if n != 1 or w != 2:
            continue
        value: int | str = ""
        for dn, dw, dv, _, _ in _fields(dim):
            if dn == 1 and dw == 0:
                value = dv - (1 << 64) if dv >= 1 << 63 else dv
            elif dn == 2 and dw == 2:
                value = _text(dv)
        dims.append(value)
    return name, dims


def read_model(data: bytes) -> OnnxModelInfo:
    """The graph inputs, outputs and metadata of a serialized ONNX model.

    Raises:
        ValueError: ``data`` is not a protobuf message (or is cut short).
    """
    view = memoryview(data)
    graph = _message(view, 7)
    metadata = {}
    for n, w, entry, _, _ in _fields(view):
        if n == 14 and w == 2:
            key, value = _strings(entry, 1), _strings(entry, 2)
            metadata["".join(key[-1:])] = "".join(value[-1:])
    inputs, outputs = [], []
    for n, w, value, _, _ in _fields(graph) if graph is not None else ():
        if n in (11, 12) and w == 2:
            (inputs if n == 11 else outputs).append(_value_info(value))
    return OnnxModelInfo(inputs, outputs, metadata)


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def prune_outputs(data: bytes, keep: list[str]) -> bytes:
    """The serialized model with only the graph outputs ``keep``, and only the nodes, initializers and
    value infos they need (ONNX Runtime runs every node of a graph, wanted or not; this is what
    ``onnx.utils.Extractor`` does for the model's own input). A graph whose needed nodes hold
    subgraphs (If, Loop, Scan: they may read outer names implicitly) is returned unchanged."""
    view = memoryview(data)
    graph = _message(view, 7)
    if graph is None:
        return data
    nodes = []  # (inputs, outputs, has a subgraph), in graph order (topological, as ONNX requires)
    for n, w, value, _, _ in _fields(graph):
        if n == 1 and w == 2:
            inputs, outputs, subgraph = [], [], False
            for fn, fw, fv, _, _ in _fields(value):
                if fn in (1, 2) and fw == 2:
                    (inputs if fn == 1 else outputs).append(_text(fv))
                elif fn == 5 and fw == 2:
                    subgraph = subgraph or any(an in (6, 11) for an, _, _, _, _ in _fields(fv))
            nodes.append((inputs, outputs, subgraph))
    needed, used = set(keep), set()
    for index in reversed(range(len(nodes))):
        inputs, outputs, subgraph = nodes[index]
        if needed.intersection(outputs):
            if subgraph:
                return data
            used.add(index)
            needed.update(name for name in inputs if name)
    parts, node_index = [], 0
    for n, w, value, start, end in _fields(graph):
        keep_field = True
        if n == 1 and w == 2:
            keep_field = node_index in used
            node_index += 1
        elif n == 5 and w == 2:
            keep_field = "".join(_strings(value, 8)[-1:]) in needed
        elif n in (11, 13) and w == 2:
            keep_field = _value_info(value)[0] in needed
        elif n == 12 and w == 2:
            keep_field = _value_info(value)[0] in keep
        if keep_field:
            parts.append(graph[start:end])
    new_graph = b"".join(parts)
    model = [view[start:end] if not (n == 7 and w == 2) else _key(7, 2) + _encode_varint(len(new_graph)) + new_graph
             for n, w, _, start, end in _fields(view)]
    return b"".join(model)
