"""Prove, per model, that TFLite, the PyTorch module and its ONNX export give the same numbers.

Each model runs on real crops (:mod:`holotune.samples`) through:

* the reference TFLite interpreter (``ai-edge-litert``, XNNPACK, one sample at a time: the
  ``.tflite`` files have a batch of 1),
* the PyTorch module, one sample at a time and as one batch,
* the ONNX export under ONNX Runtime (CPU), as one batch (so the dynamic batch is exercised).

and reports per output the max absolute differences ``torch_vs_tflite``, ``onnx_vs_torch`` and
``batch_vs_single``. Outputs whose spec says ``compare="sigmoid"`` are compared as probabilities.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from holotune.models.factory import create_model, list_models, tflite_path
from holotune.models.spec import ModelSpec
from holotune.samples import sample_crops

DEFAULT_TOLERANCE = 1e-2  # max abs; torch vs TFLite measures ~1e-4..2e-3, TFLite vs itself up to 6e-3


@dataclass
class ModelReport:
    """Parity figures for one model.

    Attributes:
        params: number of parameter elements.
        outputs: output name -> {"torch_vs_tflite", "onnx_vs_torch", "batch_vs_single"} max abs diffs
            (``None`` where that comparison was not run).
        error: why the model could not be run at all, if it could not.
    """

    params: int = 0
    outputs: dict[str, dict[str, float | None]] = field(default_factory=dict)
    error: str | None = None

    def passed(self, tolerance: float) -> bool:
        if self.error is not None:
            return False
        # NaN compares False, so a NaN output fails; None marks a comparison that was not run.
        return all(v <= tolerance for diffs in self.outputs.values() for v in diffs.values() if v is not None)


@dataclass
class VerifyReport:
    """Parity figures for every verified model; ``to_dict()`` is the ``models verify --json`` shape."""

    tolerance: float
    models: dict[str, ModelReport] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(m.passed(self.tolerance) for m in self.models.values())

    def to_dict(self) -> dict:
        return {
            "tolerance": self.tolerance,
            "passed": self.passed,
            "models": {
                name: {
                    "params": m.params,
                    "passed": m.passed(self.tolerance),
                    "outputs": m.outputs,
                    **({"error": m.error} if m.error else {}),
                }
                for name, m in self.models.items()
            },
        }


def run_tflite(spec: ModelSpec, inputs_nhwc: np.ndarray, num_threads: int = 1,
               path: str | Path | None = None) -> list[np.ndarray]:
    """Run a ``.tflite`` file (default: the stock one of ``spec``) on each sample; returns outputs in
    ``spec.outputs`` order, batched."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path or tflite_path(spec.name)), num_threads=num_threads)
    interpreter.allocate_tensors()
    index = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    input_index = interpreter.get_input_details()[0]["index"]
    per_sample = []
    for sample in inputs_nhwc:
        interpreter.set_tensor(input_index, sample[None])
        interpreter.invoke()
        per_sample.append([interpreter.get_tensor(index[o.tflite_name]).copy() for o in spec.outputs])
    return [np.concatenate(parts) for parts in zip(*per_sample)]


def run_onnx(path: str | Path, inputs_nchw: np.ndarray, num_threads: int = 1) -> list[np.ndarray]:
    """Run an ONNX file under ONNX Runtime's CPU provider on one batch."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: inputs_nchw})


def compare_outputs(spec: ModelSpec, name: str, a: np.ndarray, b: np.ndarray) -> float:
    """Max abs difference of output ``name`` (as probabilities where the spec says ``compare="sigmoid"``)."""
    if spec.output(name).compare == "sigmoid":
        # tanh form of the sigmoid: no overflow for logits of -1800
        a, b = (0.5 * (1.0 + np.tanh(0.5 * v.astype(np.float64))) for v in (a, b))
    if a.shape != b.shape:
        raise ValueError(f"output {name!r}: shapes differ, {a.shape} vs {b.shape}")
    return float(np.abs(a - b).max())


def verify_model(name: str, *, onnx_dir: str | Path | None = None, check_onnx: bool = True) -> ModelReport:
    """Verify one model on its real crops; see the module docstring.

    Args:
        name: model name.
        onnx_dir: where to write ``<name>.onnx`` (default: a temporary folder).
        check_onnx: also export to ONNX and compare ONNX Runtime with torch.
    """
    report = ModelReport()
    try:
        model = create_model(name)
        spec = model.spec
        report.params = sum(p.numel() for p in model.parameters())
        inputs, _ = sample_crops(spec)
        reference = run_tflite(spec, inputs)
        nchw = torch.from_numpy(np.ascontiguousarray(inputs.transpose(0, 3, 1, 2)))
        with torch.no_grad():
            batch = [t.numpy() for t in model(nchw)]
            singles = [np.concatenate(parts) for parts in zip(*[[t.numpy() for t in model(nchw[i : i + 1])]
                                                                for i in range(len(nchw))])]
        onnx_out = None
        if check_onnx:
            from holotune.export import export_onnx

            with tempfile.TemporaryDirectory() as tmp:
                path = export_onnx(model, Path(onnx_dir or tmp) / f"{name}.onnx")
                onnx_out = run_onnx(path, nchw.numpy())
        for k, out in enumerate(spec.outputs):
            report.outputs[out.name] = {
                "torch_vs_tflite": compare_outputs(spec, out.name, singles[k], reference[k]),
                "onnx_vs_torch": compare_outputs(spec, out.name, onnx_out[k], batch[k]) if onnx_out is not None else None,
                "batch_vs_single": compare_outputs(spec, out.name, batch[k], singles[k]),
            }
    except Exception as exc:  # one broken model must not hide the others' figures
        report.error = f"{type(exc).__name__}: {exc}"
    return report


def verify_models(
    names: list[str] | None = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    onnx_dir: str | Path | None = None,
    check_onnx: bool = True,
) -> VerifyReport:
    """Verify ``names`` (default: every model); the report says which pass at ``tolerance``."""
    report = VerifyReport(tolerance=tolerance)
    for name in names or list_models():
        report.models[name] = verify_model(name, onnx_dir=onnx_dir, check_onnx=check_onnx)
    return report
