"""The MLflow model registry for holotune's servable models: one registered model per module.

``holotune-face_mesh``, ``holotune-hands`` and ``holotune-pose`` hold ONNX models (MLflow's ONNX
flavour, with a signature and an input example). Version 1 of each is the stock MediaPipe model,
the backup of the original; every new candidate gets the alias ``challenger``; the runtime serves
the alias ``champion`` (``models:/holotune-face_mesh@champion``), which starts on version 1.
Promotion moves ``champion``; rollback is the same move back.

``holotune-gesture`` holds landmark gesture heads (:class:`holotune.gesture.GestureModel`). There is
no stock gesture model, so it has no version 1 rule: its first version is the first head registered.
A gesture version, and a hand model version with an image gesture head, carries its class names in
the tag :data:`CLASS_NAMES_TAG` (a JSON list); promotion checks that tag against the ONNX metadata
and, when asked, against the class names the caller expects.

Promotion also reads the evaluation gate the export stage records on a version (tag
:data:`GATE_TAG`, figures in ``metric.*`` tags): a version whose gate failed is not promoted unless
forced (:class:`GateFailed`). The CLI (``holotune models promote``) and the service
(``POST /api/v1/models/{name}/promote``) both promote through :func:`promote`, so the rule is one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from holotune.media import sha256_of as sha256
from holotune.models.spec import MODEL_SPECS, MODULE_MODELS

CHAMPION = "champion"
CHALLENGER = "challenger"
EXPERIMENT = "holotune-registry"
# The landmark gesture head's registered model: registered_name(GESTURE).
GESTURE = "gesture"
# Version tags: the gesture classes (a JSON list, class 0 = "none") and the head's input kind.
CLASS_NAMES_TAG = "holotune.class_names"
INPUT_TAG = "holotune.input"
# A version's files, by format: the ONNX model MLflow's flavour logs, and the .tflite written back into
# MediaPipe's own file, stored beside it in the same version's artifact folder; the tags hold their sha256.
MODEL_ARTIFACT = "model"
FORMATS = {"onnx": "model.onnx", "tflite": "model.tflite"}
SHA256_TAG = "holotune.sha256.{}"
# The evaluation gate the export stage records on a version ("true" / "false"), its figures
# (``metric.<name>`` tags, e.g. ``metric.shifted.nme.change_pct``), and the service job that made it.
GATE_TAG = "gate_passed"
METRIC_TAG_PREFIX = "metric."
JOB_TAG = "holotune.job_id"
SQLITE_MAGIC = b"SQLite format 3\x00"
# MLflow's error codes for a registered model, version or alias that does not exist (or a malformed version).
NOT_FOUND_CODES = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")


class RegistryError(RuntimeError):
    """A registry operation that cannot be done; the message names the model, version or alias."""


class RegistryNotFound(RegistryError):
    """No such registered model, version or alias."""


class RegistryUnavailable(RegistryError):
    """The registry cannot be opened or read; the message names its URI (password hidden)."""


class GateFailed(RegistryError):
    """A version whose evaluation gate failed (tag ``gate_passed=false``), promoted without ``force``.

    Attributes:
        name, version: the refused version.
        gate: its :func:`gate_figures`.
    """

    def __init__(self, name: str, version: str, gate: dict):
        figures = ", ".join(f"{k}={v}" for k, v in gate["metrics"].items()) or "no metric tags"
        super().__init__(f"{name} version {version} failed its evaluation gate (tag {GATE_TAG}=false; {figures}); "
                         "not promoted")
        self.name, self.version, self.gate = name, version, gate


def registered_name(module: str) -> str:
    """``holotune-<module>``; ``gesture`` (:data:`GESTURE`) gives ``holotune-gesture``."""
    if module not in MODULE_MODELS and module != GESTURE:
        raise RegistryError(f"unknown module {module!r}; one of {sorted([*MODULE_MODELS, GESTURE])}")
    return f"holotune-{module}"


def redact_uri(uri: str | None) -> str:
    """``uri`` with the password of its ``user:password@`` part replaced by ``***`` (for messages and
    responses); ``None``: MLflow's default."""
    if not uri:
        return "MLflow's default registry ($MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)"
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def check_registry_uri(tracking_uri: str | None) -> None:
    """Refuse, at once, a ``sqlite:///`` registry MLflow could not open: a path that is a folder, a
    file that is not an SQLite database, a folder that cannot hold a new one (MLflow itself retries
    such a path for about 100 s before it fails). Other URIs are left to MLflow.

    Raises:
        RegistryUnavailable: naming the URI and what is wrong with its file.
    """
    if not tracking_uri or not tracking_uri.startswith("sqlite:///"):
        return
    path = tracking_uri[len("sqlite:///"):].split("?")[0]
    if not path or path == ":memory:":
        return
    file = Path(path)
    where = f"the registry {redact_uri(tracking_uri)}"
    try:
        if file.exists():
            if not file.is_file():
                raise RegistryUnavailable(f"cannot open {where}: {file} is not a file")
            with open(file, "rb") as fh:
                head = fh.read(len(SQLITE_MAGIC))
            if head and head != SQLITE_MAGIC:
                raise RegistryUnavailable(f"cannot open {where}: {file} is not an SQLite database")
            return
        parent = file.absolute().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise RegistryUnavailable(f"cannot open {where}: {file} does not exist and {parent} is not a writable "
                                      "folder to create it in")
    except OSError as exc:
        raise RegistryUnavailable(f"cannot open {where}: {exc}") from None


