"""Hot model updates: each landmark part and the gesture head follow an MLflow alias and swap in the new version.

For each part (face_mesh, hands, pose) the follower asks the registry which version
``holotune-<part>@<alias>`` points at. When that changes it downloads the version, opens it on
ONNX Runtime (which checks the stock signature), runs a smoke inference (finite outputs of the
right shapes), and only then swaps it into the serving :class:`~holotune.runtime.Holistic`. A
version that fails any step is not served; the old model stays and the failure is reported (and
not retried until the alias moves again or a reload is asked for).

The landmark gesture head follows ``holotune-gesture@<alias>`` the same way: it is opened with
:class:`~holotune.gesture.GestureModel`, its class names must equal the version's
``holotune.class_names`` tag, and a smoke run on zero features must give finite (1, C) logits. A
hand model with an image gesture head (output ``gesture``) is served through ``holotune-hands``;
its class names are checked against the version's tag the same way.

The swap takes the write side of :class:`SwapLock`; every inference holds the read side, so a
response's ``models`` field names exactly the versions that computed it. Imports no torch.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from holotune.gesture import FEATURE_SIZE, GESTURE_OUTPUT, GestureError, GestureModel
from holotune.models.spec import MODEL_SPECS, MODULE_MODELS
from holotune.registry import GESTURE, RegistryError, connect, redact_uri, registered_name, version_class_names
from holotune.runtime import Holistic, ModelLoadError, ModelSession
from holotune.runtime.holistic import OPTIONAL_OUTPUTS, POSE_STAGE_MODELS, USED_OUTPUTS
from holotune.runtime.sessions import resolve_model_source

log = logging.getLogger("holotune.service")
PARTS = tuple(MODULE_MODELS)  # face_mesh, hands, pose
FOLLOWED = (*PARTS, GESTURE)  # the parts, then the landmark gesture head (holotune-gesture)


class SwapLock:
    """Many readers (inferences) or one writer (a swap); a waiting writer holds back new readers,
    so a swap waits for at most the inferences already running."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self):
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self):
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class PartState:
    """What serves one part.

    Attributes:
        registered_model: ``holotune-<part>``.
        version: the registry version serving, or ``None`` for the local stock export (before the
            first registry check, or when the part is not registered).
        source: where the served model came from.
        loaded_at: Unix time of the last swap.
        checked_at: Unix time of the last registry check.
        error: why the last check or load failed (the old model kept serving), or ``None``.
        failed_version: the version that failed to load (not retried until the alias moves).
        class_names: the served gesture classes (the gesture head's; the hand model's image head's),
            else ``None``.
    """

    registered_model: str
    version: str | None = None
    source: str = "stock ONNX export"
    loaded_at: float | None = None
    checked_at: float | None = None
    error: str | None = None
    failed_version: str | None = None
    class_names: list[str] | None = None


def smoke_test(session: ModelSession) -> None:
    """Run ``session`` on a mid-grey input; raise :class:`ModelLoadError` unless every output is
    finite and has the stock per-sample shape (an image gesture head's ``gesture``: (C,), C its classes)."""
    spec = session.spec
    h, w = spec.input_size
    x = np.full((1, 3, h, w), (spec.input_range[0] + spec.input_range[1]) / 2, dtype=np.float32)
    try:
        outputs = session.run(x)
    except Exception as exc:  # ONNX Runtime raises its own types
        raise ModelLoadError(f"smoke inference failed: {exc}") from exc
    shapes = {o.name: tuple(o.shape) for o in spec.outputs}
    classes = session.gesture_classes
    if classes is not None:
        shapes[GESTURE_OUTPUT] = (len(classes),)
    for name, value in outputs.items():
        if tuple(value.shape[1:]) != shapes[name]:
            raise ModelLoadError(f"smoke inference: output {name!r} has shape {value.shape[1:]}, "
                                 f"{spec.name} needs {shapes[name]}")
        if not np.isfinite(value).all():
            raise ModelLoadError(f"smoke inference: output {name!r} has non-finite values (NaN or inf)")


