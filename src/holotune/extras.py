"""What the installed extras allow. The base install serves (ONNX Runtime, no torch); ``[registry]``
adds the MLflow registry client (``models:/NAME@ALIAS`` sources, the service following an alias);
``[train]`` adds fine-tuning, export, verification and the pipelines (and the registry client).

    pip install holotune                   # holotune infer, holotune serve on files and the stock models
    pip install 'holotune[registry]'       # + models:/ URIs and the service's alias following
    pip install 'holotune[train]'          # everything

The checks find modules without importing them: asking costs a few ``stat`` calls.
"""

from __future__ import annotations

import importlib.util

# Modules only the training install has. A command or endpoint that needs one says so (and how to
# install it) instead of failing on an import.
TRAIN_MODULES = ("torch", "mediapipe", "pytorch_lightning", "lightning_utilities", "peft", "hydra", "omegaconf",
                 "dvc", "tensorboard", "onnx", "onnxscript", "ai_edge_litert", "tflite", "google_crc32c",
                 "matplotlib", "skimage", "accelerate", "transformers", "jax")
# What the fine-tuning jobs (the service's stage scripts) need: without them the job API answers 503.
JOB_MODULES = ("torch", "pytorch_lightning", "peft", "hydra", "mediapipe", "tflite", "google_crc32c", "onnx",
               "tensorboard")
# The registry client (mlflow-skinny; SQLAlchemy and Alembic for a sqlite:/// tracking URI).
REGISTRY_MODULES = ("mlflow", "sqlalchemy", "alembic")
EXTRAS = {"train": TRAIN_MODULES, "registry": REGISTRY_MODULES}
WHAT = {"train": "the training install", "registry": "the registry client"}


def missing(modules: tuple[str, ...] | list[str]) -> list[str]:
    """The top-level ``modules`` that are not installed."""
    return [name for name in modules if importlib.util.find_spec(name) is None]


def training_missing() -> list[str]:
    """The modules the fine-tuning jobs need that are not installed (empty on a full install)."""
    return missing(JOB_MODULES)


def registry_missing() -> list[str]:
    """The registry client's modules that are not installed (empty with ``[registry]`` or ``[train]``)."""
    return missing(REGISTRY_MODULES)


def needs(extra: str, what: str, absent: list[str]) -> str:
    """``<what> needs the training install (missing: torch, ...): pip install 'holotune[train]'``."""
    return f"{what} needs {WHAT[extra]} (missing: {', '.join(absent)}): pip install 'holotune[{extra}]'"


def needs_training(what: str, absent: list[str]) -> str:
    return needs("train", what, absent)


def needs_registry(what: str, absent: list[str] | None = None) -> str:
    return needs("registry", what, absent if absent is not None else registry_missing())


def extra_for(error: ModuleNotFoundError) -> str | None:
    """The extra that brings the module ``error`` failed to import (``train``, ``registry``), or ``None``."""
    top = (error.name or "").split(".")[0]
    return next((extra for extra, modules in EXTRAS.items() if top in modules), None)
