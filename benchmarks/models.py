"""Latency of each holotune model under TFLite (XNNPACK), PyTorch eager and ONNX Runtime (CPU).

Every model runs at batch 1 on one real crop (the first of :func:`holotune.samples.sample_crops`)
through three runtimes, all pinned to the same thread count (default 1):

* ``tflite``: the stock ``.tflite`` file under ``ai_edge_litert`` (XNNPACK delegate, the default),
* ``torch``: the holotune module in eager mode under ``torch.inference_mode``,
* ``onnx``: :func:`holotune.export.export_onnx` output under ONNX Runtime's CPU provider
  (``ORT_ENABLE_ALL``, intra/inter-op threads pinned, spinning off).

After the warm-ups, the runtimes take turns in blocks of a few runs each until each has ``--runs``
timed calls, so slow phases of a noisy (shared, 2-vCPU) VM hit all three alike. Figures are
milliseconds per call: the median, and p10/p90 as a spread. Absolute numbers move from run to
run and machine to machine; read the ``onnx/tflite`` ratio of medians, taken in one run, against
the goal that the ONNX export be no more than 1.2x slower than the stock TFLite model.

    .venv/bin/python benchmarks/models.py [--threads 1] [--runs 50] [--warmup 10]
                                          [--models a,b] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from ai_edge_litert.interpreter import Interpreter
from report import add_json_out, cpu_name, utc_now, versions, write_json

from holotune.export import export_onnx
from holotune.models import create_model, list_models, tflite_path
from holotune.samples import sample_crops

GOAL = 1.2  # onnx/tflite median latency ratio to stay under
BLOCK = 5  # timed runs per runtime per turn
RUNTIMES = ("tflite", "torch", "onnx")


def tflite_runner(name: str, sample_nhwc: np.ndarray, threads: int) -> Callable[[], object]:
    interpreter = Interpreter(model_path=str(tflite_path(name)), num_threads=threads)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], sample_nhwc[None])
    return interpreter.invoke


def torch_runner(model: torch.nn.Module, sample_nchw: torch.Tensor) -> Callable[[], object]:
    def run():
        with torch.inference_mode():
            return model(sample_nchw)

    return run


def onnx_runner(path: Path, sample_nchw: np.ndarray, threads: int) -> Callable[[], object]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {session.get_inputs()[0].name: sample_nchw}
    return lambda: session.run(None, feeds)


def time_interleaved(runners: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, list[float]]:
    """Warm each runner up, then time them in round-robin blocks; returns milliseconds per call."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {key: [] for key in runners}
    while any(len(t) < runs for t in times.values()):
        for key, run in runners.items():
            for _ in range(min(BLOCK, runs - len(times[key]))):
                start = time.perf_counter_ns()
                run()
                times[key].append((time.perf_counter_ns() - start) / 1e6)
    return times


def bench_model(name: str, onnx_dir: Path, threads: int, runs: int, warmup: int) -> dict:
    model = create_model(name).eval()
    inputs, _ = sample_crops(model.spec)
    sample = np.ascontiguousarray(inputs[0], dtype=np.float32)  # (H, W, 3)
    nchw = np.ascontiguousarray(sample.transpose(2, 0, 1)[None])
    onnx_path = export_onnx(model, onnx_dir / f"{name}.onnx")
    runners = {
        "tflite": tflite_runner(name, sample, threads),
        "torch": torch_runner(model, torch.from_numpy(nchw)),
        "onnx": onnx_runner(onnx_path, nchw, threads),
    }
    times = time_interleaved(runners, runs, warmup)
    result = {
        key: {f"p{q}_ms": round(float(np.percentile(times[key], q)), 4) for q in (10, 50, 90)} for key in RUNTIMES
    }
    ratio = result["onnx"]["p50_ms"] / result["tflite"]["p50_ms"]
    result["onnx_over_tflite"] = round(ratio, 3)
    result["goal_met"] = ratio <= GOAL
    return result


def print_table(results: dict[str, dict]) -> None:
    header = f"{'model':<28}" + "".join(f"{k + ' ms':>22}" for k in RUNTIMES) + f"{'onnx/tflite':>13}  goal (<={GOAL})"
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        cells = "".join(f"{r[k]['p50_ms']:>8.2f} ({r[k]['p10_ms']:.2f}-{r[k]['p90_ms']:.2f})".rjust(22) for k in RUNTIMES)
        met = "yes" if r["goal_met"] else "NO"
        print(f"{name:<28}{cells}{r['onnx_over_tflite']:>12.2f}x  {met}")
    print("median ms per call, batch 1 (p10-p90 in brackets)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=50, help="timed calls per model and runtime")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--models", help="comma-separated names (default: all)")
    add_json_out(parser, "models")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    names = args.models.split(",") if args.models else list_models()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = {name: bench_model(name, Path(tmp), args.threads, args.runs, args.warmup) for name in names}
    print_table(results)

    report = {
        "timestamp": utc_now(),
        "cpu": cpu_name(),
        "threads": args.threads,
        "runs": args.runs,
        "warmup": args.warmup,
        "batch": 1,
        "goal_onnx_over_tflite": GOAL,
        "versions": versions("torch", "onnxruntime", "ai-edge-litert"),
        "wall_s": round(time.perf_counter() - started, 1),
        "models": results,
    }
    write_json(report, args.json_out, f"{report['wall_s']} s")


if __name__ == "__main__":
    main()
