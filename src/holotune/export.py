"""Export a holotune model to ONNX for ONNX Runtime (CPU), with a dynamic batch dimension.

The graph keeps the stock signature: one input ``input`` (N, 3, H, W) float32 and the outputs
named as in the model's :class:`~holotune.models.spec.ModelSpec`, so the runtime can swap a
fine-tuned export in for a stock one.
"""

from __future__ import annotations

import copy
import inspect
import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

INPUT_NAME = "input"


class SplitPReLU(nn.Module):
    """PReLU rewritten as depthwise 1x1 convs so ONNX Runtime keeps it in its fast blocked conv layout.

    ORT's ``PRelu`` node is not fused with the preceding Conv and gets wrapped in layout reorders
    (65% of face_landmark's run time); element-wise forms (``relu(x) - a * relu(-x)``, or
    ``max(x, a * x)``: ``Max`` has no blocked kernel) need reorders too. Two exact forms, picked per
    module from its alphas when it is built:

    * every alpha <= 1: ``a * x + relu((1 - a) * x)`` (as ``relu((1-a)x) = (1-a) relu(x)`` for
      ``1 - a >= 0``): two convs, ORT fuses the Relu into one and the Add into the other;
    * otherwise: ``(1 - a) * relu(x) + a * x``: two convs and a standalone Relu. Written in this
      order, ORT runs the ``a * x`` conv first and fuses the Add into the Relu-branch conv; the
      reverse order ran 4-13% slower.

    Measured on 2 vCPUs, ratio to TFLite/XNNPACK at 1 thread, range over 4 interleaved runs:
    face_landmark 1.09-1.19 (``a*x + (1-a)*relu(x)`` for every module) / 0.91-0.99 (this);
    hand_recrop 1.26-1.36 / 1.05-1.15. Earlier single run: PRelu node 2.89 (face) / 1.68 (hand),
    element-wise 1.52 / 1.64. Used only at export time; training keeps ``nn.PReLU``.
    """

    def __init__(self, prelu: nn.PReLU):
        super().__init__()
        self.weight = prelu.weight
        self.fold_relu = bool(prelu.weight.detach().max() <= 1)  # decided here: export cannot branch on data

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            alpha = self.weight.reshape((1, -1) + (1,) * (x.dim() - 2))
            return alpha * x + (1 - alpha) * F.relu(x)
        channels = x.shape[1]
        alpha = self.weight.expand(channels).reshape(channels, 1, 1, 1)
        if self.fold_relu:
            return F.conv2d(x, alpha, groups=channels) + F.relu(F.conv2d(x, 1 - alpha, groups=channels))
        return F.conv2d(F.relu(x), 1 - alpha, groups=channels) + F.conv2d(x, alpha, groups=channels)


