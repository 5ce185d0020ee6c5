"""MediaPipe Holistic's models as trainable PyTorch modules.

>>> from holotune.models import create_model
>>> face = create_model("face_landmark")          # MediaPipe's weights, nn.Conv2d / nn.PReLU layers
>>> feats = face.forward_features(x)              # trunk: {"p_re_lu_15": (N, 128, 6, 6)}
>>> landmarks, face_flag = face.forward_head(feats)
"""

from holotune.models.factory import (
    UnknownModelError,
    create_model,
    get_spec,
    list_models,
    load_graph,
    mediapipe_root,
    tflite_path,
)
from holotune.models.spec import MODEL_SPECS, MODULE_MODELS, ModelSpec, OutputSpec
from holotune.models.tflite_graph import TFLiteFormatError, read_tflite
from holotune.models.tflite_module import TFLiteModule

__all__ = [
    "MODEL_SPECS",
    "MODULE_MODELS",
    "ModelSpec",
    "OutputSpec",
    "TFLiteFormatError",
    "TFLiteModule",
    "UnknownModelError",
    "create_model",
    "get_spec",
    "list_models",
    "load_graph",
    "mediapipe_root",
    "read_tflite",
    "tflite_path",
]
