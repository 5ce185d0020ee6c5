"""Pruning of the landmark models: the ``prune`` stage's library.

Two methods (:class:`PruneOptions`):

* ``l1_norm`` (the original API's ``{"method": "l1_norm", "sparsity": 0.3}``): unstructured L1
  magnitude pruning (``torch.nn.utils.prune.l1_unstructured``) of each chosen Conv2d/Linear weight,
  made permanent. Shapes stay dense and the state_dict keeps the stock layout; the zeros make the
  files compress better, but ONNX Runtime's dense kernels multiply by them all the same, so the
  model is no faster.
* ``channels``: structured pruning. Whole channels go with every weight that writes or reads them,
  leaving a smaller *dense* model, with the stock input/output signature, that ONNX Runtime runs faster.

**Channel coupling.** A channel of one tensor can rarely go alone: an ADD ties channel ``c`` of both
operands and of its result (the residual streams of BlazeBlocks and MobileNetV2 blocks); a depthwise
conv, PReLU, pooling, resize, spatial mean or activation ties its input's channel ``c`` to its
output's; a channel PAD (how a BlazeBlock widens its residual) ties input channel ``c`` to output
channel ``before + c``. :func:`channel_groups` runs a union-find over every (tensor, channel) pair
under these ties: a *group* is one connected set, removed all at once. A group is pinned (never
removed) if it reaches the model's input or an output, or an op whose channel mapping is not the
identity (RESHAPE, DEPTH_TO_SPACE, STRIDED_SLICE, a FULLY_CONNECTED that flattens a 4-D tensor, an
elementwise op with a per-channel constant). A regular conv or linear only *reads* its input
channels (its columns are sliced) and starts new ones: that is where coupling stops.

**What goes.** Groups that span the same tensors are alternatives for one another: a *site*, e.g.
the 16 channels face_landmark's second stage adds to its residual stream (they run through every
later stage and into both heads), or the 144 hidden channels of one MobileNetV2 block. Each site
loses ``sparsity * size`` groups, rounded to a multiple of ``channel_multiple`` (ONNX Runtime's
blocked NCHWc convolutions want channel counts in multiples of 8 on AVX2 / 16 on AVX-512; an
unaligned count can make a pruned model *slower*, measured: face_landmark at 25% went from 0.97 to
1.24 ms), with at least one group kept. The lowest-scoring groups go first:

* without calibration data, a group's score is the L1 norm of the weights it removes, summed over
  every layer it touches, each layer's share divided by that layer's mean per-channel L1 norm;
* with calibration inputs (the stage uses the train split's crops), the score is, summed over the
  layers that read the group, ``|W[:, c]|_1 * s_c`` over that layer's mean, where ``s_c`` is the
  part of channel ``c``'s std that a linear fit on the tensor's other channels cannot explain; and
  each reading layer's weights absorb that fit (:func:`reconstruct_readers`), so a constant or
  redundant channel is removed at almost no cost. Measured on face_mesh's test split of the
  default data (stock NME 6.75%): 6.79% / 10.5% at sparsity 0.1 / 0.25, where weight L1 alone
  gives 11.1% / 38.2% (``benchmarks/prune.py``).

What channel pruning can remove, per model (``channel_groups``): face_landmark, the residual stream
(every BlazeBlock of a stage adds into it, and a channel PAD carries it into the next stage, so one
group spans from its first stage through both heads: sites of 16, 16, 32 and 64 channels) and each
head's 32-channel branch; hand_landmark_full, the hidden (expanded) channels of every MobileNetV2
block, the residual streams, and the 1152 channels pooled into the heads; pose_landmark_full, the
same plus the decoder's and the segmentation branch's streams. The input and every output stay.
"""

from __future__ import annotations

import copy
import gzip
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from holotune.models.tflite_module import TFLiteModule
from holotune.runtime.latency import onnx_latency

METHODS = ("l1_norm", "channels")
PRUNED_FORMAT = "holotune.pruned/1"
"""Marker of a channel-pruned ``model.pt``: ``{"format", "model", "keep", "state_dict"}``."""

# Ops whose output channel c is input channel c.
_CHANNELWISE = {"MAX_POOL_2D", "AVERAGE_POOL_2D", "RESIZE_BILINEAR", "LOGISTIC", "RELU", "RELU6", "TANH", "PRELU"}
_ELEMENTWISE = {"ADD", "MUL", "SUB"}
# Ops whose operands after the first are constants (paddings, axes, sizes, shapes, slice bounds).
_FIRST_INPUT_ONLY = {"PAD", "PADV2", "MEAN", "RESIZE_BILINEAR", "RESHAPE", "STRIDED_SLICE"}


class PruneError(ValueError):
    """A pruning request that cannot be carried out; the message names the option and the value."""


