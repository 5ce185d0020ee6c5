"""Stage `finetune`: TFRecord shards -> a LoRA-adapted landmark model, logged to MLflow and TensorBoard.

    dvc repro finetune
    python stages/finetune.py module=hands finetune.epochs=10
    python stages/finetune.py -m finetune.lora_rank=4,8,16        # a sweep: one MLflow run per point
    python stages/finetune.py trainer=ddp trainer.devices=2       # Lightning DDP
"""

import hydra
from omegaconf import DictConfig, OmegaConf

from holotune.adapters import LoraOptions
from holotune.data.augment import AugmentOptions
from holotune.training.finetune import ModelOptions, RunOptions, finetune
from holotune.training.module import TrainHParams


@hydra.main(config_path="../conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    f, t = cfg.finetune, cfg.trainer
    task = cfg.task
    model = ModelOptions(
        module=cfg.module.name, freeze_backbone=f.freeze_backbone, use_lora=f.use_lora, task_type=task.type,
        num_classes=task.num_classes, class_names=tuple(task.class_names) if task.class_names else None,
        lora=LoraOptions(r=f.lora_rank, lora_alpha=f.lora_alpha, lora_dropout=f.lora_dropout,
                         placement=f.lora_placement,
                         target_modules=tuple(cfg.module.target_modules) if cfg.module.target_modules else None),
    )
    hparams = TrainHParams(epochs=f.epochs, batch_size=f.batch_size, learning_rate=f.learning_rate,
                           weight_decay=f.weight_decay, warmup_steps=f.warmup_steps, gradient_clip=f.gradient_clip,
                           distill_weight=f.distill_weight, presence_weight=f.presence_weight, seed=f.seed)
    run = RunOptions(shards_dir=f.shards_dir, manifest=f.manifest, out_dir=f.out_dir, checkpoint_dir=f.checkpoint_dir,
                     tracking_uri=f.tracking_uri, experiment=f.experiment, tensorboard_dir=f.tensorboard_dir,
                     mixed_precision=f.mixed_precision, cache_dataset=f.cache_dataset, cache_views=f.cache_views,
                     negative_fraction=f.negative_fraction,
                     resume=f.resume,
                     max_time=f.max_time, augment=AugmentOptions(**OmegaConf.to_container(f.augment)),
                     validation_split=f.validation_split,
                     accelerator=t.accelerator, devices=t.devices, strategy=t.strategy, num_nodes=t.num_nodes,
                     num_workers=t.num_workers, limit_train_batches=t.limit_train_batches)
    metrics = finetune(model, hparams, run)
    print("finetune: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())
                                   if "/" in k and isinstance(v, float)))


if __name__ == "__main__":
    main()
