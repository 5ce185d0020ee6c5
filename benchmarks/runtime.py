"""Per-image latency of holotune's ONNX Runtime Holistic vs mediapipe.solutions.holistic, one process.

Prints the table (median ms per image for both, and the ratio) and writes JSON. Both pipelines
run static-image Holistic (model_complexity=1) on the same images, interleaved; read the ratio,
which is measured in one run (absolute times on a shared 2-vCPU VM move from run to run).

    .venv/bin/python benchmarks/runtime.py [--images DIR] [--runs 15] [--warmup 2] [--json-out PATH]
"""

from __future__ import annotations

import argparse

from report import add_json_out, write_json

from holotune.runtime.benchmark import benchmark_runtime, format_table, load_bench_images
from holotune.runtime.sessions import ensure_stock_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", help="folder of images (default: the sample photos)")
    parser.add_argument("--runs", type=int, default=15, help="timed calls per image and pipeline")
    parser.add_argument("--warmup", type=int, default=2)
    add_json_out(parser, "runtime")
    args = parser.parse_args()

    ensure_stock_models()  # a few stat calls once the stock ONNX files exist
    report = benchmark_runtime(load_bench_images(args.images), runs=args.runs, warmup=args.warmup)
    print(format_table(report))
    write_json(report, args.json_out)


if __name__ == "__main__":
    main()