@dataclass(frozen=True)
class PruneOptions:
    """What to prune.

    Attributes:
        method: ``l1_norm`` (unstructured, zeros in dense weights) or ``channels`` (structured).
        sparsity: in [0, 1). ``l1_norm``: fraction of each pruned layer's weights set to zero.
            ``channels``: fraction of each site's channel groups removed (see the module docstring).
        layers: layer names. ``l1_norm``: the Conv2d/Linear layers to prune; ``None`` = the layers of
            the module's trained heads (``head_layers`` of ``adapters.TRAINED_OUTPUTS``), PReLUs excluded.
            ``channels``: the layers allowed to lose output channels: a group goes only if every layer
            it shrinks is listed; ``None`` = every group that can be pruned consistently.
        channel_multiple: ``channels``: each site loses a multiple of this many groups (>= 1).
        calibration_samples: ``channels``: train-split crops whose activations score the groups and
            refit the layers that read them; 0 = weight L1 norms only, no refit.
    """

    method: str = "l1_norm"
    sparsity: float = 0.3
    layers: tuple[str, ...] | None = None
    channel_multiple: int = 8
    calibration_samples: int = 64


def check_options(model: TFLiteModule, module: str, options: PruneOptions) -> list[str]:
    """Validate ``options`` against ``model``; returns the resolved layer names ([] = all, for channels).

    Raises:
        PruneError: unknown method, sparsity outside [0, 1), a bad channel_multiple or
            calibration_samples, an unknown module or layer name, or (l1_norm) a layer that is not a
            Conv2d/Linear.
    """
    if options.method not in METHODS:
        raise PruneError(f"prune.method: unknown method {options.method!r}; one of {list(METHODS)}")
    sparsity = options.sparsity
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
        raise PruneError(f"prune.sparsity must be in [0, 1), got {sparsity!r}")
    if not isinstance(options.channel_multiple, int) or options.channel_multiple < 1:
        raise PruneError(f"prune.channel_multiple must be an integer >= 1, got {options.channel_multiple!r}")
    if not isinstance(options.calibration_samples, int) or options.calibration_samples < 0:
        raise PruneError(f"prune.calibration_samples must be an integer >= 0, got {options.calibration_samples!r}")
    from holotune.adapters import TRAINED_OUTPUTS

    if module not in TRAINED_OUTPUTS:
        raise PruneError(f"prune.module: unknown module {module!r}; one of {sorted(TRAINED_OUTPUTS)}")
    layers = dict(model.named_children())
    for name in options.layers or ():
        if name not in layers:
            stem = name.rstrip("0123456789_")
            close = sorted(n for n in layers if stem and stem in n)[:6]
            raise PruneError(f"prune.layers: no layer named {name!r} in {model.spec.name}"
                             f"{f'; similar: {close}' if close else ''}")
    if options.method == "channels":
        return list(options.layers or ())
    if options.layers is None:
        names = [n for o in TRAINED_OUTPUTS[module] for n in model.head_layers[o]]
        # A PReLU slope shapes an activation, it is not a connection: zeroing it turns PReLU into ReLU.
        return [n for n in names if isinstance(layers[n], (nn.Conv2d, nn.Linear))]
    bad = [n for n in options.layers if not isinstance(layers[n], (nn.Conv2d, nn.Linear))]
    if bad:
        raise PruneError(f"prune.layers: {bad[0]!r} is a {type(layers[bad[0]]).__name__}; l1_norm prunes "
                         "Conv2d/Linear weights")
    return list(options.layers)


# ---------------------------------------------------------------------------------------- l1_norm
def prune_l1(model: nn.Module, layers: list[str], sparsity: float) -> dict:
    """Zero the ``sparsity`` fraction of smallest-magnitude weights of each layer, in place, permanently.

    Per layer, ``round(sparsity * numel)`` weights become zero (``torch.nn.utils.prune`` semantics;
    weights that were zero already are among the smallest). Biases are kept.

    Returns:
        :func:`weight_sparsity` of ``layers`` after pruning.
    """
    from torch.nn.utils import prune as torch_prune

    for name in layers:
        layer = getattr(model, name)
        torch_prune.l1_unstructured(layer, "weight", amount=float(sparsity))
        torch_prune.remove(layer, "weight")  # bake the mask into a plain Parameter: the stock layout
    return weight_sparsity(model, layers)


