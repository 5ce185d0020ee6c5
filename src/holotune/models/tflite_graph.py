"""Read a ``.tflite`` flatbuffer into a plain, framework-free op graph.

The graph is what :mod:`holotune.models.tflite_module` turns into a ``torch.nn.Module``.
Weight-decoding ops are folded here, at load time, so the module never runs them:

* ``DEQUANTIZE`` of a float16 constant becomes a float32 constant (exact).
* ``DENSIFY`` of a sparse constant (TFLite's CSR / block-sparse format) becomes a dense array.

Only subgraph 0 is read; every MediaPipe Holistic model has exactly one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tflite

_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_NUMPY_TYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT8: np.int8,
}
_INDEX_VECTORS = {
    tflite.SparseIndexVector.Int32Vector: tflite.Int32Vector,
    tflite.SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
    tflite.SparseIndexVector.Uint8Vector: tflite.Uint8Vector,
}
# Option tables per op; ops missing here carry no options we need.
_OPTION_TABLES = {
    "CONV_2D": tflite.Conv2DOptions,
    "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
    "FULLY_CONNECTED": tflite.FullyConnectedOptions,
    "ADD": tflite.AddOptions,
    "MUL": tflite.MulOptions,
    "SUB": tflite.SubOptions,
    "MAX_POOL_2D": tflite.Pool2DOptions,
    "AVERAGE_POOL_2D": tflite.Pool2DOptions,
    "CONCATENATION": tflite.ConcatenationOptions,
    "RESHAPE": tflite.ReshapeOptions,
    "RESIZE_BILINEAR": tflite.ResizeBilinearOptions,
    "DEPTH_TO_SPACE": tflite.DepthToSpaceOptions,
    "STRIDED_SLICE": tflite.StridedSliceOptions,
    "REDUCER": tflite.ReducerOptions,
}
_ACTIVATIONS = {v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_")}
_PADDINGS = {v: k for k, v in vars(tflite.Padding).items() if not k.startswith("_")}
# Trailing name components that mark the op inside a Keras layer's scope ("conv2d_3/Conv2D").
_OP_SUFFIX = re.compile(r"(_dequantize|_densify)+$")
# The TF op name that ends a layer's own location, per TFLite op (Keras exports vs. MediaPipe's own).
_TF_OP_SUFFIXES = {
    "CONV_2D": ("Conv2D", "Kernel"),
    "DEPTHWISE_CONV_2D": ("depthwise", "Kernel"),
    "FULLY_CONNECTED": ("MatMul", "Kernel"),
    "PRELU": ("Alpha",),
}


class TFLiteFormatError(ValueError):
    """A ``.tflite`` file holds something this reader cannot turn into a graph."""


@dataclass
class TensorInfo:
    """One tensor of the graph.

    Attributes:
        index: TFLite tensor index.
        name: TFLite tensor name (often several fused Keras locations joined by ``;``).
        shape: static NHWC shape as stored in the file (batch is 1).
        dtype: numpy dtype name.
        data: the constant value (after DEQUANTIZE/DENSIFY folding), or ``None`` for activations.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None = None


@dataclass
class OpNode:
    """One compute op, in execution order.

    Attributes:
        index: position of the op in the TFLite operator list.
        kind: builtin op name, e.g. ``"CONV_2D"``.
        inputs / outputs: tensor indices (``-1`` marks an omitted optional input).
        options: decoded builtin options (stride, padding, fused activation, ...).
    """

    index: int
    kind: str
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)


@dataclass
class TFLiteGraph:
    """Subgraph 0 of a ``.tflite`` model with its weights decoded to float32."""

    path: Path
    tensors: dict[int, TensorInfo]
    ops: list[OpNode]
    inputs: list[int]
    outputs: list[int]
    decoded_from: dict[int, tuple[str, int]] = field(default_factory=dict)
    """Folded weight decoding: decoded tensor -> (``"DEQUANTIZE"`` | ``"DENSIFY"``, its stored source tensor)."""

    def constant(self, index: int) -> np.ndarray | None:
        """The decoded value of tensor ``index``, or ``None`` if it is an activation."""
        return None if index < 0 else self.tensors[index].data

    def layer_name(self, op: OpNode) -> str:
        """The Keras layer an op belongs to, read from its tensor names.

        TFLite fuses the names of folded ops into one ``;``-joined location list and lists the
        op's own location last (``.../re_lu_3/Relu6;.../batch_normalization_4/FusedBatchNormV3;
        .../depthwise_conv2d_1/depthwise``). The layer is the last location of the output's name
        whose final component is the op's TF op (``Conv2D`` for CONV_2D, ``depthwise`` for
        DEPTHWISE_CONV_2D ...), preferring locations that the weight's name shares.
        ``model_1/model/conv2d_21/Conv2D`` -> ``conv2d_21``.
        """
        suffixes = _TF_OP_SUFFIXES.get(op.kind, ())

        def layers(tensor: int) -> list[str]:
            found = []
            for location in self.tensors[tensor].name.split(";"):
                parts = _OP_SUFFIX.sub("", location).split("/")
                if len(parts) >= 2 and parts[-1].rstrip("0123456789") in suffixes:
                    found.append(parts[-2])
            return found

        from_output = layers(op.outputs[0])
        has_weight = len(op.inputs) > 1 and self.constant(op.inputs[1]) is not None
        from_weight = layers(op.inputs[1]) if has_weight else []
        shared = [name for name in from_output if name in from_weight]
        for candidates in (shared, from_output, from_weight):
            if candidates:
                return candidates[-1]
        parts = _OP_SUFFIX.sub("", self.tensors[op.outputs[0]].name.split(";")[0]).split("/")
        return parts[-2] if len(parts) >= 2 else parts[-1]


