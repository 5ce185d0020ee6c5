"""Channel coupling: which channels of a :class:`TFLiteModule` can only be removed together.

A channel of one tensor can rarely go alone: an ADD ties channel ``c`` of both operands and of its
result (the residual streams of BlazeBlocks and MobileNetV2 blocks); a depthwise conv, PReLU,
pooling, resize, spatial mean or activation ties its input's channel ``c`` to its output's; a
channel PAD (how a BlazeBlock widens its residual) ties input channel ``c`` to output channel
``before + c``. :func:`channel_groups` runs a union-find over every (tensor, channel) pair under
these ties: a *group* is one connected set, removed all at once. A group is pinned (never removed)
if it reaches the model's input or an output, or an op whose channel mapping is not the identity
(RESHAPE, DEPTH_TO_SPACE, STRIDED_SLICE, a FULLY_CONNECTED that flattens a 4-D tensor, an
elementwise op with a per-channel constant). A regular conv or linear only *reads* its input
channels (its columns are sliced) and starts new ones: that is where coupling stops.

What this leaves, per model: face_landmark, the residual stream (every BlazeBlock of a stage adds
into it, and a channel PAD carries it into the next stage, so one group spans from its first stage
through both heads: sites of 16, 16, 32 and 64 channels) and each head's 32-channel branch;
hand_landmark_full, the hidden (expanded) channels of every MobileNetV2 block, the residual streams,
and the 1152 channels pooled into the heads; pose_landmark_full, the same plus the decoder's and
the segmentation branch's streams. The input and every output stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from holotune.models.tflite_module import Step, TFLiteModule, is_depthwise

# Ops whose output channel c is input channel c.
_CHANNELWISE = {"MAX_POOL_2D", "AVERAGE_POOL_2D", "RESIZE_BILINEAR", "LOGISTIC", "RELU", "RELU6", "TANH", "PRELU"}
_ELEMENTWISE = {"ADD", "MUL", "SUB"}
# Ops whose operands after the first are constants (paddings, axes, sizes, shapes, slice bounds).
_FIRST_INPUT_ONLY = {"PAD", "PADV2", "MEAN", "RESIZE_BILINEAR", "RESHAPE", "STRIDED_SLICE"}


@dataclass
class ChannelGroup:
    """Channels that must be removed together.

    Attributes:
        members: ``(tensor id, channel)`` pairs; the channel axis is TFLite's last (NCHW's second).
        shrinks: layers that lose an output slice (conv/linear rows, depthwise filters, PReLU slopes).
        reads: layers that lose an input slice (regular conv / linear columns).
        score: removal cost (:func:`holotune.pruning.channels.score.score_groups`); lower goes first.
    """

    members: list[tuple[int, int]]
    shrinks: set[str] = field(default_factory=set)
    reads: set[str] = field(default_factory=set)
    score: float = 0.0

    @property
    def site(self) -> frozenset[int]:
        """The tensors it spans: groups of one site are alternatives for one another."""
        return frozenset(t for t, _ in self.members)


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        p = self.parent
        root = a
        while p[root] != root:
            root = p[root]
        while p[a] != root:  # path compression
            p[a], a = root, p[a]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def is_regular(layer: nn.Module) -> bool:
    """A layer that mixes channels: its input channels are read (columns), its outputs are new."""
    return isinstance(layer, nn.Linear) or (isinstance(layer, nn.Conv2d) and layer.groups == 1)


def member_index(groups: list[ChannelGroup]) -> dict[tuple[int, int], int]:
    """``(tensor id, channel)`` -> index of the group holding it."""
    return {m: i for i, g in enumerate(groups) for m in g.members}


def _activation_inputs(step: Step) -> list[int]:
    """The step's inputs produced at run time (not weights, biases or constant operands)."""
    if step.layer is not None or step.op.kind in _FIRST_INPUT_ONLY:
        return step.op.inputs[:1]
    if step.op.kind in _ELEMENTWISE:
        return [t for t, c in zip(step.op.inputs, step.args["const"]) if c is None]
    return [t for t in step.op.inputs if t >= 0]


