"""What pruning buys under ONNX Runtime: stock vs l1_norm vs channel pruning, per module, in one run.

For each fine-tuning module's landmark model (stock weights): the stock export, ``l1_norm`` at 0.3
on the head layers (the original API's default) and ``channels`` at a few sparsities (calibrated
on ``calibration_samples`` train-split crops of ``--shards`` when it has the module's labels, else
on the sample photo crops and mirrors; ``channel_multiple`` and ``calibration_samples`` are the
prune stage's, from ``params.yaml``: 8 and 64). Per variant: parameters, multiply-adds,
ONNX file size raw and gzip (level 9), ONNX Runtime latency (CPU, 1 thread, batch 1; all variants of
a module timed interleaved in one process, ``--runs`` calls each, median and p10-p90 in ms), and
the accuracy cost:

* ``test_nme`` / ``test_presence``: on the test split of ``--shards`` when it has the module's labels
  (the default data has face labels only; they are the stock model's own outputs on clean images),
  crops cut with the evaluate stage's tracking-ROI jitter (``params.yaml``'s ``evaluate.roi_jitter``);
* ``drift_px``: mean landmark distance from the stock model's output on the sample photo crops,
  in input pixels (for hands and pose, whose channel pruning was calibrated on the same crops, so
  this is an optimistic, in-sample figure).

    .venv/bin/python benchmarks/prune.py [--modules face_mesh,hands,pose] [--sparsities 0.1,0.25,0.5]
                                         [--runs 60] [--shards data/shards] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from report import ROOT, add_json_out, load_average, utc_now, versions, write_json

from holotune.config import build, read_params
from holotune.evaluation.scoring import RoiJitter
from holotune.export import export_onnx
from holotune.models import MODULE_SPECS, create_model
from holotune.pruning import (
    PruneOptions,
    calibration_inputs,
    check_options,
    file_sizes,
    multiply_adds,
    parameter_count,
    prune_channels,
    prune_l1,
)
from holotune.runtime.latency import onnx_latency
from holotune.samples import sample_crops

POINT_WIDTH = {"face_mesh": 3, "hands": 3, "pose": 5}  # numbers per landmark in the raw output
L1_SPARSITY = 0.3  # the original API's default


def prune_options(params: dict) -> PruneOptions:
    """The prune stage's options (``params.yaml``), as the ``l1_norm`` variant uses them: the head layers."""
    return build(PruneOptions, {**params["prune"], "method": "l1_norm", "sparsity": L1_SPARSITY, "layers": None},
                 "prune")


def variants(module: str, sparsities: list[float], shards: str | None, manifest: str | None,
             options: PruneOptions) -> tuple[dict, str]:
    """Variant name -> pruned model (stock weights), and where channel calibration came from."""
    name = MODULE_SPECS[module].model
    out = {"stock": create_model(name)}
    l1 = create_model(name)
    prune_l1(l1, check_options(l1, replace(options, module=module)), L1_SPARSITY)
    out[f"l1_norm {L1_SPARSITY:g}"] = l1
    calibration, source = calibration_inputs(module, shards, manifest, options.calibration_samples)
    for sparsity in sparsities:
        model = create_model(name)
        prune_channels(model, sparsity, calibration=calibration, multiple=options.channel_multiple)
        out[f"channels {sparsity:g}"] = model
    return out, source


def drift_px(module: str, model: torch.nn.Module, stock_out: torch.Tensor, x: torch.Tensor) -> float:
    """Mean xy distance (input pixels) of the landmarks from the stock model's on ``x``."""
    with torch.no_grad():
        got = model(x)[0]
    k = POINT_WIDTH[module]
    n = x.shape[0]
    return float((got.reshape(n, -1, k)[..., :2] - stock_out.reshape(n, -1, k)[..., :2]).norm(dim=-1).mean())


