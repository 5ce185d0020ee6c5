"""What goes: the channel plan per site, and structured pruning that carries it out.

Groups (:func:`~holotune.pruning.channels.graph.channel_groups`) that span the same tensors are
alternatives for one another: a *site*, e.g. the 16 channels face_landmark's second stage adds to
its residual stream (they run through every later stage and into both heads), or the 144 hidden
channels of one MobileNetV2 block. Each site loses ``sparsity * size`` groups, rounded to a
multiple of ``channel_multiple`` (ONNX Runtime's blocked NCHWc convolutions want channel counts in
multiples of 8 on AVX2 / 16 on AVX-512; an unaligned count can make a pruned model *slower*,
measured: face_landmark at 25% went from 0.97 to 1.24 ms), with at least one group kept. The
lowest-scoring groups (:mod:`~holotune.pruning.channels.score`) go first.
"""

from __future__ import annotations

import math

import torch

from holotune.models.tflite_module import TFLiteModule
from holotune.pruning.channels.calibrate import ChannelStats, activation_stats, reconstruct_readers
from holotune.pruning.channels.graph import ChannelGroup, channel_groups
from holotune.pruning.channels.score import score_groups


def plan_channels(model: TFLiteModule, sparsity: float, layers: list[str] | None = None,
                  stats: dict[int, ChannelStats] | None = None, multiple: int = 1) -> dict:
    """Choose the channels to remove: per site, the lowest-scoring ``sparsity`` share of its groups.

    Args:
        model: a :class:`TFLiteModule` with stock shapes.
        sparsity: in [0, 1); per site ``round(sparsity * size / multiple) * multiple`` groups go,
            at least one group stays.
        layers: only groups whose ``shrinks`` all lie in ``layers``; ``None`` or empty = every group.
        stats: :func:`~holotune.pruning.channels.calibrate.activation_stats` for the data-aware
            score, ``None`` for weight L1 norms.
        multiple: groups removed per site come in multiples of this.

    Returns:
        ``{"keep": {tensor id: kept channels, ascending}`` (tensors that lose channels only),
        ``"sites": [{"size", "removed", "shrinks"}]`` (every eligible site), ``"groups"`` (prunable
        groups), ``"removed_groups"``, ``"pinned_channels"``}.
    """
    groups, pinned = channel_groups(model)
    score_groups(model, groups, stats)
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
    keep = {t: [c for c in range(model.channel_count(t)) if (t, c) not in removed]
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
    """Remove channels in place (:meth:`TFLiteModule.slice_channels`) and return ``model``.

    ``keep`` must come from :func:`plan_channels` on a model of the same architecture (its groups
    are closed under coupling): every tensor ``t`` in ``keep`` keeps only channels ``keep[t]``.
    """
    model.slice_channels(keep)
    return model


def prune_channels(model: TFLiteModule, sparsity: float, layers: list[str] | None = None, *,
                   calibration: torch.Tensor | None = None, multiple: int = 1) -> dict:
    """Plan and apply structured channel pruning in place; returns the plan (:func:`plan_channels`).

    Args:
        calibration: (N, C, H, W) model inputs: score groups by what their readers lose and refit
            the readers (:func:`~holotune.pruning.channels.calibrate.reconstruct_readers`); ``None``:
            score by weight L1 norm, no refit.
    """
    stats = activation_stats(model, calibration) if calibration is not None and len(calibration) else None
    plan = plan_channels(model, sparsity, layers, stats, multiple)
    if stats is not None:
        reconstruct_readers(model, plan["keep"], stats)
    apply_channel_plan(model, plan["keep"])
    return plan
