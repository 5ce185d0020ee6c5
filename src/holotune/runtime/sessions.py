"""ONNX Runtime sessions for the Holistic models, checked against the stock signature.

The stock ONNX files are exports of MediaPipe's own weights; a fine-tuned model replaces one of
them only if it has the same input and output names and per-sample shapes. This module imports
neither torch nor the ``onnx`` package (the lean serving install has neither): the few facts it
needs from a model file (input and output names and shapes, metadata, the nodes an output needs)
are read from the protobuf wire format directly, and ONNX Runtime loads the bytes.

Where the stock files come from (:func:`stock_model_dir`): ``$HOLOTUNE_ONNX_DIR``, else the
installed ``holotune_stock_models`` wheel (:mod:`holotune.stock_models`), else the per-machine
cache that a full install fills with ``holotune models export`` (torch).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from holotune.gesture import GESTURE_OUTPUT, GestureError, metadata_class_names
from holotune.models.spec import MODEL_SPECS, ModelSpec
from holotune.runtime.onnx_file import prune_outputs, read_model

MEDIAPIPE_VERSION = "0.10.21"
INPUT_NAME = "input"
ONNX_DIR_ENV = "HOLOTUNE_ONNX_DIR"


class ModelLoadError(RuntimeError):
    """A model file or URI that cannot be served: missing, unreadable, or with the wrong signature."""


# Bumped whenever holotune.export writes different bytes for the same model, so that a machine's
# cached stock exports are rebuilt instead of mixing two export formats (2: no per-node stack traces).
EXPORT_REVISION = 2


def stock_cache_dir() -> Path:
    """The per-machine cache of stock exports (``~/.cache/holotune/mediapipe-<v>/onnx-r<revision>``)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "holotune" / f"mediapipe-{MEDIAPIPE_VERSION}" / f"onnx-r{EXPORT_REVISION}"


def stock_export_dir() -> Path:
    """Where ``holotune models export`` writes by default: ``$HOLOTUNE_ONNX_DIR``, else the per-machine
    cache (never into an installed stock-models wheel)."""
    env = os.environ.get(ONNX_DIR_ENV)
    return Path(env) if env else stock_cache_dir()


def stock_model_dir() -> Path:
    """Where the runtime reads the stock ONNX files: ``$HOLOTUNE_ONNX_DIR``, else the installed
    ``holotune_stock_models`` package (when it is for this MediaPipe version and export revision),
    else the per-machine cache. Finding the package imports nothing (a few ``stat`` calls)."""
    env = os.environ.get(ONNX_DIR_ENV)
    if env:
        return Path(env)
    from holotune.stock_models import installed_models

    installed = installed_models()
    if installed is not None and installed.problem is None:
        return installed.directory
    return stock_cache_dir()


def stock_model_path(name: str) -> Path:
    """The stock ONNX file of model ``name`` (it may not exist yet)."""
    return stock_model_dir() / f"{name}.onnx"


def ensure_stock_models(names: list[str] | None = None) -> dict[str, Path]:
    """Make sure the stock ONNX files exist; returns model name -> path.

    The one place that creates them on first use. With the stock-models wheel installed (or
    ``$HOLOTUNE_ONNX_DIR`` filled) this is a few ``stat`` calls. Otherwise, on a full install, a
    missing file is exported by a child process running ``holotune models export`` (exporting needs
    torch, which this module and every serving process never import); on the lean install, which
    has no torch, it says how to get them.

    Raises:
        ModelLoadError: the files are missing and cannot be built here, or the export failed (its
            output is in the message).
    """
    import importlib.util
    import subprocess
    import sys

    names = list(names) if names is not None else list(MODEL_SPECS)
    directory = stock_model_dir()
    paths = {name: directory / f"{name}.onnx" for name in names}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if not missing:
        return paths
    from holotune.stock_models import PACKAGE, installed_models, missing_models_help

    installed = installed_models()
    if installed is not None and installed.problem is None and directory == installed.directory:
        raise ModelLoadError(f"{directory}: the installed {PACKAGE} {installed.version} lacks "
                             f"{', '.join(f'{n}.onnx' for n in missing)}; reinstall it")
    if importlib.util.find_spec("torch") is None:
        raise ModelLoadError(missing_models_help(directory, missing, installed))
    print("holotune: exporting the stock models to ONNX (once per machine)...", file=sys.stderr)
    done = subprocess.run([sys.executable, "-m", "holotune.cli", "models", "export", "--dir", str(directory)],
                          capture_output=True, text=True)
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if done.returncode != 0 or missing:
        raise ModelLoadError(f"exporting the stock models failed (exit {done.returncode}); missing "
                             f"{missing}: {(done.stderr or done.stdout).strip()[-2000:]}")
    return paths


def resolve_model_source(source: str | os.PathLike) -> Path:
    """A local ``.onnx`` path for ``source``: a file, a folder holding one, or ``models:/<name>@<alias>``.

    MLflow URIs are downloaded through the configured tracking/registry server (imported lazily,
    so serving from files needs no MLflow; a URI without the ``registry`` extra says to install it).
    """
    text = os.fspath(source)
    if text.startswith("models:/") or text.startswith("runs:/"):
        from holotune.extras import needs_registry, registry_missing

        if registry_missing():
            raise ModelLoadError(f"{text}: {needs_registry('a registry URI')}")
        try:
            import mlflow.artifacts

            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=text))
        except Exception as exc:  # MLflow raises many types; the URI is what the user needs to see
            raise ModelLoadError(f"{text}: cannot download the model from MLflow: {exc}") from exc
    else:
        local = Path(text)
    if local.is_dir():
        found = sorted(local.rglob("*.onnx"))
        if len(found) != 1:
            raise ModelLoadError(f"{text}: expected exactly one .onnx file in the model folder, found {len(found)}")
        local = found[0]
    if not local.is_file():
        raise ModelLoadError(f"{text}: no such model file")
    return local


