"""The ``finetune`` stage: TFRecord shards -> a LoRA-adapted (or fully fine-tuned) landmark model.

What to build (:class:`ModelOptions`, with :class:`holotune.adapters.LoraOptions`) is kept apart
from how to train (:class:`holotune.training.module.TrainHParams`) and from where things go
(:class:`RunOptions`). Writes, under ``RunOptions.out_dir``: ``adapter/`` (peft adapter), ``model.pt``
(the merged state_dict, the stock layer layout), ``metrics.json``; checkpoints (best, last) go to
``checkpoint_dir``; metrics go to MLflow and TensorBoard.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from holotune.adapters import (
    AdapterError,
    LoraOptions,
    apply_lora,
    merge_lora,
    resolve_targets,
    trainable_trunk_layers,
)
from holotune.config import ConfigError, build
from holotune.data.augment import NO_AUGMENTATION, AugmentOptions
from holotune.gesture import GestureError, check_class_names
from holotune.models.spec import MODULE_MODELS, MODULE_SPECS, UnknownModuleError, get_module
from holotune.training.data import CropDataset, LabelledImage, load_split
from holotune.training.module import TrainHParams

# Returned and logged to MLflow, but kept out of the DVC-tracked metrics.json (a re-run changes them).
VOLATILE_METRICS = ("train_seconds",)


class FinetuneConfigError(ValueError):
    """A configuration that cannot train; raised before any work, naming the field."""


@dataclass(frozen=True, kw_only=True)
class ModelOptions:
    """What to build (``conf/module``, ``conf/task`` and the LoRA keys of ``conf/finetune``).

    Attributes:
        module: ``face_mesh`` | ``hands`` | ``pose``.
        lora: the adapters (ignored when ``freeze_backbone`` is false and ``use_lora`` is false).
        freeze_backbone: keep every stock weight frozen (train adapters only).
        use_lora: add LoRA adapters (with ``freeze_backbone=false`` and no LoRA: full fine-tuning).
        task_type: ``regression`` (landmarks) or ``classification`` (hands: also a gesture class head).
        task_input: what the gesture head reads (classification only): ``image``, a class head on the
            hand model's trunk, trained with its LoRA adapters; or ``landmarks``, a small MLP on the
            21 hand landmarks (:mod:`holotune.training.gesture`; the hand model stays stock).
        num_classes: classification only; must equal ``len(class_names)``.
        class_names: classification only; class index order, ``none`` (the background class) first.
    """

    module: str
    lora: LoraOptions
    freeze_backbone: bool
    use_lora: bool
    task_type: str
    task_input: str
    num_classes: int | None
    class_names: tuple[str, ...] | None


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """Where data comes from and results go, and how the run executes (``conf/finetune``, ``conf/trainer``).

    Attributes:
        shards_dir: folder of ``{train,val}-*.tfrecord`` shards.
        manifest: the ingest manifest (for each sample's condition: ``clean`` samples are the
            reference domain, self-distilled onto the stock model); optional.
        out_dir: ``models/<module>``.
        checkpoint_dir: Lightning checkpoints (created if missing).
        tracking_uri: MLflow tracking URI (default: a SQLite file in the project).
        experiment: MLflow experiment name.
        tensorboard_dir: TensorBoard event files.
        mixed_precision: use bf16 autocast on CPU (16-mixed on GPU).
        cache_dataset: keep decoded images in memory across epochs, and, when only head or branch
            layers train, the trunk features of each crop (augmentation then cycles through
            ``cache_views`` fixed variants per sample, so later epochs skip the trunk).
        cache_views: augmentation variants per sample when trunk features are cached (1: epochs after
            the first skip the trunk; more: more augmentation variety, filled over the first epochs).
        negative_fraction: crops without the part, as a fraction of the positives, that teach the
            presence head "absent" (without them it learns to say "present" everywhere).
        resume: continue from ``checkpoint_dir/last.ckpt`` if it exists.
        max_time: Lightning's ``max_time`` ("DD:HH:MM:SS"), or ``None``.
        augment: training augmentation.
        validation_split: ``None`` uses the ingest stage's val split; a fraction re-splits train+val
            by sample id (the fine-tuning API's knob; ingest's group-aware split is the better tool).
        accelerator, devices, strategy, num_nodes: Lightning's, for DDP.
        num_workers: DataLoader workers.
        limit_train_batches: cap batches per epoch (smoke tests), or ``None``.
    """

    shards_dir: str
    manifest: str | None
    out_dir: str
    checkpoint_dir: str
    tracking_uri: str
    experiment: str
    tensorboard_dir: str
    mixed_precision: bool
    cache_dataset: bool
    cache_views: int
    negative_fraction: float
    resume: bool
    max_time: str | None
    augment: AugmentOptions
    validation_split: float | None
    accelerator: str
    devices: int | str
    strategy: str
    num_nodes: int
    num_workers: int
    limit_train_batches: int | float | None


@dataclass(frozen=True)
class FinetuneOptions:
    """Everything the ``finetune`` stage takes, built from the composed config in one call."""

    model: ModelOptions
    hparams: TrainHParams
    run: RunOptions

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "FinetuneOptions":
        """From the resolved config's ``module``, ``task``, ``trainer`` and ``finetune`` sections.

        The ``finetune`` section is flat, with the original API's knob names; each key goes to the
        dataclass that has a field of that name, and the LoRA keys to :class:`LoraOptions` under
        peft's names. A key that no dataclass takes is an error naming it.
        """
        f, module, task = dict(cfg["finetune"]), cfg["module"], cfg["task"]

        def take(source: dict, names: dict[str, str], pop: bool = False) -> dict:
            """Present keys only, renamed (a missing one is then reported missing by ``build``)."""
            return {new: (source.pop if pop else source.get)(old) for old, new in names.items() if old in source}

        lora = {**take(f, {"lora_rank": "r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout",
                           "lora_placement": "placement"}, pop=True),
                **take(module, {"target_modules": "target_modules"})}
        model = build(ModelOptions, {**take(module, {"name": "module"}),
                                     **take(task, {"type": "task_type", "input": "task_input",
                                                   "num_classes": "num_classes", "class_names": "class_names"}),
                                     **take(f, {"freeze_backbone": "freeze_backbone", "use_lora": "use_lora"}, pop=True),
                                     "lora": lora}, "finetune")
        hparams = build(TrainHParams, f, "finetune", allow_extra=True)
        run = build(RunOptions, {**f, **cfg["trainer"]}, "finetune", allow_extra=True)
        taken = {x.name for x in fields(TrainHParams)} | {x.name for x in fields(RunOptions)}
        unknown = sorted(set(f) - taken)
        if unknown:
            raise ConfigError(f"finetune: unknown key(s) {unknown}")
        unknown = sorted(set(module) - {"name", "target_modules"}) + sorted(set(task) - {"type", "input", "num_classes",
                                                                                         "class_names"})
        if unknown:
            raise ConfigError(f"module/task: unknown key(s) {unknown}")
        return cls(model, hparams, run)


def check_config(model: ModelOptions, hparams: TrainHParams, run: RunOptions) -> None:
    """Fail before any work, naming the bad field."""
    try:
        spec = get_module(model.module)
    except UnknownModuleError as error:
        raise FinetuneConfigError(str(error)) from None
    if model.task_type not in ("regression", "classification"):
        raise FinetuneConfigError(f"task_type must be 'regression' or 'classification', got {model.task_type!r}")
    if model.task_input not in ("image", "landmarks"):
        raise FinetuneConfigError(f"task.input must be 'image' or 'landmarks', got {model.task_input!r}")
    if model.task_input == "landmarks" and model.task_type != "classification":
        raise FinetuneConfigError("task.input=landmarks trains a gesture head: it needs task.type=classification")
    if model.task_type == "classification":
        if spec.class_feature is None:
            takes = sorted(m.name for m in MODULE_SPECS.values() if m.class_feature)
            raise FinetuneConfigError(f"task_type=classification needs a module with a class-head feature "
                                      f"({', '.join(takes)}), got module={model.module!r}")
        if not model.class_names:
            raise FinetuneConfigError("task_type=classification needs class_names")
        if model.num_classes is not None and model.num_classes != len(model.class_names):
            raise FinetuneConfigError(f"num_classes={model.num_classes} but class_names has {len(model.class_names)} "
                                      f"entries: {list(model.class_names)}")
        try:
            check_class_names(model.class_names, "task.class_names")
        except GestureError as exc:
            raise FinetuneConfigError(str(exc)) from None
    if hparams.learning_rate <= 0:
        raise FinetuneConfigError(f"learning_rate must be > 0, got {hparams.learning_rate}")
    if hparams.epochs < 1:
        raise FinetuneConfigError(f"epochs must be >= 1, got {hparams.epochs}")
    if hparams.batch_size < 1:
        raise FinetuneConfigError(f"batch_size must be >= 1, got {hparams.batch_size}")
    if run.validation_split is not None and not 0.0 < run.validation_split < 1.0:
        raise FinetuneConfigError(f"validation_split must be in (0, 1) or null, got {run.validation_split}")
    if hparams.gradient_clip < 0:
        raise FinetuneConfigError(f"gradient_clip must be >= 0, got {hparams.gradient_clip}")
    if hparams.auxiliary_target not in ("labels", "stock"):
        raise FinetuneConfigError(f"auxiliary_target must be 'labels' or 'stock', got {hparams.auxiliary_target!r}")
    if model.task_input == "landmarks":  # no hand model to adapt, no crops to read
        _check_checkpoint_dir(run)
        return
    if model.use_lora:
        from holotune.models import create_model

        try:
            resolve_targets(create_model(MODULE_MODELS[model.module]), model.module, model.lora)
        except AdapterError as exc:
            raise FinetuneConfigError(str(exc)) from None
    elif model.freeze_backbone:
        raise FinetuneConfigError("freeze_backbone=true with use_lora=false would train nothing")
    _check_checkpoint_dir(run)
    if not any(Path(run.shards_dir).glob("train-*.tfrecord*")):
        raise FinetuneConfigError(f"shards_dir {run.shards_dir}: no train-*.tfrecord shards (run the tfrecord stage)")


def _check_checkpoint_dir(run: RunOptions) -> None:
    checkpoint_dir = Path(run.checkpoint_dir)
    try:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FinetuneConfigError(f"checkpoint_dir {checkpoint_dir}: cannot create it ({exc.strerror})") from None
    if not os.access(checkpoint_dir, os.W_OK):
        raise FinetuneConfigError(f"checkpoint_dir {checkpoint_dir}: not writable")


def build_model(options: ModelOptions):
    """The stock model for ``options.module``, with LoRA applied and the backbone frozen as asked."""
    from holotune.models import create_model

    model = create_model(MODULE_MODELS[options.module]).train()
    if not options.use_lora:
        return model.requires_grad_(True)
    peft_model = apply_lora(model, options.module, options.lora)
    if not options.freeze_backbone:  # LoRA plus full fine-tuning of the stock weights
        for name, param in peft_model.named_parameters():
            param.requires_grad_(True)
    return peft_model


def finetune(model_options: ModelOptions, hparams: TrainHParams, run: RunOptions) -> dict:
    """Train; returns the final metrics (also written to ``out_dir/metrics.json``)."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import MLFlowLogger, TensorBoardLogger

    from holotune.training.module import LandmarkLitModule

    check_config(model_options, hparams, run)
    if model_options.task_input == "landmarks":
        from holotune.training.gesture import finetune_landmark_head

        return finetune_landmark_head(list(model_options.class_names), hparams, run)
    pl.seed_everything(hparams.seed, workers=True)
    module = model_options.module
    net = build_model(model_options)
    cache_features = run.cache_dataset and not trainable_trunk_layers(net)
    train_images = load_split(run.shards_dir, "train", run.manifest)
    val_images = load_split(run.shards_dir, "val", run.manifest)
    if run.validation_split is not None:
        train_images, val_images = resplit(train_images + val_images, run.validation_split, hparams.seed)
    train = CropDataset(train_images, module, run.augment, hparams.seed, cache_images=run.cache_dataset,
                        views=run.cache_views if cache_features else None, negatives=run.negative_fraction)
    val = CropDataset(val_images, module, NO_AUGMENTATION, hparams.seed, cache_images=run.cache_dataset,
                      negatives=run.negative_fraction)
    if len(train) == 0:
        raise FinetuneConfigError(f"shards_dir {run.shards_dir}: no training sample has a full {module} label")
    classifier = _class_head(model_options, train)
    loaders = {
        "train": torch.utils.data.DataLoader(train, batch_size=hparams.batch_size, shuffle=True,
                                             num_workers=run.num_workers, drop_last=len(train) > hparams.batch_size),
        "val": torch.utils.data.DataLoader(val, batch_size=hparams.batch_size, num_workers=run.num_workers),
    }
    lit = LandmarkLitModule(net, module, hparams, classifier, cache_features=cache_features)
    out_dir = Path(run.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mlflow_logger = MLFlowLogger(experiment_name=run.experiment, tracking_uri=run.tracking_uri,
                                 log_model=False, run_name=f"finetune-{module}")
    loggers = [mlflow_logger, TensorBoardLogger(run.tensorboard_dir, name=module)]
    # val/objective: the val loss without the presence term (see LandmarkLitModule._losses).
    monitor = "val/objective" if len(val) else "train/loss_epoch"
    checkpoint = ModelCheckpoint(dirpath=run.checkpoint_dir, filename="best", monitor=monitor, save_last=True)
    trainer = pl.Trainer(
        max_epochs=hparams.epochs, max_time=run.max_time, gradient_clip_val=hparams.gradient_clip or None,
        precision=("bf16-mixed" if run.accelerator == "cpu" else "16-mixed") if run.mixed_precision else "32-true",
        accelerator=run.accelerator, devices=run.devices, strategy=run.strategy, num_nodes=run.num_nodes,
        logger=loggers, callbacks=[checkpoint], deterministic=True, log_every_n_steps=1,
        limit_train_batches=run.limit_train_batches, limit_val_batches=None if len(val) else 0,
        enable_model_summary=False,
    )
    # After the Trainer: it sets the global rank, so on a DDP node other than 0 this is a no-op (before it,
    # a process without RANK/LOCAL_RANK in its environment counts as rank 0 and would open an MLflow run).
    mlflow_logger.log_hyperparams({**asdict(hparams), "module": module, "freeze_backbone": model_options.freeze_backbone,
                                   "use_lora": model_options.use_lora, **{f"lora_{k}": v for k, v in
                                   asdict(model_options.lora).items()}, "train_samples": len(train),
                                   "val_samples": len(val)})
    last = Path(run.checkpoint_dir) / "last.ckpt"
    start = time.perf_counter()
    trainer.fit(lit, loaders["train"], loaders["val"] if len(val) else None,
                ckpt_path=str(last) if run.resume and last.is_file() else None)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if checkpoint.best_model_path and len(val):
        # Ship the best epoch (by val/objective), not merely the last one.
        best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
        lit.load_state_dict(best["state_dict"])
        metrics["best_epoch"] = int(best["epoch"])
    metrics.update(train_seconds=time.perf_counter() - start, train_samples=len(train), val_samples=len(val),
                   cached_trunk_features=cache_features,
                   epochs_completed=trainer.current_epoch, global_step=trainer.global_step)
    if classifier is not None and hasattr(lit, "confusion_matrix"):
        metrics["confusion_matrix"] = lit.confusion_matrix
        metrics["class_names"] = list(classifier.class_names)
    if trainer.is_global_zero:
        _save(lit.model, model_options, out_dir)
        if classifier is not None:
            torch.save({"state_dict": classifier.state_dict(), "class_names": classifier.class_names,
                        "in_features": classifier.head[-1].in_features,
                        "feature": classifier.feature}, out_dir / "classifier.pt")
        # metrics.json is part of the DVC output: only figures that a re-run reproduces (no timings).
        (out_dir / "metrics.json").write_text(json.dumps(
            {k: v for k, v in metrics.items() if k not in VOLATILE_METRICS}, indent=2))
        run_id = mlflow_logger.run_id
        client = mlflow_logger.experiment
        client.log_metric(run_id, "train_seconds", metrics["train_seconds"])
        for artifact in (out_dir / "metrics.json", out_dir / "classifier.pt", last):
            if artifact.exists():
                client.log_artifact(run_id, str(artifact))
        if (out_dir / "adapter").is_dir():
            client.log_artifacts(run_id, str(out_dir / "adapter"), artifact_path="adapter")
    return metrics


def summary(metrics: dict) -> str:
    """One line of the run's final split metrics (``train/nme=...``, ``val/objective=...``)."""
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if "/" in k and isinstance(v, float))


