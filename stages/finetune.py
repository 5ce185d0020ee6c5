"""Stage `finetune`: TFRecord shards -> a LoRA-adapted landmark model, logged to MLflow and TensorBoard.

    dvc repro finetune
    python stages/finetune.py module=hands finetune.epochs=10
    python stages/finetune.py -m finetune.lora_rank=4,8,16        # a sweep: one MLflow run per point
    python stages/finetune.py trainer=ddp trainer.devices=2       # Lightning DDP
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from holotune.config import ConfigError
from holotune.training.finetune import FinetuneConfigError, FinetuneOptions, finetune, summary


@hydra.main(config_path="../conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    try:
        options = FinetuneOptions.from_config(OmegaConf.to_container(cfg, resolve=True))
        metrics = finetune(options.model, options.hparams, options.run)
    except (ConfigError, FinetuneConfigError) as error:
        print(f"finetune: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"finetune: {summary(metrics)}")


if __name__ == "__main__":
    main()
