"""The ``prune`` stage: load, prune, export, measure; writes ``out_dir/{model.pt, model.onnx, report.json}``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from holotune.export import export_onnx
from holotune.models import create_model
from holotune.models.tflite_module import TFLiteModule
from holotune.pruning.channels.calibrate import calibration_inputs
from holotune.pruning.channels.plan import prune_channels
from holotune.pruning.checkpoint import save_pruned
from holotune.pruning.l1 import prune_l1
from holotune.pruning.measure import measure_footprint, metric_change
from holotune.pruning.options import PruneOptions, check_options, module_spec
from holotune.pruning.report import PruneReport

L1_NOTE = ("Unstructured L1: the zeroed weights are still stored and multiplied densely, so ONNX Runtime is not "
           "faster (latency before/after differ by noise only) and the raw files keep their size; the gain is in "
           "compressed (gzip) size only, and only on the pruned layers' share of the model.")
CHANNELS_NOTE = ("Structured: whole channels are removed with every weight that writes or reads them, so the "
                 "model is smaller, dense and faster under ONNX Runtime, with the stock input/output signature. "
                 "Its internal shapes are not stock: load model.pt with holotune.pruning.load_pruned. "
                 "No fine-tuning follows the pruning: read the metric change before shipping it.")


def prune(options: PruneOptions) -> PruneReport:
    """The ``prune`` stage: prune ``options.model`` (or the stock model), export it and measure the change.

    Writes ``options.out_dir/{model.pt, model.onnx, report.json}`` (``model.pt``: a plain state_dict
    for l1_norm, :func:`~holotune.pruning.checkpoint.save_pruned`'s format for channels;
    ``report.json``: :meth:`PruneReport.to_dict`). Channel pruning is calibrated on the train
    split's crops; the metrics are scored on ``options.split`` (the evaluate stage's crops).

    Raises:
        holotune.pruning.PruneError: a bad option, before any work, naming it.
        FileNotFoundError: ``options.model`` does not exist.
    """
    module = module_spec(options)
    if options.model is not None and not Path(options.model).is_file():
        raise FileNotFoundError(f"prune.model: {options.model} does not exist (run the finetune stage first)")
    model = create_model(module.model, checkpoint_path=options.model)
    layers = check_options(model, options)
    original = copy.deepcopy(model)
    out_dir = Path(options.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if options.method == "l1_norm":
        sparsity = prune_l1(model, layers, options.sparsity)
        torch.save(model.state_dict(), out_dir / "model.pt")
        outcome = {"sparsity_reached": sparsity["pruned_layers"]["sparsity"], "layers": layers,
                   "sparsity_detail": sparsity, "note": L1_NOTE}
    else:
        outcome = _prune_channels(model, layers, options, out_dir / "model.pt")
    onnx_after = export_onnx(model, out_dir / "model.onnx")
    footprint = measure_footprint(original, model, out_dir / "model.pt", onnx_after, options.latency_runs)
    metrics, metrics_note = metric_change(original, model, options.module, options.shards_dir, options.manifest,
                                          options.split, options.roi_jitter)
    report = PruneReport(method=options.method, module=options.module, model=module.model,
                         source=str(options.model) if options.model else "stock",
                         sparsity_requested=options.sparsity, footprint=footprint, metrics=metrics,
                         metrics_note=metrics_note, out_dir=out_dir, **outcome)
    report.path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report


def _prune_channels(model: TFLiteModule, layers: list[str], options: PruneOptions, path: Path) -> dict:
    """Channel-prune ``model`` in place and save it to ``path``; returns the report's channels-only fields."""
    calibration, source = None, "none: weight L1 norms (calibration_samples=0)"
    if options.calibration_samples:
        calibration, source = calibration_inputs(options.module, options.shards_dir, options.manifest,
                                                 options.calibration_samples)
    plan = prune_channels(model, options.sparsity, layers, calibration=calibration,
                          multiple=options.channel_multiple)
    save_pruned(model, plan["keep"], path)
    return {"sparsity_reached": plan["removed_groups"] / max(plan["groups"], 1),
            "layers": layers or "every channel group that can be pruned consistently",
            "channel_multiple": options.channel_multiple, "calibration": source,
            "channels": {k: plan[k] for k in ("groups", "removed_groups", "pinned_channels")},
            "sites": [s for s in plan["sites"] if s["removed"]], "note": CHANNELS_NOTE}