def read_tflite(path: str | Path) -> TFLiteGraph:
    """Parse ``path`` into a :class:`TFLiteGraph`, folding DEQUANTIZE and DENSIFY.

    Raises:
        FileNotFoundError: the file does not exist.
        TFLiteFormatError: the file is not a TFLite flatbuffer or uses an unsupported feature.
    """
    path = Path(path)
    buf = path.read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise TFLiteFormatError(f"{path}: not a TFLite flatbuffer (missing 'TFL3' identifier)")
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() != 1:
        raise TFLiteFormatError(f"{path}: expected 1 subgraph, found {model.SubgraphsLength()}")
    sub = model.Subgraphs(0)

    tensors: dict[int, TensorInfo] = {}
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        dtype = _NUMPY_TYPES.get(t.Type())
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        data = None
        raw = model.Buffers(t.Buffer()).DataAsNumpy() if t.Buffer() > 0 else 0
        if not isinstance(raw, int) and dtype is not None:
            values = np.frombuffer(raw.tobytes(), dtype=dtype).copy()
            sparsity = t.Sparsity()
            data = _densify(values, shape, sparsity) if sparsity is not None else values.reshape(shape)
        tensors[i] = TensorInfo(i, t.Name().decode(), shape, np.dtype(dtype).name if dtype else "unknown", data)

    ops: list[OpNode] = []
    decoded_from: dict[int, tuple[str, int]] = {}
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = _OP_NAMES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        ins = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(v) for v in op.OutputsAsNumpy()]
        if kind in ("DEQUANTIZE", "DENSIFY"):
            # Weight decoding: fold into a float32 constant now.
            src = tensors[ins[0]].data
            if src is None:
                raise TFLiteFormatError(f"{path}: op {i} {kind} has a non-constant input")
            tensors[outs[0]].data = src.astype(np.float32)
            decoded_from[outs[0]] = (kind, ins[0])
            continue
        if kind == "CUSTOM":
            raise TFLiteFormatError(f"{path}: op {i} is a custom op, which holotune cannot convert")
        ops.append(OpNode(i, kind, ins, outs, _read_options(op, kind)))

    return TFLiteGraph(
        path=path,
        tensors=tensors,
        ops=ops,
        inputs=[int(v) for v in sub.InputsAsNumpy()],
        outputs=[int(v) for v in sub.OutputsAsNumpy()],
        decoded_from=decoded_from,
    )


# (key, flatbuffer getter, decode) for every option field the converter reads.
_OPTION_FIELDS = (
    ("stride", "StrideH", lambda o: (o.StrideH(), o.StrideW())),
    ("dilation", "DilationHFactor", lambda o: (o.DilationHFactor(), o.DilationWFactor())),
    ("depth_multiplier", "DepthMultiplier", lambda o: o.DepthMultiplier()),
    ("padding", "Padding", lambda o: _PADDINGS[o.Padding()]),
    ("activation", "FusedActivationFunction", lambda o: _ACTIVATIONS[o.FusedActivationFunction()]),
    ("filter", "FilterHeight", lambda o: (o.FilterHeight(), o.FilterWidth())),
    ("axis", "Axis", lambda o: o.Axis()),
    ("keep_dims", "KeepDims", lambda o: bool(o.KeepDims())),
    ("new_shape", "NewShapeAsNumpy", lambda o: [int(v) for v in o.NewShapeAsNumpy()] if o.NewShapeLength() else None),
    ("align_corners", "AlignCorners", lambda o: bool(o.AlignCorners())),
    ("half_pixel_centers", "HalfPixelCenters", lambda o: bool(o.HalfPixelCenters())),
    ("block_size", "BlockSize", lambda o: o.BlockSize()),
    ("begin_mask", "BeginMask", lambda o: o.BeginMask()),
    ("end_mask", "EndMask", lambda o: o.EndMask()),
    ("shrink_axis_mask", "ShrinkAxisMask", lambda o: o.ShrinkAxisMask()),
    ("ellipsis_mask", "EllipsisMask", lambda o: o.EllipsisMask()),
    ("new_axis_mask", "NewAxisMask", lambda o: o.NewAxisMask()),
    ("keep_num_dims", "KeepNumDims", lambda o: bool(o.KeepNumDims())),
)


