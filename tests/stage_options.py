"""Stage options for tests, built the way the stages build them: from ``params.yaml`` (the committed
composition of ``conf/``, the one source of defaults), with keyword overrides on top."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from holotune.adapters import LoraOptions
from holotune.config import build, read_params, with_overrides
from holotune.data.augment import AugmentOptions
from holotune.data.ingest import IngestOptions, Source
from holotune.data.shards import ShardOptions
from holotune.evaluation.report import EvaluateOptions
from holotune.pruning import PruneOptions
from holotune.release import ExportOptions
from holotune.training.finetune import FinetuneOptions, ModelOptions, RunOptions
from holotune.training.module import TrainHParams

PARAMS = read_params(Path(__file__).resolve().parent.parent / "params.yaml")


def finetune_options(overrides: dict | None = None) -> FinetuneOptions:
    """The finetune stage's options for ``params.yaml`` with dotted overrides (``{"module.name": "hands"}``)."""
    return FinetuneOptions.from_config(with_overrides(PARAMS, overrides or {}))


def hparams(**changes) -> TrainHParams:
    return replace(finetune_options().hparams, **changes)


def lora(**changes) -> LoraOptions:
    return replace(finetune_options().model.lora, **changes)


def model_options(**changes) -> ModelOptions:
    return replace(finetune_options().model, **changes)


def augment(**changes) -> AugmentOptions:
    return replace(finetune_options().run.augment, **changes)


def run_options(**changes) -> RunOptions:
    return replace(finetune_options().run, **changes)


def ingest_options(sources: list[Source], out_dir: str | Path, **changes) -> IngestOptions:
    options = build(IngestOptions, PARAMS["ingest"], "ingest")
    return replace(options, sources=tuple(sources), out_dir=str(out_dir), **changes)


def shard_options(manifest: str | Path, out_dir: str | Path, **changes) -> ShardOptions:
    options = build(ShardOptions, PARAMS["tfrecord"], "tfrecord")
    return replace(options, manifest=str(manifest), out_dir=str(out_dir), **changes)


def prune_options(**changes) -> PruneOptions:
    return replace(build(PruneOptions, PARAMS["prune"], "prune"), **changes)


def evaluate_options(**changes) -> EvaluateOptions:
    """``params.yaml``'s evaluate options, without the project's own run (classifier, TensorBoard) unless given."""
    options = replace(build(EvaluateOptions, PARAMS["evaluate"], "evaluate"), classifier=None, tensorboard_dir=None)
    return replace(options, **changes)


def export_options(**changes) -> ExportOptions:
    """``params.yaml``'s export options, without the project's own files and registry unless given."""
    options = replace(ExportOptions.from_config(PARAMS), metrics=None, prune_report=None, manifest=None,
                      shards_dir=None, tracking_uri=None, params=None)
    return replace(options, **changes)
