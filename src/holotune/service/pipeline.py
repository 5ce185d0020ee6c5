"""A job's stage command lines: the same ``stages/*.py`` scripts the CLI and ``dvc repro`` run,
with Hydra overrides built from the request.

A fine-tuning job runs ingest -> tfrecord -> finetune; a pruning job runs prune on a finished
fine-tuning job's outputs. Every path a stage writes is inside the job's folder (``paths.*``
overrides), except ``checkpoint_dir`` when the request names one. Values go into the override
grammar double-quoted; what a quoted Hydra string would still interpret (``$`` interpolation,
quotes, backslashes) is refused instead of escaped.
"""

from __future__ import annotations

import re
from pathlib import Path

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
}
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
    """ingest -> tfrecord -> finetune for a validated fine-tuning request with resolved paths.

    Args:
        request: ``dataset_path`` and ``checkpoint_dir`` (if given) already resolved inside the
            workspace, ``dataset_kind`` set; the knobs of :data:`FINETUNE_KNOBS`, ``module``,
            ``task_type``, ``num_classes``, ``class_names``.
        job_dir: the job's folder (every output goes there).
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
                  f"finetune.tracking_uri={quote(tracking_uri)}"]
    return [_stage(project_root, python, cwd, stage, overrides) for stage in ("ingest", "tfrecord", "finetune")]


def finetune_outputs(job_dir: Path, module: str) -> dict[str, Path]:
    """Where a fine-tuning job's stages write: model, metrics, shards, manifest, TensorBoard events."""
    return {"model": job_dir / "models" / module / "model.pt", "metrics": job_dir / "models" / module / "metrics.json",
            "shards_dir": job_dir / "data" / "shards", "manifest": job_dir / "data" / "interim" / "manifest.jsonl",
            "tensorboard": job_dir / "tensorboard"}


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
