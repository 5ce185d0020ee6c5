"""Fine-tuned weights written back into MediaPipe's .tflite: parity, size and latency next to the stock file.

For each fine-tuning module (face_mesh, hands, pose): a LoRA-merged model (the finetune stage's
adapter from ``params.yaml`` with random non-zero B weights, as benchmarks/export.py makes it; or
``--model-dir`` for a real finetune output of face_mesh, e.g. ``models/face_mesh``) written with
:func:`holotune.tflite_export.export_tflite`. Reports, per output, the TFLite interpreter on the new
file against the float32 PyTorch module (the float16 bound, :data:`~holotune.tflite_export.FLOAT16_RTOL` of each output's scale)
and against the module with float16-rounded weights (the write itself), the file sizes, the write
time, and the TFLite interpreter's latency (XNNPACK, 1 thread, batch 1) of the stock and the new file,
interleaved in one process (``--runs`` calls each, median).

    .venv/bin/python benchmarks/tflite_export.py [--runs 200] [--modules face_mesh,hands,pose] [--model-dir models/face_mesh]
                                          [--json-out benchmarks/results/tflite_export.json]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import torch
from export import lora_options, random_adapter
from report import ROOT, add_json_out, load_average, utc_now, write_json

from holotune.adapters import merge_lora
from holotune.config import read_params
from holotune.models import MODULE_SPECS
from holotune.release import merged_model
from holotune.tflite_export import FLOAT16_RTOL, export_tflite, tflite_latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", default="face_mesh,hands,pose")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--model-dir", default=None, help="a real finetune output for face_mesh (model.pt, adapter/)")
    add_json_out(parser, "tflite_export")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    params = read_params(ROOT / "params.yaml")
    placement = params["finetune"]["lora_placement"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for module in [m.strip() for m in args.modules.split(",") if m.strip()]:
            name = MODULE_SPECS[module].model
            if module == "face_mesh" and args.model_dir:
                model, _ = merged_model(module, args.model_dir)
                source = args.model_dir
            else:
                lora = lora_options(params, module, placement)
                model = merge_lora(copy.deepcopy(random_adapter(module, lora))).eval()
                source = f"random r={lora.r} {placement} adapter"
            start = time.perf_counter()
            written = export_tflite(model, Path(tmp) / f"{module}.tflite")
            seconds = time.perf_counter() - start
            timed = tflite_latency({"stock": written["source"], "finetuned": written["path"]}, model.spec, runs=args.runs)
            results[module] = {
                "model": name, "source": source, "drop_in_for": Path(written["source"]).name,
                "weights_changed": written["weights_changed"],
                "parity": written["parity"], "parity_float16_weights": written["parity_float16_weights"], "bounds": written["bounds"],
                "size_bytes": {"stock": Path(written["source"]).stat().st_size, "finetuned": written["bytes"]},
                "latency_ms": {k: v["median_ms"] for k, v in timed.items()},
                "export_seconds": seconds,
            }
            print(f"{module}: done", flush=True)
    print(f"\nmodule | file | weights rewritten | TFLite vs torch (max per output; bound {FLOAT16_RTOL:.0%} of its scale) | "
          "vs torch with float16 weights | stock bytes | new bytes | stock ms | new ms | export s")
    print("---|---|---|---|---|---|---|---|---|---")
    for module, r in results.items():
        parity = ", ".join(f"{k} {v:.2g}" for k, v in r["parity"].items())
        rounded = ", ".join(f"{k} {v:.2g}" for k, v in r["parity_float16_weights"].items())
        size, lat = r["size_bytes"], r["latency_ms"]
        print(f"{module} | {r['drop_in_for']} | {r['weights_changed']} | {parity} | {rounded} | {size['stock']:,} | "
              f"{size['finetuned']:,} | {lat['stock']:.2f} | {lat['finetuned']:.2f} | {r['export_seconds']:.1f}")
    out = {"benchmark": "tflite_export", "date": utc_now(),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": load_average()},
           "settings": {"runs": args.runs, "threads": 1, "batch": 1, "placement": placement,
                        "float16_rtol": FLOAT16_RTOL}, "results": results}
    print()
    write_json(out, args.json_out)


if __name__ == "__main__":
    main()
