"""Run MediaPipe's own Python solutions on fine-tuned ``.tflite`` files: a resource folder.

MediaPipe's legacy Python solutions (``mediapipe.solutions.holistic`` ...) do not take model paths.
What they load is fixed by the graph, by paths relative to a resource directory. The facts this
module relies on, read from mediapipe 0.10.21 (``docs/mediapipe_deploy.md`` §1):

* ``SolutionBase.__init__`` (``mediapipe/python/solution_base.py``) computes ``root_path``, the folder
  that holds the ``mediapipe`` package, from its own ``__file__``, calls
  ``resource_util.set_resource_dir(root_path)`` and then builds and starts the graph
  (``CalculatorGraph.start_run``). The top-level graph file (``binary_graph_path``) is read from
  ``root_path`` directly, not through the resource directory.
* The resource directory is the process-global absl flag ``resource_root_dir``.
  ``PathToResourceAsFile`` (``mediapipe/util/resource_util_default.cc``) resolves a relative resource
  path as ``bazel-bin/<path>`` under the working directory if that exists, else
  ``<resource_root_dir>/<path>``; an absolute path is used as it is.
* The graph names its models relative to it (``mediapipe/modules/face_landmark/face_landmark.tflite``)
  and reads them in the calculators' ``Open()`` (``LocalFileContentsCalculator``, the
  ``InferenceCalculator``'s model path, the label map of ``TensorsToClassificationCalculator``).
  The graph scheduler runs ``Open()`` on its own threads *after* ``start_run`` returns: measured here,
  ``Holistic()`` returns in 0.03 s and the nodes open about 0.2 s later. Setting the directory back
  right after construction would race the loading (it silently gave stock output on 2 of 3 photos);
  waiting until the graph is idle does not.

So :func:`lay_out_resources` writes a folder ``<dir>/mediapipe/modules/...`` that mirrors the stock
files (symlinks, or copies) with fine-tuned files in place, and :func:`open_solution` /
:func:`open_holistic` / :func:`mediapipe_holistic` build a solution with ``SolutionBase``'s
``set_resource_dir`` call redirected to the folder, wait until every node has opened (every file is
read), and set the directory back to the package root.

**The resource directory is process-global.** It points at the folder only while a solution is
built here (under a lock, about 0.3 s), and afterwards at the package root, which is what every
``SolutionBase`` sets for itself anyway, so a solution built later is stock. Solutions built before
or after keep the models they loaded. A MediaPipe graph that another thread starts *during* that
window reads the folder too: build MediaPipe solutions from one thread when using this.

This module imports neither torch nor (until a solution is built) mediapipe.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import tflite

from holotune.media import sha256_of
from holotune.models.spec import MODEL_SPECS, MODULE_MODELS, mediapipe_root

RESOURCE_SUFFIXES = (".tflite", ".binarypb", ".txt")
"""The resource files mirrored from ``mediapipe/modules``: models, graphs and label maps."""

MANIFEST = "holotune_resources.json"
"""The file :func:`lay_out_resources` writes beside ``mediapipe/``: what was replaced, by what."""

HOLISTIC_GRAPH = "mediapipe/modules/holistic_landmark/holistic_landmark_cpu.binarypb"
"""The Holistic solution's top-level graph (read from the package root, mirrored for completeness)."""

POSE_LANDMARK_MODELS = {
    0: "mediapipe/modules/pose_landmark/pose_landmark_lite.tflite",
    1: "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
    2: "mediapipe/modules/pose_landmark/pose_landmark_heavy.tflite",
}
"""The pose landmark model each ``model_complexity`` loads; the 0.10.21 wheel ships only ``full``
(``Holistic`` downloads the others into the package on first use)."""

FACE_LANDMARK_MODELS = {
    False: "mediapipe/modules/face_landmark/face_landmark.tflite",
    True: "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite",
}
"""The face model by ``refine_face_landmarks`` (``FaceLandmarksModelLoader`` picks one of the two)."""