def exportable(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every ``nn.PReLU`` swapped for :class:`SplitPReLU`."""
    model = copy.deepcopy(model).eval()
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.PReLU):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, SplitPReLU(module))
    return model


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    input_shape: tuple[int, int, int] | None = None,
    output_names: list[str] | None = None,
    opset: int = 18,
    dynamic_batch: bool = True,
) -> Path:
    """Write ``model`` as an ONNX file.

    Args:
        model: a module taking one (N, C, H, W) tensor; a :class:`~holotune.models.TFLiteModule` needs no more.
        path: destination ``.onnx`` file (parent folders are created).
        input_shape: (C, H, W); defaults to ``model.input_shape``.
        output_names: defaults to ``model.output_names``.
        opset: ONNX opset; the dynamo exporter needs 18 or later.
        dynamic_batch: export the batch dimension as symbolic ``batch``.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    input_shape = input_shape or model.input_shape
    output_names = output_names or list(model.output_names)
    if opset < 18:
        raise ValueError(f"opset {opset} is too old: the dynamo exporter builds at 18 and cannot down-convert Pad")
    example = torch.zeros((2, *input_shape), dtype=torch.float32)
    return _save_export(exportable(model), example, INPUT_NAME, output_names, path, opset, dynamic_batch)


def _save_export(net: nn.Module, example: Tensor, input_name: str, output_names: list[str], path: Path,
                 opset: int = 18, dynamic_batch: bool = True) -> Path:
    """Export ``net(example)`` with the dynamo exporter (one input, batch dimension symbolic) to ``path``."""
    arg = next(iter(inspect.signature(net.forward).parameters))  # dynamic_shapes is keyed by forward's argument
    dynamic = {arg: {0: torch.export.Dim("batch", min=1, max=1024)}} if dynamic_batch else None
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(net, (example,), dynamo=True, opset_version=opset, input_names=[input_name],
                                    output_names=output_names, dynamic_shapes=dynamic, optimize=True, verbose=False)
    # The exporter annotates every node with its Python stack trace (absolute source paths, line
    # numbers): build-machine detail that made a merged export differ in size from the stock one
    # by a few KB and the same model's bytes depend on where and from which checkout it was built.
    for node in program.model.graph.all_nodes():
        node.metadata_props.clear()
    program.save(str(path))
    return path


class _quiet_exporter:
    """Silence the exporter's progress logging (it prints several lines per model)."""

    def __enter__(self):
        self._levels = {n: logging.getLogger(n).level for n in ("torch.onnx", "onnxscript", "torch.export")}
        for n in self._levels:
            logging.getLogger(n).setLevel(logging.ERROR)

    def __exit__(self, *exc):
        for n, level in self._levels.items():
            logging.getLogger(n).setLevel(level)


def export_stock_models(directory: str | Path | None = None, *, force: bool = False) -> dict[str, Path]:
    """Export every stock MediaPipe model to ``directory`` (default: where the runtime looks).

    Existing files are kept unless ``force``; returns model name -> ONNX path.
    """
    from holotune.models import create_model, list_models
    from holotune.runtime.sessions import stock_export_dir

    directory = Path(directory) if directory else stock_export_dir()
    paths = {}
    for name in list_models():
        path = directory / f"{name}.onnx"
        if force or not path.is_file():
            tmp = path.with_suffix(".onnx.partial")
            export_onnx(create_model(name), tmp)
            tmp.replace(path)  # atomic: a reader never sees a half-written model
        paths[name] = path
    return paths


class ExportParityError(RuntimeError):
    """An exported ONNX model whose outputs differ from torch beyond the tolerance."""


def export_finetuned(
    module: str, state_dict_path: str | Path, path: str | Path, *, atol: float = 1e-2
) -> dict:
    """Export a fine-tuned (LoRA-merged) ``model.pt`` with the stock signature, and prove ONNX == torch.

    Args:
        module: ``face_mesh`` | ``hands`` | ``pose``.
        state_dict_path: ``models/<module>/model.pt`` from the finetune stage (stock layer layout).
        path, atol: as :func:`export_checked`.

    Returns / Raises: as :func:`export_checked`.
    """
    from holotune.models import MODULE_MODELS, create_model

    return export_checked(create_model(MODULE_MODELS[module], checkpoint_path=state_dict_path), path, atol=atol)


def export_checked(model: nn.Module, path: str | Path, *, atol: float = 1e-2) -> dict:
    """Export a landmark model (stock layer layout, e.g. LoRA merged) and prove ONNX == torch on real crops.

    Args:
        model: a :class:`~holotune.models.TFLiteModule` (its ``spec`` names the outputs).
        path: destination ``.onnx``.
        atol: max abs difference allowed between ONNX Runtime and torch, per output, on real crops
            (outputs compared as :class:`~holotune.models.spec.OutputSpec` says, e.g. segmentation
            after the sigmoid).

    Returns:
        ``{"path", "bytes", "parity": {output: max abs diff}}``.

    Raises:
        ExportParityError: naming the output and the difference, if any exceeds ``atol``.
    """
    import numpy as np

    from holotune.models.verification import compare_outputs, run_onnx
    from holotune.samples import sample_crops

    path = export_onnx(model, path)
    inputs, _ = sample_crops(model.spec)
    nchw = np.ascontiguousarray(inputs.transpose(0, 3, 1, 2))
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(nchw))]
    got = run_onnx(path, nchw)
    parity = {o.name: compare_outputs(model.spec, o.name, g, e)
              for o, g, e in zip(model.spec.outputs, got, expected)}
    _check_parity(path, parity, atol)
    return {"path": str(path), "bytes": path.stat().st_size, "parity": parity}


def set_metadata(path: str | Path, properties: dict[str, str]) -> None:
    """Add (or replace) ONNX metadata properties of the file at ``path``."""
    import onnx

    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key not in properties]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in properties.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


