"""The model factory: MediaPipe's shipped ``.tflite`` files -> trainable :class:`TFLiteModule`.

Weights come only from the installed ``mediapipe`` package; nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from holotune.models.spec import (  # noqa: F401  (re-exported)
    MODEL_SPECS,
    ModelSpec,
    UnknownModelError,
    get_spec,
    list_models,
    mediapipe_root,
    tflite_path,
)
from holotune.models.tflite_graph import TFLiteGraph, read_tflite
from holotune.models.tflite_module import TFLiteModule


def load_graph(name: str) -> TFLiteGraph:
    """Parse model ``name``'s ``.tflite`` file."""
    return read_tflite(tflite_path(name))


def create_model(name: str, checkpoint_path: str | Path | None = None) -> TFLiteModule:
    """Build model ``name`` with MediaPipe's weights as a trainable module.

    Args:
        name: one of :func:`list_models`.
        checkpoint_path: optional ``state_dict`` file (``torch.save``) to load over the stock weights.

    Returns:
        A :class:`TFLiteModule` in eval mode, with ``spec`` set to the model's :class:`ModelSpec`.
    """
    spec = get_spec(name)
    graph = load_graph(name)
    by_tflite_name = {graph.tensors[t].name: t for t in graph.outputs}
    missing = [o.tflite_name for o in spec.outputs if o.tflite_name not in by_tflite_name]
    if missing:
        raise ValueError(f"{graph.path}: outputs {missing} not found; the file has {sorted(by_tflite_name)}")
    model = TFLiteModule(graph, {o.name: by_tflite_name[o.tflite_name] for o in spec.outputs})
    model.spec = spec
    if checkpoint_path is not None:
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model.eval()