def bench_module(module: str, sparsities: list[float], runs: int, shards: str | None, manifest: str | None,
                 tmp: Path, options: PruneOptions, jitter: RoiJitter) -> dict:
    models, source = variants(module, sparsities, shards, manifest, options)
    spec = models["stock"].spec
    nhwc, _ = sample_crops(spec)
    x = torch.from_numpy(np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        stock_out = models["stock"](x)[0]
    rows, paths = {}, {}
    for i, (key, model) in enumerate(models.items()):
        pt = tmp / f"{module}_{i}.pt"  # not named after the key: "0.25".with_suffix() would clobber
        torch.save(model.state_dict(), pt)
        paths[key] = export_onnx(model, pt.with_suffix(".onnx"))
        rows[key] = {"params": parameter_count(model), "nonzero_params": parameter_count(model, nonzero=True),
                     "macs": multiply_adds(model), "onnx": file_sizes(paths[key]), "state_dict": file_sizes(pt),
                     "drift_px": drift_px(module, model, stock_out, x)}
    latency = onnx_latency(paths, spec, runs=runs, warmup=10)
    for key in rows:
        rows[key]["latency_ms"] = latency[key]
        rows[key]["speedup"] = latency["stock"]["median_ms"] / latency[key]["median_ms"]
    if shards and any(Path(shards).glob("test-*.tfrecord*")):
        from holotune.evaluation.scoring import mean_scores, split_dataset

        try:  # the evaluate stage's crops, built once for every variant
            dataset = split_dataset(shards, "test", manifest, module, jitter)
        except ValueError:  # no labelled part of this module in the test split
            dataset = None
        for key, model in models.items() if dataset is not None else ():
            scores = mean_scores(model, dataset)
            rows[key]["test_nme"] = scores["nme"]
            rows[key]["test_presence"] = scores["presence_rate"]
            rows[key]["test_n"] = int(scores["n"])
    return {"model": MODULE_SPECS[module].model, "calibration": source, "variants": rows}


def print_table(results: dict) -> None:
    print("module | variant | params | MACs | ONNX MB (gzip) | ms median (p10-p90) | speedup | drift px | "
          "test NME % | presence %")
    print("---|---|---|---|---|---|---|---|---|---")
    for module, r in results.items():
        for key, v in r["variants"].items():
            lat = v["latency_ms"]
            nme = f"{v['test_nme']:.2f}" if "test_nme" in v else "-"
            presence = f"{v['test_presence']:.0f}" if "test_presence" in v else "-"
            print(f"{module} | {key} | {v['params']:,} | {v['macs'] / 1e6:.1f} M | {v['onnx']['bytes'] / 1e6:.2f} "
                  f"({v['onnx']['gzip_bytes'] / 1e6:.2f}) | {lat['median_ms']:.2f} ({lat['p10_ms']:.2f}-"
                  f"{lat['p90_ms']:.2f}) | {v['speedup']:.2f}x | {v['drift_px']:.2f} | {nme} | {presence}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", default="face_mesh,hands,pose")
    parser.add_argument("--sparsities", default="0.1,0.25,0.5", help="channel-pruning sparsities")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--shards", help="TFRecord shards (default: params.yaml's prune.shards_dir)")
    parser.add_argument("--manifest", help="their manifest (default: params.yaml's prune.manifest)")
    add_json_out(parser, "prune")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    params = read_params(ROOT / "params.yaml")
    options = prune_options(params)
    jitter = replace(build(RoiJitter, params["evaluate"]["roi_jitter"], "evaluate.roi_jitter"),
                     seed=params["evaluate"]["seed"])  # the evaluate stage's crops
    sparsities = [float(s) for s in args.sparsities.split(",")]
    shards = args.shards or options.shards_dir
    shards = shards if Path(shards).is_dir() else None
    manifest = args.manifest or options.manifest
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for module in [m.strip() for m in args.modules.split(",") if m.strip()]:
            results[module] = bench_module(module, sparsities, args.runs, shards, manifest, Path(tmp), options,
                                           jitter)
            print(f"{module}: done ({results[module]['calibration']})", flush=True)
    print()
    print_table(results)
    report = {
        "timestamp": utc_now(),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_average": load_average()},
        "versions": versions("torch", "onnxruntime"),
        "latency": {"runtime": "onnxruntime CPU", "threads": 1, "batch": 1, "runs": args.runs,
                    "statistic": "median of interleaved runs"},
        "channel_multiple": options.channel_multiple, "l1_sparsity": L1_SPARSITY, "channel_sparsities": sparsities,
        "wall_s": round(time.perf_counter() - started, 1),
        "modules": results,
    }
    print()
    write_json(report, args.json_out, f"{report['wall_s']} s")


if __name__ == "__main__":
    main()
