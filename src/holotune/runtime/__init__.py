"""MediaPipe Holistic on ONNX Runtime; imports no torch.

>>> from holotune.runtime import Holistic
>>> with Holistic() as holistic:
...     result = holistic.process(rgb_uint8)     # (H, W, 3) uint8 RGB
>>> result.pose.shape, result.to_array().shape   # (33, 4), (543, 4)
"""

from holotune.runtime.holistic import Holistic, HolisticResult
from holotune.runtime.sessions import ModelLoadError, ModelSession, stock_model_dir

__all__ = ["Holistic", "HolisticResult", "ModelLoadError", "ModelSession", "stock_model_dir"]
