"""LoRA adapters on holotune models, through peft, in peft's vocabulary.

One small layer over peft: choose target layers by a placement preset or by name, check that
every requested target exists and can carry LoRA (peft silently skips names that match nothing,
and cannot adapt depthwise convs), freeze the stock weights, and merge for export.

Placements, per fine-tuning module (face_mesh, hands, pose), from the model's own graph:

* ``head``: the final layer of each trained head (landmarks and presence), as the original API does;
* ``branch``: every non-depthwise conv / linear of those heads' exclusive branches (for face_mesh
  the 15-layer mesh branch and the 9-layer flag branch; for hands and pose a head *is* its branch);
* ``trunk``: every non-depthwise conv / linear on the path from the input to those outputs, except
  the layers that also feed an output the module keeps stock (``ModuleSpec.stock_outputs``). For
  pose that is the 14-layer regression encoder (``conv2d_35`` .. ``conv2d_46`` and the two heads):
  the heatmap the runtime refines landmarks with and the segmentation stay bit-identical to stock,
  and training never back-propagates into the 128x128 and 64x64 layers (7x faster per step).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from holotune.models.spec import MODULE_MODELS, UnknownModuleError, get_module

PLACEMENTS = ("head", "branch", "trunk")


class AdapterError(ValueError):
    """A LoRA configuration that cannot be applied; the message names the layer or value."""


@dataclass(frozen=True, kw_only=True)
class LoraOptions:
    """What to adapt (peft's names). ``conf/`` sets every field but ``modules_to_save``
    (``finetune.lora_rank``, ``lora_alpha``, ``lora_dropout``, ``lora_placement``, ``module.target_modules``).

    Attributes:
        r: LoRA rank (>= 1).
        lora_alpha: scaling numerator; the update is scaled by ``lora_alpha / r``.
        lora_dropout: dropout on the LoRA input.
        placement: ``head`` | ``branch`` | ``trunk``; ignored when ``target_modules`` is given.
        target_modules: explicit layer names (overrides ``placement``).
        modules_to_save: layers trained in full and saved with the adapter (e.g. a new class head).
    """

    r: int
    lora_alpha: float
    lora_dropout: float
    placement: str
    target_modules: tuple[str, ...] | None
    modules_to_save: tuple[str, ...] = field(default_factory=tuple)


def can_adapt(layer: nn.Module) -> bool:
    """peft LoRA works on Linear and non-grouped Conv2d (a depthwise conv's rank must divide its groups)."""
    return isinstance(layer, nn.Linear) or (isinstance(layer, nn.Conv2d) and layer.groups == 1)


def placement_targets(model: nn.Module, module: str, placement: str) -> list[str]:
    """Layer names a placement preset adapts on ``model`` (a stock :class:`TFLiteModule`)."""
    try:
        spec = get_module(module)
    except UnknownModuleError as error:
        raise AdapterError(str(error)) from None
    if placement not in PLACEMENTS:
        raise AdapterError(f"unknown lora_placement {placement!r}; one of {list(PLACEMENTS)}")
    outputs = spec.trained_outputs
    if placement == "head":
        names = [model.head_layers[o][-1] for o in outputs]
    elif placement == "branch":
        names = [n for o in outputs for n in model.head_layers[o]]
    else:
        kept = set(model.layers_feeding(list(spec.stock_outputs))) if spec.stock_outputs else set()
        names = [n for n in model.layers_feeding(list(outputs)) if n not in kept]
    return [n for n in names if can_adapt(getattr(model, n))]


def resolve_targets(model: nn.Module, module: str, options: LoraOptions) -> list[str]:
    """The checked list of target layer names; raises :class:`AdapterError` naming any bad one."""
    if options.r < 1:
        raise AdapterError(f"lora_rank must be >= 1, got {options.r}")
    if options.lora_alpha <= 0:
        raise AdapterError(f"lora_alpha must be > 0, got {options.lora_alpha}")
    if not 0.0 <= options.lora_dropout < 1.0:
        raise AdapterError(f"lora_dropout must be in [0, 1), got {options.lora_dropout}")
    if not options.target_modules:
        return placement_targets(model, module, options.placement)
    layers = dict(model.named_modules())
    for name in options.target_modules:
        if name not in layers or name == "":
            close = sorted(n for n in layers if n and name.split("_")[0] in n)[:5]
            raise AdapterError(f"target_modules: no layer named {name!r} in {MODULE_MODELS.get(module, module)}"
                               f"{f'; similar: {close}' if close else ''}")
        if not can_adapt(layers[name]):
            raise AdapterError(f"target_modules: {name!r} is a {_describe(layers[name])}; LoRA needs a Linear or a "
                               "non-depthwise Conv2d")
    return list(options.target_modules)


def apply_lora(model: nn.Module, module: str, options: LoraOptions):
    """Wrap ``model`` with LoRA adapters; only adapter weights (and ``modules_to_save``) stay trainable.

    Returns:
        a ``peft.PeftModel``; ``model`` itself is modified in place (its targets are wrapped).
    """
    from peft import LoraConfig, get_peft_model

    targets = resolve_targets(model, module, options)
    config = LoraConfig(r=options.r, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
                        target_modules=targets, modules_to_save=list(options.modules_to_save) or None)
    peft_model = get_peft_model(model, config)
    adapted = set(peft_model.targeted_module_names)
    missing = [t for t in targets if t not in adapted]
    if missing:  # peft skips misses silently; this cannot happen after resolve_targets, but must not pass
        raise AdapterError(f"peft did not adapt {missing}")
    return peft_model


def trainable_trunk_layers(model: nn.Module) -> list[str]:
    """Layers outside every head branch that have trainable parameters (plain or peft-wrapped model).

    Empty means the trunk is frozen, so its features can be computed once and cached.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    heads = {layer for layers in base.head_layers.values() for layer in layers}
    return sorted({name.split(".")[0] for name, p in base.named_parameters()
                   if p.requires_grad and name.split(".")[0] not in heads})


def merge_lora(peft_model) -> nn.Module:
    """Fold the adapters into the weights: a plain module with the stock layer types, for export."""
    return peft_model.merge_and_unload()


def _describe(layer: nn.Module) -> str:
    if isinstance(layer, nn.Conv2d) and layer.groups > 1:
        return f"depthwise Conv2d (groups={layer.groups})"
    return type(layer).__name__