def connect(tracking_uri: str | None):
    """``(mlflow, MlflowClient)`` on ``tracking_uri`` (tracking and registry; ``None``: MLflow's default).

    Raises:
        RegistryUnavailable: the registry cannot be opened (:func:`check_registry_uri`, or MLflow's error).
    """
    import mlflow

    check_registry_uri(tracking_uri)
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
    try:
        return mlflow, mlflow.MlflowClient()
    except Exception as exc:  # SQLAlchemy's and MLflow's own types
        raise RegistryUnavailable(f"cannot open the registry {redact_uri(tracking_uri)}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _lookup_error(exc: Exception, missing: str, tracking_uri: str | None, doing: str = "read") -> RegistryError:
    """:class:`RegistryNotFound` (``missing``) for MLflow's not-found errors, else :class:`RegistryUnavailable`."""
    if getattr(exc, "error_code", None) in NOT_FOUND_CODES:
        return RegistryNotFound(missing)
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return RegistryUnavailable(f"cannot {doing} the registry {redact_uri(tracking_uri)}: {first}")


def gate_figures(tags: dict[str, str]) -> dict:
    """A version's evaluation gate from its tags: ``{"gate_passed": True | False | None (no tag),
    "metrics": {"shifted.nme.change_pct": -19.3, ...}}`` (the ``metric.*`` tags, as numbers where
    they are finite numbers)."""
    import math

    passed = (tags or {}).get(GATE_TAG)
    metrics = {}
    for key, value in sorted((tags or {}).items()):
        if key.startswith(METRIC_TAG_PREFIX):
            try:
                number = float(value)
            except ValueError:
                number = None
            metrics[key[len(METRIC_TAG_PREFIX):]] = number if number is not None and math.isfinite(number) else value
    return {"gate_passed": None if passed is None else passed.strip().lower() == "true", "metrics": metrics}


def resolve_version(name: str, version: str | int, tracking_uri: str | None = None) -> str:
    """The version number ``version`` names: itself (``2``, ``"2"``) or the version an alias points at
    (``"challenger"``).

    Raises:
        RegistryNotFound: no such model, version or alias. RegistryUnavailable: the registry cannot be read.
    """
    _, client = connect(tracking_uri)
    selector = str(version).strip()
    try:
        found = (client.get_model_version(name, selector) if selector.isdigit()
                 else client.get_model_version_by_alias(name, selector))
    except Exception as exc:
        what = f"version {selector}" if selector.isdigit() else f"alias {selector!r}"
        raise _lookup_error(exc, f"{name} has no {what}", tracking_uri) from None
    return str(found.version)


def _log_onnx(mlflow, path: Path, module: str, name: str, tags: dict[str, str]) -> str:
    """Log ``path`` as an MLflow ONNX model registered under ``name``; returns the new version.

    The signature comes from a mid-grey input example; it includes the hand model's image gesture
    head (output ``gesture``, (N, C)) when the file has one.
    """
    import onnxruntime as ort

    from holotune.gesture import GESTURE_OUTPUT

    spec = MODEL_SPECS[MODULE_MODELS[module]]
    h, w = spec.input_size
    example = np.full((1, 3, h, w), (spec.input_range[0] + spec.input_range[1]) / 2, dtype=np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = list(spec.output_names)
    if GESTURE_OUTPUT in {o.name for o in session.get_outputs()} and GESTURE_OUTPUT not in names:
        names.append(GESTURE_OUTPUT)
    outputs = dict(zip(names, session.run(names, {"input": example})))
    return _log_run(mlflow, path, name, f"register-{module}", tags, example, outputs)


def _log_run(mlflow, path: Path, name: str, run_name: str, tags: dict[str, str], example: np.ndarray,
             outputs: dict[str, np.ndarray]) -> str:
    """One MLflow run that logs ONNX file ``path`` (ONNX flavour, signature from ``example`` -> ``outputs``)
    and registers it under ``name``; returns the new version."""
    import mlflow.onnx
    import onnx
    from mlflow.models import infer_signature

    experiment = mlflow.get_experiment_by_name(EXPERIMENT) or mlflow.get_experiment(mlflow.create_experiment(EXPERIMENT))
    with mlflow.start_run(experiment_id=experiment.experiment_id, run_name=run_name):
        mlflow.set_tags(tags)
        # The flavour's requirements given, not inferred: inferring them starts a Python that loads the
        # model (about 3.5 s a version) and finds the same packages. One self-contained model.onnx (no
        # external-data file): every holotune model is far below protobuf's 2 GB, and MLflow's check of
        # the input example loads the file without its external data.
        info = mlflow.onnx.log_model(onnx.load(str(path)), name="model", registered_model_name=name,
                                     signature=infer_signature(example, outputs), input_example=example,
                                     pip_requirements=mlflow.onnx.get_default_pip_requirements(),
                                     save_as_external_data=False)
    return str(info.registered_model_version)


def ensure_stock_version(module: str, tracking_uri: str | None = None) -> str:
    """Make sure ``holotune-<module>`` exists with the stock model as version 1 (aliased ``champion``)."""
    from holotune.runtime.sessions import ensure_stock_models

    if module == GESTURE:
        raise RegistryError(f"{registered_name(GESTURE)} has no stock version (there is no stock gesture model)")

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
    client.set_model_version_tag(name, version, SHA256_TAG.format("onnx"), sha256(path))
    from holotune.models.spec import tflite_path

    attach_model_file(name, version, "tflite", tflite_path(model), tracking_uri)
    return version


def register_model(onnx_path: str | os.PathLike, module: str, *, tags: dict[str, str] | None = None,
                   tracking_uri: str | None = None, tflite_path: str | os.PathLike | None = None) -> str:
    """Register a fine-tuned ONNX model as a new version with alias ``challenger``; returns the version.

    ``tflite_path`` (the same weights written into MediaPipe's ``.tflite``) is stored on the same
    version (:func:`attach_model_file`), so ``pull_model(..., "tflite")`` fetches it.

    The stock model is registered first (as version 1) if the registered model is new. A hand model
    with an image gesture head (an output ``gesture``) also gets the version tags
    :data:`CLASS_NAMES_TAG` (from its ONNX metadata) and :data:`INPUT_TAG` ``image``.

    Raises:
        RegistryError: no such file, an unknown module, or a gesture head whose class names are
            missing from the metadata or do not match the ``gesture`` output's width.
    """
    if module == GESTURE:
        raise RegistryError("a landmark gesture head has no stock version: register it with register_gesture")
    path = Path(onnx_path)
    if not path.is_file():
        raise RegistryError(f"{path}: no such ONNX file")
    # The tags read from the file win over the caller's: they are what promotion checks.
    version_tags = {**(tags or {}), **_image_head_tags(path, module)}
    ensure_stock_version(module, tracking_uri)
    mlflow, client = connect(tracking_uri)
    name = registered_name(module)
    version = _log_onnx(mlflow, path, module, name, {"holotune.module": module, **version_tags})
    for key, value in version_tags.items():
        client.set_model_version_tag(name, version, key, str(value))
    client.set_model_version_tag(name, version, SHA256_TAG.format("onnx"), sha256(path))
    if tflite_path is not None:
        attach_model_file(name, version, "tflite", tflite_path, tracking_uri)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return version


def attach_model_file(name: str, version: str | int, fmt: str, path: str | os.PathLike,
                      tracking_uri: str | None = None) -> None:
    """Store ``path`` as the ``fmt`` file (:data:`FORMATS`) of ``version`` of ``name``: in the version's
    model folder (so a download of ``models:/name/version`` brings it) and its sha256 in a version tag."""
    if fmt not in FORMATS or fmt == "onnx":
        raise RegistryError(f"cannot attach a {fmt!r} file; the ONNX file is the version's model itself")
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"{path}: no such {fmt} file")
    _, client = connect(tracking_uri)
    try:
        run_id = client.get_model_version(name, str(version)).run_id
    except Exception:
        raise RegistryError(f"{name} has no version {version}") from None
    with tempfile.TemporaryDirectory(prefix="holotune-attach-") as tmp:
        named = Path(tmp) / FORMATS[fmt]
        named.write_bytes(path.read_bytes())
        client.log_artifact(run_id, str(named), artifact_path=MODEL_ARTIFACT)
    client.set_model_version_tag(name, str(version), SHA256_TAG.format(fmt), sha256(path))


def pull_model(ref: str, fmt: str, out_dir: str | os.PathLike, tracking_uri: str | None = None) -> Path:
    """Fetch the ``fmt`` file (``onnx`` | ``tflite``) of a registered version into ``out_dir``.

    Args:
        ref: ``<name>@<alias>`` or ``<name>/<version>`` (e.g. ``holotune-face_mesh@champion``).
        fmt: ``onnx`` writes ``model.onnx``; ``tflite`` writes the file under the name MediaPipe loads
            (``face_landmark.tflite``, ``hand_landmark_full.tflite``, ``pose_landmark_full.tflite``), so
            the folder drops into an app as it is.
        out_dir: created if missing; an existing file of that name is replaced.

    Returns:
        The written file. Its sha256 is checked against the version's tag when the tag exists.

    Raises:
        RegistryError: a malformed ref, an unknown name/alias/version, a version without that format
            (e.g. registered before .tflite export existed), or a hash mismatch.
    """
    import shutil

    import mlflow.artifacts

    if fmt not in FORMATS:
        raise RegistryError(f"unknown format {fmt!r}; one of {sorted(FORMATS)}")
    name, sep, selector = ref.partition("@") if "@" in ref else ref.partition("/")
    if not sep or not name or not selector:
        raise RegistryError(f"{ref!r}: expected <name>@<alias> or <name>/<version>, e.g. holotune-face_mesh@champion")
    _, client = connect(tracking_uri)
    try:
        found = (client.get_model_version_by_alias(name, selector) if sep == "@"
                 else client.get_model_version(name, selector))
    except Exception:
        what = f"alias {selector!r}" if sep == "@" else f"version {selector}"
        raise RegistryError(f"{name} has no {what} (see `holotune models versions {name}`)") from None
    version = str(found.version)
    module = (found.tags or {}).get("holotune.module") or name.removeprefix("holotune-")
    target_name = FORMATS[fmt]
    if fmt == "tflite":
        if module not in MODULE_MODELS:
            raise RegistryError(f"{name} version {version} is a {module} model, which has no .tflite form")
        target_name = Path(MODEL_SPECS[MODULE_MODELS[module]].tflite_path).name
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="holotune-pull-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{found.run_id}/{MODEL_ARTIFACT}",
                                                             dst_path=tmp, tracking_uri=tracking_uri))
        except Exception as exc:
            raise RegistryError(f"{name} version {version}: cannot download its files: {exc}") from None
        source = local / FORMATS[fmt]
        if not source.is_file():
            raise RegistryError(f"{name} version {version} has no {fmt} file (it holds "
                                f"{sorted(p.name for p in local.iterdir())}); versions registered before holotune "
                                "exported .tflite have ONNX only: re-run the export stage")
        expected = (found.tags or {}).get(SHA256_TAG.format(fmt))
        if expected and sha256(source) != expected:
            raise RegistryError(f"{name} version {version}: the downloaded {fmt} file's sha256 {sha256(source)} "
                                f"differs from the version's tag {expected}")
        target = out_dir / target_name
        shutil.copyfile(source, target)
    return target


