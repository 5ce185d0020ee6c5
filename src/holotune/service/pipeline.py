"""A job's stage command lines: the same ``stages/*.py`` scripts the CLI and ``dvc repro`` run,
with Hydra overrides built from the request; and what a job's stages leave behind, read back.

A fine-tuning job runs ingest -> tfrecord -> finetune -> evaluate -> export: the model is compared
with stock on the job's own test split (the evaluate stage exits 1 when the forgetting gate fails,
so the job fails there, unexported and unregistered), then exported (merged ONNX and ``.tflite``)
and registered as a new version with alias ``challenger``, tagged ``holotune.job_id``. A pruning
job runs prune on a finished fine-tuning job's outputs. Every path a stage writes is inside the
job's folder (``paths.*`` overrides), except ``checkpoint_dir`` when the request names one. Values
go into the override grammar double-quoted; what a quoted Hydra string would still interpret
(``$`` interpolation, quotes, backslashes) is refused instead of escaped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from holotune.registry import JOB_TAG  # the registered version's tag naming the job that made it
from holotune.runtime.image import IMAGE_SUFFIXES, VIDEO_SUFFIXES

# The flags dvc.yaml passes: run in the working directory, no Hydra output folders, no Hydra logging.
HYDRA_FLAGS = ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=disabled",
               "hydra/hydra_logging=disabled"]
# Request knob -> finetune config key, for the knobs that map one to one.
FINETUNE_KNOBS = {
    "epochs": "finetune.epochs", "batch_size": "finetune.batch_size", "learning_rate": "finetune.learning_rate",
    "lora_rank": "finetune.lora_rank", "freeze_backbone": "finetune.freeze_backbone",
    "validation_split": "finetune.validation_split", "gradient_clip": "finetune.gradient_clip",
    "mixed_precision": "finetune.mixed_precision", "cache_dataset": "finetune.cache_dataset",
    "lora_placement": "finetune.lora_placement", "seed": "finetune.seed", "max_time": "finetune.max_time",
    "limit_train_batches": "trainer.limit_train_batches",
    "test_split": "ingest.test_split", "allow_regression": "evaluate.allow_regression",
}
FINETUNE_STAGES = ("ingest", "tfrecord", "finetune", "evaluate", "export")
_UNSAFE_IN_QUOTES = re.compile(r"[\x00-\x1f\x7f'\"\\$]")


class DatasetKindError(ValueError):
    """The dataset's kind cannot be told from its files; the request must name ``dataset_kind``."""


def quote(value: str) -> str:
    """``value`` as a double-quoted Hydra override string (taken literally; double quotes keep the
    logged shell command readable).

    Raises:
        ValueError: ``value`` holds a quote, backslash, ``$`` or control character.
    """
    bad = _UNSAFE_IN_QUOTES.search(value)
    if bad:
        raise ValueError(f"{value!r}: character {bad.group()!r} cannot be passed to a stage")
    return f'"{value}"'


