"""What removing a channel group costs: the score :func:`~holotune.pruning.channels.plan.plan_channels` ranks by.

* Without calibration data, a group's score is the L1 norm of the weights it removes, summed over
  every layer it touches, each layer's share divided by that layer's mean per-channel L1 norm.
* With calibration statistics (:func:`~holotune.pruning.channels.calibrate.activation_stats`), the
  score is, summed over the layers that read the group, ``|W[:, c]|_1 * s_c`` over that layer's
  mean, where ``s_c`` is the part of channel ``c``'s std that a linear fit on the tensor's other
  channels cannot explain. Shrinking a producer costs nothing by itself: what counts is what the
  readers lose, and their weights absorb that fit
  (:func:`~holotune.pruning.channels.calibrate.reconstruct_readers`), so a constant or redundant
  channel is removed at almost no cost.
"""

from __future__ import annotations

from torch import nn

from holotune.models.tflite_module import TFLiteModule
from holotune.pruning.channels.calibrate import ChannelStats
from holotune.pruning.channels.graph import ChannelGroup, is_regular, member_index


def score_groups(model: TFLiteModule, groups: list[ChannelGroup], stats: dict[int, ChannelStats] | None = None) -> None:
    """Set each group's ``score`` from the layers that touch its channels (see the module docstring).

    Args:
        groups: :func:`~holotune.pruning.channels.graph.channel_groups` of ``model``.
        stats: :func:`~holotune.pruning.channels.calibrate.activation_stats` for the data-aware
            score; ``None`` scores by weight L1 norm.
    """
    where = member_index(groups)
    scores = [0.0] * len(groups)
    for s in model.steps:
        layer = getattr(model, s.layer) if s.layer else None
        if layer is None or isinstance(layer, nn.PReLU):
            continue  # slopes are not magnitudes: they do not score
        out, inp = s.op.outputs[0], s.op.inputs[0]
        w = layer.weight.detach().abs()
        rows = w.flatten(1).sum(1)  # (out,) L1 per output channel
        cols = w.transpose(0, 1).flatten(1).sum(1) if is_regular(layer) else None  # (in,) per input channel
        if stats is not None:
            rows = None
            cols = cols * stats[inp].residual_std().float() if cols is not None and inp in stats else None
        for norms, tensor in ((rows, out), (cols, inp)):
            if norms is None:
                continue
            mean = float(norms.mean()) or 1.0
            for c, value in enumerate(norms.tolist()):
                i = where.get((tensor, c))
                if i is not None:
                    scores[i] += value / mean
    for g, score in zip(groups, scores):
        g.score = score