class WithGestureHead(nn.Module):
    """A hand landmark model plus its image gesture head: one input, the stock outputs, then ``gesture``
    (N, C) logits; exported as one ONNX model (one trunk run serves both heads)."""

    def __init__(self, model: nn.Module, classifier: nn.Module):
        super().__init__()
        self.model, self.classifier = model, classifier
        self.spec = model.spec

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        features = self.model.forward_features(x)
        return (*self.model.forward_head(features), self.classifier(features[self.classifier.feature]))


def export_with_gesture_head(model: nn.Module, classifier: nn.Module, path: str | Path, *, atol: float = 1e-2) -> dict:
    """Export a hand model with its image gesture head (output ``gesture``, class names in the metadata)
    and prove ONNX == torch on real crops, for every output.

    Returns ``{"path", "bytes", "parity": {output: max abs diff}}``; raises :class:`ExportParityError`.
    """
    import json

    import numpy as np

    from holotune.gesture import CLASS_NAMES_KEY, GESTURE_OUTPUT, INPUT_KIND_KEY
    from holotune.models.verification import compare_outputs, run_onnx
    from holotune.samples import sample_crops

    wrapper = WithGestureHead(model, classifier.eval()).eval()
    names = [*model.spec.output_names, GESTURE_OUTPUT]
    path = export_onnx(wrapper, path, input_shape=model.input_shape, output_names=names)
    set_metadata(path, {CLASS_NAMES_KEY: json.dumps(list(classifier.class_names)), INPUT_KIND_KEY: "image"})
    inputs, _ = sample_crops(model.spec)
    nchw = np.ascontiguousarray(inputs.transpose(0, 3, 1, 2))
    with torch.no_grad():
        expected = [t.numpy() for t in wrapper(torch.from_numpy(nchw))]
    got = run_onnx(path, nchw)
    parity = {o.name: compare_outputs(model.spec, o.name, g, e) for o, g, e in zip(model.spec.outputs, got, expected)}
    parity[GESTURE_OUTPUT] = float(np.abs(got[-1] - expected[-1]).max())
    _check_parity(path, parity, atol)
    return {"path": str(path), "bytes": path.stat().st_size, "parity": parity}


def export_gesture_head(head: nn.Module, path: str | Path, features, *, atol: float = 1e-4) -> dict:
    """Export a landmark gesture head (:class:`~holotune.training.heads.LandmarkHead`) as ``gesture.onnx``:
    input ``features`` (N, FEATURE_SIZE), output ``logits`` (N, C), the class names and feature version
    in the metadata; prove ONNX == torch on ``features`` ((M, FEATURE_SIZE) float32, e.g. the test hands).

    Returns ``{"path", "bytes", "parity": {"logits": max abs diff}}``; raises :class:`ExportParityError`.
    """
    import json

    import numpy as np
    import onnxruntime as ort

    from holotune.gesture import (
        CLASS_NAMES_KEY,
        FEATURE_SIZE,
        FEATURE_VERSION,
        FEATURE_VERSION_KEY,
        FEATURES_INPUT,
        INPUT_KIND_KEY,
        LOGITS_OUTPUT,
    )

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = copy.deepcopy(head).eval()
    _save_export(head, torch.zeros(2, FEATURE_SIZE), FEATURES_INPUT, [LOGITS_OUTPUT], path)
    set_metadata(path, {CLASS_NAMES_KEY: json.dumps(list(head.class_names)), INPUT_KIND_KEY: "landmarks",
                        FEATURE_VERSION_KEY: FEATURE_VERSION})
    features = np.ascontiguousarray(features, dtype=np.float32)
    with torch.no_grad():
        expected = head(torch.from_numpy(features)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([LOGITS_OUTPUT], {FEATURES_INPUT: features})[0]
    parity = {LOGITS_OUTPUT: float(np.abs(got - expected).max())}
    _check_parity(path, parity, atol)
    return {"path": str(path), "bytes": path.stat().st_size, "parity": parity}


def _check_parity(path: Path, parity: dict[str, float], atol: float) -> None:
    bad = {k: v for k, v in parity.items() if not v <= atol}
    if bad:
        raise ExportParityError(f"{path}: ONNX Runtime differs from torch beyond {atol}: "
                                + ", ".join(f"{k} {v:.3g}" for k, v in bad.items()))