def _image_head_tags(path: Path, module: str) -> dict[str, str]:
    """The class-name tags of a landmark model with an image gesture head (``{}`` without one)."""
    from holotune.gesture import GESTURE_OUTPUT
    from holotune.runtime.holistic import OPTIONAL_OUTPUTS
    from holotune.runtime.sessions import ModelLoadError, ModelSession

    model_name = MODULE_MODELS.get(module)
    if model_name is None or GESTURE_OUTPUT not in OPTIONAL_OUTPUTS.get(model_name, ()):
        return {}
    try:  # the signature, the class names in the metadata and the output's width, checked together
        classes = ModelSession(MODEL_SPECS[model_name], path, 1, None, OPTIONAL_OUTPUTS[model_name]).gesture_classes
    except ModelLoadError as exc:
        raise RegistryError(f"cannot register {path} as {registered_name(module)}: {exc}") from None
    if classes is None:
        return {}
    return {CLASS_NAMES_TAG: json.dumps(classes), INPUT_TAG: "image"}


def register_gesture(onnx_path: str | os.PathLike, *, tags: dict[str, str] | None = None,
                     tracking_uri: str | None = None) -> str:
    """Register a landmark gesture head (``gesture.onnx``) as a new version of ``holotune-gesture``
    with alias ``challenger``; returns the version.

    The file is opened with :class:`~holotune.gesture.GestureModel` first (input ``features``
    (N, 127), output ``logits`` (N, C), class names in the metadata). The version gets the tags
    :data:`CLASS_NAMES_TAG` (JSON list) and :data:`INPUT_TAG` ``landmarks``, plus ``tags``.

    Raises:
        RegistryError: no such file, or not a landmark gesture head (the message names the file,
            why, and what a head must look like).
    """
    from holotune.gesture import FEATURE_SIZE, FEATURES_INPUT, LOGITS_OUTPUT, GestureError, GestureModel

    path = Path(onnx_path)
    if not path.is_file():
        raise RegistryError(f"{path}: no such ONNX file")
    try:
        model = GestureModel(path)
    except GestureError as exc:
        raise RegistryError(f"cannot register {path} as {registered_name(GESTURE)}: {exc}. A landmark gesture head "
                            f"takes {FEATURES_INPUT!r} (N, {FEATURE_SIZE}) and gives {LOGITS_OUTPUT!r} (N, C), with "
                            "its class names in the ONNX metadata (holotune.export.export_gesture_head writes "
                            "one)") from None
    example = np.zeros((1, FEATURE_SIZE), np.float32)
    outputs = {LOGITS_OUTPUT: model.logits(example)}
    version_tags = {**(tags or {}), CLASS_NAMES_TAG: json.dumps(model.class_names), INPUT_TAG: "landmarks"}
    mlflow, client = connect(tracking_uri)
    name = registered_name(GESTURE)
    version = _log_run(mlflow, path, name, f"register-{GESTURE}", {"holotune.module": GESTURE, **version_tags},
                       example, outputs)
    for key, value in version_tags.items():
        client.set_model_version_tag(name, version, key, str(value))
    client.set_registered_model_alias(name, CHALLENGER, version)
    return version


