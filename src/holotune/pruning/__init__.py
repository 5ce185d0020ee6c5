"""Pruning of the landmark models: the ``prune`` stage's library.

Two methods (:class:`PruneOptions`):

* ``l1_norm`` (the original API's ``{"method": "l1_norm", "sparsity": 0.3}``, :mod:`.l1`):
  unstructured L1 magnitude pruning of each chosen Conv2d/Linear weight, made permanent. Shapes
  stay dense and the state_dict keeps the stock layout; the zeros make the files compress better,
  but ONNX Runtime multiplies by them all the same, so the model is no faster.
* ``channels`` (:mod:`.channels`): structured pruning. Whole channels go with every weight that
  writes or reads them, leaving a smaller *dense* model, with the stock input/output signature,
  that ONNX Runtime runs faster.

:mod:`.options` checks what to prune, :mod:`.checkpoint` saves and loads a channel-pruned
``model.pt``, :mod:`.measure` compares the model before and after, :mod:`.report` holds the
stage's report and :mod:`.stage` is the stage, :func:`prune`.
"""

from holotune.pruning.channels.calibrate import (
    ChannelStats,
    activation_stats,
    calibration_inputs,
    reconstruct_readers,
)
from holotune.pruning.channels.graph import ChannelGroup, channel_groups
from holotune.pruning.channels.plan import apply_channel_plan, plan_channels, prune_channels, removed_count
from holotune.pruning.channels.score import score_groups
from holotune.pruning.checkpoint import PRUNED_FORMAT, load_pruned, save_pruned
from holotune.pruning.l1 import prune_l1, weight_sparsity
from holotune.pruning.measure import (
    Footprint,
    MetricChange,
    file_sizes,
    measure_footprint,
    metric_change,
    multiply_adds,
    parameter_count,
)
from holotune.pruning.options import METHODS, PruneError, PruneOptions, check_options, module_spec
from holotune.pruning.report import PruneReport
from holotune.pruning.stage import CHANNELS_NOTE, L1_NOTE, prune

__all__ = [
    "CHANNELS_NOTE", "L1_NOTE", "METHODS", "PRUNED_FORMAT", "ChannelGroup", "ChannelStats", "Footprint",
    "MetricChange", "PruneError", "PruneOptions", "PruneReport", "activation_stats", "apply_channel_plan",
    "calibration_inputs", "channel_groups", "check_options", "file_sizes", "load_pruned", "measure_footprint",
    "metric_change", "module_spec", "multiply_adds", "parameter_count", "plan_channels", "prune", "prune_channels",
    "prune_l1", "reconstruct_readers", "removed_count", "save_pruned", "score_groups", "weight_sparsity",
]
