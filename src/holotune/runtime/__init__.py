"""MediaPipe Holistic on ONNX Runtime; imports no torch.

>>> from holotune.runtime import Holistic
>>> with Holistic() as holistic:
...     result = holistic.process(rgb_uint8)     # (H, W, 3) uint8 RGB
>>> result.pose.shape, result.to_array().shape   # (33, 4), (543, 4)

The names below load on first use, so that importing a light submodule (``runtime.image``,
``runtime.geometry``) does not load ONNX Runtime.
"""

from importlib import import_module

_LAZY = {
    "Holistic": "holotune.runtime.holistic",
    "HolisticResult": "holotune.runtime.holistic",
    "ModelLoadError": "holotune.runtime.sessions",
    "ModelSession": "holotune.runtime.sessions",
    "stock_model_dir": "holotune.runtime.sessions",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'holotune.runtime' has no attribute {name!r}")