def promote(name: str, version: str | int, alias: str = CHAMPION, tracking_uri: str | None = None,
            expect_class_names: list[str] | None = None, force: bool = False) -> str:
    """Point ``alias`` (default ``champion``) at ``version`` of ``name``; rollback is the same call.

    A version whose evaluation gate failed (tag :data:`GATE_TAG` ``false``, set by the export stage)
    is refused unless ``force``. A gesture version (``holotune-gesture``, or any version tagged
    :data:`CLASS_NAMES_TAG`) is downloaded and its tag checked against the class names in its ONNX
    metadata, so that what the registry says is what the model computes.

    Args:
        version: a version number, or an alias naming one (``challenger``).
        expect_class_names: when given, the version's :data:`CLASS_NAMES_TAG` must be exactly this
            list (order included: it is the head's output order), so that clients reading the labels
            are not surprised by a new class set.
        force: promote a version whose gate failed.

    Returns:
        The version number promoted.

    Raises:
        RegistryNotFound: no such model, version or alias. GateFailed: the gate failed and not ``force``.
        RegistryUnavailable: the registry cannot be read. RegistryError: class names that do not
            match (both lists named).
    """
    version = resolve_version(name, version, tracking_uri)
    _, client = connect(tracking_uri)
    try:
        found = client.get_model_version(name, version)
    except Exception as exc:
        raise _lookup_error(exc, f"{name} has no version {version}", tracking_uri) from None
    gate = gate_figures(found.tags or {})
    if gate["gate_passed"] is False and not force:
        raise GateFailed(name, version, gate)
    tagged = version_class_names(name, version, found.tags or {})
    if expect_class_names is not None:
        expected = list(expect_class_names)
        if tagged is None:
            raise RegistryError(f"{name} version {version} has no {CLASS_NAMES_TAG} tag (not a gesture model); "
                                f"expected class names {expected}")
        if tagged != expected:
            raise RegistryError(f"{name} version {version} has class names {tagged} (tag {CLASS_NAMES_TAG}), "
                                f"expected {expected}; not promoted")
    if name == registered_name(GESTURE) or tagged is not None:
        inside = _onnx_class_names(name, version, tracking_uri)
        if tagged is None:
            raise RegistryError(f"{name} version {version} has no {CLASS_NAMES_TAG} tag; its ONNX metadata names "
                                f"{inside}; not promoted (register heads with register_gesture)")
        if inside != tagged:
            raise RegistryError(f"{name} version {version}: tag {CLASS_NAMES_TAG} says {tagged}, its ONNX metadata "
                                f"says {inside}; not promoted")
    try:
        client.set_registered_model_alias(name, alias, str(version))
    except Exception as exc:  # e.g. a read-only database
        raise _lookup_error(exc, f"{name} has no version {version}", tracking_uri, "write to") from None
    return version


