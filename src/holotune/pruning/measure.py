"""What pruning changed: parameters, multiply-adds, file sizes, ONNX Runtime latency and the metrics."""

from __future__ import annotations

import gzip
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from holotune.export import export_onnx
from holotune.models.tflite_module import TFLiteModule
from holotune.runtime.latency import onnx_latency

if TYPE_CHECKING:
    from holotune.evaluation.scoring import RoiJitter


def parameter_count(model: nn.Module, nonzero: bool = False) -> int:
    """Number of scalar parameters (``nonzero``: only those that are not 0)."""
    return sum(int((p != 0).sum()) if nonzero else p.numel() for p in model.parameters())


def multiply_adds(model: TFLiteModule) -> int:
    """Multiply-accumulates of one sample through every conv and linear layer (from the recorded shapes)."""
    total = 0
    for s in model.steps:
        layer = getattr(model, s.layer) if s.layer else None
        if isinstance(layer, nn.Conv2d):
            _, h, w, _ = model.tensor_shape(s.op.outputs[0])
            total += h * w * layer.weight.numel()  # out * in/groups * kh * kw per output pixel
        elif isinstance(layer, nn.Linear):
            total += layer.weight.numel()
    return total


def file_sizes(path: str | Path) -> dict:
    """``{"bytes", "gzip_bytes"}`` of a file; gzip level 9, what an archive or a download holds."""
    data = Path(path).read_bytes()
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0))}


@dataclass(frozen=True)
class Footprint:
    """Size and speed of a model before and after pruning.

    Attributes:
        params: ``{"before", "after", "nonzero_after"}`` scalar parameters.
        macs: ``{"before", "after"}`` multiply-adds per sample (:func:`multiply_adds`).
        sizes: ``{"state_dict" | "onnx": {"before" | "after": file_sizes}}``.
        latency_ms: ``{"before" | "after": {"median_ms", "p10_ms", "p90_ms"}}`` under ONNX Runtime.
        speedup: median latency before / after.
        latency_setup: how the latency was measured.
    """

    params: dict
    macs: dict
    sizes: dict
    latency_ms: dict
    speedup: float
    latency_setup: dict

    def to_dict(self) -> dict:
        return {"params": self.params, "macs": self.macs, "sizes": self.sizes, "latency_ms": self.latency_ms,
                "speedup": self.speedup, "latency_setup": self.latency_setup}


def measure_footprint(original: TFLiteModule, pruned: TFLiteModule, pt_after: Path, onnx_after: Path,
                      runs: int) -> Footprint:
    """Compare ``pruned`` (saved as ``pt_after`` and exported as ``onnx_after``) with ``original``.

    ``original`` is saved and exported to a temporary directory (nothing else is written); the two
    ONNX files are timed interleaved in one process, ``runs`` calls each (batch 1, 1 thread).
    """
    with tempfile.TemporaryDirectory() as tmp:
        pt_before = Path(tmp) / "model.pt"
        torch.save(original.state_dict(), pt_before)
        onnx_before = export_onnx(original, Path(tmp) / "model.onnx")
        sizes = {"state_dict": {"before": file_sizes(pt_before), "after": file_sizes(pt_after)},
                 "onnx": {"before": file_sizes(onnx_before), "after": file_sizes(onnx_after)}}
        latency = onnx_latency({"before": onnx_before, "after": onnx_after}, pruned.spec, runs=runs)
    return Footprint(
        params={"before": parameter_count(original), "after": parameter_count(pruned),
                "nonzero_after": parameter_count(pruned, nonzero=True)},
        macs={"before": multiply_adds(original), "after": multiply_adds(pruned)},
        sizes=sizes,
        latency_ms=latency,
        speedup=latency["before"]["median_ms"] / latency["after"]["median_ms"],
        latency_setup={"runtime": "onnxruntime CPUExecutionProvider", "threads": 1, "batch": 1, "runs": runs,
                       "statistic": "median of interleaved runs, in one process"},
    )


@dataclass(frozen=True)
class MetricChange:
    """The evaluate stage's mean scores of a model before and after pruning, on one split.

    Attributes:
        split: the split scored.
        before, after: :func:`holotune.evaluation.scoring.mean_scores` (``nme``, ``n``...).
        change: after - before, per metric (``n`` excepted).
    """

    split: str
    before: dict[str, float]
    after: dict[str, float]
    change: dict[str, float]

    def to_dict(self) -> dict:
        return {"split": self.split, "before": self.before, "after": self.after, "change": self.change}


def metric_change(before: nn.Module, after: nn.Module, module: str, shards_dir: str | Path | None,
                  manifest: str | Path | None, split: str, jitter: RoiJitter) -> tuple[MetricChange | None, str | None]:
    """Score both models on ``split``'s crops, cut with ``jitter`` (the evaluate stage's ``roi_jitter``).

    Returns:
        (the change, ``None``), or (``None``, why it was not measured): no ``shards_dir``, or no
        labelled ``module`` part in the split.
    """
    from holotune.evaluation.scoring import mean_scores, split_dataset

    if shards_dir is None:
        return None, "no shards_dir: metric change not measured"
    try:
        dataset = split_dataset(shards_dir, split, manifest, module, jitter)
    except (ValueError, FileNotFoundError) as exc:  # no labelled part of this module in the split
        return None, f"metric change not measured: {exc}"
    scores_before, scores_after = mean_scores(before, dataset), mean_scores(after, dataset)
    change = {k: scores_after[k] - v for k, v in scores_before.items() if k != "n" and k in scores_after}
    return MetricChange(split, scores_before, scores_after, change), None
