"""What a landmark model's raw outputs mean, per fine-tuning module, in crop-normalized units.

``decode_landmarks`` turns the landmark output into (N, K, 3) x, y in [0, 1] of the crop and
z scaled as MediaPipe's ``TensorsToLandmarks`` does (``z / W / normalize_z``), matching the targets
of :class:`holotune.training.data.CropDataset`. ``presence_logit`` gives the presence head as a
logit, whichever form the model emits. Both read the module's
:class:`~holotune.models.spec.ModuleSpec`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from holotune.models.spec import get_module


def output_index(module: str, name: str) -> int:
    """Position of output ``name`` in the module's model's output tuple."""
    return get_module(module).model_spec.output_names.index(name)


def decode_landmarks(module: str, outputs: tuple[Tensor, ...]) -> Tensor:
    """(N, K, 3) crop-normalized landmarks from the model's raw output tuple."""
    spec = get_module(module)
    h, w = spec.model_spec.input_size
    raw = outputs[output_index(module, spec.landmark_output)].reshape(outputs[0].shape[0], -1, spec.point_dims)
    raw = raw[:, : spec.num_points, :3]
    scale = raw.new_tensor([w, h, w * spec.z_normalize])
    return raw / scale


def decode_auxiliary(module: str, outputs: tuple[Tensor, ...]) -> Tensor:
    """(N, A, 2) crop-normalized x, y of the module's auxiliary landmarks (pose: 33 and 34); A may be 0."""
    spec = get_module(module)
    h, w = spec.model_spec.input_size
    raw = outputs[output_index(module, spec.landmark_output)].reshape(outputs[0].shape[0], -1, spec.point_dims)
    return raw[:, spec.num_points : spec.num_points + spec.auxiliary_points, :2] / raw.new_tensor([w, h])


def presence_logit(module: str, outputs: tuple[Tensor, ...]) -> Tensor:
    """(N,) presence logit."""
    spec = get_module(module)
    flag = outputs[output_index(module, spec.presence_output)].reshape(-1)
    if spec.presence_is_logit:
        return flag
    return torch.logit(flag.clamp(1e-6, 1 - 1e-6))  # the model applied the sigmoid already
