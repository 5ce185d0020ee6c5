"""Stage `tfrecord`: the manifest -> sharded TFRecords in the fine-tuning API's schema.

    dvc repro tfrecord          # or: python stages/tfrecord.py tfrecord.shard_size=500
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from holotune.config import ConfigError, build
from holotune.data.shards import ShardOptions, summary, write_dataset_shards


@hydra.main(config_path="../conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    try:
        index = write_dataset_shards(build(ShardOptions, OmegaConf.to_container(cfg.tfrecord, resolve=True), "tfrecord"))
    except (ConfigError, ValueError, FileNotFoundError) as error:
        print(f"tfrecord: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"tfrecord: {summary(index)}")


if __name__ == "__main__":
    main()
