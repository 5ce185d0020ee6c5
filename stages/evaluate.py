"""Stage `evaluate`: the stock and the fine-tuned model on the same test crops; reports and the gate.

    dvc repro evaluate
    python stages/evaluate.py evaluate.allow_regression=true
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from holotune.config import ConfigError, build
from holotune.evaluation.comparison import RegressionGateError
from holotune.evaluation.report import EvaluateOptions, evaluate, summary


@hydra.main(config_path="../conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    try:
        metrics = evaluate(build(EvaluateOptions, OmegaConf.to_container(cfg.evaluate, resolve=True), "evaluate"))
    except (ConfigError, RegressionGateError, FileNotFoundError, ValueError) as error:
        print(f"evaluate: {error}", file=sys.stderr)
        sys.exit(1)
    for line in summary(metrics):
        print(f"evaluate: {line}")


if __name__ == "__main__":
    main()
