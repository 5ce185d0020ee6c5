"""The HTTP service (``holotune serve``): the original fine-tuning API's endpoints, pruning jobs,
and Holistic inference on ONNX Runtime that follows an MLflow alias.

>>> from holotune.service import ServiceSettings, create_app
>>> app = create_app(ServiceSettings(workspace="/workspace", port=8080))
"""

from holotune.service.app import create_app
from holotune.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
