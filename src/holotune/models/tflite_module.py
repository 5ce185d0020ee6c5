"""A trainable ``torch.nn.Module`` built from a :class:`~holotune.models.tflite_graph.TFLiteGraph`.

Weighted ops become standard layers (``nn.Conv2d``, ``nn.Linear``, ``nn.PReLU``) registered under
their Keras layer names (``conv2d_21``, ``conv_landmarks``...), so ``state_dict`` keys, peft's
``target_modules`` and optimizers all see ordinary named parameters. Other ops run as functional
code in the TFLite operator order.

Layout: activations are NCHW inside. TFLite is NHWC, and several of its ops depend on NHWC element
order (RESHAPE, FULLY_CONNECTED on a 4-D input, MEAN that drops rank, axis arguments), so tensors
are permuted to NHWC exactly there, and 4-D graph outputs are returned in TFLite's NHWC layout.

Batch: TFLite files bake a batch of 1 into reshape targets and slice ends; here the leading
dimension is always taken from the input, so any batch size works.

The helpers :func:`same_pads`, :func:`depth_to_space`, :func:`to_nhwc`, :func:`reshape_batch`
and :func:`resize_bilinear` are module-level on purpose: each encodes one conversion trap, and
the negative-control tests replace them with the naive version to prove the parity tests catch it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from holotune.models.tflite_graph import OpNode, TFLiteFormatError, TFLiteGraph

# NHWC axis -> NCHW axis, for ops whose axis argument refers to TFLite's layout.
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}
_ELEMENTWISE = {"ADD": torch.add, "MUL": torch.mul, "SUB": torch.sub}


def same_pads(in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite/TensorFlow SAME padding along one axis: ``(before, after)`` in pixels.

    The total is split with the extra pixel *after*: for stride 2 on an even input this is
    (0, 1), which ``nn.Conv2d(padding=1)`` silently gets wrong with the same output shape.
    """
    out = -(-in_size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - in_size, 0)
    return total // 2, total - total // 2