class ModelSession:
    """One model on ONNX Runtime's CPU provider.

    Args:
        spec: the stock model the file must be signature-compatible with.
        path: the ``.onnx`` file.
        threads: intra-op threads (MediaPipe uses 1 per model).
        outputs: compute only these outputs (default: all). The graph is pruned to what they need:
            Holistic never reads pose segmentation, which is half of pose_landmark_full's work.
        optional_outputs: outputs a fine-tuned file may add to the stock ones (the hand model's
            ``gesture`` head): computed too when the file has them.

    Attributes:
        metadata: the file's ONNX metadata properties (a gesture head's class names live there).
        gesture_classes: the class names of the image gesture head (the optional ``gesture`` output)
            when the session computes it, checked against the output's width; else ``None``. They
            travel with the session, so a frame that reads a swapped-in model reads its classes too.
    """

    def __init__(self, spec: ModelSpec, path: str | os.PathLike, threads: int = 1, outputs: list[str] | None = None,
                 optional_outputs: tuple[str, ...] = ()):
        self.spec = spec
        self.path = Path(path)
        try:
            data = self.path.read_bytes()
            model = read_model(data)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{self.path}: not a readable ONNX model: {exc}") from exc
        _check_io(model.inputs, model.outputs, spec, self.path)
        self.metadata = model.metadata
        self.output_names = list(outputs or spec.output_names)
        unknown = set(self.output_names) - set(spec.output_names)
        if unknown:
            raise ValueError(f"{spec.name} has no output(s) {sorted(unknown)}")
        graph_outputs = [name for name, _ in model.outputs]
        self.output_names += [name for name in optional_outputs if name in graph_outputs and name not in self.output_names]
        if set(self.output_names) != set(graph_outputs):
            data = prune_outputs(data, self.output_names)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Spinning threads steal the core another branch's session is using. Even for the pose
        # models, which run alone, spinning made the whole pipeline 30% slower: their threads keep
        # spinning while the face and hand branches run.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The model is given as bytes: an external-data file is looked up beside the .onnx file.
        options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(self.path.parent))
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelLoadError(f"{self.path}: ONNX Runtime cannot load it: {exc}") from exc
        self.gesture_classes = self._gesture_classes()

    def _gesture_classes(self) -> list[str] | None:
        if GESTURE_OUTPUT not in self.output_names:
            return None
        try:
            names = metadata_class_names(self.metadata, str(self.path))
        except GestureError as exc:
            raise ModelLoadError(str(exc)) from None
        width = self.output_shape(GESTURE_OUTPUT)[-1]
        if width != len(names):
            raise ModelLoadError(f"{self.path}: output {GESTURE_OUTPUT!r} has {width} classes, its metadata names "
                                 f"{len(names)}: {names}")
        return names

    def output_shape(self, name: str) -> list[int | str]:
        """Output ``name``'s shape as the file declares it (symbolic dimensions as strings)."""
        return next(o.shape for o in self._session.get_outputs() if o.name == name)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """(N, 3, H, W) float32 -> the session's outputs by name, each (N, *per-sample shape)."""
        outs = self._session.run(self.output_names, {INPUT_NAME: x})
        return dict(zip(self.output_names, outs))


def _dims(value_info) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value_info.type.tensor_type.shape.dim]


def check_signature(model, spec: ModelSpec, path: Path) -> None:
    """Raise :class:`ModelLoadError` unless ``model`` (an ``onnx.ModelProto``) has ``spec``'s stock
    input/output signature."""
    _check_io([(i.name, _dims(i)) for i in model.graph.input], [(o.name, _dims(o)) for o in model.graph.output],
              spec, path)


def _check_io(inputs: list[tuple[str, list]], outputs: list[tuple[str, list]], spec: ModelSpec, path: Path) -> None:
    """:func:`check_signature` on ``(name, dims)`` lists of the graph's inputs and outputs."""
    h, w = spec.input_size
    if len(inputs) != 1 or inputs[0][0] != INPUT_NAME or inputs[0][1][1:] != [3, h, w]:
        raise ModelLoadError(f"{path}: input must be {INPUT_NAME!r} (N, 3, {h}, {w}) for {spec.name}; got {inputs}")
    declared = dict(outputs)
    for out in spec.outputs:
        if out.name not in declared:
            raise ModelLoadError(f"{path}: missing output {out.name!r} of {spec.name}; has {sorted(declared)}")
        if declared[out.name][1:] != list(out.shape):
            raise ModelLoadError(
                f"{path}: output {out.name!r} has per-sample shape {declared[out.name][1:]}, {spec.name} needs "
                f"{list(out.shape)}")


def open_stock(name: str, threads: int = 1, outputs: list[str] | None = None) -> ModelSession:
    """A session on the stock export of model ``name``; says how to get it if it is missing."""
    path = stock_model_path(name)
    if not path.is_file():
        from holotune.stock_models import installed_models, missing_models_help

        raise ModelLoadError(missing_models_help(path.parent, [name], installed_models()))
    return ModelSession(MODEL_SPECS[name], path, threads, outputs)