_HOLISTIC_COMMON = (
    "mediapipe/modules/pose_detection/pose_detection.tflite",
    "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "mediapipe/modules/holistic_landmark/hand_recrop.tflite",
    "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
    "mediapipe/modules/hand_landmark/handedness.txt",
)
_TENSOR_TYPES = {v: k.lower() for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
_LOCK = threading.Lock()


class ResourceError(ValueError):
    """A resource folder or replacement file MediaPipe cannot use; the message names the file or option."""


def holistic_resources(model_complexity: int = 1, refine_face_landmarks: bool = False) -> tuple[str, ...]:
    """The files MediaPipe's Holistic graph reads through the resource directory with these options.

    Found by running ``mediapipe.solutions.holistic.Holistic`` on a folder holding only these
    (``tests/test_mediapipe_resources.py``); a missing one fails the graph's start, naming it.
    """
    if model_complexity not in POSE_LANDMARK_MODELS:
        raise ResourceError(f"model_complexity: {model_complexity!r} is not one of {sorted(POSE_LANDMARK_MODELS)}")
    return (_HOLISTIC_COMMON[0], POSE_LANDMARK_MODELS[model_complexity], _HOLISTIC_COMMON[1],
            FACE_LANDMARK_MODELS[bool(refine_face_landmarks)], *_HOLISTIC_COMMON[2:])


def stock_resource_root() -> Path:
    """The folder that holds the installed ``mediapipe`` package: MediaPipe's own resource root.

    Found without importing mediapipe (which takes a second)."""
    return mediapipe_root().parent


def resource_path(key: str) -> str:
    """The resource path a model replaces: a module (``face_mesh``, ``hands``, ``pose``) or a model name
    (``face_landmark``, ``hand_landmark_full``, ``pose_landmark_full``, ...) ->
    ``mediapipe/modules/face_landmark/face_landmark.tflite``."""
    name = MODULE_MODELS.get(key, key)
    if name not in MODEL_SPECS:
        raise ResourceError(f"models: unknown model {key!r}; one of the modules {sorted(MODULE_MODELS)} "
                            f"or the models {sorted(MODEL_SPECS)}")
    return f"mediapipe/{MODEL_SPECS[name].tflite_path}"


def tflite_signature(path: str | os.PathLike) -> dict[str, list[tuple[str, tuple[int, ...], str]]]:
    """``{"inputs": [...], "outputs": [...]}`` of a ``.tflite`` file's subgraph 0, each ``(name, shape, type)``
    in the file's order (the order MediaPipe's calculators read the tensors in).

    Raises:
        ResourceError: the file is missing, or is not a TFLite flatbuffer; the message names it.
    """
    path = Path(path)
    if not path.is_file():
        raise ResourceError(f"{path}: no such file")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ResourceError(f"{path}: not a TFLite model (no 'TFL3' flatbuffer identifier)")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraph")
        sub = model.Subgraphs(0)

        def tensor(index: int) -> tuple[str, tuple[int, ...], str]:
            t = sub.Tensors(index)
            shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            return t.Name().decode(), shape, _TENSOR_TYPES.get(t.Type(), str(t.Type()))

        return {"inputs": [tensor(int(i)) for i in sub.InputsAsNumpy()],
                "outputs": [tensor(int(i)) for i in sub.OutputsAsNumpy()]}
    except Exception as exc:  # a corrupt flatbuffer raises anything from struct.error to IndexError
        raise ResourceError(f"{path}: not a readable TFLite model: {exc!r}") from exc


def _describe(tensors: list[tuple[str, tuple[int, ...], str]]) -> str:
    return ", ".join(f"{name} {list(shape)} {dtype}" for name, shape, dtype in tensors) or "none"


def check_replacement(key: str, path: str | os.PathLike) -> str:
    """Check that ``path`` can stand in for the stock file of ``key``: a TFLite model with the stock
    file's input and output tensors (names, shapes, types, in order). Returns the resource path it replaces.

    Raises:
        ResourceError: naming the file and the difference.
    """
    rel = resource_path(key)
    stock = stock_resource_root() / rel
    got, want = tflite_signature(path), tflite_signature(stock)
    for role in ("inputs", "outputs"):
        if got[role] != want[role]:
            raise ResourceError(
                f"{path}: not a drop-in for {rel} (models[{key!r}]): its {role} are {_describe(got[role])}; "
                f"the stock file's are {_describe(want[role])}")
    return rel


def _stock_files(stock: Path) -> list[str]:
    """Every resource file under the package's ``mediapipe/modules``, relative to the resource root."""
    modules = stock / "mediapipe" / "modules"
    if not modules.is_dir():
        raise FileNotFoundError(f"{modules}: the installed mediapipe has no modules folder (need mediapipe==0.10.21)")
    return sorted(p.relative_to(stock).as_posix() for p in modules.rglob("*")
                  if p.suffix in RESOURCE_SUFFIXES and p.is_file())


def lay_out_resources(models: Mapping[str, str | os.PathLike], out_dir: str | os.PathLike, *,
                      copy_stock: bool = False) -> Path:
    """Write a MediaPipe resource folder: ``out_dir/mediapipe/modules/...`` with the fine-tuned files.

    Every resource file of the installed package's ``mediapipe/modules`` (``.tflite``, ``.binarypb``,
    ``.txt``: all the Holistic graph reads, for any of its options, and what the other solutions read)
    is mirrored, as an absolute symlink to the package's file (``copy_stock=True``: a copy, for a
    self-contained folder). Each entry of ``models`` is *copied* in place of its stock file. A
    ``holotune_resources.json`` beside ``mediapipe/`` records what was replaced (source, sha256).

    Args:
        models: ``{key: path}``: key a module (``face_mesh``, ``hands``, ``pose``) or a model name
            (``face_landmark``, ``hand_landmark_full``, ``pose_landmark_full``); path a ``.tflite``
            with the stock file's signature (e.g. from :func:`holotune.tflite_export.export_finetuned_tflite`).
        out_dir: the resource root to write. A ``mediapipe/`` folder already there is replaced only if
            this function wrote it (its manifest is there); the new tree is built beside it and swapped in.

    Returns:
        ``out_dir``, the folder to pass to :func:`open_holistic` (MediaPipe's resource root).

    Raises:
        ResourceError: an unknown key, two keys for one file, a replacement that is missing, not a
            TFLite model or has another signature (naming the file), or an ``out_dir`` that holds a
            ``mediapipe/`` folder of someone else's.
    """
    stock = stock_resource_root()
    replacements: dict[str, tuple[str, Path]] = {}
    for key, path in models.items():
        rel = check_replacement(key, path)
        if rel in replacements:
            raise ResourceError(f"models: {replacements[rel][0]!r} and {key!r} both replace {rel}")
        replacements[rel] = (key, Path(path))
    out = Path(out_dir).absolute()
    tree, manifest = out / "mediapipe", out / MANIFEST
    if tree.exists() and not manifest.is_file():
        raise ResourceError(f"{out}: already holds a mediapipe/ folder that lay_out_resources did not write "
                            f"(no {MANIFEST}); choose an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".mediapipe-", dir=out))
    try:
        for rel in _stock_files(stock):
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if rel in replacements:
                shutil.copyfile(replacements[rel][1], dest)
            elif copy_stock:
                shutil.copyfile(stock / rel, dest)
            else:
                os.symlink(stock / rel, dest)
        old = None
        if tree.exists():
            old = staging / "previous"
            os.replace(tree, old)
        os.replace(staging / "mediapipe", tree)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    record = {
        "mediapipe": _mediapipe_version(),
        "stock_root": str(stock),
        "stock_files": "copied" if copy_stock else "symlinked",
        "replaced": {rel: {"key": key, "model": MODULE_MODELS.get(key, key), "source": str(src.absolute()),
                           "sha256": sha256_of(tree.parent / rel), "bytes": (tree.parent / rel).stat().st_size}
                     for rel, (key, src) in sorted(replacements.items())},
    }
    manifest.write_text(json.dumps(record, indent=2) + "\n")
    return out


def read_layout(resource_dir: str | os.PathLike) -> dict | None:
    """The manifest :func:`lay_out_resources` wrote in ``resource_dir``, or ``None`` for a folder laid out otherwise."""
    path = Path(resource_dir) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def _mediapipe_version() -> str | None:
    try:
        return version("mediapipe")
    except PackageNotFoundError:
        return None


def check_holistic_folder(resource_dir: str | os.PathLike, model_complexity: int = 1,
                          refine_face_landmarks: bool = False) -> None:
    """Refuse a folder Holistic with these options would not run, or would run without a replaced model.

    Raises:
        ResourceError: naming the missing file, or the option under which a replaced file is not loaded
            (``refine_face_landmarks=True`` loads ``face_landmark_with_attention.tflite``, not the
            fine-tuned ``face_landmark.tflite``; ``model_complexity`` 0 or 2 loads another pose model).
    """
    root = Path(resource_dir)
    if not (root / "mediapipe" / "modules").is_dir():
        raise ResourceError(f"{root}: not a MediaPipe resource folder (no mediapipe/modules/ in it); "
                            "write one with lay_out_resources")
    needed = holistic_resources(model_complexity, refine_face_landmarks)
    options = f"Holistic(model_complexity={model_complexity}, refine_face_landmarks={bool(refine_face_landmarks)})"
    if model_complexity != 1 and not (stock_resource_root() / POSE_LANDMARK_MODELS[model_complexity]).is_file():
        raise ResourceError(f"model_complexity: {model_complexity} makes MediaPipe's Holistic download "
                            f"{POSE_LANDMARK_MODELS[model_complexity]} into the mediapipe package, which does not "
                            "ship it; holotune downloads nothing: use model_complexity=1")
    for rel in needed:
        if not (root / rel).is_file():
            raise ResourceError(f"{root / rel}: missing (a broken link?); {options} reads it")
    layout = read_layout(root) or {}
    ignored = sorted(set(layout.get("replaced", {})) - set(needed))
    if ignored:
        raise ResourceError(f"{root}: replaces {ignored}, which {options} does not load: the fine-tuned model "
                            "would be silently unused (refine_face_landmarks=True loads face_landmark_with_attention; "
                            "the fine-tuned pose model needs model_complexity=1)")


def _package_root(solution_base: types.ModuleType) -> str:
    """The resource root ``SolutionBase.__init__`` sets, computed as it computes it."""
    return os.sep.join(os.path.abspath(solution_base.__file__).split(os.sep)[:-3])


def open_solution(build: Callable[[], Any], resource_dir: str | os.PathLike) -> Any:
    """Build a MediaPipe ``SolutionBase`` with ``build()`` whose resources come from ``resource_dir``.

    While ``build`` runs, ``SolutionBase``'s ``resource_util.set_resource_dir(root_path)`` call sets
    ``resource_dir`` instead (only the name ``resource_util`` inside ``mediapipe.python.solution_base`` is
    swapped, under a lock). Then the graph is waited on until idle: every node has opened and read its
    files. Finally the resource directory is set back to the package root (see the module docstring:
    it is process-global) and the swap undone, whatever happened.

    Returns:
        The solution, its models loaded; the caller closes it.

    Raises:
        ResourceError: MediaPipe could not start the graph on the folder (its message names the file).
    """
    from mediapipe.python import solution_base

    root = str(Path(resource_dir).absolute())
    with _LOCK:
        binding = solution_base.resource_util
        redirect = types.SimpleNamespace(set_resource_dir=lambda _package_root: binding.set_resource_dir(root))
        solution = None
        solution_base.resource_util = redirect
        try:
            solution = build()
            graph = getattr(solution, "_graph", None)
            if graph is None or not hasattr(graph, "wait_until_idle"):
                raise RuntimeError(f"{type(solution).__name__} has no started graph (_graph); this helper knows "
                                   f"mediapipe 0.10.21's SolutionBase, not {_mediapipe_version()}")
            graph.wait_until_idle()  # Open() of every node ran: every resource was read from the folder
        except RuntimeError as exc:
            if solution is not None:
                try:
                    solution.close()
                except Exception:  # the graph already failed: its first error is the one to report
                    pass
            raise ResourceError(f"{root}: MediaPipe could not start its graph on this resource folder: {exc}") from exc
        finally:
            solution_base.resource_util = binding
            binding.set_resource_dir(_package_root(solution_base))
    return solution


def open_holistic(resource_dir: str | os.PathLike, **holistic_kwargs) -> Any:
    """``mediapipe.solutions.holistic.Holistic(**holistic_kwargs)`` on the models in ``resource_dir``
    (a folder from :func:`lay_out_resources`); the caller closes it.

    Raises:
        ResourceError: see :func:`check_holistic_folder` and :func:`open_solution`.
    """
    check_holistic_folder(resource_dir, holistic_kwargs.get("model_complexity", 1),
                          holistic_kwargs.get("refine_face_landmarks", False))
    from mediapipe.python.solutions import holistic

    return open_solution(lambda: holistic.Holistic(**holistic_kwargs), resource_dir)


@contextmanager
def mediapipe_holistic(resource_dir: str | os.PathLike, **holistic_kwargs) -> Iterator[Any]:
    """``with mediapipe_holistic(folder, static_image_mode=True) as h: h.process(rgb)``: MediaPipe's own
    Holistic on the fine-tuned files in ``folder`` (:func:`open_holistic`), closed on exit.

    The process-global resource directory points at ``folder`` only while the instance is built;
    inside the block and after it, other solutions built are stock."""
    solution = open_holistic(resource_dir, **holistic_kwargs)
    try:
        yield solution
    finally:
        solution.close()
