"""The HTTP service (``holotune serve``): the original fine-tuning API's endpoints, pruning jobs,
and Holistic inference on ONNX Runtime that follows an MLflow alias.

>>> from holotune.service import ServiceSettings, create_app
>>> app = create_app(ServiceSettings(workspace="/workspace", port=8080))

``create_app`` loads on first use: the job worker process imports :mod:`holotune.service.jobs`
and must not pay for FastAPI and ONNX Runtime.
"""

from holotune.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from holotune.service.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "create_app"])