def version_class_names(name: str, version: str | int, tags: dict[str, str]) -> list[str] | None:
    """A version's :data:`CLASS_NAMES_TAG` as a list, or ``None`` without the tag."""
    if CLASS_NAMES_TAG not in tags:
        return None
    try:
        names = json.loads(tags[CLASS_NAMES_TAG])
    except json.JSONDecodeError:
        names = None
    if not isinstance(names, list):
        raise RegistryError(f"{name} version {version}: tag {CLASS_NAMES_TAG} is not a JSON list: "
                            f"{tags[CLASS_NAMES_TAG]!r}")
    return names


def _onnx_class_names(name: str, version: str | int, tracking_uri: str | None) -> list[str]:
    """The gesture class names in the ONNX metadata of ``version`` of ``name`` (downloaded to a temporary folder)."""
    import mlflow.artifacts

    from holotune.gesture import GestureError, metadata_class_names, read_metadata
    from holotune.runtime.sessions import ModelLoadError, resolve_model_source

    uri = f"models:/{name}/{version}"
    with tempfile.TemporaryDirectory(prefix="holotune-promote-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp, tracking_uri=tracking_uri,
                                                             registry_uri=tracking_uri))
        except Exception as exc:
            raise RegistryError(f"{uri}: cannot download it to check its class names: {exc}") from None
        try:
            return metadata_class_names(read_metadata(resolve_model_source(local)), f"{name} version {version}")
        except (GestureError, ModelLoadError) as exc:
            raise RegistryError(f"{exc}; not promoted") from None