def _read_options(op: "tflite.Operator", kind: str) -> dict:
    table_cls = _OPTION_TABLES.get("REDUCER" if kind in ("MEAN", "SUM", "REDUCE_MAX") else kind)
    table = op.BuiltinOptions()
    if table_cls is None or table is None:
        return {}
    opt = table_cls()
    opt.Init(table.Bytes, table.Pos)
    out = {key: decode(opt) for key, getter, decode in _OPTION_FIELDS if hasattr(opt, getter)}
    if out.get("ellipsis_mask") or out.get("new_axis_mask"):
        raise TFLiteFormatError(f"{kind} with ellipsis/new-axis masks is not supported")
    return out


def _index_vector(table, kind: int) -> np.ndarray:
    cls = _INDEX_VECTORS.get(kind)
    if cls is None or table is None:
        raise TFLiteFormatError(f"unsupported sparse index vector type {kind}")
    vec = cls()
    vec.Init(table.Bytes, table.Pos)
    return vec.ValuesAsNumpy().astype(np.int64)


def densify(
    values: np.ndarray,
    shape: tuple[int, ...],
    traversal_order: list[int],
    block_map: list[int],
    dims: list[tuple[str, int, np.ndarray | None, np.ndarray | None]],
) -> np.ndarray:
    """Decode TFLite's sparse tensor format (CSR per dimension, optional blocks) to a dense array.

    Follows TFLite's ``FormatConverter``: the stored ``values`` are listed in traversal order; each
    traversal level is either DENSE (``dense_size`` entries) or SPARSE_CSR (``segments`` index into
    ``indices`` per parent position). Levels past ``len(shape)`` are block dimensions that subdivide
    the original dimension ``block_map[k]``.

    Args:
        values: the stored non-zero values, 1-D.
        shape: dense shape of the result.
        traversal_order: dimension visited at each level (length ``len(shape) + len(block_map)``).
        block_map: original dimension of each block dimension.
        dims: per level ``(format, dense_size, segments, indices)``; format is ``"DENSE"`` or ``"CSR"``.

    Returns:
        Array of ``shape`` and the dtype of ``values``.
    """
    rank = len(shape)
    positions = np.zeros(1, dtype=np.int64)  # position within the current level, per path
    coords: list[np.ndarray] = []  # per level, the coordinate of each path
    for fmt, size, segments, indices in dims:
        if fmt == "DENSE":
            n = len(positions)
            positions = (positions[:, None] * size + np.arange(size)[None, :]).reshape(-1)
            coords = [np.repeat(c, size) for c in coords] + [np.tile(np.arange(size), n)]
        else:
            counts = segments[positions + 1] - segments[positions]
            starts = np.repeat(segments[positions], counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            positions = starts + offsets
            coords = [np.repeat(c, counts) for c in coords] + [indices[positions]]
    if len(positions) != len(values):
        raise TFLiteFormatError(f"sparse tensor: {len(values)} values but the index describes {len(positions)}")
    # Map each traversal level back to its original dimension (block dims add to the outer index).
    block_sizes = {traversal_order.index(rank + k): dims[traversal_order.index(rank + k)][1] for k in range(len(block_map))}
    full = [np.zeros(len(values), dtype=np.int64) for _ in range(rank)]
    for level, dim in enumerate(traversal_order):
        if dim < rank:
            inner = [block_sizes[traversal_order.index(rank + k)] for k, b in enumerate(block_map) if b == dim]
            full[dim] += coords[level] * (int(np.prod(inner)) if inner else 1)
        else:
            full[block_map[dim - rank]] += coords[level]
    dense = np.zeros(shape, dtype=values.dtype)
    dense[tuple(full)] = values
    return dense


def _densify(values: np.ndarray, shape: tuple[int, ...], sparsity) -> np.ndarray:
    order = [int(v) for v in sparsity.TraversalOrderAsNumpy()] if sparsity.TraversalOrderLength() else list(range(len(shape)))
    block_map = [int(v) for v in sparsity.BlockMapAsNumpy()] if sparsity.BlockMapLength() else []
    dims = []
    for k in range(sparsity.DimMetadataLength()):
        dm = sparsity.DimMetadata(k)
        if dm.Format() == tflite.DimensionType.DENSE:
            dims.append(("DENSE", int(dm.DenseSize()), None, None))
        else:
            dims.append(
                (
                    "CSR",
                    0,
                    _index_vector(dm.ArraySegments(), dm.ArraySegmentsType()),
                    _index_vector(dm.ArrayIndices(), dm.ArrayIndicesType()),
                )
            )
    return densify(values, shape, order, block_map, dims)
