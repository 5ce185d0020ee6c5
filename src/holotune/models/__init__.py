"""MediaPipe Holistic's models as trainable PyTorch modules.

>>> from holotune.models import create_model
>>> face = create_model("face_landmark")          # MediaPipe's weights, nn.Conv2d / nn.PReLU layers
>>> feats = face.forward_features(x)              # trunk: {"p_re_lu_15": (N, 128, 6, 6)}
>>> landmarks, face_flag = face.forward_head(feats)

Only :mod:`holotune.models.spec` is imported eagerly: the torch-free runtime reads the specs,
and everything that needs torch loads on first use.
"""

from importlib import import_module

from holotune.models.spec import (
    MODEL_SPECS,
    MODULE_MODELS,
    MODULE_SPECS,
    ModelSpec,
    ModuleSpec,
    OutputSpec,
    UnknownModelError,
    UnknownModuleError,
    get_module,
    get_spec,
    list_models,
    mediapipe_root,
    tflite_path,
)

_LAZY = {
    "create_model": "holotune.models.factory",
    "load_graph": "holotune.models.factory",
    "TFLiteFormatError": "holotune.models.tflite_graph",
    "read_tflite": "holotune.models.tflite_graph",
    "TFLiteModule": "holotune.models.tflite_module",
}

__all__ = ["MODEL_SPECS", "MODULE_MODELS", "MODULE_SPECS", "ModelSpec", "ModuleSpec", "OutputSpec",
           "UnknownModelError", "UnknownModuleError", "get_module", "get_spec", "list_models", "mediapipe_root", "tflite_path",
           *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'holotune.models' has no attribute {name!r}")