def weight_sparsity(model: nn.Module, layers: list[str]) -> dict:
    """Zeros in ``layers``' weights and in every parameter of ``model``.

    Returns:
        ``{"layers": {name: {"weights", "zeros", "sparsity"}}, "pruned_layers": {"weights", "zeros",
        "sparsity"}, "model": {"params", "zeros", "sparsity"}}``; sparsity as a fraction in [0, 1].
    """
    per_layer = {}
    for name in layers:
        w = getattr(model, name).weight.detach()
        per_layer[name] = _zeros_entry(w.numel(), int((w == 0).sum()), "weights")
    params = [p.detach() for p in model.parameters()]
    return {
        "layers": per_layer,
        "pruned_layers": _zeros_entry(sum(e["weights"] for e in per_layer.values()),
                                      sum(e["zeros"] for e in per_layer.values()), "weights"),
        "model": _zeros_entry(sum(p.numel() for p in params), sum(int((p == 0).sum()) for p in params), "params"),
    }


def _zeros_entry(count: int, zeros: int, key: str) -> dict:
    return {key: count, "zeros": zeros, "sparsity": zeros / count if count else 0.0}


# ------------------------------------------------------------------------------- channels: graph
@dataclass
class ChannelGroup:
    """Channels that must be removed together.

    Attributes:
        members: ``(tensor id, channel)`` pairs; the channel axis is TFLite's last (NCHW's second).
        shrinks: layers that lose an output slice (conv/linear rows, depthwise filters, PReLU slopes).
        reads: layers that lose an input slice (regular conv / linear columns).
        score: removal cost (see the module docstring); lower goes first.
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


def _channels(shape: tuple[int, ...]) -> int:
    """Channel count of a TFLite activation shape (NHWC, or (N, C) after a mean): the last axis."""
    return int(shape[-1]) if shape else 1


def _is_depthwise(layer: nn.Module) -> bool:
    return isinstance(layer, nn.Conv2d) and 1 < layer.groups == layer.in_channels == layer.out_channels


def _is_regular(layer: nn.Module) -> bool:
    """A layer that mixes channels: its input channels are read (columns), its outputs are new."""
    return isinstance(layer, nn.Linear) or (isinstance(layer, nn.Conv2d) and layer.groups == 1)


def _activation_inputs(model: TFLiteModule, step) -> list[int]:
    """The step's inputs produced at run time (not weights, biases or constant operands)."""
    if step.layer is not None or step.op.kind in _FIRST_INPUT_ONLY:
        return step.op.inputs[:1]
    if step.op.kind in _ELEMENTWISE:
        return [t for t, c in zip(step.op.inputs, step.args["const"]) if c is None]
    return [t for t in step.op.inputs if t >= 0]


def channel_groups(model: TFLiteModule,
                   stats: dict[int, "ChannelStats"] | None = None) -> tuple[list[ChannelGroup], int]:
    """Every prunable channel group of ``model`` (see the module docstring), with its layers and score.

    Args:
        model: a :class:`TFLiteModule` (stock shapes or already pruned).
        stats: :func:`activation_stats` for the data-aware score; ``None`` scores by weight L1 norm.

    Returns:
        (groups, pinned): ``pinned`` counts the (tensor, channel) pairs that can never go.
    """
    shapes = model._tensor_shape
    tensors = sorted({model._input} | {t for s in model._steps for t in s.op.outputs}
                     | {t for s in model._steps for t in _activation_inputs(model, s)})
    offset, n = {}, 0
    for t in tensors:
        offset[t] = n
        n += _channels(shapes[t])
    uf = _UnionFind(n)
    pinned: set[int] = set()

    def tie(a: int, b: int, b_shift: int = 0) -> None:
        for c in range(_channels(shapes[a])):
            uf.union(offset[a] + c, offset[b] + b_shift + c)

    def pin(*ts: int) -> None:
        for t in ts:
            pinned.update(range(offset[t], offset[t] + _channels(shapes[t])))

    pin(model._input, *model._outputs)
    for s in model._steps:
        kind, out = s.op.kind, s.op.outputs[0]
        ins = _activation_inputs(model, s)
        layer = getattr(model, s.layer) if s.layer else None
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            if _is_depthwise(layer):
                tie(ins[0], out)
            elif not _is_regular(layer):  # a grouped conv (none in these models): keep it whole
                pin(ins[0], out)
        elif kind == "FULLY_CONNECTED":
            if len(shapes[ins[0]]) != 2:  # it flattens H, W and C together: its columns are not channels
                pin(ins[0])
        elif kind in _CHANNELWISE:
            tie(ins[0], out)
        elif kind in _ELEMENTWISE:
            if any(s.args["const"]):  # a per-channel constant would need slicing too; none in these models
                pin(*ins, out)
                continue
            for t in ins:
                if _channels(shapes[t]) == _channels(shapes[out]):
                    tie(t, out)
                elif _channels(shapes[t]) != 1:  # broadcasting other than from one channel
                    pin(t, out)
        elif kind in ("PAD", "PADV2") and len(shapes[ins[0]]) == 4:
            tie(ins[0], out, b_shift=s.args["pad"][4])  # F.pad order: (w0, w1, h0, h1, c0, c1)
        elif kind == "CONCATENATION" and len(shapes[out]) == 4 and s.args["axis"] == 1:
            start = 0
            for t in ins:
                tie(t, out, b_shift=start)
                start += _channels(shapes[t])
        elif kind == "CONCATENATION":  # along a spatial axis: channel c stays channel c
            for t in ins:
                tie(t, out)
        elif kind == "MEAN" and len(shapes[ins[0]]) == 4 and set(s.args["axes"]) <= {1, 2}:
            tie(ins[0], out)  # a spatial mean keeps channel c, also when the rank drops to 2
        else:  # RESHAPE, DEPTH_TO_SPACE, STRIDED_SLICE, non-4-D PAD, and anything new
            pin(*ins, out)

    roots = [uf.find(i) for i in range(n)]
    bad_roots = {roots[i] for i in pinned}
    by_root: dict[int, list[tuple[int, int]]] = {}
    for t in tensors:
        for c in range(_channels(shapes[t])):
            if roots[offset[t] + c] not in bad_roots:
                by_root.setdefault(roots[offset[t] + c], []).append((t, c))
    groups = [ChannelGroup(members) for members in by_root.values()]
    _score_groups(model, groups, stats)
    return groups, sum(1 for r in roots if r in bad_roots)


