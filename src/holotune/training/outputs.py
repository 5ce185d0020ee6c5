"""What a landmark model's raw outputs mean, per fine-tuning module, in crop-normalized units.

``decode_landmarks`` turns the ``landmarks`` output into (N, K, 3) x, y in [0, 1] of the crop and
z scaled as MediaPipe's ``TensorsToLandmarks`` does (``z / W / normalize_z``), matching the targets
of :class:`holotune.training.data.CropDataset`. ``presence_logit`` gives the presence head as a
logit, whichever form the model emits (face: a logit; hands and pose: a sigmoid probability).
"""

from __future__ import annotations

import torch
from torch import Tensor

from holotune.models.spec import MODEL_SPECS, MODULE_MODELS

NUM_POINTS = {"face_mesh": 468, "hands": 21, "pose": 33}
_FLAG = {"face_mesh": "face_flag", "hands": "hand_flag", "pose": "pose_flag"}
_Z_NORMALIZE = {"face_mesh": 1.0, "hands": 0.4, "pose": 1.0}
_DIMS = {"face_mesh": 3, "hands": 3, "pose": 5}  # pose: x, y, z, visibility, presence per landmark


def output_index(module: str, name: str) -> int:
    """Position of output ``name`` in the model's output tuple."""
    return MODEL_SPECS[MODULE_MODELS[module]].output_names.index(name)


def decode_landmarks(module: str, outputs: tuple[Tensor, ...]) -> Tensor:
    """(N, K, 3) crop-normalized landmarks from the model's raw output tuple."""
    spec = MODEL_SPECS[MODULE_MODELS[module]]
    h, w = spec.input_size
    raw = outputs[output_index(module, "landmarks")].reshape(outputs[0].shape[0], -1, _DIMS[module])
    raw = raw[:, : NUM_POINTS[module], :3]
    scale = raw.new_tensor([w, h, w * _Z_NORMALIZE[module]])
    return raw / scale


def presence_logit(module: str, outputs: tuple[Tensor, ...]) -> Tensor:
    """(N,) presence logit."""
    flag = outputs[output_index(module, _FLAG[module])].reshape(-1)
    if module == "face_mesh":
        return flag
    return torch.logit(flag.clamp(1e-6, 1 - 1e-6))  # the model applied the sigmoid already
