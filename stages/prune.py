"""Stage `prune`: models/<module>/model.pt -> models/pruned/<module>/{model.pt, model.onnx, report.json}.

    dvc repro prune
    python stages/prune.py prune.method=channels prune.sparsity=0.25
    python stages/prune.py prune.method=l1_norm prune.sparsity=0.5 'prune.layers=[conv2d_21,conv2d_31]'
"""

import sys

import hydra
from omegaconf import DictConfig

from holotune.pruning import PruneError, PruneOptions, prune


@hydra.main(config_path="../conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    p = cfg.prune
    options = PruneOptions(method=p.method, sparsity=p.sparsity, layers=tuple(p.layers) if p.layers else None,
                           channel_multiple=p.channel_multiple, calibration_samples=p.calibration_samples)
    try:
        report = prune(options, p.module, p.model, p.out_dir, p.shards_dir, p.manifest, split=p.split)
    except (PruneError, FileNotFoundError) as error:
        print(f"prune: {error}", file=sys.stderr)
        sys.exit(1)
    size = report["sizes"]["onnx"]
    metrics = report["metrics"]
    change = (", ".join(f"{k} {v:+.2f}" for k, v in metrics["change"].items()) if metrics
              else report.get("metrics_note", "not measured"))
    print(f"prune: {report['method']} {report['sparsity_requested']:g} -> reached {report['sparsity_reached']:.3f}; "
          f"params {report['params']['before']:,} -> {report['params']['after']:,}; ONNX "
          f"{size['before']['bytes']:,} -> {size['after']['bytes']:,} B (gzip {size['before']['gzip_bytes']:,} -> "
          f"{size['after']['gzip_bytes']:,}); latency {report['latency_ms']['before']['median_ms']:.2f} -> "
          f"{report['latency_ms']['after']['median_ms']:.2f} ms; {metrics['split'] if metrics else 'metrics'}: "
          f"{change}; report: {p.out_dir}/report.json")


if __name__ == "__main__":
    main()
