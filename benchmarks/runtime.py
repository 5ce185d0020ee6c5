"""Per-image latency of holotune's ONNX Runtime Holistic vs mediapipe.solutions.holistic, one process.

Prints the table (median ms per image for both, and the ratio) and writes JSON. Both pipelines
run static-image Holistic (model_complexity=1) on the same images, interleaved; read the ratio,
which is measured in one run (absolute times on a shared 2-vCPU VM move from run to run).

    .venv/bin/python benchmarks/runtime.py [--images DIR] [--runs 15] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from holotune.export import export_stock_models
from holotune.runtime.benchmark import benchmark_runtime, format_table, load_bench_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", help="folder of images (default: the sample photos)")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json-out", default=str(Path(__file__).parent / "results" / "runtime.json"))
    args = parser.parse_args()

    export_stock_models()  # no-op once the stock ONNX files exist
    report = benchmark_runtime(load_bench_images(args.images), runs=args.runs, warmup=args.warmup)
    print(format_table(report))
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
