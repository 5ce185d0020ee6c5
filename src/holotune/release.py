"""The ``export`` stage: a fine-tuned model -> a servable, checked, documented, registered ONNX model.

:func:`release` does, in order, and stops at the first failure with a message naming the file:

1. **merge**: the stock weights plus the run's peft adapter (``adapter/``), folded into plain layers
   (``merge_and_unload``); the merged model must equal the unmerged one on real crops, and equal the
   ``model.pt`` the finetune stage wrote. A full fine-tune (no adapter) uses ``model.pt`` as is;
2. **export**: ONNX with the stock model's input and output names and shapes (checked with the
   runtime's own signature check, so ``holotune.runtime`` can swap it in), ONNX Runtime == torch on
   real crops (:class:`~holotune.export.ExportParityError` otherwise);
3. **measure**: file size and ONNX Runtime latency of the export and of the stock model, side by
   side in one run (:func:`holotune.runtime.latency.onnx_latency`: 1 thread, interleaved, median);
4. **document**: ``MODEL_CARD.md`` (data, params, metrics before/after, parity, size, latency) and
   ``export.json`` (the same facts, machine-readable);
   With ``tflite`` on, the same weights are also written back into a copy of MediaPipe's own
   ``.tflite`` (:mod:`holotune.tflite_export`: same ops, names, float16 storage and size), the
   TFLite interpreter checked against torch on real crops and timed next to the stock file;
5. **register** (optional): a new version of ``holotune-<module>`` in the MLflow registry with
   tags (git commit, data hash, params, key metrics, each file's sha256) and alias ``challenger``,
   ``model.onnx`` and ``model.tflite`` on the same version; version 1 is the stock model. Promotion to ``champion`` is a separate, human decision (``holotune models promote``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from holotune.config import build
from holotune.tflite_export import FLOAT16_RTOL

log = logging.getLogger(__name__)


# Merging the adapter again must reproduce finetune's model.pt up to float32 rounding of the same
# sums (seen ~1e-7); anything larger means the two files come from different runs.
SAME_RUN_WEIGHT_ATOL = 1e-5
# MLflow limits a tag value to 5,000 characters; the params tag keeps a margin (the full params are
# in export.json and the model card).
MLFLOW_TAG_CHARS = 4900


class ReleaseError(RuntimeError):
    """An export that must not ship; the message names the file and the check that failed."""


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """What to export and where (``conf/export``; ``params`` and ``merge_atol`` are not set there).

    Attributes:
        module: ``face_mesh`` | ``hands`` | ``pose``.
        model_dir: the finetune stage's output (``model.pt``, ``adapter/``, ``metrics.json``).
        out_dir: ``model.onnx``, ``model.tflite``, ``MODEL_CARD.md`` and ``export.json`` go here.
        metrics: the evaluate stage's ``metrics.json`` (metrics before/after for the card and tags).
        prune_report: the prune stage's ``report.json`` (summarized in the card), optional.
        manifest, shards_dir: the data (hashed for the tags, counted for the card).
        params: the run's parameters (a plain dict) for the card and the tags.
        atol: ONNX vs torch tolerance, per output.
        merge_atol: merged vs unmerged tolerance, max abs difference per output (landmarks are crop
            pixels: merging reassociates float32 sums, which moves outputs by ~1e-4 px, seen up to 1.1e-4).
        latency_runs: timed runs per model for the latency comparison.
        task_input: ``image``: the landmark model (with its image gesture head as a ``gesture`` output when
            the run trained one, ``classifier.pt``); ``landmarks``: the landmark gesture head alone
            (``gesture.onnx``, registered as ``holotune-gesture``; :func:`release_gesture_head`).
        register: register the export in the MLflow registry.
        tracking_uri: MLflow tracking/registry URI.
        tflite: also write ``model.tflite`` (the landmark model's weights in MediaPipe's own file; an image
            gesture head stays in the ONNX file only, as MediaPipe's graph has no place for it).
        tflite_rtol: TFLite interpreter vs torch bound, a fraction of each output's scale
            (:data:`holotune.tflite_export.FLOAT16_RTOL`).
        tags: extra tags on the registered version (the service's jobs set ``holotune.job_id``); the
            tags the export computes (commit, data hash, metrics, ``gate_passed``) win over a same-named one.
    """

    module: str
    model_dir: str
    out_dir: str
    metrics: str | None
    prune_report: str | None
    manifest: str | None
    shards_dir: str | None
    params: dict | None = None
    atol: float
    merge_atol: float = 1e-3
    latency_runs: int
    task_input: str
    register: bool
    tracking_uri: str | None
    tflite: bool
    tflite_rtol: float = FLOAT16_RTOL
    tags: dict[str, str]

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "ExportOptions":
        """From the resolved config: the ``export`` section, with the run's ``module``, ``task`` and
        ``finetune`` sections as ``params`` (for the model card and the registry tags)."""
        return build(cls, {**cfg["export"], "params": {k: cfg[k] for k in ("module", "task", "finetune")}}, "export")


def merged_model(module: str, model_dir: str | os.PathLike, merge_atol: float = 1e-3) -> tuple[torch.nn.Module, dict]:
    """The fine-tuned model with its LoRA adapter merged into the stock weights, checked.

    Returns ``(model, record)`` where ``record`` holds ``merged_vs_unmerged`` and
    ``merged_vs_model_pt`` (max abs differences) and ``source`` (``adapter`` or ``model.pt``).
    """
    from holotune.adapters import merge_lora
    from holotune.models import MODULE_MODELS, create_model
    from holotune.samples import sample_crops

    model_dir = Path(model_dir)
    model_pt, adapter = model_dir / "model.pt", model_dir / "adapter"
    if not model_pt.is_file():
        raise ReleaseError(f"{model_pt}: no fine-tuned model (run the finetune stage)")
    name = MODULE_MODELS[module]
    if not (adapter / "adapter_config.json").is_file():
        return create_model(name, checkpoint_path=model_pt).eval(), {"source": "model.pt"}
    from peft import PeftModel

    unmerged = PeftModel.from_pretrained(create_model(name), str(adapter)).eval()
    merged = merge_lora(copy.deepcopy(unmerged)).eval()
    inputs, _ = sample_crops(merged.spec)
    x = torch.from_numpy(np.ascontiguousarray(inputs.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        diff = max(float((a - b).abs().max()) for a, b in zip(merged(x), unmerged(x)))
    if not diff <= merge_atol:
        raise ReleaseError(f"{adapter}: the merged model differs from the unmerged one by {diff:.3g} (> {merge_atol})")
    saved = torch.load(model_pt, map_location="cpu", weights_only=True)
    state = merged.state_dict()
    if set(saved) != set(state):
        raise ReleaseError(f"{model_pt} and {adapter} hold different layers: is one of them stale?")
    weight_diff = max(float((state[k] - saved[k]).abs().max()) for k in state)
    if weight_diff > SAME_RUN_WEIGHT_ATOL:
        raise ReleaseError(f"{adapter} merged differs from {model_pt} by {weight_diff:.3g}: they come from different "
                           "runs (re-run the finetune stage)")
    return merged, {"source": "adapter", "merged_vs_unmerged": diff, "merged_vs_model_pt": weight_diff}


def file_hash(*paths: str | os.PathLike | None) -> str:
    """sha256 (first 16 hex digits) over the bytes of the given files (missing ones skipped)."""
    digest = hashlib.sha256()
    for path in paths:
        if path and Path(path).is_file():
            digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def git_commit(cwd: str | os.PathLike = ".") -> str:
    """The working tree's commit (``+dirty`` if it has changes), or ``unknown`` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def key_metrics(metrics: dict | None) -> dict[str, float]:
    """The headline figures of an evaluate ``metrics.json``: NME (%) before/after and change per split."""
    out: dict[str, float] = {}
    if not metrics:
        return out
    for split in ("reference", "shifted", "all"):
        s = metrics.get("splits", {}).get(split)
        if s:
            out[f"{split}.nme.baseline"] = s["baseline"]["nme"]
            out[f"{split}.nme.finetuned"] = s["finetuned"]["nme"]
            out[f"{split}.nme.change_pct"] = s["delta"]["nme_pct"]
    if "classification" in metrics:
        out["classification.accuracy"] = metrics["classification"]["finetuned"]["accuracy"]
        out["classification.macro_f1"] = metrics["classification"]["finetuned"]["macro_f1"]
    return out


def _str_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """``export.tags`` as MLflow tag strings (a YAML number or bool becomes its text)."""
    return {str(k): str(v) for k, v in (tags or {}).items()}


def release(options: ExportOptions) -> dict:
    """Merge, export, check, measure, document and (optionally) register; returns ``export.json``'s content."""
    import onnx

    from holotune.export import export_checked
    from holotune.modelcard import write_model_card
    from holotune.models.spec import UnknownModuleError, get_module
    from holotune.registry import sha256
    from holotune.runtime.latency import onnx_latency
    from holotune.runtime.sessions import ModelLoadError, check_signature, ensure_stock_models

    if options.task_input == "landmarks":
        return release_gesture_head(options)
    try:
        name = get_module(options.module, "export.module").model
    except UnknownModuleError as error:
        raise ReleaseError(str(error)) from None
    out_dir = Path(options.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, merge = merged_model(options.module, options.model_dir, options.merge_atol)
    onnx_path = out_dir / "model.onnx"
    classifier_path = Path(options.model_dir) / "classifier.pt"
    if classifier_path.is_file():  # one model, several heads: the image gesture head is an extra output
        from holotune.export import export_with_gesture_head
        from holotune.training.heads import load_class_head

        exported = export_with_gesture_head(model, load_class_head(classifier_path), onnx_path, atol=options.atol)
    else:
        exported = export_checked(model, onnx_path, atol=options.atol)
    try:
        check_signature(onnx.load(str(onnx_path)), model.spec, onnx_path)
    except ModelLoadError as error:
        raise ReleaseError(f"{onnx_path}: not swappable for the stock model: {error}") from None

    tflite = export_tflite_checked(model, out_dir / "model.tflite", options) if options.tflite else None
    stock_path = ensure_stock_models([name])[name]
    timed = onnx_latency({"stock": stock_path, "finetuned": onnx_path}, model.spec, runs=options.latency_runs)
    latency = {k: v["median_ms"] for k, v in timed.items()}
    metrics = json.loads(Path(options.metrics).read_text()) if options.metrics and Path(options.metrics).is_file() else None
    prune = (json.loads(Path(options.prune_report).read_text())
             if options.prune_report and Path(options.prune_report).is_file() else None)
    record = {
        "module": options.module,
        "model": name,
        "onnx": str(onnx_path),
        "merge": merge,
        "parity": {"onnx_vs_torch": exported["parity"], "atol": options.atol},
        "size_bytes": {"stock": stock_path.stat().st_size, "finetuned": onnx_path.stat().st_size},
        "latency_ms": {**latency, "runs": options.latency_runs, "threads": 1, "batch": 1},
        "tflite": tflite,
        "files": {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size}
                  for p in (onnx_path, out_dir / "model.tflite") if p == onnx_path or tflite},
        "data_hash": file_hash(options.manifest, Path(options.shards_dir or ".") / "index.json"),
        "git_commit": git_commit(),
        "key_metrics": key_metrics(metrics),
        "gate": metrics.get("gate") if metrics else None,
        "prune": prune,
        "params": options.params or {},
        "registered": None,
    }
    if options.register:
        from holotune.registry import CHALLENGER, register_model, registered_name

        tags = {**_str_tags(options.tags), "git_commit": record["git_commit"], "data_hash": record["data_hash"],
                "params": json.dumps(options.params or {}, sort_keys=True)[:MLFLOW_TAG_CHARS],
                **{f"metric.{k}": f"{v:.4f}" for k, v in record["key_metrics"].items()}}
        if record["gate"]:  # no evaluation, no gate: untagged, so promotion needs no --force for it
            tags["gate_passed"] = str(bool(record["gate"]["passed"])).lower()
        version = register_model(onnx_path, options.module, tags=tags, tracking_uri=options.tracking_uri,
                                 tflite_path=tflite["path"] if tflite else None)
        record["registered"] = {"name": registered_name(options.module), "version": version, "alias": CHALLENGER,
                                "uri": f"models:/{registered_name(options.module)}/{version}",
                                "tags": {k: tags[k] for k in _str_tags(options.tags)}}
    card = write_model_card(out_dir / "MODEL_CARD.md", record, metrics, options.manifest)
    if record["registered"]:
        from holotune.registry import attach_artifact

        attach_artifact(record["registered"]["name"], record["registered"]["version"], card, options.tracking_uri)
    (out_dir / "export.json").write_text(json.dumps(record, indent=2))
    return record


def export_tflite_checked(model: torch.nn.Module, path: Path, options: ExportOptions) -> dict:
    """``model.tflite``: the weights written into MediaPipe's file, checked (TFLite interpreter vs torch) and
    timed next to the stock file; the record for ``export.json``'s ``tflite`` key."""
    from holotune.tflite_export import TFLiteExportError, export_tflite, tflite_latency

    try:
        written = export_tflite(model, path, rtol=options.tflite_rtol)
    except TFLiteExportError as error:
        raise ReleaseError(f"{path}: {error}") from None
    timed = tflite_latency({"stock": written["source"], "finetuned": path}, model.spec, runs=options.latency_runs)
    return {
        "path": str(path),
        "drop_in_for": Path(written["source"]).name,
        "weights_changed": written["weights_changed"],
        "parity": {"tflite_vs_torch": written["parity"], "tflite_vs_torch_float16_weights":
                   written["parity_float16_weights"], "bounds": written["bounds"]},
        "size_bytes": {"stock": Path(written["source"]).stat().st_size, "finetuned": written["bytes"]},
        "latency_ms": {k: v["median_ms"] for k, v in timed.items()},
    }


def release_gesture_head(options: ExportOptions) -> dict:
    """Export, check, measure, document and (optionally) register a landmark gesture head.

    Writes ``gesture.onnx`` (ONNX == torch on the test split's hands), ``MODEL_CARD.md`` and
    ``export.json`` under ``out_dir``; registers a new version of ``holotune-gesture`` (alias ``challenger``).
    """
    from holotune.data.hands import load_hands
    from holotune.export import export_gesture_head
    from holotune.gesture import FEATURE_SIZE, GestureModel
    from holotune.modelcard import write_gesture_card
    from holotune.runtime.latency import gesture_latency
    from holotune.training.gesture import GESTURE_FILE
    from holotune.training.heads import load_landmark_head

    head_path = Path(options.model_dir) / GESTURE_FILE
    if not head_path.is_file():
        raise ReleaseError(f"{head_path}: no landmark gesture head (run the finetune stage with task.input=landmarks)")
    head = load_landmark_head(head_path)
    out_dir = Path(options.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    features = np.zeros((0, FEATURE_SIZE), np.float32)
    if options.manifest and Path(options.manifest).is_file():
        features = load_hands(options.manifest, "test", head.class_names).features
    if not len(features):  # parity still needs inputs: spread like real features (unit scale)
        features = np.random.default_rng(0).normal(size=(64, FEATURE_SIZE)).astype(np.float32)
    onnx_path = out_dir / "gesture.onnx"
    exported = export_gesture_head(head, onnx_path, features, atol=options.atol)
    model = GestureModel(onnx_path)  # the runtime's own checks: what serving will load
    metrics = json.loads(Path(options.metrics).read_text()) if options.metrics and Path(options.metrics).is_file() else None
    record = {
        "module": "gesture",
        "model": "landmark gesture head",
        "onnx": str(onnx_path),
        "class_names": model.class_names,
        "parity": {"onnx_vs_torch": exported["parity"], "atol": options.atol, "samples": len(features)},
        "size_bytes": {"finetuned": onnx_path.stat().st_size},
        "latency_ms": {**gesture_latency(model, features, runs=max(options.latency_runs, 200)), "threads": 1},
        "data_hash": file_hash(options.manifest),
        "git_commit": git_commit(),
        "key_metrics": key_metrics(metrics),
        "gate": metrics.get("gate") if metrics else None,
        "params": options.params or {},
        "registered": None,
    }
    if options.register:
        from holotune.registry import CHALLENGER, register_gesture, registered_name

        tags = {**_str_tags(options.tags), "git_commit": record["git_commit"], "data_hash": record["data_hash"],
                "params": json.dumps(options.params or {}, sort_keys=True)[:MLFLOW_TAG_CHARS],
                **{f"metric.{k}": f"{v:.4f}" for k, v in record["key_metrics"].items()}}
        version = register_gesture(onnx_path, tags=tags, tracking_uri=options.tracking_uri)
        name = registered_name("gesture")
        record["registered"] = {"name": name, "version": version, "alias": CHALLENGER, "uri": f"models:/{name}/{version}",
                                "tags": {k: tags[k] for k in _str_tags(options.tags)}}
    card = write_gesture_card(out_dir / "MODEL_CARD.md", record, metrics)
    if record["registered"]:
        from holotune.registry import attach_artifact

        attach_artifact(record["registered"]["name"], record["registered"]["version"], card, options.tracking_uri)
    (out_dir / "export.json").write_text(json.dumps(record, indent=2))
    return record


def summary(record: dict) -> list[str]:
    """The export stage's report lines for a :func:`release` (or :func:`release_gesture_head`) record."""
    size, latency, parity = record["size_bytes"], record["latency_ms"], record["parity"]["onnx_vs_torch"]
    if record["module"] == "gesture":
        lines = [f"{record['onnx']}: ONNX vs torch max {parity['logits']:.2g}; size {size['finetuned']:,} B; "
                 f"{latency['per_hand_ms']:.4f} ms per hand; classes {record['class_names']}"]
    else:
        lines = [f"{record['onnx']}: ONNX vs torch max {max(parity.values()):.2g}; size {size['finetuned']:,} B "
                 f"(stock {size['stock']:,}); latency {latency['finetuned']:.2f} ms (stock {latency['stock']:.2f})"]
    if record.get("tflite"):
        t = record["tflite"]
        lines.append(f"{t['path']}: drop-in {t['drop_in_for']}; TFLite vs torch max "
                     f"{max(t['parity']['tflite_vs_torch'].values()):.2g} (float16 weights; within its bound); "
                     f"size {t['size_bytes']['finetuned']:,} B (stock {t['size_bytes']['stock']:,}); latency "
                     f"{t['latency_ms']['finetuned']:.2f} ms (stock {t['latency_ms']['stock']:.2f})")
    if record["registered"]:
        r = record["registered"]
        lines.append(f"registered {r['name']} version {r['version']} as @{r['alias']}; promote with "
                     f"`holotune models promote {r['name']} {r['version']}`")
    return lines
