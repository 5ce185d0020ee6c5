"""Does a LoRA-merged export cost anything? Latency and file size next to the stock model, one run.

For each fine-tuning module (face_mesh, hands, pose): the stock model's ONNX (what the runtime
serves), a LoRA-merged export (the finetune stage's adapter from ``params.yaml``: r=8, alpha 16,
placement ``trunk`` or ``--placement``; adapter weights set to random non-zero values so the merge
really changes the weights; or ``--model-dir`` to use a real finetune output for face_mesh) and, for
contrast, the same adapter exported *unmerged* (the LoRA A/B convs kept as extra ops). ONNX
Runtime, CPU, 1 thread, batch 1; the models of one module are timed interleaved in one process
(``--runs`` rounds, median ms), so machine noise hits all alike.
The original API accepted +5 ms and +5 % size for a fine-tuned model.

    .venv/bin/python benchmarks/export.py [--runs 200] [--modules face_mesh,hands,pose]
                                          [--placement trunk|branch|head] [--model-dir models/face_mesh]
                                          [--json-out benchmarks/results/export.json]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import tempfile
import warnings
from pathlib import Path

import torch
from report import ROOT, add_json_out, load_average, utc_now, write_json

from holotune.adapters import LoraOptions, apply_lora, merge_lora
from holotune.config import read_params, with_overrides
from holotune.export import export_onnx
from holotune.models import MODULE_SPECS, create_model
from holotune.release import merged_model
from holotune.runtime.latency import onnx_latency
from holotune.runtime.sessions import ensure_stock_models, stock_model_path
from holotune.training.finetune import FinetuneOptions


def lora_options(params: dict, module: str, placement: str) -> LoraOptions:
    """The finetune stage's adapter (``params``) for ``module``, at ``placement``."""
    overrides = {"module.name": module, "finetune.lora_placement": placement}
    return FinetuneOptions.from_config(with_overrides(params, overrides)).model.lora


def random_adapter(module: str, lora: LoraOptions, seed: int = 0):
    """The stock model with the ``lora`` adapter whose B weights are random (a non-trivial LoRA)."""
    peft_model = apply_lora(create_model(MODULE_SPECS[module].model), module, lora)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(0.01 * torch.randn(param.shape, generator=generator))
    return peft_model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", default="face_mesh,hands,pose")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--placement", default=None, choices=("head", "branch", "trunk"),
                        help="LoRA placement (default: params.yaml's finetune.lora_placement)")
    parser.add_argument("--model-dir", default=None, help="a real finetune output for face_mesh (model.pt, adapter/)")
    add_json_out(parser, "export")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)

    params = read_params(ROOT / "params.yaml")
    placement = args.placement or params["finetune"]["lora_placement"]

    ensure_stock_models()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for module in [m.strip() for m in args.modules.split(",") if m.strip()]:
            name = MODULE_SPECS[module].model
            lora = lora_options(params, module, placement)
            if module == "face_mesh" and args.model_dir:
                merged, _ = merged_model(module, args.model_dir)
                source = args.model_dir
                peft_model = None
            else:
                peft_model = random_adapter(module, lora)
                merged = merge_lora(copy.deepcopy(peft_model)).eval()
                source = f"random r={lora.r} {placement} adapter"
            paths = {"stock": stock_model_path(name),
                     "merged": export_onnx(merged, Path(tmp) / f"{module}_merged.onnx")}
            if peft_model is not None:
                try:
                    paths["unmerged"] = export_onnx(peft_model.get_base_model(), Path(tmp) / f"{module}_unmerged.onnx")
                except Exception as error:  # the contrast is optional; say why it is missing
                    print(f"  {module}: unmerged export failed: {type(error).__name__}: {error}")
            latency = {k: v["median_ms"] for k, v in onnx_latency(paths, merged.spec, runs=args.runs).items()}
            sizes = {k: Path(p).stat().st_size for k, p in paths.items()}
            results[module] = {"model": name, "source": source, "latency_ms": latency, "size_bytes": sizes,
                               "merged_minus_stock_ms": latency["merged"] - latency["stock"],
                               "merged_size_change_pct": 100 * (sizes["merged"] / sizes["stock"] - 1)}
            print(f"{module}: done", flush=True)
    print("\nmodule | model | stock ms | merged ms | Δ ms | unmerged ms | stock bytes | merged bytes | Δ size | unmerged bytes")
    print("---|---|---|---|---|---|---|---|---|---")
    for module, r in results.items():
        lat, size = r["latency_ms"], r["size_bytes"]
        un_ms = f"{lat['unmerged']:.2f}" if "unmerged" in lat else "–"
        un_b = f"{size['unmerged']:,}" if "unmerged" in size else "–"
        print(f"{module} | {r['model']} | {lat['stock']:.2f} | {lat['merged']:.2f} | {r['merged_minus_stock_ms']:+.2f} | "
              f"{un_ms} | {size['stock']:,} | {size['merged']:,} | {r['merged_size_change_pct']:+.2f}% | {un_b}")
    out = {"benchmark": "export", "date": utc_now(),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": load_average()},
           "settings": {"runs": args.runs, "threads": 1, "batch": 1, "placement": placement}, "results": results}
    print()
    write_json(out, args.json_out)


if __name__ == "__main__":
    main()