def _score_groups(model: TFLiteModule, groups: list[ChannelGroup], stats: dict | None) -> None:
    """Fill each group's ``shrinks``, ``reads`` and ``score`` from the layers that touch its channels."""
    where = {m: i for i, g in enumerate(groups) for m in g.members}
    scores = [0.0] * len(groups)
    for s in model._steps:
        if s.layer is None:
            continue
        layer = getattr(model, s.layer)
        out, inp = s.op.outputs[0], s.op.inputs[0]
        if isinstance(layer, nn.PReLU):
            if layer.num_parameters > 1:
                for c in range(layer.num_parameters):
                    if (out, c) in where:
                        groups[where[(out, c)]].shrinks.add(s.layer)
            continue  # slopes are not magnitudes: they do not score
        w = layer.weight.detach().abs()
        rows = w.flatten(1).sum(1)  # (out,) L1 per output channel
        cols = w.transpose(0, 1).flatten(1).sum(1) if _is_regular(layer) else None  # (in,) per input channel
        if stats is not None:
            # Shrinking a producer costs nothing by itself: what counts is what the readers lose.
            rows = torch.zeros_like(rows)
            cols = cols * stats[inp].residual_std().float() if cols is not None and inp in stats else None
        for norms, tensor, role in ((rows, out, "shrinks"), (cols, inp, "reads")):
            if norms is None:
                continue
            mean = float(norms.mean()) or 1.0
            for c, value in enumerate(norms.tolist()):
                i = where.get((tensor, c))
                if i is not None:
                    getattr(groups[i], role).add(s.layer)
                    scores[i] += value / mean
    for g, score in zip(groups, scores):
        g.score = score


# ------------------------------------------------------------------------- channels: calibration
@dataclass
class ChannelStats:
    """Second-order statistics of one activation tensor's channels over calibration inputs.

    Attributes:
        mean: (C,) per-channel mean, float64.
        cov: (C, C) covariance over samples and spatial positions, float64.
    """

    mean: torch.Tensor
    cov: torch.Tensor

    @property
    def ridge(self) -> float:
        # Relative to the channels' mean variance: enough to keep fits well posed when channels are
        # dead (zero variance, common after ReLU6) or duplicated, too small to bias them.
        return 1e-3 * float(self.cov.diagonal().mean().clamp_min(1e-12))

    def residual_std(self) -> torch.Tensor:
        """(C,) std of each channel that a linear fit on all the others leaves unexplained: ``1/sqrt(P_cc)``."""
        precision = torch.linalg.inv(self.cov + self.ridge * torch.eye(len(self.mean), dtype=self.cov.dtype))
        return precision.diagonal().clamp_min(1e-30).rsqrt()


