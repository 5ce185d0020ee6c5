"""Stage `export`: merge LoRA, export ONNX with the stock signature, check parity, write the model card, register.

    dvc repro export
    python stages/export.py export.register=false
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from holotune.config import ConfigError
from holotune.export import ExportParityError
from holotune.release import ExportOptions, ReleaseError, release, summary


@hydra.main(config_path="../conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    try:
        record = release(ExportOptions.from_config(OmegaConf.to_container(cfg, resolve=True)))
    except (ConfigError, ReleaseError, ExportParityError) as error:
        print(f"export: {error}", file=sys.stderr)
        sys.exit(1)
    for line in summary(record):
        print(f"export: {line}")


if __name__ == "__main__":
    main()
