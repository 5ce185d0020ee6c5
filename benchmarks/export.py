"""Does a LoRA-merged export cost anything? Latency and file size next to the stock model, one run.

For each fine-tuning module (face_mesh, hands, pose): the stock model's ONNX (what the runtime
serves), a LoRA-merged export (r=8, ``--placement``, default ``trunk`` as conf/finetune, adapter weights set to random
non-zero values so the merge really changes the weights; or ``--model-dir`` to use a real finetune
output for face_mesh) and, for contrast, the same adapter exported *unmerged* (the LoRA A/B convs
kept as extra ops). ONNX Runtime, CPU, 1 thread, batch 1; the models of one module are timed
interleaved in one process (``--runs`` rounds, median ms), so machine noise hits all alike.
The original API accepted +5 ms and +5 % size for a fine-tuned model.

    .venv/bin/python benchmarks/export.py [--runs 200] [--modules face_mesh,hands,pose]
                                          [--placement trunk|branch|head] [--model-dir models/face_mesh]
                                          [--json-out benchmarks/results/export.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path

import torch

from holotune.adapters import LoraOptions, apply_lora, merge_lora
from holotune.export import export_onnx
from holotune.models import MODULE_MODELS, create_model
from holotune.release import merged_model
from holotune.runtime.latency import onnx_latency
from holotune.runtime.sessions import stock_model_path


def random_adapter(module: str, placement: str, seed: int = 0):
    """The stock model with an r=8 adapter at ``placement`` whose B weights are random (a non-trivial LoRA)."""
    peft_model = apply_lora(create_model(MODULE_MODELS[module]), module,
                            LoraOptions(r=8, lora_alpha=16, placement=placement))
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
    parser.add_argument("--placement", default="trunk", choices=("head", "branch", "trunk"))
    parser.add_argument("--model-dir", default=None, help="a real finetune output for face_mesh (model.pt, adapter/)")
    parser.add_argument("--json-out", default=str(Path(__file__).parent / "results" / "export.json"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    from holotune.export import export_stock_models

    export_stock_models()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for module in [m.strip() for m in args.modules.split(",") if m.strip()]:
            name = MODULE_MODELS[module]
            if module == "face_mesh" and args.model_dir:
                merged, _ = merged_model(module, args.model_dir)
                source = args.model_dir
                peft_model = None
            else:
                peft_model = random_adapter(module, args.placement)
                merged = merge_lora(copy.deepcopy(peft_model)).eval()
                source = f"random r=8 {args.placement} adapter"
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
    out = {"benchmark": "export", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": list(os.getloadavg())},
           "settings": {"runs": args.runs, "threads": 1, "batch": 1, "placement": args.placement}, "results": results}
    path = Path(args.json_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"\nJSON: {path}")


if __name__ == "__main__":
    main()