def smoke_test_gesture(model: GestureModel) -> None:
    """Run a landmark gesture head on one zero feature row; raise :class:`ModelLoadError` unless the
    logits are finite and (1, C), C its class names."""
    try:
        logits = model.logits(np.zeros((1, FEATURE_SIZE), np.float32))
    except Exception as exc:  # ONNX Runtime raises its own types
        raise ModelLoadError(f"smoke inference failed: {exc}") from exc
    if logits.shape != (1, len(model.class_names)):
        raise ModelLoadError(f"smoke inference: output 'logits' has shape {logits.shape}, classes "
                             f"{model.class_names} need (1, {len(model.class_names)})")
    if not np.isfinite(logits).all():
        raise ModelLoadError("smoke inference: output 'logits' has non-finite values (NaN or inf)")


class ModelFollower:
    """Keeps ``holistic``'s landmark models and gesture head on the versions ``alias`` points at.

    Args:
        holistic: the serving pipeline (stock models until the first check).
        tracking_uri: MLflow tracking and registry URI.
        alias: the alias to follow (``champion``).
        cache_dir: downloaded versions, ``<cache_dir>/<registered model>/<version>/``.
        pose_threads: intra-op threads for the pose model, as :class:`Holistic` uses.
    """

    def __init__(self, holistic: Holistic, tracking_uri: str, alias: str, cache_dir: Path, pose_threads: int = 2):
        self.holistic = holistic
        self.tracking_uri = tracking_uri
        self.alias = alias
        self.cache_dir = Path(cache_dir)
        self.pose_threads = pose_threads
        self.lock = SwapLock()
        self.parts = {part: PartState(registered_name(part)) for part in PARTS}
        self.parts[GESTURE] = PartState(registered_name(GESTURE), source="none (no gesture head served)")
        self._check_lock = threading.Lock()  # one registry check at a time (poll vs reload)
        self._client = None

    def versions(self) -> dict[str, str | None]:
        """part -> serving version (``None``: the stock export; for ``gesture``: none served), the
        gesture head included; read it under ``lock.reading()``."""
        return {part: state.version for part, state in self.parts.items()}

    def state(self) -> dict:
        return {"alias": self.alias, "tracking_uri": redact_uri(self.tracking_uri),
                "parts": {part: asdict(state) for part, state in self.parts.items()}}

    def check(self, force: bool = False) -> dict[str, dict]:
        """Ask the registry where the alias points for every part and the gesture head; load and swap what moved.

        Args:
            force: retry a version that failed before.

        Returns:
            part (and ``gesture``) -> ``{"version", "changed", "error"}``.
        """
        from holotune.extras import needs_registry, registry_missing

        with self._check_lock:
            absent = registry_missing()
            if absent:  # the serving install without the registry extra: the stock models, said once per check
                error = needs_registry("following a registry alias", absent)
                for part in FOLLOWED:
                    self.parts[part].checked_at, self.parts[part].error = time.time(), error
                return {part: {"version": self.parts[part].version, "changed": False, "error": error}
                        for part in FOLLOWED}
            return {part: self._check_part(part, force) for part in FOLLOWED}

    def _registry(self):
        if self._client is None:
            # Also sets the process-wide URIs, which models:/ downloads read; the service has one registry.
            _, self._client = connect(self.tracking_uri)
        return self._client

    def _check_part(self, part: str, force: bool) -> dict:
        state = self.parts[part]
        state.checked_at = time.time()
        try:
            version = self._alias_version(state.registered_model)
        except Exception as exc:  # registry unreachable: keep serving, say why
            state.error = f"cannot read {state.registered_model}@{self.alias} from the registry: {exc}"
            return {"version": state.version, "changed": False, "error": state.error}
        if version is None or version == state.version or (version == state.failed_version and not force):
            if version == state.version:
                state.error = None
            return {"version": state.version, "changed": False, "error": state.error}
        try:
            if part == GESTURE:
                model = self._open_gesture(state.registered_model, version)
                classes = model.class_names
            else:
                model = self._open(part, state.registered_model, version)
                classes = model.gesture_classes
        except (ModelLoadError, GestureError, RegistryError, ValueError, OSError) as exc:
            old = state.version or ("no gesture head" if part == GESTURE else "the stock export")
            state.error = f"version {version} not served (still serving {old}): {exc}"
            state.failed_version = version
            log.warning("%s: %s", state.registered_model, state.error)
            return {"version": state.version, "changed": False, "error": state.error}
        with self.lock.writing():
            if part == GESTURE:
                self.holistic.set_gesture(model)
            else:
                self.holistic.set_model(part, model)
            state.version = version
        state.class_names = classes
        state.source = f"models:/{state.registered_model}/{version}"
        state.loaded_at = time.time()
        state.error = state.failed_version = None
        log.info("%s: now serving version %s (%s)", state.registered_model, version, self.alias)
        return {"version": version, "changed": True, "error": None}

    def _alias_version(self, name: str) -> str | None:
        """The version ``name@alias`` points at, or ``None`` if the model or alias does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self._registry().get_model_version_by_alias(name, self.alias).version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise

    def _open(self, part: str, name: str, version: str) -> ModelSession:
        """Download (once), open and smoke-test version ``version`` of ``name``; a hand model's image
        gesture head (output ``gesture``) is computed too, and its class names checked against the tag."""
        target = self._download(name, version)
        model_name = MODULE_MODELS[part]
        threads = self.pose_threads if model_name in POSE_STAGE_MODELS else 1
        session = ModelSession(MODEL_SPECS[model_name], resolve_model_source(target), threads,
                               USED_OUTPUTS.get(model_name), OPTIONAL_OUTPUTS.get(model_name, ()))
        classes = session.gesture_classes
        tagged = self._tagged_classes(name, version)
        if classes is not None and tagged is not None and classes != tagged:
            raise ModelLoadError(f"its '{GESTURE_OUTPUT}' head has class names {classes} in the ONNX metadata, "
                                 f"the version's tag holotune.class_names says {tagged}")
        smoke_test(session)
        return session

    def _open_gesture(self, name: str, version: str) -> GestureModel:
        """Download (once), open and smoke-test version ``version`` of the landmark gesture head ``name``;
        its class names must equal the version's ``holotune.class_names`` tag."""
        target = self._download(name, version)
        model = GestureModel(resolve_model_source(target), self.holistic.gesture_threshold)
        tagged = self._tagged_classes(name, version)
        if tagged != model.class_names:
            raise ModelLoadError(f"class names {model.class_names} in the ONNX metadata, the version's tag "
                                 f"holotune.class_names says {tagged}")
        smoke_test_gesture(model)
        return model

    def _tagged_classes(self, name: str, version: str) -> list[str] | None:
        """The version's ``holotune.class_names`` tag as a list, or ``None`` without one."""
        try:
            tags = self._registry().get_model_version(name, version).tags or {}
        except Exception as exc:  # MLflow raises its own types; the version is then not served
            raise ModelLoadError(f"cannot read the tags of {name} version {version}: {exc}") from exc
        return version_class_names(name, version, tags)

    def _download(self, name: str, version: str) -> Path:
        """``<cache_dir>/<name>/<version>/``, downloaded from the registry once."""
        import mlflow.artifacts

        target = self.cache_dir / name / version
        if not (target / ".complete").is_file():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            try:
                self._registry()
                mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(target),
                                                    tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
            except Exception as exc:
                raise ModelLoadError(f"cannot download models:/{name}/{version}: {exc}") from exc
            (target / ".complete").touch()
        return target
