"""Write a model's weights back into a copy of its stock ``.tflite`` file, for MediaPipe itself.

A LoRA-merged model has the stock graph and new weights. This module copies the original
flatbuffer byte for byte and overwrites only the weight bytes in place, so the result keeps the
stock file's ops, tensor names, shapes, metadata and storage: a weight the file stores as float16
(behind a ``DEQUANTIZE``) is written as float16, and BatchNorm stays folded into the conv weights
as it is in the file (the PyTorch module holds exactly those folded weights). The output has the
stock file's size and drops in for it (``face_landmark.tflite``, ``hand_landmark_full.tflite``,
``pose_landmark_full.tflite``); writing unchanged weights gives a byte-identical file.

Refused, with the layer and the reason (:class:`TFLiteExportError`):

* a graph that changed: channel pruning (tensor shapes differ from the file's), LoRA adapters not
  merged, extra heads (parameters the file has no place for);
* a changed weight that the file stores sparse (``DENSIFY``): re-encoding the sparse index would
  change the file's layout, and a fine-tuned weight is no longer sparse anyway;
* a weight that float16 storage cannot hold (beyond +-65504, or NaN).

This module imports torch only to read the model's parameters; it never imports Lightning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite
from torch import nn

from holotune.models.tflite_graph import TFLiteGraph, read_tflite

FLOAT16_MAX = float(np.finfo(np.float16).max)
FLOAT16_RTOL = 1e-2
"""The float16 bound: per output, the max abs difference between the TFLite interpreter on the written
file and the PyTorch module with its float32 weights, on real crops, may be at most 1 % of the output's
scale: its largest magnitude on the same crops (e.g. the crop size for landmarks in pixels), or 1 for an
output compared as a probability (flags). Float16 keeps 11 significant bits, so the stock file's storage
moves each changed weight by up to 2**-11 (0.05 %) of its value, and the rounding adds up over the
layers: measured on merged LoRA adapters (benchmarks/tflite_export.py) it moves landmarks by 0.01-0.2 px
of a 192-256 px crop (under 0.1 % of the scale) and the face flag by 0.006. The write itself is exact:
the interpreter matches the module with float16-rounded weights as closely as the stock file matches
the stock module (``models verify``'s tolerance, 1e-2)."""


class TFLiteExportError(ValueError):
    """A model that cannot be written into its stock ``.tflite`` file; the message names the layer and why."""


@dataclass(frozen=True)
class WeightSlot:
    """Where one parameter of the module is stored in the ``.tflite`` file.

    Attributes:
        parameter: the module's parameter name, e.g. ``"conv2d_21.weight"``.
        layer: the layer name (``"conv2d_21"``).
        storage: index of the tensor whose buffer holds the bytes (the ``DEQUANTIZE`` input for a
            float16 weight, the weight tensor itself for a float32 one).
        dtype: numpy dtype of the stored bytes (``float16`` or ``float32``).
        shape: the stored tensor's shape (TFLite layout, e.g. OHWI for a conv).
        sparse: the file stores it sparse (behind a ``DENSIFY``).
    """

    parameter: str
    layer: str
    storage: int
    dtype: str
    shape: tuple[int, ...]
    sparse: bool


def to_tflite_layout(kind: str, param: str, value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A module parameter in the file's layout: conv OIHW -> OHWI, depthwise (C,1,H,W) -> (1,H,W,C),
    PReLU (C,) -> the file's alpha shape; a bias or a Linear weight is already in it."""
    if param == "weight" and kind == "CONV_2D":
        value = value.transpose(0, 2, 3, 1)
    elif param == "weight" and kind == "DEPTHWISE_CONV_2D":
        value = value.transpose(1, 2, 3, 0)
    elif kind == "PRELU":
        value = value.reshape(shape) if value.size == int(np.prod(shape)) else value
    return np.ascontiguousarray(value)


def weight_slots(model: nn.Module, graph: TFLiteGraph | None = None) -> list[WeightSlot]:
    """Every parameter of a :class:`~holotune.models.TFLiteModule` mapped to its storage in the file.

    Raises:
        TFLiteExportError: a parameter the file has no place for (an unmerged LoRA adapter, a new
            head), or a tensor whose shape differs from the file's (channel pruning).
    """
    graph = graph or read_tflite(model.source)
    ops = {op.index: op for op in graph.ops}
    _check_graph_unchanged(model, graph)
    slots: list[WeightSlot] = []
    mapped: set[str] = set()
    for layer, info in model.layer_info.items():
        op = ops[info["op_index"]]
        for position, param in ((1, "weight"), (2, "bias")):
            if len(op.inputs) <= position or op.inputs[position] < 0 or not hasattr(getattr(model, layer), param):
                continue
            if getattr(getattr(model, layer), param) is None:
                continue
            tensor = op.inputs[position]
            storage, sparse = tensor, False
            while storage in graph.decoded_from:
                kind, storage = graph.decoded_from[storage]
                sparse = sparse or kind == "DENSIFY"
            stored = graph.tensors[storage]
            slots.append(WeightSlot(f"{layer}.{param}", layer, storage, stored.dtype, stored.shape, sparse))
            mapped.add(f"{layer}.{param}")
    extra = sorted(name for name, _ in model.named_parameters() if name not in mapped)
    if extra:
        raise TFLiteExportError(
            f"{model.source}: parameters {extra[:5]}{' ...' if len(extra) > 5 else ''} have no place in the stock "
            ".tflite file (unmerged LoRA adapters or a new head); merge the adapters first, and export new heads "
            "as ONNX")
    return slots


def _check_graph_unchanged(model: nn.Module, graph: TFLiteGraph) -> None:
    """Refuse a module whose tensor shapes differ from the file's: channel pruning changed the graph."""
    changed = [(t, graph.tensors[t].shape, model.tensor_shape(t)) for t in graph.tensors
               if tuple(model.tensor_shape(t)) != tuple(graph.tensors[t].shape)]
    if changed:
        t, before, after = changed[0]
        raise TFLiteExportError(
            f"{model.source}: the graph changed ({len(changed)} tensors, e.g. {graph.tensors[t].name!r} "
            f"{list(before)} -> {list(after)}): channel pruning changes the ops' shapes, and a .tflite write-back "
            "keeps the stock graph; export the pruned model as ONNX instead")


def tflite_weights(model: nn.Module, graph: TFLiteGraph | None = None) -> dict[int, np.ndarray]:
    """Storage tensor index -> the model's value for it, in the file's layout and stored dtype.

    Only weights whose stored value changes are returned; an unchanged sparse weight is fine.

    Raises:
        TFLiteExportError: a changed weight the file stores sparse, a value float16 cannot hold,
            or a non-finite value; each names the parameter.
    """
    graph = graph or read_tflite(model.source)
    params = dict(model.named_parameters())
    kinds = {layer: info["kind"] for layer, info in model.layer_info.items()}
    changed: dict[int, np.ndarray] = {}
    for slot in weight_slots(model, graph):
        value = params[slot.parameter].detach().cpu().numpy().astype(np.float32)
        value = to_tflite_layout(kinds[slot.layer], slot.parameter.rsplit(".", 1)[1], value, slot.shape)
        if not np.isfinite(value).all():
            raise TFLiteExportError(f"{model.source}: {slot.parameter} holds NaN or infinite values")
        if value.size != int(np.prod(slot.shape)):
            raise TFLiteExportError(f"{model.source}: {slot.parameter} has {value.size} values, the file's tensor "
                                    f"{graph.tensors[slot.storage].name!r} {list(slot.shape)} holds {np.prod(slot.shape)}")
        value = value.reshape(slot.shape)
        if slot.dtype == "float16" and np.abs(value).max(initial=0.0) > FLOAT16_MAX:
            raise TFLiteExportError(f"{model.source}: {slot.parameter} reaches {np.abs(value).max():.6g}, beyond "
                                    f"float16's {FLOAT16_MAX:g}, and the stock file stores it as float16")
        stored = value.astype(slot.dtype)
        original = graph.tensors[slot.storage].data
        if original is not None and original.shape == stored.shape and np.array_equal(original, stored):
            continue
        if slot.sparse:
            raise TFLiteExportError(
                f"{model.source}: {slot.parameter} changed, and the stock file stores it sparse (DENSIFY); writing "
                "it back would re-encode the sparse index and change the file's layout. Keep this layer frozen "
                "(leave it out of target_modules) or export ONNX")
        changed[slot.storage] = stored
    return changed


def _buffer_span(model: "tflite.Model", sub: "tflite.SubGraph", tensor: int) -> tuple[int, int]:
    """(start, length) in the file of the bytes of ``tensor``'s buffer."""
    buffer = model.Buffers(sub.Tensors(tensor).Buffer())
    if buffer.Offset() > 1:  # large models keep buffers after the flatbuffer, addressed by offset
        return int(buffer.Offset()), int(buffer.Size())
    field = buffer._tab.Offset(4)  # Buffer.data
    if not field:
        raise TFLiteExportError(f"tensor {tensor} has no data buffer")
    return buffer._tab.Vector(field), buffer._tab.VectorLen(field)


def write_tflite(model: nn.Module, path: str | Path) -> dict:
    """Write ``model``'s weights into a copy of its stock ``.tflite`` file (``model.source``) at ``path``.

    Args:
        model: a :class:`~holotune.models.TFLiteModule` in the stock layer layout (LoRA merged).
        path: destination file; written atomically (a reader never sees half a file).

    Returns:
        ``{"path", "bytes", "source", "weights_changed"}``: the number of stored tensors rewritten.

    Raises:
        TFLiteExportError: see the module docstring.
    """
    source = Path(model.source)
    graph = read_tflite(source)
    changed = tflite_weights(model, graph)
    data = bytearray(source.read_bytes())
    fb = tflite.Model.GetRootAsModel(bytes(data), 0)
    sub = fb.Subgraphs(0)
    for tensor, value in changed.items():
        start, length = _buffer_span(fb, sub, tensor)
        raw = value.astype(value.dtype.newbyteorder("<")).tobytes()
        if len(raw) != length:
            raise TFLiteExportError(f"{source}: tensor {graph.tensors[tensor].name!r} holds {length} bytes, "
                                    f"the new value {len(raw)}")
        data[start:start + length] = raw
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
    return {"path": str(path), "bytes": len(data), "source": str(source), "weights_changed": len(changed)}


def export_tflite(model: nn.Module, path: str | Path, *, rtol: float = FLOAT16_RTOL) -> dict:
    """Write ``model`` as a ``.tflite`` (:func:`write_tflite`) and prove on real crops that the TFLite
    interpreter on the new file gives the module's outputs: within ``rtol`` of each output's scale
    (:data:`FLOAT16_RTOL`) of the float32 module, and within the stock parity tolerance (``models verify``'s 1e-2) of the module with
    its weights rounded to float16 as the file stores them (the write itself is exact).

    Returns:
        :func:`write_tflite`'s record plus ``"parity"`` and ``"parity_float16_weights"`` (output name -> max
        abs difference against the float32 and the float16-rounded module) and ``"bounds"`` (output name ->
        the float16 bound applied to ``"parity"``).

    Raises:
        TFLiteExportError: the model cannot be written (see the module docstring).
        holotune.export.ExportParityError: an output differs beyond its bound, naming it.
    """
    import copy

    import torch

    from holotune.export import ExportParityError
    from holotune.models.verification import DEFAULT_TOLERANCE, compare_outputs, run_tflite
    from holotune.samples import sample_crops

    record = write_tflite(model, path)
    inputs, _ = sample_crops(model.spec)
    got = run_tflite(model.spec, inputs, path=record["path"])
    rounded = copy.deepcopy(model).eval()
    nchw = torch.from_numpy(np.ascontiguousarray(inputs.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        for slot in weight_slots(rounded):
            if slot.dtype == "float16":
                param = rounded.get_parameter(slot.parameter)
                param.copy_(param.half().float())
        expected = [t.numpy() for t in model(nchw)]
        expected_rounded = [t.numpy() for t in rounded(nchw)]
    outputs = model.spec.outputs
    parity = {o.name: compare_outputs(model.spec, o.name, g, e) for o, g, e in zip(outputs, got, expected)}
    written = {o.name: compare_outputs(model.spec, o.name, g, e) for o, g, e in zip(outputs, got, expected_rounded)}
    bounds = {o.name: rtol * (1.0 if o.compare == "sigmoid" else float(np.abs(e).max())) for o, e in zip(outputs, expected)}
    for label, diffs, bound in (("torch", parity, bounds),
                                ("torch with float16-rounded weights", written, dict.fromkeys(written, DEFAULT_TOLERANCE))):
        bad = {k: v for k, v in diffs.items() if not v <= bound[k]}
        if bad:
            raise ExportParityError(f"{path}: the TFLite interpreter differs from {label} beyond the bound: "
                                    + ", ".join(f"{k} {v:.3g} > {bound[k]:.3g}" for k, v in bad.items()))
    return {**record, "parity": parity, "parity_float16_weights": written, "bounds": bounds}


def export_finetuned_tflite(module: str, state_dict_path: str | Path, path: str | Path, *,
                            rtol: float = FLOAT16_RTOL) -> dict:
    """:func:`export_tflite` for a fine-tuned ``model.pt`` of ``face_mesh`` | ``hands`` | ``pose``."""
    from holotune.models import MODULE_MODELS, create_model

    return export_tflite(create_model(MODULE_MODELS[module], checkpoint_path=state_dict_path), path, rtol=rtol)


def tflite_latency(paths: dict[str, str | Path], spec, runs: int = 30, warmup: int = 5, block: int = 5) -> dict:
    """TFLite interpreter latency (XNNPACK, 1 thread, batch 1) of several ``.tflite`` files of one model,
    interleaved in blocks of ``block`` calls as :func:`holotune.runtime.latency.onnx_latency` does.

    Returns:
        ``{key: {"median_ms", "p10_ms", "p90_ms"}}``, milliseconds per ``invoke``.
    """
    import time

    from ai_edge_litert.interpreter import Interpreter

    h, w = spec.input_size
    x = np.random.default_rng(0).uniform(*spec.input_range, (1, h, w, 3)).astype(np.float32)
    interpreters = {}
    for key, path in paths.items():
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        for _ in range(warmup):
            interpreter.invoke()
        interpreters[key] = interpreter
    times: dict[str, list[float]] = {k: [] for k in interpreters}
    while any(len(t) < runs for t in times.values()):
        for key, interpreter in interpreters.items():
            for _ in range(min(block, runs - len(times[key]))):
                start = time.perf_counter_ns()
                interpreter.invoke()
                times[key].append((time.perf_counter_ns() - start) / 1e6)
    return {k: {"median_ms": float(np.median(t)), "p10_ms": float(np.percentile(t, 10)),
                "p90_ms": float(np.percentile(t, 90))} for k, t in times.items()}
