"""The ``finetune`` stage for ``task.input=landmarks``: a landmark gesture head on the manifest's hands.

The hand model is not trained (its landmarks stay the stock ones by construction); the head reads
:func:`holotune.gesture.hand_features` of each labelled hand (:func:`holotune.data.hands.load_hands`).
Writes, under ``RunOptions.out_dir``: ``gesture.pt`` (:class:`~holotune.training.heads.LandmarkHead`)
and ``metrics.json``; metrics go to MLflow and TensorBoard, as the landmark runs' do.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from holotune.data.hands import HandDataError, HandSamples, load_hands
from holotune.gesture import FEATURE_SIZE
from holotune.training.module import TrainHParams

GESTURE_FILE = "gesture.pt"


def finetune_landmark_head(class_names: list[str], hparams: TrainHParams, run) -> dict:
    """Train the landmark head on the train split's hands, keep the best val epoch; returns the metrics.

    Args:
        class_names: index order, ``none`` first (checked by the caller).
        hparams: epochs, batch size, learning rate, weight decay, warm-up, seed.
        run: :class:`holotune.training.finetune.RunOptions` (manifest, out_dir, MLflow, trainer).
    """
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import MLFlowLogger, TensorBoardLogger

    from holotune.training.finetune import FinetuneConfigError
    from holotune.training.heads import LandmarkHead
    from holotune.training.module import GestureLitModule

    if not run.manifest:
        raise FinetuneConfigError("task.input=landmarks reads the hands from the ingest manifest: set finetune.manifest")
    pl.seed_everything(hparams.seed, workers=True)
    try:
        train, val = (load_hands(run.manifest, split, list(class_names)) for split in ("train", "val"))
    except HandDataError as exc:
        raise FinetuneConfigError(str(exc)) from None
    if len(train) == 0:
        raise FinetuneConfigError(f"{run.manifest}: no labelled hand in the train split ({train.no_hand} labelled rows "
                                  "without a fully labelled hand)")
    missing = sorted(set(range(len(class_names))) - set(train.labels.tolist()))
    if missing:
        raise FinetuneConfigError(f"{run.manifest}: no training hand for class(es) "
                                  f"{[class_names[i] for i in missing]} of {list(class_names)}")
    head = LandmarkHead(FEATURE_SIZE, list(class_names))
    lit = GestureLitModule(head, hparams)
    loaders = {name: torch.utils.data.DataLoader(_tensors(data), batch_size=hparams.batch_size, shuffle=name == "train",
                                                 drop_last=name == "train" and len(data) > hparams.batch_size)
               for name, data in (("train", train), ("val", val))}
    out_dir = Path(run.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mlflow_logger = MLFlowLogger(experiment_name=run.experiment, tracking_uri=run.tracking_uri, log_model=False,
                                 run_name="finetune-gesture")
    monitor = "val/loss" if len(val) else "train/loss"
    checkpoint = ModelCheckpoint(dirpath=run.checkpoint_dir, filename="best", monitor=monitor, save_last=True)
    trainer = pl.Trainer(max_epochs=hparams.epochs, max_time=run.max_time, accelerator="cpu", devices=1,
                         logger=[mlflow_logger, TensorBoardLogger(run.tensorboard_dir, name="gesture")],
                         callbacks=[checkpoint], deterministic=True, log_every_n_steps=1,
                         limit_val_batches=None if len(val) else 0, enable_model_summary=False,
                         enable_progress_bar=False, gradient_clip_val=hparams.gradient_clip or None)
    # The hyperparameters and class names go in with the module's (save_hyperparameters); these add the data.
    mlflow_logger.log_hyperparams({"module": "hands", "task_input": "landmarks", "train_samples": len(train),
                                   "val_samples": len(val)})
    start = time.perf_counter()
    trainer.fit(lit, loaders["train"], loaders["val"] if len(val) else None)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if checkpoint.best_model_path and len(val):
        best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
        lit.load_state_dict(best["state_dict"])
        metrics["best_epoch"] = int(best["epoch"])
        lit.eval()
        trainer.validate(lit, loaders["val"], verbose=False)  # the shipped epoch's val scores and confusion
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")})
    train_seconds = time.perf_counter() - start
    metrics.update(train_samples=len(train), val_samples=len(val), train_no_hand=train.no_hand,
                   val_no_hand=val.no_hand, epochs_completed=trainer.current_epoch, task_input="landmarks",
                   class_names=list(class_names), confusion_matrix=lit.confusion_matrix)
    head.eval().save(out_dir / GESTURE_FILE)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    client, run_id = mlflow_logger.experiment, mlflow_logger.run_id
    client.log_metric(run_id, "train_seconds", train_seconds)
    for artifact in (out_dir / "metrics.json", out_dir / GESTURE_FILE):
        client.log_artifact(run_id, str(artifact))
    return {**metrics, "train_seconds": train_seconds}


def _tensors(data: HandSamples) -> torch.utils.data.TensorDataset:
    return torch.utils.data.TensorDataset(torch.from_numpy(data.features), torch.from_numpy(data.labels))