def attach_artifact(name: str, version: str | int, path: str | os.PathLike, tracking_uri: str | None = None) -> None:
    """Log a file (e.g. the model card) into the MLflow run that registered ``version`` of ``name``."""
    _, client = connect(tracking_uri)
    try:
        run_id = client.get_model_version(name, str(version)).run_id
    except Exception:
        raise RegistryError(f"{name} has no version {version}") from None
    client.log_artifact(run_id, str(path))


def list_versions(name: str, tracking_uri: str | None = None) -> list[dict]:
    """Every version of ``name``, oldest first: version, aliases, tags, run id, its evaluation gate
    (:func:`gate_figures`) and the service job that made it (tag :data:`JOB_TAG`, else ``None``).

    Raises:
        RegistryNotFound: no registered model ``name`` (the registry named). RegistryUnavailable:
            the registry cannot be read.
    """
    missing = f"no registered model named {name!r} in the registry {redact_uri(tracking_uri)}"
    if "'" in name or "\\" in name:  # it goes into a search filter
        raise RegistryNotFound(missing)
    _, client = connect(tracking_uri)
    try:
        versions = client.search_model_versions(f"name='{name}'")
        # search_model_versions leaves aliases empty; the registered model holds alias -> version.
        registered = client.get_registered_model(name) if versions else None
    except Exception as exc:
        raise _lookup_error(exc, missing, tracking_uri) from None
    if not versions:
        raise RegistryNotFound(missing)
    aliases: dict[str, list[str]] = {}
    for alias, version in registered.aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    return sorted(({"version": str(v.version), "aliases": sorted(aliases.get(str(v.version), [])),
                    "tags": dict(v.tags), "run_id": v.run_id, "gate": gate_figures(dict(v.tags)),
                    "job_id": dict(v.tags).get(JOB_TAG)} for v in versions), key=lambda v: int(v["version"]))