@torch.no_grad()
def activation_stats(model: TFLiteModule, inputs: torch.Tensor, max_positions: int = 4096) -> dict[int, ChannelStats]:
    """Channel statistics of every tensor a regular conv or linear reads (the model input excepted).

    Args:
        inputs: (N, C, H, W) in the model's input range; run one at a time (pose's activations
            reach ~100 MB per sample).
        max_positions: spatial positions sampled per input and tensor (a fixed stride): channel
            statistics need thousands of rows, not the 16k of a 128x128 map.

    Returns:
        ``{tensor id: ChannelStats}``.
    """
    read = {s.op.inputs[0] for s in model._steps if s.layer and _is_regular(getattr(model, s.layer))}
    read.discard(model._input)
    acc: dict[int, list] = {t: [0, 0.0, 0.0] for t in read}
    for x in inputs.split(1):
        env = model._run(model._steps, {model._input: x})
        for t in read:
            a = env[t]
            rows = a.permute(0, 2, 3, 1).reshape(-1, a.shape[1]) if a.dim() == 4 else a.reshape(-1, a.shape[-1])
            rows = rows[:: max(1, len(rows) // max_positions)].double()  # (M, C)
            acc[t][0] += len(rows)
            acc[t][1] = acc[t][1] + rows.sum(0)
            acc[t][2] = acc[t][2] + rows.T @ rows
    stats = {}
    for t, (count, total, outer) in acc.items():
        mean = total / count
        stats[t] = ChannelStats(mean, outer / count - torch.outer(mean, mean))
    return stats


@torch.no_grad()
def reconstruct_readers(model: TFLiteModule, keep: dict[int, list[int]], stats: dict[int, ChannelStats]) -> None:
    """Fold what the removed channels carried into the kept channels' weights of every layer reading them.

    Per tensor, the removed channels ``R`` are fitted on the kept ones ``K`` by ridge least squares
    over the calibration statistics, ``a_R ~ B a_K + beta``; each regular conv / linear reading the
    tensor then gets ``W[:, K] += W[:, R] B`` (per kernel tap) and ``bias += sum_taps(W[:, R]) beta``.
    A constant channel is thus folded into the bias exactly (for larger-than-1x1 kernels, away from
    the zero-padded border), a redundant one into its look-alikes. Call on the unpruned weights,
    before :func:`apply_channel_plan`.
    """
    fits = {}
    for t, kept in keep.items():
        if t not in stats:
            continue
        st = stats[t]
        k = torch.as_tensor(kept, dtype=torch.long)
        removed = torch.ones(len(st.mean), dtype=torch.bool)
        removed[k] = False
        r = removed.nonzero().flatten()
        cov_kk = st.cov[k][:, k] + st.ridge * torch.eye(len(k), dtype=st.cov.dtype)
        b = torch.linalg.solve(cov_kk, st.cov[k][:, r]).T  # (R, K)
        beta = st.mean[r] - b @ st.mean[k]  # (R,)
        fits[t] = (k, r, b.float(), beta.float())
    for s in model._steps:
        if s.layer is None or s.op.inputs[0] not in fits or not _is_regular(getattr(model, s.layer)):
            continue  # depthwise convs and PReLUs lose the channel outright (they are coupled to it)
        layer = getattr(model, s.layer)
        k, r, b, beta = fits[s.op.inputs[0]]
        w = layer.weight if layer.weight.dim() == 4 else layer.weight[:, :, None, None]  # (out, in, kh, kw) view
        w_r = w[:, r]  # (out, R, kh, kw), a copy
        w[:, k] += torch.einsum("orhw,rk->okhw", w_r, b)
        if layer.bias is not None:
            layer.bias += w_r.sum((2, 3)) @ beta


# -------------------------------------------------------------------------- channels: plan, apply
def plan_channels(model: TFLiteModule, sparsity: float, layers: list[str] | None = None,
                  stats: dict[int, ChannelStats] | None = None, multiple: int = 1) -> dict:
    """Choose the channels to remove: per site, the lowest-scoring ``sparsity`` share of its groups.

    Args:
        model: a :class:`TFLiteModule` with stock shapes.
        sparsity: in [0, 1); per site ``round(sparsity * size / multiple) * multiple`` groups go,
            at least one group stays.
        layers: only groups whose ``shrinks`` all lie in ``layers``; ``None`` or empty = every group.
        stats: :func:`activation_stats` for the data-aware score, ``None`` for weight L1 norms.
        multiple: groups removed per site come in multiples of this.

    Returns:
        ``{"keep": {tensor id: kept channels, ascending}`` (tensors that lose channels only),
        ``"sites": [{"size", "removed", "shrinks"}]`` (every eligible site), ``"groups"`` (prunable
        groups), ``"removed_groups"``, ``"pinned_channels"``}.
    """
    groups, pinned = channel_groups(model, stats)
    allowed = set(layers or ())
    by_site: dict[frozenset[int], list[ChannelGroup]] = {}
    for g in groups:
        if not allowed or g.shrinks <= allowed:
            by_site.setdefault(g.site, []).append(g)
    removed: set[tuple[int, int]] = set()
    sites = []
    for site_groups in by_site.values():
        k = removed_count(len(site_groups), sparsity, multiple)
        ranked = sorted(site_groups, key=lambda g: (g.score, min(g.members)))  # ties: deterministic
        for g in ranked[:k]:
            removed.update(g.members)
        sites.append({"size": len(site_groups), "removed": k,
                      "shrinks": sorted(set().union(*(g.shrinks for g in site_groups)))})
    keep = {t: [c for c in range(_channels(model._tensor_shape[t])) if (t, c) not in removed]
            for t in sorted({t for t, _ in removed})}
    return {"keep": keep, "sites": sites, "groups": len(groups),
            "removed_groups": sum(s["removed"] for s in sites), "pinned_channels": pinned}


def removed_count(size: int, sparsity: float, multiple: int = 1) -> int:
    """Groups a site of ``size`` loses: ``sparsity * size`` rounded to a multiple of ``multiple``, one kept."""
    k = math.floor(sparsity * size / multiple + 0.5) * multiple  # half up (Python's round() would go to even)
    while k >= size:
        k -= multiple
    return max(k, 0)


def apply_channel_plan(model: TFLiteModule, keep: dict[int, list[int]]) -> TFLiteModule:
    """Remove channels in place: every tensor ``t`` in ``keep`` keeps only channels ``keep[t]``.

    ``keep`` must come from :func:`plan_channels` on a model of the same architecture (its groups
    are closed under coupling). Layers are replaced by smaller ones, channel PADs pad fewer
    channels, and the recorded tensor shapes follow.
    """
    shapes = dict(model._tensor_shape)

    def kept(t: int) -> torch.Tensor:
        return torch.as_tensor(keep[t] if t in keep else range(_channels(shapes[t])), dtype=torch.long)

    for s in model._steps:
        out, inp = s.op.outputs[0], s.op.inputs[0]
        if s.layer is not None and (out in keep or inp in keep):
            setattr(model, s.layer, _sliced(getattr(model, s.layer), kept(out), kept(inp)))
        elif s.op.kind in ("PAD", "PADV2") and len(shapes[inp]) == 4 and out in keep:
            before = s.args["pad"][4]
            channels = kept(out)
            pad = list(s.args["pad"])
            pad[4] = int((channels < before).sum())
            pad[5] = int((channels >= before + _channels(shapes[inp])).sum())
            s.args["pad"] = tuple(pad)
    for t, channels in keep.items():
        model._tensor_shape[t] = tuple(shapes[t][:-1]) + (len(channels),)
    model._steps_for_cache.clear()
    return model


def _sliced(layer: nn.Module, rows: torch.Tensor, cols: torch.Tensor) -> nn.Module:
    """A new ``layer`` keeping output channels ``rows`` and input channels ``cols``."""
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
            depthwise = _is_depthwise(layer)
            in_channels = len(rows) if depthwise else len(cols)
            new = nn.Conv2d(in_channels, len(rows), layer.kernel_size, stride=layer.stride, padding=layer.padding,
                            dilation=layer.dilation, groups=len(rows) if depthwise else 1, bias=bias)
            new.weight.copy_(layer.weight[rows] if depthwise else layer.weight[rows][:, cols])
        if bias:
            new.bias.copy_(layer.bias[rows])
    return new.train(layer.training)


def prune_channels(model: TFLiteModule, sparsity: float, layers: list[str] | None = None, *,
                   calibration: torch.Tensor | None = None, multiple: int = 1) -> dict:
    """Plan and apply structured channel pruning in place; returns the plan (:func:`plan_channels`).

    Args:
        calibration: (N, C, H, W) model inputs: score groups by what their readers lose and refit
            the readers (:func:`reconstruct_readers`); ``None``: score by weight L1 norm, no refit.
    """
    stats = activation_stats(model, calibration) if calibration is not None and len(calibration) else None
    plan = plan_channels(model, sparsity, layers, stats, multiple)
    if stats is not None:
        reconstruct_readers(model, plan["keep"], stats)
    apply_channel_plan(model, plan["keep"])
    return plan


def save_pruned(model: TFLiteModule, keep: dict[int, list[int]], path: str | Path) -> Path:
    """Write a channel-pruned model: its factory name, the kept channels per tensor and the state_dict."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": PRUNED_FORMAT, "model": model.spec.name,
                "keep": {int(t): [int(c) for c in cs] for t, cs in keep.items()},
                "state_dict": model.state_dict()}, path)
    return path


def load_pruned(path: str | Path, model_name: str | None = None) -> TFLiteModule:
    """Load a ``model.pt`` of the prune (or finetune) stage as a model in eval mode.

    Args:
        path: a channel-pruned file (:func:`save_pruned`: the stock model is built, its channels
            removed as recorded, then the weights loaded) or a plain state_dict in the stock layout
            (l1_norm, finetune), which needs ``model_name``.
        model_name: factory name (``face_landmark``...); checked against a pruned file's own.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        PruneError: a plain state_dict without ``model_name``, or a pruned file of another model.
    """
    from holotune.models import create_model

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    data = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(data, dict) and data.get("format") == PRUNED_FORMAT:
        if model_name is not None and model_name != data["model"]:
            raise PruneError(f"{path}: holds a pruned {data['model']!r}, not {model_name!r}")
        model = create_model(data["model"])
        apply_channel_plan(model, {int(t): cs for t, cs in data["keep"].items()})
        model.load_state_dict(data["state_dict"])
        return model.eval()
    if model_name is None:
        raise PruneError(f"{path}: a plain state_dict (stock layout); pass model_name to load it")
    return create_model(model_name, checkpoint_path=path)


# ----------------------------------------------------------------------------------- measurement
def parameter_count(model: nn.Module, nonzero: bool = False) -> int:
    """Number of scalar parameters (``nonzero``: only those that are not 0)."""
    return sum(int((p != 0).sum()) if nonzero else p.numel() for p in model.parameters())


def multiply_adds(model: TFLiteModule) -> int:
    """Multiply-accumulates of one sample through every conv and linear layer (from the recorded shapes)."""
    total = 0
    for s in model._steps:
        layer = getattr(model, s.layer) if s.layer else None
        if isinstance(layer, nn.Conv2d):
            _, h, w, _ = model._tensor_shape[s.op.outputs[0]]
            total += h * w * layer.weight.numel()  # out * in/groups * kh * kw per output pixel
        elif isinstance(layer, nn.Linear):
            total += layer.weight.numel()
    return total


def file_sizes(path: str | Path) -> dict:
    """``{"bytes", "gzip_bytes"}`` of a file; gzip level 9, what an archive or a download holds."""
    data = Path(path).read_bytes()
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0))}


def calibration_inputs(module: str, shards_dir: str | Path | None, manifest: str | Path | None,
                       count: int) -> tuple[torch.Tensor, str]:
    """Up to ``count`` model inputs for channel statistics, and where they came from.

    The train split's crops (MediaPipe's tracking ROIs, no augmentation, evenly spaced over the
    split) when ``shards_dir`` has labelled ``module`` parts in ``train-*`` shards; otherwise the
    real photo crops the models are verified on (:func:`holotune.samples.sample_crops`) and their
    mirror images, which for hands contain no hand (no shipped photo has one).

    Returns:
        ((N, 3, H, W) float32 in the model's input range, a one-line description).
    """
    from holotune.models import MODEL_SPECS, MODULE_MODELS

    if shards_dir is not None:
        from holotune.evaluation.scoring import split_dataset

        try:
            dataset = split_dataset(shards_dir, "train", manifest, module)
        except ValueError:  # no labelled part of this module in the train split
            dataset = None
        if dataset is not None:  # evenly spaced; evaluation crops have no negatives
            picked = dict.fromkeys(int(j) for j in np.linspace(0, len(dataset) - 1, min(count, len(dataset))))
            images = torch.stack([dataset[i]["image"] for i in picked])
            return images, f"{len(images)} crops of the train split in {shards_dir}"
    from holotune.samples import sample_crops

    nhwc, _ = sample_crops(MODEL_SPECS[MODULE_MODELS[module]])
    x = torch.from_numpy(np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)))
    x = torch.cat([x, x.flip(-1)])[:count]
    return x, f"{len(x)} sample photo crops and mirrors (no {module} train split in {shards_dir})"


# ----------------------------------------------------------------------------------------- stage
L1_NOTE = ("Unstructured L1: the zeroed weights are still stored and multiplied densely, so ONNX Runtime is not "
           "faster (latency before/after differ by noise only) and the raw files keep their size; the gain is in "
           "compressed (gzip) size only, and only on the pruned layers' share of the model.")
CHANNELS_NOTE = ("Structured: whole channels are removed with every weight that writes or reads them, so the "
                 "model is smaller, dense and faster under ONNX Runtime, with the stock input/output signature. "
                 "Its internal shapes are not stock: load model.pt with holotune.pruning.load_pruned. "
                 "No fine-tuning follows the pruning: read the metric change before shipping it.")


def prune(options: PruneOptions, module: str, model_path: str | Path | None, out_dir: str | Path,
          shards_dir: str | Path | None = None, manifest: str | Path | None = None, *,
          split: str = "test", latency_runs: int = 40) -> dict:
    """The ``prune`` stage: load, prune, export, measure; writes ``out_dir/{model.pt, model.onnx, report.json}``.

    Args:
        options: what to prune.
        module: ``face_mesh`` | ``hands`` | ``pose``.
        model_path: ``models/<module>/model.pt`` (a state_dict in the stock layout), or ``None`` for
            the stock model.
        out_dir: where the three files go (created).
        shards_dir, manifest: the data: the train split calibrates channel pruning, ``split`` scores
            the model before and after (skipped, with a note in the report, when it has no labelled
            ``module`` part).
        latency_runs: timed ONNX Runtime calls per model (batch 1, 1 thread).

    Returns:
        The report, also written to ``out_dir/report.json``: ``method``, ``module``, ``model``,
        ``source``, ``sparsity_requested``, ``sparsity_reached`` (l1_norm: zeros in the pruned
        layers; channels: removed / prunable channel groups), ``layers``, ``params``, ``macs``
        (before/after), ``sizes`` (bytes raw and gzip of the state_dict and the ONNX file,
        before/after), ``latency_ms`` (before/after: median, p10, p90), ``speedup``, ``metrics``
        (before/after/change on ``split``, or ``None``) and a plain-language ``note``.

    Raises:
        PruneError: a bad option, before any work, naming it.
        FileNotFoundError: ``model_path`` does not exist.
    """
    from holotune.export import export_onnx
    from holotune.models import MODULE_MODELS, create_model

    if module not in MODULE_MODELS:
        raise PruneError(f"prune.module: unknown module {module!r}; one of {sorted(MODULE_MODELS)}")
    if model_path is not None and not Path(model_path).is_file():
        raise FileNotFoundError(f"prune.model: {model_path} does not exist (run the finetune stage first)")
    name = MODULE_MODELS[module]
    model = create_model(name, checkpoint_path=model_path)
    layers = check_options(model, module, options)
    original = copy.deepcopy(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"method": options.method, "module": module, "model": name,
                    "source": str(model_path) if model_path else "stock", "sparsity_requested": options.sparsity}
    if options.method == "l1_norm":
        sparsity = prune_l1(model, layers, options.sparsity)
        report.update(sparsity_reached=sparsity["pruned_layers"]["sparsity"], layers=layers,
                      sparsity_detail=sparsity, note=L1_NOTE)
        torch.save(model.state_dict(), out_dir / "model.pt")
    else:
        calibration, source = None, "none: weight L1 norms (calibration_samples=0)"
        if options.calibration_samples:
            calibration, source = calibration_inputs(module, shards_dir, manifest, options.calibration_samples)
        plan = prune_channels(model, options.sparsity, layers, calibration=calibration,
                              multiple=options.channel_multiple)
        report.update(sparsity_reached=plan["removed_groups"] / max(plan["groups"], 1),
                      layers=layers or "every channel group that can be pruned consistently",
                      channel_multiple=options.channel_multiple, calibration=source,
                      channels={k: plan[k] for k in ("groups", "removed_groups", "pinned_channels")},
                      sites=[s for s in plan["sites"] if s["removed"]], note=CHANNELS_NOTE)
        save_pruned(model, plan["keep"], out_dir / "model.pt")
    onnx_after = export_onnx(model, out_dir / "model.onnx")
    report["params"] = {"before": parameter_count(original), "after": parameter_count(model),
                        "nonzero_after": parameter_count(model, nonzero=True)}
    report["macs"] = {"before": multiply_adds(original), "after": multiply_adds(model)}
    with tempfile.TemporaryDirectory() as tmp:  # the stage writes only out_dir
        pt_before = Path(tmp) / "model.pt"
        torch.save(original.state_dict(), pt_before)
        onnx_before = export_onnx(original, Path(tmp) / "model.onnx")
        report["sizes"] = {
            "state_dict": {"before": file_sizes(pt_before), "after": file_sizes(out_dir / "model.pt")},
            "onnx": {"before": file_sizes(onnx_before), "after": file_sizes(onnx_after)},
        }
        latency = onnx_latency({"before": onnx_before, "after": onnx_after}, model.spec, runs=latency_runs)
    report["latency_ms"] = latency
    report["speedup"] = latency["before"]["median_ms"] / latency["after"]["median_ms"]
    report["latency_setup"] = {"runtime": "onnxruntime CPUExecutionProvider", "threads": 1, "batch": 1,
                               "runs": latency_runs, "statistic": "median of interleaved runs, in one process"}
    report["metrics"] = _metric_change(original, model, module, shards_dir, manifest, split, report)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _metric_change(before: nn.Module, after: nn.Module, module: str, shards_dir, manifest, split: str,
                   report: dict) -> dict | None:
    """``{"split", "before", "after", "change"}`` (change = after - before per metric), or ``None`` and a note."""
    from holotune.evaluation.scoring import RoiJitter, mean_scores, split_dataset

    if shards_dir is None:
        report["metrics_note"] = "no shards_dir: metric change not measured"
        return None
    try:
        dataset = split_dataset(shards_dir, split, manifest, module, RoiJitter())  # the evaluate stage's crops
    except (ValueError, FileNotFoundError) as exc:  # no labelled part of this module in the split
        report["metrics_note"] = f"metric change not measured: {exc}"
        return None
    scores = {"before": mean_scores(before, dataset), "after": mean_scores(after, dataset)}
    change = {k: scores["after"][k] - v for k, v in scores["before"].items() if k != "n" and k in scores["after"]}
    return {"split": split, **scores, "change": change}
