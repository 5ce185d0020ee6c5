"""Stage `export`: merge LoRA, export ONNX with the stock signature, check parity, write the model card, register.

    dvc repro export
    python stages/export.py export.register=false
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from holotune.export import ExportParityError
from holotune.release import ExportOptions, ReleaseError, release


@hydra.main(config_path="../conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    e = cfg.export
    params = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("module", "task", "finetune")}
    options = ExportOptions(module=e.module, model_dir=e.model_dir, out_dir=e.out_dir, metrics=e.metrics,
                            prune_report=e.prune_report, manifest=e.manifest, shards_dir=e.shards_dir, params=params,
                            atol=e.atol, latency_runs=e.latency_runs, register=e.register, tracking_uri=e.tracking_uri)
    try:
        record = release(options)
    except (ReleaseError, ExportParityError) as error:
        print(f"export: {error}", file=sys.stderr)
        sys.exit(1)
    size, latency = record["size_bytes"], record["latency_ms"]
    print(f"export: {record['onnx']}: ONNX vs torch max {max(record['parity']['onnx_vs_torch'].values()):.2g}; "
          f"size {size['finetuned']:,} B (stock {size['stock']:,}); latency {latency['finetuned']:.2f} ms "
          f"(stock {latency['stock']:.2f})")
    if record["registered"]:
        r = record["registered"]
        print(f"export: registered {r['name']} version {r['version']} as @{r['alias']}; promote with "
              f"`holotune models promote {r['name']} {r['version']}`")


if __name__ == "__main__":
    main()
