"""What to prune (:class:`PruneOptions`, the ``prune`` section of ``conf/``) and the checks on it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from holotune.evaluation.scoring import RoiJitter
from holotune.models.spec import ModuleSpec, UnknownModuleError, get_module
from holotune.models.tflite_module import TFLiteModule

METHODS = ("l1_norm", "channels")


class PruneError(ValueError):
    """A pruning request that cannot be carried out; the message names the option and the value."""


@dataclass(frozen=True, kw_only=True)
class PruneOptions:
    """What to prune, and where: the fields are the keys of ``conf/prune/default.yaml``, which holds their defaults.

    Attributes:
        method: ``l1_norm`` (unstructured, zeros in dense weights) or ``channels`` (structured).
        sparsity: in [0, 1). ``l1_norm``: fraction of each pruned layer's weights set to zero.
            ``channels``: fraction of each site's channel groups removed (:mod:`holotune.pruning.channels`).
        layers: layer names. ``l1_norm``: the Conv2d/Linear layers to prune; ``None`` or empty = the
            layers of the module's trained heads (``head_layers`` of ``ModuleSpec.trained_outputs``),
            PReLUs excluded. ``channels``: the layers allowed to lose output channels: a group goes only
            if every layer it shrinks is listed; ``None`` or empty = every group that can be pruned consistently.
        channel_multiple: ``channels``: each site loses a multiple of this many groups (>= 1).
        calibration_samples: ``channels``: train-split crops whose activations score the groups and
            refit the layers that read them; 0 = weight L1 norms only, no refit.
        module: ``face_mesh`` | ``hands`` | ``pose``.
        model: ``models/<module>/model.pt`` (a state_dict in the stock layout), or ``None`` for the
            stock model.
        out_dir: where ``model.pt``, ``model.onnx`` and ``report.json`` go (created).
        shards_dir, manifest: the data: the train split calibrates channel pruning, ``split`` scores
            the model before and after (skipped, with a note in the report, when it has no labelled
            ``module`` part); ``shards_dir`` ``None``: no data, calibration on the sample photo crops.
        split: the split scored before and after pruning.
        roi_jitter: the tracking-ROI error of the scored crops (``conf/`` shares the evaluate stage's).
        latency_runs: timed ONNX Runtime calls per model (batch 1, 1 thread); not set by ``conf/``.
    """

    method: str
    sparsity: float
    layers: tuple[str, ...] | None
    channel_multiple: int
    calibration_samples: int
    module: str
    model: str | Path | None
    out_dir: str | Path
    shards_dir: str | Path | None
    manifest: str | Path | None
    split: str
    roi_jitter: RoiJitter
    latency_runs: int = 40


def module_spec(options: PruneOptions) -> ModuleSpec:
    """The :class:`ModuleSpec` of ``options.module``.

    Raises:
        PruneError: an unknown module, naming ``prune.module`` and the known ones.
    """
    try:
        return get_module(options.module, "prune.module")
    except UnknownModuleError as error:
        raise PruneError(str(error)) from None


def check_options(model: TFLiteModule, options: PruneOptions) -> list[str]:
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
    module = module_spec(options)
    layers = dict(model.named_children())
    for name in options.layers or ():
        if name not in layers:
            stem = name.rstrip("0123456789_")
            close = sorted(n for n in layers if stem and stem in n)[:6]
            raise PruneError(f"prune.layers: no layer named {name!r} in {model.spec.name}"
                             f"{f'; similar: {close}' if close else ''}")
    if options.method == "channels":
        return list(options.layers or ())
    if not options.layers:
        names = [n for o in module.trained_outputs for n in model.head_layers[o]]
        # A PReLU slope shapes an activation, it is not a connection: zeroing it turns PReLU into ReLU.
        return [n for n in names if isinstance(layers[n], (nn.Conv2d, nn.Linear))]
    bad = [n for n in options.layers if not isinstance(layers[n], (nn.Conv2d, nn.Linear))]
    if bad:
        raise PruneError(f"prune.layers: {bad[0]!r} is a {type(layers[bad[0]]).__name__}; l1_norm prunes "
                         "Conv2d/Linear weights")
    return list(options.layers)
