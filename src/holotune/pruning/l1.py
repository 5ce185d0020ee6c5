"""``l1_norm``: unstructured L1 magnitude pruning of chosen Conv2d/Linear weights, made permanent.

``torch.nn.utils.prune.l1_unstructured`` on each layer's weight, with the mask baked in: shapes stay
dense and the state_dict keeps the stock layout. The zeros make the files compress better, but ONNX
Runtime's dense kernels multiply by them all the same, so the model is no faster.
"""

from __future__ import annotations

from torch import nn


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