def channel_groups(model: TFLiteModule) -> tuple[list[ChannelGroup], int]:
    """Every prunable channel group of ``model`` (see the module docstring), with the layers it touches.

    Args:
        model: a :class:`TFLiteModule` (stock shapes or already pruned).

    Returns:
        (groups, pinned): ``pinned`` counts the (tensor, channel) pairs that can never go. The
        groups are not scored yet (``score`` 0).
    """
    steps = model.steps
    channels, shape = model.channel_count, model.tensor_shape
    tensors = sorted({model.input_tensor} | {t for s in steps for t in s.op.outputs}
                     | {t for s in steps for t in _activation_inputs(s)})
    offset, n = {}, 0
    for t in tensors:
        offset[t] = n
        n += channels(t)
    uf = _UnionFind(n)
    pinned: set[int] = set()

    def tie(a: int, b: int, b_shift: int = 0) -> None:
        for c in range(channels(a)):
            uf.union(offset[a] + c, offset[b] + b_shift + c)

    def pin(*ts: int) -> None:
        for t in ts:
            pinned.update(range(offset[t], offset[t] + channels(t)))

    pin(model.input_tensor, *model.output_tensors)
    for s in steps:
        kind, out = s.op.kind, s.op.outputs[0]
        ins = _activation_inputs(s)
        layer = getattr(model, s.layer) if s.layer else None
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            if is_depthwise(layer):
                tie(ins[0], out)
            elif not is_regular(layer):  # a grouped conv (none in these models): keep it whole
                pin(ins[0], out)
        elif kind == "FULLY_CONNECTED":
            if len(shape(ins[0])) != 2:  # it flattens H, W and C together: its columns are not channels
                pin(ins[0])
        elif kind in _CHANNELWISE:
            tie(ins[0], out)
        elif kind in _ELEMENTWISE:
            if any(s.args["const"]):  # a per-channel constant would need slicing too; none in these models
                pin(*ins, out)
                continue
            for t in ins:
                if channels(t) == channels(out):
                    tie(t, out)
                elif channels(t) != 1:  # broadcasting other than from one channel
                    pin(t, out)
        elif kind in ("PAD", "PADV2") and len(shape(ins[0])) == 4:
            tie(ins[0], out, b_shift=s.args["pad"][4])  # F.pad order: (w0, w1, h0, h1, c0, c1)
        elif kind == "CONCATENATION" and len(shape(out)) == 4 and s.args["axis"] == 1:
            start = 0
            for t in ins:
                tie(t, out, b_shift=start)
                start += channels(t)
        elif kind == "CONCATENATION":  # along a spatial axis: channel c stays channel c
            for t in ins:
                tie(t, out)
        elif kind == "MEAN" and len(shape(ins[0])) == 4 and set(s.args["axes"]) <= {1, 2}:
            tie(ins[0], out)  # a spatial mean keeps channel c, also when the rank drops to 2
        else:  # RESHAPE, DEPTH_TO_SPACE, STRIDED_SLICE, non-4-D PAD, and anything new
            pin(*ins, out)

    roots = [uf.find(i) for i in range(n)]
    bad_roots = {roots[i] for i in pinned}
    by_root: dict[int, list[tuple[int, int]]] = {}
    for t in tensors:
        for c in range(channels(t)):
            if roots[offset[t] + c] not in bad_roots:
                by_root.setdefault(roots[offset[t] + c], []).append((t, c))
    groups = [ChannelGroup(members) for members in by_root.values()]
    _attach_layers(model, groups)
    return groups, sum(1 for r in roots if r in bad_roots)


def _attach_layers(model: TFLiteModule, groups: list[ChannelGroup]) -> None:
    """Fill each group's ``shrinks`` (layers writing its channels) and ``reads`` (regular layers reading them)."""
    where = member_index(groups)
    for s in model.steps:
        layer = getattr(model, s.layer) if s.layer else None
        if layer is None or (isinstance(layer, nn.PReLU) and layer.num_parameters == 1):
            continue  # a PReLU with one shared slope has no per-channel part
        touched = [(s.op.outputs[0], layer.weight.shape[0], "shrinks")]  # output rows, filters or slopes
        if is_regular(layer):
            touched.append((s.op.inputs[0], layer.weight.shape[1], "reads"))  # input columns
        for tensor, count, role in touched:
            for c in range(count):
                i = where.get((tensor, c))
                if i is not None:
                    getattr(groups[i], role).add(s.layer)
