"""Export a holotune model to ONNX for ONNX Runtime (CPU), with a dynamic batch dimension.

The graph keeps the stock signature: one input ``input`` (N, 3, H, W) float32 and the outputs
named as in the model's :class:`~holotune.models.spec.ModelSpec`, so the runtime can swap a
fine-tuned export in for a stock one.
"""

from __future__ import annotations

import copy
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
    net = exportable(model)
    example = torch.zeros((2, *input_shape), dtype=torch.float32)
    dynamic = {"x": {0: torch.export.Dim("batch", min=1, max=1024)}} if dynamic_batch else None
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            net,
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=output_names,
            dynamic_shapes=dynamic,
            optimize=True,
            verbose=False,
        )
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
    from holotune.runtime.sessions import stock_model_dir

    directory = Path(directory) if directory else stock_model_dir()
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
    bad = {k: v for k, v in parity.items() if not v <= atol}
    if bad:
        raise ExportParityError(f"{path}: ONNX Runtime differs from torch beyond {atol}: "
                                + ", ".join(f"{k} {v:.3g}" for k, v in bad.items()))
    return {"path": str(path), "bytes": path.stat().st_size, "parity": parity}