def depth_to_space(x: Tensor, block: int) -> Tensor:
    """TensorFlow DEPTH_TO_SPACE (DCR order) on an NCHW tensor; ``F.pixel_shuffle`` is CRD."""
    n, c, h, w = x.shape
    x = x.reshape(n, block, block, c // (block * block), h, w)
    return x.permute(0, 3, 4, 1, 5, 2).reshape(n, c // (block * block), h * block, w * block)


def to_nhwc(x: Tensor) -> Tensor:
    """NCHW -> NHWC, so flattening follows TFLite's element order."""
    return x.permute(0, 2, 3, 1) if x.dim() == 4 else x


def reshape_batch(x: Tensor, static_shape: tuple[int, ...]) -> Tensor:
    """Reshape to a TFLite target shape whose leading (batch) dimension is taken from ``x``."""
    return x.reshape((x.shape[0], *static_shape[1:]))


def resize_bilinear(x: Tensor, size: tuple[int, int], align_corners: bool, half_pixel_centers: bool) -> Tensor:
    """TFLite RESIZE_BILINEAR on NCHW, for each of its three coordinate conventions."""
    if align_corners:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    if half_pixel_centers:
        # Half-pixel centres with edge clamping: exactly PyTorch's align_corners=False. An exact
        # integer factor is passed as scale_factor, which exports as a constant ONNX Resize scale
        # instead of sizes computed at run time from the (dynamic) input shape.
        in_h, in_w = x.shape[2], x.shape[3]
        if isinstance(in_h, int) and size[0] % in_h == 0 and size[1] % in_w == 0 and size[0] // in_h == size[1] // in_w:
            return F.interpolate(x, scale_factor=float(size[0] // in_h), mode="bilinear", align_corners=False)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    # TF1 "asymmetric": src = dst * in / out, no half-pixel offset.
    out = x
    for axis, (n_in, n_out) in zip((2, 3), zip(x.shape[2:], size)):
        src = torch.arange(n_out, dtype=x.dtype, device=x.device) * (n_in / n_out)
        lo = src.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        frac = (src - lo.to(x.dtype)).reshape([-1 if d == axis else 1 for d in range(4)])
        out = out.index_select(axis, lo) * (1 - frac) + out.index_select(axis, hi) * frac
    return out


def activate(x: Tensor, name: str) -> Tensor:
    """Apply a TFLite fused activation by name."""
    if name == "NONE":
        return x
    if name == "RELU":
        return F.relu(x)
    if name == "RELU6":
        return F.hardtanh(x, 0.0, 6.0)
    if name == "RELU_N1_TO_1":
        return F.hardtanh(x, -1.0, 1.0)
    if name == "TANH":
        return torch.tanh(x)
    raise TFLiteFormatError(f"unsupported fused activation {name}")


def is_depthwise(layer: nn.Module) -> bool:
    """A depthwise conv: one filter per channel, so its output channel c is its input channel c."""
    return isinstance(layer, nn.Conv2d) and 1 < layer.groups == layer.in_channels == layer.out_channels


def _sliced_layer(layer: nn.Module, rows: Tensor, cols: Tensor) -> nn.Module:
    """A new ``layer`` keeping output channels ``rows`` and input channels ``cols`` (a depthwise conv
    or a per-channel PReLU keeps ``rows`` only; a shared PReLU slope is copied)."""
    with torch.no_grad():
        if isinstance(layer, nn.PReLU):
            shared = layer.num_parameters == 1
            new = nn.PReLU(1 if shared else len(rows))
            new.weight.copy_(layer.weight if shared else layer.weight[rows])
            return new.train(layer.training)
        bias = layer.bias is not None
        if isinstance(layer, nn.Linear):
            new = nn.Linear(len(cols), len(rows), bias=bias)
            new.weight.copy_(layer.weight[rows][:, cols])
        else:
            depthwise = is_depthwise(layer)
            in_channels = len(rows) if depthwise else len(cols)
            new = nn.Conv2d(in_channels, len(rows), layer.kernel_size, stride=layer.stride, padding=layer.padding,
                            dilation=layer.dilation, groups=len(rows) if depthwise else 1, bias=bias)
            new.weight.copy_(layer.weight[rows] if depthwise else layer.weight[rows][:, cols])
        if bias:
            new.bias.copy_(layer.bias[rows])
    return new.train(layer.training)


@dataclass
class Step:
    """One op as the module runs it: tensor ids in and out, an optional layer name, static args."""

    op: OpNode
    layer: str | None = None
    args: dict = field(default_factory=dict)


class TFLiteModule(nn.Module):
    """A TFLite model as a trainable module with a trunk/head seam.

    Args:
        graph: the parsed TFLite graph.
        heads: output name -> TFLite output tensor index, naming the heads. For a model with
            several outputs, a head is the exclusive branch of its output (the ops that feed only
            that output). A single-output model's head is its final weighted layer.

    Attributes:
        output_names: the semantic output names, in TFLite output order.
        layer_info: layer name -> ``{"op_index", "kind", "tensor"}`` in the TFLite file.
        head_layers: head name -> weighted layers of its branch, in execution order (last = final layer).
        feature_names: names of the trunk tensors :meth:`forward_features` returns.
    """

    def __init__(self, graph: TFLiteGraph, heads: dict[str, int]):
        super().__init__()
        self.source = str(graph.path)
        self._tensor_shape = {i: t.shape for i, t in graph.tensors.items()}
        self._input = graph.inputs[0]
        self._outputs = list(graph.outputs)
        self.output_names = list(heads)
        if sorted(heads.values()) != sorted(self._outputs):
            raise ValueError(f"{graph.path}: heads {heads} do not name the outputs {self._outputs}")
        self._output_of_head = dict(heads)
        self.layer_info: dict[str, dict] = {}
        self._steps: list[Step] = []
        for op in graph.ops:
            self._steps.append(self._build_step(graph, op))
        self._split_trunk_and_heads(graph)
        self._steps_for_cache: dict[tuple[str, ...], list[Step]] = {}

    # ------------------------------------------------------------------ building
    def _add_layer(self, graph: TFLiteGraph, op: OpNode, layer: nn.Module) -> str:
        base = graph.layer_name(op)
        name, k = base, 2
        while name in self.layer_info or hasattr(self, name):
            name, k = f"{base}_{k}", k + 1
        self.add_module(name, layer)
        self.layer_info[name] = {"op_index": op.index, "kind": op.kind, "tensor": graph.tensors[op.outputs[0]].name}
        return name

    def _const(self, graph: TFLiteGraph, tensor: int, like_rank4: bool) -> str:
        """Register a constant operand as a buffer, in NCHW if it broadcasts against a 4-D tensor."""
        value = torch.from_numpy(np.array(graph.constant(tensor), dtype=np.float32))
        if like_rank4 and value.dim() >= 1:
            value = value.reshape((1,) * (4 - value.dim()) + tuple(value.shape)).permute(0, 3, 1, 2)
        name = f"const_{tensor}"
        if not hasattr(self, name):
            self.register_buffer(name, value.contiguous())
        return name

    def _build_step(self, g: TFLiteGraph, op: OpNode) -> Step:  # noqa: C901 - one branch per op kind
        kind, opt = op.kind, op.options
        in_shape = self._tensor_shape[op.inputs[0]] if op.inputs else ()
        weight = g.constant(op.inputs[1]) if len(op.inputs) > 1 else None
        bias = g.constant(op.inputs[2]) if len(op.inputs) > 2 else None
        step = Step(op)
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            if kind == "CONV_2D":
                out_c, kh, kw, in_c = weight.shape
                w = np.transpose(weight, (0, 3, 1, 2))
                groups = 1
            else:
                _, kh, kw, out_c = weight.shape
                in_c = in_shape[3]
                w = np.transpose(weight, (3, 0, 1, 2))
                groups = in_c
            stride, dil = opt["stride"], opt["dilation"]
            pads = [(0, 0), (0, 0)]
            if opt["padding"] == "SAME":
                pads = [same_pads(in_shape[1 + a], (kh, kw)[a], stride[a], dil[a]) for a in (0, 1)]
            symmetric = all(b == a for b, a in pads)
            conv = nn.Conv2d(
                in_c, out_c, (kh, kw), stride=stride, dilation=dil, groups=groups, bias=bias is not None,
                padding=(pads[0][0], pads[1][0]) if symmetric else 0,
            )
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
                if bias is not None:
                    conv.bias.copy_(torch.from_numpy(bias))
            step.layer = self._add_layer(g, op, conv)
            step.args = {"pad": None if symmetric else (pads[1][0], pads[1][1], pads[0][0], pads[0][1])}
        elif kind == "FULLY_CONNECTED":
            out_f, in_f = weight.shape
            fc = nn.Linear(in_f, out_f, bias=bias is not None)
            with torch.no_grad():
                fc.weight.copy_(torch.from_numpy(weight))
                if bias is not None:
                    fc.bias.copy_(torch.from_numpy(bias))
            step.layer = self._add_layer(g, op, fc)
        elif kind == "PRELU":
            alpha = weight.reshape(-1)
            if weight.ndim > 1 and alpha.size != weight.shape[-1]:
                raise TFLiteFormatError(f"{g.path}: PRELU alpha of shape {weight.shape} is not per-channel")
            prelu = nn.PReLU(alpha.size)
            with torch.no_grad():
                prelu.weight.copy_(torch.from_numpy(alpha))
            step.layer = self._add_layer(g, op, prelu)
        elif kind in _ELEMENTWISE:
            consts = [g.constant(t) is not None for t in op.inputs]
            step.args = {
                "const": [self._const(g, t, len(in_shape) == 4 or len(self._tensor_shape[op.inputs[1 - k]]) == 4)
                          if c else None for k, (t, c) in enumerate(zip(op.inputs, consts))],
            }
        elif kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            pads = [(0, 0), (0, 0)]
            if opt["padding"] == "SAME":
                pads = [same_pads(in_shape[1 + a], opt["filter"][a], opt["stride"][a]) for a in (0, 1)]
                if kind == "AVERAGE_POOL_2D" and any(p != (0, 0) for p in pads):
                    raise TFLiteFormatError(f"{g.path}: op {op.index} SAME average pooling with padding is not supported")
            step.args = {"pad": (pads[1][0], pads[1][1], pads[0][0], pads[0][1])}
        elif kind in ("PAD", "PADV2"):
            p = g.constant(op.inputs[1]).astype(int)
            if len(in_shape) == 4:
                if p[0].any():
                    raise TFLiteFormatError(f"{g.path}: op {op.index} pads the batch dimension")
                flat = (p[2, 0], p[2, 1], p[1, 0], p[1, 1], p[3, 0], p[3, 1])
            else:
                flat = tuple(int(v) for v in p[::-1].reshape(-1))
            value = float(g.constant(op.inputs[2]).reshape(-1)[0]) if kind == "PADV2" else 0.0
            step.args = {"pad": tuple(int(v) for v in flat), "value": value}
        elif kind == "RESHAPE":
            step.args = {"shape": self._tensor_shape[op.outputs[0]]}
        elif kind == "CONCATENATION":
            rank = len(self._tensor_shape[op.outputs[0]])
            axis = opt["axis"] % rank
            step.args = {"axis": _NHWC_TO_NCHW_AXIS[axis] if rank == 4 else axis}
        elif kind == "MEAN":
            axes = [int(a) % len(in_shape) for a in np.atleast_1d(g.constant(op.inputs[1]))]
            step.args = {"axes": axes, "keep_dims": opt.get("keep_dims", False)}
        elif kind == "RESIZE_BILINEAR":
            size = tuple(int(v) for v in g.constant(op.inputs[1]))
            step.args = {"size": size, "align_corners": opt["align_corners"], "half_pixel_centers": opt["half_pixel_centers"]}
        elif kind == "DEPTH_TO_SPACE":
            step.args = {"block": opt["block_size"]}
        elif kind == "STRIDED_SLICE":
            step.args = self._slice_args(g, op, in_shape)
        elif kind not in ("LOGISTIC", "RELU", "RELU6", "TANH"):
            raise TFLiteFormatError(f"{g.path}: op {op.index} {kind} is not supported")
        return step

    def _slice_args(self, g: TFLiteGraph, op: OpNode, in_shape: tuple[int, ...]) -> dict:
        begin, end, strides = (g.constant(t).astype(int) for t in op.inputs[1:4])
        opt = op.options
        if opt.get("shrink_axis_mask"):
            raise TFLiteFormatError(f"{g.path}: op {op.index} STRIDED_SLICE with shrink_axis_mask is not supported")
        slices = []
        for axis, size in enumerate(in_shape):
            b = None if opt["begin_mask"] >> axis & 1 else int(begin[axis])
            e = None if opt["end_mask"] >> axis & 1 else int(end[axis])
            if axis == 0 and (b in (None, 0)) and (e in (None, size)) and strides[0] == 1:
                b = e = None  # the baked batch of 1: keep every sample
            slices.append(slice(b, e, int(strides[axis])))
        if len(in_shape) == 4:
            slices = [slices[0], slices[3], slices[1], slices[2]]
        return {"slices": tuple(slices)}

    def _split_trunk_and_heads(self, g: TFLiteGraph) -> None:
        producers = {t: s for s in self._steps for t in s.op.outputs}
        # Which graph outputs each tensor feeds, walking backwards from every output.
        feeds: dict[int, set[int]] = {}
        for out in self._outputs:
            stack = [out]
            while stack:
                t = stack.pop()
                if out in feeds.setdefault(t, set()):
                    continue
                feeds[t].add(out)
                if t in producers:
                    stack.extend(i for i in producers[t].op.inputs if i >= 0 and g.constant(i) is None)
        head_of_output = {v: k for k, v in self._output_of_head.items()}
        self._head_of_step: dict[int, str] = {}
        if len(self._outputs) > 1:
            for s in self._steps:
                f = feeds.get(s.op.outputs[0], set())
                if len(f) == 1:
                    self._head_of_step[s.op.index] = head_of_output[next(iter(f))]
        else:
            # One output: the head is the final weighted layer and whatever follows it.
            last = max(i for i, s in enumerate(self._steps) if s.layer is not None)
            for s in self._steps[last:]:
                self._head_of_step[s.op.index] = self.output_names[0]
        self.head_layers = {
            h: [s.layer for s in self._steps if s.layer and self._head_of_step.get(s.op.index) == h]
            for h in self.output_names
        }
        head_ids = set(self._head_of_step)
        self._trunk_steps = [s for s in self._steps if s.op.index not in head_ids]
        self._head_steps = [s for s in self._steps if s.op.index in head_ids]
        trunk_made = {t for s in self._trunk_steps for t in s.op.outputs} | {self._input}
        seam = sorted({t for s in self._head_steps for t in s.op.inputs if t in trunk_made})
        self._seam = {self._feature_key(g, t, producers): t for t in seam}
        self.feature_names = list(self._seam)

    @staticmethod
    def _feature_key(g: TFLiteGraph, tensor: int, producers: dict[int, Step]) -> str:
        if tensor not in producers:
            return "input"
        return g.layer_name(OpNode(-1, "", [], [tensor]))

    def layers_feeding(self, outputs: list[str]) -> list[str]:
        """Weighted layers on the path from the input to any of ``outputs``, in execution order."""
        unknown = [o for o in outputs if o not in self._output_of_head]
        if unknown:
            raise KeyError(f"unknown output(s) {unknown}; outputs: {self.output_names}")
        producers = {t: s for s in self._steps for t in s.op.outputs}
        needed: set[int] = set()
        stack = [self._output_of_head[o] for o in outputs]
        while stack:
            t = stack.pop()
            if t in needed or t not in producers:
                continue
            needed.add(t)
            stack.extend(i for i in producers[t].op.inputs if i >= 0)
        return [s.layer for s in self._steps if s.layer and s.op.outputs[0] in needed]

    # ------------------------------------------------------------------ graph view
    @property
    def steps(self) -> tuple[Step, ...]:
        """Every op in execution order. Read them; change the graph only through :meth:`slice_channels`."""
        return tuple(self._steps)

    @property
    def input_tensor(self) -> int:
        """TFLite tensor id of the model input."""
        return self._input

    @property
    def output_tensors(self) -> tuple[int, ...]:
        """TFLite tensor ids of the outputs, in :attr:`output_names` order."""
        return tuple(self._outputs)

    def tensor_shape(self, tensor: int) -> tuple[int, ...]:
        """TFLite (NHWC) shape of a tensor as this module computes it (after :meth:`slice_channels`)."""
        return tuple(self._tensor_shape[tensor])

    def channel_count(self, tensor: int) -> int:
        """Channels of a tensor: the last axis of its TFLite shape (NHWC, or (N, C) after a mean); 1 for a scalar."""
        shape = self._tensor_shape[tensor]
        return int(shape[-1]) if shape else 1

    def activations(self, x: Tensor) -> dict[int, Tensor]:
        """Every tensor the model computes on ``x`` ((N, C, H, W) input), by tensor id; 4-D ones NCHW."""
        return self._run(self._steps, {self._input: x})

    def slice_channels(self, keep: Mapping[int, Sequence[int]]) -> None:
        """Remove channels in place: every tensor ``t`` in ``keep`` keeps only channels ``keep[t]`` (ascending).

        Each layer that writes or reads a sliced tensor is replaced by a smaller one (its kept
        output rows and input columns), a channel PAD pads fewer channels, and the recorded tensor
        shapes follow. ``keep`` must be closed under channel coupling (a residual ADD's operands and
        result, a depthwise conv's input and output...), as :func:`holotune.pruning.plan_channels`
        makes it; this method does not check that.
        """
        def kept(t: int) -> Tensor:
            return torch.as_tensor(keep[t] if t in keep else range(self.channel_count(t)), dtype=torch.long)

        for s in self._steps:
            out, inp = s.op.outputs[0], s.op.inputs[0]
            if s.layer is not None and (out in keep or inp in keep):
                setattr(self, s.layer, _sliced_layer(getattr(self, s.layer), kept(out), kept(inp)))
            elif s.op.kind in ("PAD", "PADV2") and len(self._tensor_shape[inp]) == 4 and out in keep:
                before = s.args["pad"][4]  # F.pad order: (w0, w1, h0, h1, c0, c1)
                channels = kept(out)
                pad = list(s.args["pad"])
                pad[4] = int((channels < before).sum())
                pad[5] = int((channels >= before + self.channel_count(inp)).sum())
                s.args["pad"] = tuple(pad)
        for t, channels in keep.items():
            self._tensor_shape[t] = tuple(self._tensor_shape[t][:-1]) + (len(channels),)
        self._steps_for_cache.clear()

    # ------------------------------------------------------------------ running
    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one input sample, NCHW."""
        _, h, w, c = self._tensor_shape[self._input]
        return (c, h, w)

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """Run the trunk. ``x``: (N, C, H, W) float32 in the model's input range.

        Returns:
            The trunk tensors every head reads, by name (NCHW for 4-D tensors).
        """
        env = self._run(self._trunk_steps, {self._input: x})
        return {k: env[t] for k, t in self._seam.items()}

    def forward_head(self, features: dict[str, Tensor], outputs: tuple[str, ...] | None = None) -> tuple:
        """Run the heads on :meth:`forward_features`' output; returns outputs in TFLite order/layout.

        Args:
            outputs: compute only these heads (e.g. skip pose segmentation when training landmarks);
                the others come back as ``None`` in their positions.
        """
        steps = self._head_steps if outputs is None else self._steps_for(tuple(outputs))
        env = self._run(steps, {t: features[k] for k, t in self._seam.items()})
        wanted = set(self.output_names if outputs is None else outputs)
        return tuple(to_nhwc(env[t]) if name in wanted else None for name, t in zip(self.output_names, self._outputs))

    def _steps_for(self, outputs: tuple[str, ...]) -> list[Step]:
        """Head steps needed for ``outputs`` (cached per request)."""
        cache = self._steps_for_cache
        if outputs not in cache:
            unknown = [o for o in outputs if o not in self._output_of_head]
            if unknown:
                raise KeyError(f"unknown output(s) {unknown}; outputs: {self.output_names}")
            producers = {t: s for s in self._head_steps for t in s.op.outputs}
            needed, stack = set(), [self._output_of_head[o] for o in outputs]
            while stack:
                t = stack.pop()
                if t in producers and t not in needed:
                    needed.add(t)
                    stack.extend(i for i in producers[t].op.inputs if i >= 0)
            cache[outputs] = [s for s in self._head_steps if s.op.outputs[0] in needed]
        return cache[outputs]

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """(N, C, H, W) input -> tuple of outputs in TFLite order, 4-D ones NHWC as TFLite returns them."""
        return self.forward_head(self.forward_features(x))  # every output, as the TFLite model

    def _run(self, steps: list[Step], env: dict[int, Tensor]) -> dict[int, Tensor]:
        for s in steps:
            xs = [env[t] if t in env else None for t in s.op.inputs]
            env[s.op.outputs[0]] = self._run_step(s, xs)
        return env

    def _run_step(self, s: Step, xs: list[Tensor | None]) -> Tensor:  # noqa: C901 - one branch per op kind
        kind, opt, a = s.op.kind, s.op.options, s.args
        x = xs[0]
        if s.layer is not None:
            layer = getattr(self, s.layer)  # looked up per call so peft's layer swaps take effect
            if kind == "FULLY_CONNECTED":
                x = to_nhwc(x).reshape(x.shape[0], -1) if x.dim() != 2 else x
                return activate(layer(x), opt.get("activation", "NONE"))
            if kind == "PRELU":
                return layer(x)
            if a.get("pad") is not None:
                x = F.pad(x, a["pad"])
            return activate(layer(x), opt["activation"])
        if kind in _ELEMENTWISE:
            lhs, rhs = (getattr(self, c) if c else v for c, v in zip(a["const"], xs))
            return activate(_ELEMENTWISE[kind](lhs, rhs), opt.get("activation", "NONE"))
        if kind == "MAX_POOL_2D":
            x = F.pad(x, a["pad"], value=float("-inf")) if any(a["pad"]) else x
            return activate(F.max_pool2d(x, opt["filter"], opt["stride"]), opt["activation"])
        if kind == "AVERAGE_POOL_2D":
            return activate(F.avg_pool2d(x, opt["filter"], opt["stride"]), opt["activation"])
        if kind in ("PAD", "PADV2"):
            return F.pad(x, a["pad"], value=a["value"])
        if kind == "RESHAPE":
            y = reshape_batch(to_nhwc(x), a["shape"])
            return y.permute(0, 3, 1, 2) if y.dim() == 4 else y
        if kind == "CONCATENATION":
            return activate(torch.cat([v for v in xs], dim=a["axis"]), opt.get("activation", "NONE"))
        if kind == "MEAN":
            if x.dim() == 4 and a["axes"] == [1, 2]:
                return x.mean((2, 3), keepdim=a["keep_dims"])
            y = to_nhwc(x).mean(a["axes"], keepdim=a["keep_dims"])
            return y.permute(0, 3, 1, 2) if y.dim() == 4 else y
        if kind == "RESIZE_BILINEAR":
            return resize_bilinear(x, a["size"], a["align_corners"], a["half_pixel_centers"])
        if kind == "DEPTH_TO_SPACE":
            return depth_to_space(x, a["block"])
        if kind == "STRIDED_SLICE":
            return x[a["slices"]]
        if kind == "LOGISTIC":
            return torch.sigmoid(x)
        return activate(x, kind)  # RELU, RELU6, TANH
