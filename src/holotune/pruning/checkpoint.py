"""``model.pt`` of the prune stage: a channel-pruned model records its kept channels beside its weights.

A channel-pruned model's internal shapes are not stock, so its state_dict alone does not load into
:func:`holotune.models.create_model`'s model: the file holds ``{"format", "model", "keep",
"state_dict"}`` and :func:`load_pruned` slices a stock model as recorded before loading the weights.
An ``l1_norm`` model keeps the stock layout and is saved as a plain state_dict.
"""

from __future__ import annotations

from pathlib import Path

import torch

from holotune.models import create_model
from holotune.models.tflite_module import TFLiteModule
from holotune.pruning.options import PruneError

PRUNED_FORMAT = "holotune.pruned/1"
"""Marker of a channel-pruned ``model.pt``: ``{"format", "model", "keep", "state_dict"}``."""


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
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    data = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(data, dict) and data.get("format") == PRUNED_FORMAT:
        if model_name is not None and model_name != data["model"]:
            raise PruneError(f"{path}: holds a pruned {data['model']!r}, not {model_name!r}")
        model = create_model(data["model"])
        model.slice_channels({int(t): cs for t, cs in data["keep"].items()})
        model.load_state_dict(data["state_dict"])
        return model.eval()
    if model_name is None:
        raise PruneError(f"{path}: a plain state_dict (stock layout); pass model_name to load it")
    return create_model(model_name, checkpoint_path=path)
