"""Stage `prune`: models/<module>/model.pt -> models/pruned/<module>/{model.pt, model.onnx, report.json}.

    dvc repro prune
    python stages/prune.py prune.method=channels prune.sparsity=0.25
    python stages/prune.py prune.method=l1_norm prune.sparsity=0.5 'prune.layers=[conv2d_21,conv2d_31]'
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from holotune.config import ConfigError, build
from holotune.pruning import PruneError, PruneOptions, prune


@hydra.main(config_path="../conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    try:
        options = build(PruneOptions, OmegaConf.to_container(cfg.prune, resolve=True), "prune")
        report = prune(options)
    except (ConfigError, PruneError, FileNotFoundError) as error:
        print(f"prune: {error}", file=sys.stderr)
        sys.exit(1)
    print(report.summary())


if __name__ == "__main__":
    main()