def literal(value) -> str:
    """A request value in Hydra's override grammar: bools, ints, floats as such; strings quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # '0.0001', '1e-05': both are floats to Hydra's grammar
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(literal(v) for v in value) + "]"
    if value is None:
        return "null"
    return quote(str(value))


def detect_dataset_kind(path: Path, task_type: str | None) -> str:
    """The ingest source kind of ``path``: ``tfrecord``, ``labelled``, ``class_folders`` or ``unlabelled``.

    Files: ``*.tfrecord*`` -> tfrecord, ``.jsonl``/``.json``/``.csv`` -> labelled, an image or video ->
    unlabelled. Folders: any TFRecord -> tfrecord, any ``.json`` sidecar -> labelled, class
    sub-folders with ``task_type=classification`` -> class_folders, else unlabelled.
    """
    if path.is_file():
        suffix = path.suffix.lower()
        if ".tfrecord" in path.name:
            return "tfrecord"
        if suffix in (".jsonl", ".json", ".csv"):
            return "labelled"
        if suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES:
            return "unlabelled"
        raise DatasetKindError(f"cannot tell what kind of dataset {path.name} is (suffix {suffix or '(none)'!r}); "
                               "set dataset_kind")
    children = list(path.iterdir())
    if any(".tfrecord" in p.name for p in children):
        return "tfrecord"
    if any(p.name.endswith(".json") for p in children):
        return "labelled"
    if task_type == "classification" and any(p.is_dir() for p in children):
        return "class_folders"
    return "unlabelled"


def _stage(project_root: Path, python: str, cwd: Path, stage: str, overrides: list[str]) -> dict:
    return {"stage": stage, "argv": [python, str(project_root / "stages" / f"{stage}.py"), *overrides, *HYDRA_FLAGS],
            "cwd": str(cwd)}


def _path_overrides(job_dir: Path) -> list[str]:
    return [f"paths.data={quote(str(job_dir / 'data'))}", f"paths.models={quote(str(job_dir / 'models'))}",
            f"paths.reports={quote(str(job_dir / 'reports'))}"]


def finetune_commands(request: dict, job_dir: Path, *, project_root: Path, python: str, cwd: Path,
                      tracking_uri: str) -> list[dict]:
    """ingest -> tfrecord -> finetune -> evaluate -> export for a validated fine-tuning request with
    resolved paths; every stage gets the same overrides.

    Args:
        request: ``dataset_path`` and ``checkpoint_dir`` (if given) already resolved inside the
            workspace, ``dataset_kind`` set; the knobs of :data:`FINETUNE_KNOBS`, ``module``,
            ``task_type``, ``num_classes``, ``class_names``.
        job_dir: the job's folder (every output goes there); its name is the job id, which the
            registered version is tagged with (:data:`JOB_TAG`).
        tracking_uri: the service's MLflow tracking and registry URI (the run and the new version).
    """
    module = request["module"]
    overrides = _path_overrides(job_dir) + [
        f"ingest.sources=[{{kind:{request['dataset_kind']},path:{quote(request['dataset_path'])}}}]",
        f"module={module}",
    ]
    if request.get("task_type") == "classification":
        overrides += ["task=classification", f"task.class_names={literal(request['class_names'])}",
                      f"task.num_classes={len(request['class_names'])}",
                      f"ingest.class_names={literal(request['class_names'])}"]
        if request.get("task_input"):
            overrides.append(f"task.input={request['task_input']}")
    for knob, key in FINETUNE_KNOBS.items():
        if request.get(knob) is not None:
            overrides.append(f"{key}={literal(request[knob])}")
    checkpoint_dir = request.get("checkpoint_dir") or str(job_dir / "checkpoints")
    overrides += [f"finetune.checkpoint_dir={quote(checkpoint_dir)}",
                  f"finetune.tensorboard_dir={quote(str(job_dir / 'tensorboard'))}",
                  f"finetune.tracking_uri={quote(tracking_uri)}",
                  # The job scores its own test split: ingest makes sure there is one (or fails saying why).
                  "+ingest.require_test=true",
                  "export.register=true", "export.tflite=true", f"export.tracking_uri={quote(tracking_uri)}",
                  f"++export.tags={{{JOB_TAG}:{quote(job_dir.name)}}}"]
    return [_stage(project_root, python, cwd, stage, overrides) for stage in FINETUNE_STAGES]


def finetune_outputs(job_dir: Path, module: str) -> dict[str, Path]:
    """Where a fine-tuning job's stages write: model, metrics, shards, manifest, TensorBoard events, the
    ingest report, the evaluation's ``metrics.json`` and the export's ``export.json``."""
    return {"model": job_dir / "models" / module / "model.pt", "metrics": job_dir / "models" / module / "metrics.json",
            "shards_dir": job_dir / "data" / "shards", "manifest": job_dir / "data" / "interim" / "manifest.jsonl",
            "tensorboard": job_dir / "tensorboard",
            "ingest_report": job_dir / "data" / "interim" / "ingest_report.json",
            "evaluation": job_dir / "reports" / "metrics.json",
            "export": job_dir / "models" / "exported" / module / "export.json"}


def prune_commands(request: dict, source_job_dir: Path, job_dir: Path, *, project_root: Path, python: str,
                   cwd: Path, tracking_uri: str) -> list[dict]:
    """The prune stage on the fine-tuned model of the job in ``source_job_dir``.

    Args:
        request: ``module``, ``method``, ``sparsity`` and optionally ``layers``.
    """
    module = request["module"]
    source = finetune_outputs(source_job_dir, module)
    overrides = _path_overrides(job_dir) + [
        f"module={module}", f"prune.module={module}", f"prune.method={request['method']}",
        f"prune.sparsity={literal(float(request['sparsity']))}",
        f"prune.model={quote(str(source['model']))}", f"prune.out_dir={quote(str(job_dir / 'pruned'))}",
        f"prune.shards_dir={quote(str(source['shards_dir']))}", f"prune.manifest={quote(str(source['manifest']))}",
        f"finetune.tracking_uri={quote(tracking_uri)}",
    ]
    if request.get("layers"):
        overrides.append(f"prune.layers={literal(request['layers'])}")
    return [_stage(project_root, python, cwd, "prune", overrides)]


def result_path(kind: str, job_dir: Path, module: str) -> Path:
    """The JSON file a finished job leaves: the fine-tuning metrics or the pruning report."""
    if kind == "finetune":
        return finetune_outputs(job_dir, module)["metrics"]
    return job_dir / "pruned" / "report.json"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def split_facts(job_dir: Path, module: str) -> dict | None:
    """The test split a fine-tuning job's ingest made (``None`` until ingest has run): ``fraction``
    (``ingest.test_split``), ``split_by``, ``samples`` in test out of ``of`` kept, and ``group_added``
    when the hash put no group in test and the nearest one was moved there."""
    report = _read_json(finetune_outputs(job_dir, module)["ingest_report"])
    if not report or not report.get("split_rule"):
        return None
    rule, splits = report["split_rule"], report.get("splits", {})
    return {"fraction": rule["test_split"], "split_by": rule["split_by"], "samples": splits.get("test", 0),
            "of": sum(splits.values()), "group_added": rule.get("test_key_added")}


def _ci(block: dict, key: str) -> list[float] | None:
    low, high = block.get(f"{key}_ci95_low"), block.get(f"{key}_ci95_high")
    return None if low is None or high is None else [low, high]


def evaluation_facts(job_dir: Path, module: str) -> dict | None:
    """The evaluate stage's before/after figures, from the job's ``reports/metrics.json`` (``None``
    until it has run): per split the primary metric (NME, %) of stock (``baseline``) and fine-tuned,
    the relative change and 95 % intervals; the gate; false presence and gesture scores where measured."""
    metrics = _read_json(finetune_outputs(job_dir, module)["evaluation"])
    if not metrics:
        return None
    metric = metrics.get("primary_metric", "nme")
    splits = {}
    for name, s in (metrics.get("splits") or {}).items():
        splits[name] = {"n": s["n"], "identities": s["identities"],
                        "baseline": s["baseline"][metric], "finetuned": s["finetuned"][metric],
                        "change_pct": s["delta"].get(f"{metric}_pct"),
                        "change_pct_ci95": _ci(s["delta"], f"{metric}_pct"),
                        "baseline_ci95": _ci(s["baseline"], metric), "finetuned_ci95": _ci(s["finetuned"], metric)}
    out = {"split": metrics.get("split"), "metric": metric, "splits": splits, "gate": metrics.get("gate"),
           "report": str(finetune_outputs(job_dir, module)["evaluation"])}
    for key in ("false_presence", "classification"):
        if metrics.get(key):
            out[key] = metrics[key]
    return out


def registered_facts(job_dir: Path, module: str) -> dict | None:
    """The registry version the job's export stage made (``name``, ``version``, ``alias``, ``uri``,
    ``tags``), from its ``export.json``; ``None`` until then (or when it did not register)."""
    record = _read_json(finetune_outputs(job_dir, module)["export"])
    return record.get("registered") if record else None
