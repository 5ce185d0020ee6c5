"""The LightningModule: loss, metrics and optimizer around a (LoRA-wrapped) holotune model.

Loss per batch, in crop-normalized units (see :mod:`holotune.training.outputs`):

* landmarks: mean over labelled points of the xy Euclidean error plus ``z_weight`` x |dz|;
* auxiliary (pose): the two auxiliary landmarks the runtime tracks the next frame's ROI from, against
  the points MediaPipe's stock model puts them at, derived from the labelled hips and shoulders
  (:func:`holotune.landmarks.pose_auxiliary_points`), so tracking follows the fine-tuned landmarks;
* presence: BCE on the presence/flag head, target 1 (every training sample shows the part);
* self-distillation (the forgetting guard): on reference-domain (clean) samples, the same landmark
  loss against the stock model's own prediction on the same crop, weighted ``distill_weight``.
  With LoRA the stock model is the same network with its adapters disabled; with full
  fine-tuning a frozen copy is kept;
* classification (``classifier`` given, hands only): cross-entropy of a new class head on the trunk
  feature (``global_average_pooling2d``, 1152 wide), for samples with a label; the landmark heads
  stay (multi-head). Accuracy, macro-F1 and the confusion matrix are logged per validation epoch.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from holotune.adapters import trainable_trunk_layers
from holotune.evaluation.metrics import nme
from holotune.landmarks import PoseLandmark, pose_auxiliary_points
from holotune.models.spec import get_module
from holotune.training.heads import ClassHead
from holotune.training.outputs import decode_auxiliary, decode_landmarks, presence_logit

_TORSO = (PoseLandmark.LEFT_HIP, PoseLandmark.RIGHT_HIP, PoseLandmark.LEFT_SHOULDER, PoseLandmark.RIGHT_SHOULDER)


@dataclass(frozen=True, kw_only=True)
class TrainHParams:
    """How to train (kept apart from what to build: :class:`holotune.adapters.LoraOptions`).

    Fields without a default are set by ``conf/finetune`` (the one source of their defaults).

    Attributes:
        epochs, batch_size, learning_rate: as the fine-tuning API names them.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up before cosine decay.
        gradient_clip: max gradient norm (0 disables).
        distill_weight: weight of the self-distillation loss on reference samples (0 disables).
        presence_weight: weight of the presence-head loss.
        auxiliary_weight: weight of the auxiliary-landmark loss (pose; 0 leaves those rows untrained).
        auxiliary_target: ``labels`` (derived from the labelled hips and shoulders) or ``stock`` (the stock
            model's own auxiliary landmarks on the same crop: video-mode tracking stays the stock model's).
        z_weight: weight of |dz| relative to the xy error (pose's depth is a rough estimate: its pipeline weighs it less).
        class_weight: weight of the classification loss (classification only).
        seed: everything random (data order, augmentation, LoRA init).
    """

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    warmup_steps: int
    gradient_clip: float
    distill_weight: float
    presence_weight: float
    auxiliary_weight: float
    auxiliary_target: str
    z_weight: float
    class_weight: float = 1.0
    seed: int


def landmark_loss(pred: Tensor, target: Tensor, mask: Tensor, z_weight: float) -> Tensor:
    """Mean over labelled points of ||dxy|| + z_weight * |dz|; (N, K, 3), (N, K, 3), (N, K) -> ()."""
    xy = torch.linalg.vector_norm(pred[..., :2] - target[..., :2], dim=-1)
    z = (pred[..., 2] - target[..., 2]).abs()
    per_point = (xy + z_weight * z) * mask
    return per_point.sum() / mask.sum().clamp_min(1.0)


def auxiliary_loss(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean xy error of (N, 2, 2) predicted pose auxiliary landmarks against those derived from the
    (N, 33, 3) labels, over samples whose hips and shoulders are labelled ((N, 33) ``mask``). Crops are
    square, so crop-normalized x and y share one unit, as the derivation needs."""
    labelled = (mask[:, list(_TORSO)] > 0).all(dim=1).float()
    error = torch.linalg.vector_norm(pred - pose_auxiliary_points(target[..., :2]), dim=-1).mean(dim=1)
    return (error * labelled).sum() / labelled.sum().clamp_min(1.0)


class LandmarkLitModule(pl.LightningModule):
    """Thin wrapper: ``model`` is a plain or peft-wrapped holotune model for ``module``."""

    def __init__(self, model: nn.Module, module: str, hparams: TrainHParams, classifier: "ClassHead | None" = None,
                 cache_features: bool = False):
        super().__init__()
        self.model = model
        # Trunk features per (split, sample key): valid only while no trunk weight trains.
        self._features: dict[str, dict[int, dict[str, Tensor]]] | None = None
        if cache_features:
            trainable_trunk = trainable_trunk_layers(model)
            if trainable_trunk:
                raise ValueError(f"cannot cache trunk features: trunk layers {trainable_trunk[:5]} are trainable")
            self._features = {"train": {}, "val": {}}
        self.module_name = module
        self.hp = hparams
        self.classifier = classifier
        self.save_hyperparameters({"module": module, **asdict(hparams),
                                   "class_names": list(classifier.class_names) if classifier else None})
        if classifier is not None:
            add_class_metrics(self, classifier.num_classes)
        # Full fine-tuning has no adapter to switch off: keep the stock network for distillation.
        self._stock = None
        if hparams.distill_weight > 0 and not hasattr(model, "disable_adapter"):
            self._stock = copy.deepcopy(model).eval().requires_grad_(False)

    def _base(self) -> nn.Module:
        """The :class:`TFLiteModule` (LoRA layers injected in place when peft-wrapped)."""
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def _outputs(self, batch: dict, split: str) -> tuple[tuple[Tensor, ...], dict[str, Tensor] | None]:
        """Forward a batch (only the heads the loss reads), reusing cached trunk features (exactly equal).

        Returns the outputs, and the cached trunk features (``None`` when not caching).
        """
        base = self._base()
        if self._features is None:
            features = base.forward_features(batch["image"])
            outputs = base.forward_head(features, get_module(self.module_name).trained_outputs)
            if self.classifier is not None:
                outputs = (*outputs, self.classifier(features[self.classifier.feature]))
            return outputs, None
        cache = self._features[split]
        keys = batch["key"].tolist()
        missing = [j for j, k in enumerate(keys) if k not in cache]
        if missing:
            with torch.no_grad():
                fresh = base.forward_features(batch["image"][missing])
            for pos, j in enumerate(missing):
                cache[keys[j]] = {name: f[pos] for name, f in fresh.items()}
        features = {name: torch.stack([cache[k][name] for k in keys]) for name in base.feature_names}
        outputs = base.forward_head(features, get_module(self.module_name).trained_outputs)
        if self.classifier is not None:
            outputs = (*outputs, self.classifier(features[self.classifier.feature]))
        return outputs, features

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """The model's outputs, plus class logits (N, C) last when there is a classifier."""
        if self.classifier is None:
            return self.model(x)
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        features = base.forward_features(x)  # LoRA layers are injected in place: adapters stay active
        return (*base.forward_head(features), self.classifier(features[self.classifier.feature]))

    @torch.no_grad()
    def stock_outputs(self, x: Tensor, features: dict[str, Tensor] | None = None) -> tuple:
        """The stock model's output tuple on ``x`` (adapters off; only the landmark output computed).

        ``features``: cached trunk features of ``x`` (valid as stock features: the trunk is frozen
        and adapter-free whenever features are cached), to skip the trunk.
        """
        if self._stock is not None:
            return self._stock.forward_head(self._stock.forward_features(x), ("landmarks",))
        base = self._base()
        with self.model.disable_adapter():
            return base.forward_head(base.forward_features(x) if features is None else features, ("landmarks",))

    def stock_prediction(self, x: Tensor, features: dict[str, Tensor] | None = None) -> Tensor:
        """The stock model's (N, K, 3) landmarks on ``x``, for self-distillation."""
        return decode_landmarks(self.module_name, self.stock_outputs(x, features))

    def _losses(self, batch: dict, split: str = "train") -> dict[str, Tensor]:
        outputs, features = self._outputs(batch, split)
        pred = decode_landmarks(self.module_name, outputs)
        losses = {"landmarks": landmark_loss(pred, batch["target"], batch["mask"], self.hp.z_weight)}
        logit = presence_logit(self.module_name, outputs)
        # Labelled crops are present (1); negative crops (no part in view) are not (0).
        present = batch.get("present", torch.ones_like(logit))
        if get_module(self.module_name).auxiliary_points:
            shown = present > 0
            aux = decode_auxiliary(self.module_name, outputs)[shown]
            if self.hp.auxiliary_target == "stock":  # where the stock model puts them on the same crop
                cached = None if features is None else {k: v[shown] for k, v in features.items()}
                stock_aux = decode_auxiliary(self.module_name, self.stock_outputs(batch["image"][shown], cached))
                losses["auxiliary"] = torch.linalg.vector_norm(aux - stock_aux, dim=-1).mean()
            else:
                losses["auxiliary"] = auxiliary_loss(aux, batch["target"][shown], batch["mask"][shown])
        losses["presence"] = F.binary_cross_entropy_with_logits(logit, present)
        ref = (batch["reference"] > 0) & (present > 0)
        if self.hp.distill_weight > 0 and ref.any():
            cached = None if features is None else {k: v[ref] for k, v in features.items()}
            stock = self.stock_prediction(batch["image"][ref], cached)
            losses["distill"] = landmark_loss(pred[ref], stock, torch.ones_like(stock[..., 0]), self.hp.z_weight)
        else:
            losses["distill"] = pred.new_zeros(())
        # The objective checkpoints are selected on: everything but the presence term, whose BCE on
        # negative crops saturates once the head is confident and would pick epoch 0 every time.
        losses["objective"] = losses["landmarks"] + self.hp.distill_weight * losses["distill"]
        if "auxiliary" in losses:
            losses["objective"] = losses["objective"] + self.hp.auxiliary_weight * losses["auxiliary"]
        losses["loss"] = losses["objective"] + self.hp.presence_weight * losses["presence"]
        if self.classifier is not None:
            labelled = batch["label"] >= 0
            logits = outputs[-1]
            losses["class"] = (F.cross_entropy(logits[labelled], batch["label"][labelled])
                               if labelled.any() else logits.new_zeros(()))
            losses["objective"] = losses["objective"] + self.hp.class_weight * losses["class"]
            losses["loss"] = losses["loss"] + self.hp.class_weight * losses["class"]
            losses["logits"], losses["labelled"] = logits.detach(), labelled
        positive = present > 0
        losses["positives"] = int(positive.sum())
        if losses["positives"]:
            losses["nme"] = nme(pred.detach()[positive], batch["target"][positive], batch["mask"][positive],
                                self.module_name).nanmean()
            losses["presence_rate"] = (logit.detach()[positive] > 0).float().mean()  # on crops showing the part
        else:  # an all-negative batch: weight 0 in the epoch mean (see the logging)
            losses["nme"] = losses["presence_rate"] = logit.new_zeros(())
        if (~positive).any():
            losses["false_presence_rate"] = (logit.detach()[~positive] > 0).float().mean()
        return losses

    def on_train_epoch_start(self) -> None:
        # New augmentation draws each epoch (workers get a fresh copy of the dataset per epoch).
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        losses = self._losses(batch)
        n = batch["image"].shape[0]
        self.log("train/loss", losses["loss"], prog_bar=True, on_step=True, on_epoch=True, batch_size=n)
        for key in ("landmarks", "auxiliary", "presence", "distill", "nme", "presence_rate", "class"):
            if key in losses:  # the same keys on every rank and step: safe to sync across DDP ranks
                weight = losses["positives"] if key in ("nme", "presence_rate") else n
                self.log(f"train/{key}", losses[key], on_step=False, on_epoch=True, batch_size=weight,
                         sync_dist=True)
        if "false_presence_rate" in losses:
            # Only batches holding negative crops have it, so ranks differ: a synced log would
            # deadlock DDP on mismatched collectives. Logged per rank (rank 0's reaches the loggers).
            self.log("train/false_presence_rate", losses["false_presence_rate"], on_step=False, on_epoch=True,
                     batch_size=n)
        return losses["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        losses = self._losses(batch, "val")
        n = batch["image"].shape[0]
        # sync_dist: under DDP each rank sees part of the validation set; report the whole.
        self.log("val/loss", losses["loss"], prog_bar=True, on_epoch=True, batch_size=n, sync_dist=True)
        self.log("val/objective", losses["objective"], on_epoch=True, batch_size=n, sync_dist=True)
        for key in ("landmarks", "nme", "presence_rate"):
            weight = losses["positives"] if key != "landmarks" else n
            self.log(f"val/{key}", losses[key], on_epoch=True, batch_size=weight, sync_dist=True)
        if "false_presence_rate" in losses:  # not synced: see training_step
            self.log("val/false_presence_rate", losses["false_presence_rate"], on_epoch=True, batch_size=n)
        if self.classifier is not None and losses["labelled"].any():
            preds, target = losses["logits"][losses["labelled"]], batch["label"][losses["labelled"]]
            self.val_accuracy.update(preds, target)
            self.val_f1.update(preds, target)
            self.val_confusion.update(preds, target)

    def on_validation_epoch_end(self) -> None:
        if self.classifier is not None:
            log_class_metrics(self)

    def configure_optimizers(self):
        return warmup_cosine_adamw(self, self.hp)


def add_class_metrics(module: pl.LightningModule, num_classes: int) -> None:
    """Give ``module`` validation accuracy, macro-F1 and a confusion matrix over ``num_classes`` classes."""
    from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

    module.val_accuracy = MulticlassAccuracy(num_classes, average="micro")
    module.val_f1 = MulticlassF1Score(num_classes, average="macro")
    module.val_confusion = MulticlassConfusionMatrix(num_classes)
    module.confusion_matrix = None


def log_class_metrics(module: pl.LightningModule) -> None:
    """At a validation epoch's end: log ``val/accuracy`` and ``val/macro_f1``, keep ``confusion_matrix``
    (rows: true class, columns: predicted), reset; nothing if no labelled sample was seen."""
    if not module.val_confusion.update_called:
        return
    # torchmetrics reduce across DDP ranks in compute().
    module.log("val/accuracy", module.val_accuracy.compute())
    module.log("val/macro_f1", module.val_f1.compute())
    module.confusion_matrix = module.val_confusion.compute().cpu().tolist()
    for metric in (module.val_accuracy, module.val_f1, module.val_confusion):
        metric.reset()


def warmup_cosine_adamw(module: pl.LightningModule, hp: TrainHParams) -> dict:
    """AdamW on ``module``'s trainable parameters, linear warm-up then cosine decay per step."""
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    total = max(1, int(module.trainer.estimated_stepping_batches))
    warmup = min(hp.warmup_steps, total // 2)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0) -> Tensor:
    """Mean focal loss (Lin et al. 2017) of (N, C) logits against (N,) class indices; Model Maker's
    gesture loss (gamma 2): easy, already-right samples weigh less."""
    log_p = F.log_softmax(logits, dim=-1).gather(1, target[:, None]).squeeze(1)
    return (-(1.0 - log_p.exp()) ** gamma * log_p).mean()


class GestureLitModule(pl.LightningModule):
    """Thin wrapper for the landmark gesture head (:class:`~holotune.training.heads.LandmarkHead`):
    focal loss, AdamW with warm-up and cosine decay, accuracy / macro-F1 / confusion per validation epoch.

    Batches are ``(features (N, F), label (N,))``.
    """

    def __init__(self, head: nn.Module, hparams: TrainHParams):
        super().__init__()
        self.head, self.hp = head, hparams
        self.save_hyperparameters({**asdict(hparams), "class_names": list(head.class_names)})
        add_class_metrics(self, head.num_classes)

    def forward(self, features: Tensor) -> Tensor:
        return self.head(features)

    def training_step(self, batch, batch_idx):
        features, label = batch
        logits = self.head(features)
        loss = focal_loss(logits, label)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(label))
        self.log("train/accuracy", (logits.argmax(-1) == label).float().mean(), on_epoch=True, batch_size=len(label))
        return loss

    def validation_step(self, batch, batch_idx):
        features, label = batch
        logits = self.head(features)
        self.log("val/loss", focal_loss(logits, label), on_epoch=True, batch_size=len(label))
        for metric in (self.val_accuracy, self.val_f1, self.val_confusion):
            metric.update(logits, label)

    def on_validation_epoch_end(self) -> None:
        log_class_metrics(self)

    def configure_optimizers(self):
        return warmup_cosine_adamw(self, self.hp)
