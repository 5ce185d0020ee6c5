"""The model factory: MediaPipe's shipped ``.tflite`` files -> trainable :class:`TFLiteModule`.

Weights come only from the installed ``mediapipe`` package; nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from holotune.models.spec import MODEL_SPECS, ModelSpec, list_models, mediapipe_root  # noqa: F401  (re-exported)
from holotune.models.tflite_graph import TFLiteGraph, read_tflite
from holotune.models.tflite_module import TFLiteModule


class UnknownModelError(KeyError):
    """A model name that the factory does not know."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of model ``name``."""
    try:
        return MODEL_SPECS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(MODEL_SPECS)}") from None


def tflite_path(name: str) -> Path:
    """Path of model ``name``'s ``.tflite`` file inside the installed mediapipe package."""
    path = mediapipe_root() / get_spec(name).tflite_path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file of {name!r} is missing from the installed mediapipe (need 0.10.21)")
    return path


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
