"""The MLflow model registry for holotune's servable models: one registered model per module.

``holotune-face_mesh``, ``holotune-hands`` and ``holotune-pose`` hold ONNX models (MLflow's ONNX
flavour, with a signature and an input example). Version 1 of each is the stock MediaPipe model,
the backup of the original; every new candidate gets the alias ``challenger``; the runtime serves
the alias ``champion`` (``models:/holotune-face_mesh@champion``), which starts on version 1.
Promotion moves ``champion``; rollback is the same move back.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from holotune.models.spec import MODEL_SPECS, MODULE_MODELS

CHAMPION = "champion"
CHALLENGER = "challenger"
EXPERIMENT = "holotune-registry"


class RegistryError(RuntimeError):
    """A registry operation that cannot be done; the message names the model, version or alias."""


def registered_name(module: str) -> str:
    """``holotune-<module>``."""
    if module not in MODULE_MODELS:
        raise RegistryError(f"unknown module {module!r}; one of {sorted(MODULE_MODELS)}")
    return f"holotune-{module}"


def connect(tracking_uri: str | None):
    """``(mlflow, MlflowClient)`` on ``tracking_uri`` (tracking and registry; ``None``: MLflow's default)."""
    import mlflow

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
    return mlflow, mlflow.MlflowClient()


def _log_onnx(mlflow, path: Path, module: str, name: str, tags: dict[str, str]) -> str:
    """Log ``path`` as an MLflow ONNX model registered under ``name``; returns the new version."""
    import onnx
    import onnxruntime as ort
    from mlflow.models import infer_signature

    spec = MODEL_SPECS[MODULE_MODELS[module]]
    h, w = spec.input_size
    example = np.full((1, 3, h, w), (spec.input_range[0] + spec.input_range[1]) / 2, dtype=np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = dict(zip(spec.output_names, session.run(spec.output_names, {"input": example})))
    experiment = mlflow.get_experiment_by_name(EXPERIMENT) or mlflow.get_experiment(mlflow.create_experiment(EXPERIMENT))
    with mlflow.start_run(experiment_id=experiment.experiment_id, run_name=f"register-{module}"):
        mlflow.set_tags(tags)
        info = mlflow.onnx.log_model(onnx.load(str(path)), name="model", registered_model_name=name,
                                     signature=infer_signature(example, outputs), input_example=example)
    return str(info.registered_model_version)


def ensure_stock_version(module: str, tracking_uri: str | None = None) -> str:
    """Make sure ``holotune-<module>`` exists with the stock model as version 1 (aliased ``champion``)."""
    from holotune.runtime.sessions import ensure_stock_models

    mlflow, client = connect(tracking_uri)
    name = registered_name(module)
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except Exception:  # the registered model does not exist yet
        versions = []
    if versions:
        first = next((v for v in versions if str(v.version) == "1"), None)  # the store may give an int
        if first is None or (first.tags or {}).get("stock") != "true":
            raise RegistryError(f"{name}: version 1 is not the stock MediaPipe model (no tag stock=true); holotune "
                                "expects it there as the rollback target. Use another tracking URI or registered model")
        return "1"
    model = MODULE_MODELS[module]
    path = ensure_stock_models([model])[model]
    version = _log_onnx(mlflow, path, module, name, {"holotune.stock": "true", "holotune.module": module,
                                                       "holotune.source": "mediapipe==0.10.21"})
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "stock", "true")
    return version


def register_model(onnx_path: str | os.PathLike, module: str, *, tags: dict[str, str] | None = None,
                   tracking_uri: str | None = None) -> str:
    """Register a fine-tuned ONNX model as a new version with alias ``challenger``; returns the version.

    The stock model is registered first (as version 1) if the registered model is new.
    """
    path = Path(onnx_path)
    if not path.is_file():
        raise RegistryError(f"{path}: no such ONNX file")
    ensure_stock_version(module, tracking_uri)
    mlflow, client = connect(tracking_uri)
    name = registered_name(module)
    version = _log_onnx(mlflow, path, module, name, {"holotune.module": module, **(tags or {})})
    for key, value in (tags or {}).items():
        client.set_model_version_tag(name, version, key, str(value))
    client.set_registered_model_alias(name, CHALLENGER, version)
    return version


def promote(name: str, version: str | int, alias: str = CHAMPION, tracking_uri: str | None = None) -> None:
    """Point ``alias`` (default ``champion``) at ``version`` of ``name``; rollback is the same call."""
    _, client = connect(tracking_uri)
    try:
        client.get_model_version(name, str(version))
    except Exception:
        raise RegistryError(f"{name} has no version {version}") from None
    client.set_registered_model_alias(name, alias, str(version))


def attach_artifact(name: str, version: str | int, path: str | os.PathLike, tracking_uri: str | None = None) -> None:
    """Log a file (e.g. the model card) into the MLflow run that registered ``version`` of ``name``."""
    _, client = connect(tracking_uri)
    try:
        run_id = client.get_model_version(name, str(version)).run_id
    except Exception:
        raise RegistryError(f"{name} has no version {version}") from None
    client.log_artifact(run_id, str(path))


def list_versions(name: str, tracking_uri: str | None = None) -> list[dict]:
    """Every version of ``name``: version, aliases, tags, run id; oldest first."""
    _, client = connect(tracking_uri)
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except Exception:
        raise RegistryError(f"no registered model named {name!r}") from None
    if not versions:
        raise RegistryError(f"no registered model named {name!r}")
    # search_model_versions leaves aliases empty; the registered model holds alias -> version.
    aliases: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(name).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    return sorted(({"version": str(v.version), "aliases": sorted(aliases.get(str(v.version), [])),
                    "tags": dict(v.tags), "run_id": v.run_id} for v in versions), key=lambda v: int(v["version"]))
