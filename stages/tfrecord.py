"""Stage `tfrecord`: the manifest -> sharded TFRecords in the fine-tuning API's schema.

    dvc repro tfrecord          # or: python stages/tfrecord.py tfrecord.shard_size=500
"""

import hydra
from omegaconf import DictConfig

from holotune.data.shards import write_dataset_shards


@hydra.main(config_path="../conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    c = cfg.tfrecord
    index = write_dataset_shards(c.manifest, c.out_dir, shard_size=c.shard_size, compression=c.compression)
    print("tfrecord: " + ", ".join(f"{split} {v['records']} records in {len(v['shards'])} shard(s)"
                                   for split, v in index.items()))


if __name__ == "__main__":
    main()
