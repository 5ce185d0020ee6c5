"""Stage `evaluate`: the stock and the fine-tuned model on the same test crops; reports and the gate.

    dvc repro evaluate
    python stages/evaluate.py evaluate.allow_regression=true
"""

import sys

import hydra
from omegaconf import DictConfig

from holotune.evaluation.comparison import RegressionGateError
from holotune.evaluation.report import EvaluateOptions, evaluate
from holotune.evaluation.scoring import RoiJitter


@hydra.main(config_path="../conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    e = cfg.evaluate
    options = EvaluateOptions(
        module=e.module, model=e.model, shards_dir=e.shards_dir, manifest=e.manifest, out_dir=e.out_dir,
        split=e.split, classifier=e.classifier, tensorboard_dir=e.tensorboard_dir,
        reference_conditions=tuple(e.reference_conditions), tolerance_pct=e.tolerance_pct,
        false_presence_tolerance=e.false_presence_tolerance,
        allow_regression=e.allow_regression, bootstrap=e.bootstrap, overlays=e.overlays, seed=e.seed,
        roi_jitter=RoiJitter(e.roi_jitter.shift, e.roi_jitter.scale, e.roi_jitter.rotation_deg))
    try:
        metrics = evaluate(options)
    except (RegressionGateError, FileNotFoundError, ValueError) as error:
        print(f"evaluate: {error}", file=sys.stderr)
        sys.exit(1)
    for name in ("reference", "shifted"):
        if name in metrics["splits"]:
            s = metrics["splits"][name]
            d = s["delta"]
            print(f"evaluate: {name}: NME {s['baseline']['nme']:.3f}% -> {s['finetuned']['nme']:.3f}% "
                  f"({d['nme_pct']:+.1f}% [{d['nme_pct_ci95_low']:+.1f}, {d['nme_pct_ci95_high']:+.1f}])")
    print(f"evaluate: gate {'passed' if metrics['gate']['passed'] else 'FAILED (allowed)'}: {metrics['gate']['message']}")


if __name__ == "__main__":
    main()