def resplit(images: list[LabelledImage], validation_split: float, seed: int) -> tuple[list, list]:
    """Deterministic train/val split by a hash of each sample id (ingest's :func:`split_fraction`)."""
    from holotune.data.ingest import split_fraction

    u = {id(i): split_fraction(i.sample_id, seed) for i in images}
    return [i for i in images if u[id(i)] >= validation_split], [i for i in images if u[id(i)] < validation_split]


def _class_head(options: ModelOptions, train: CropDataset):
    """The gesture head for classification (``None`` for regression), checked against the data's labels."""
    if options.task_type != "classification":
        return None
    from holotune.training.heads import ClassHead

    labels = [train.images[i].label for i, part in train.items if part != "negative"]
    bad = sorted({lab for lab in labels if lab is not None and not 0 <= lab < len(options.class_names)})
    if bad:
        raise FinetuneConfigError(f"labels {bad} in the data are out of range for class_names {list(options.class_names)}")
    if all(lab is None for lab in labels):
        raise FinetuneConfigError("task_type=classification but no training sample has a class label")
    spec = get_module(options.module)
    return ClassHead(spec.class_feature_width, list(options.class_names), feature=spec.class_feature)


def _save(model, options: ModelOptions, out_dir: Path) -> None:
    """Write the adapter (if any) and the merged state_dict in the stock layer layout."""
    import copy

    if options.use_lora:
        model.save_pretrained(str(out_dir / "adapter"))
        _sort_adapter_targets(out_dir / "adapter" / "adapter_config.json")
        merged = merge_lora(copy.deepcopy(model))
    else:
        merged = model
    torch.save(merged.state_dict(), out_dir / "model.pt")


def _sort_adapter_targets(config_path: Path) -> None:
    """peft keeps ``target_modules`` as a set and writes it in hash order, which changes run to run;
    sorted, the adapter (a DVC output) is byte-identical when the training is."""
    config = json.loads(config_path.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True))
