"""The pose pipeline's model, beyond the evaluate stage: training cost, heatmap refinement, world landmarks.

Reads the pose pipeline's outputs (``make pose``: ``pose/params.yaml``'s paths, ``models/pose/pose/model.pt``
and ``data/pose/shards``) and measures, on the test split's crops (people never trained on; the
evaluate stage's tracking-ROI error):

* **training step**: ms per sample of a LoRA forward + backward at batch 16, the default ``trunk``
  placement (the 14-layer regression encoder: the heatmap and segmentation layers stay stock) vs LoRA
  on all 45 layers feeding the landmarks, interleaved rounds, one process (compare the ratio);
* **heatmap refinement**: NME of the raw regression output and of the output after the runtime's
  heatmap refinement (``holotune.runtime.holistic.refine_from_heatmap``, what ``Holistic`` serves),
  stock vs fine-tuned, clean and shifted: does refinement still improve what it improved for stock;
* **world landmarks**: the fine-tuned model's world landmarks against the stock model's on the same
  crop (mean per-joint distance, mm; the pose data has no world labels, so this is drift, not error).

Labels are pseudo-labels (the stock model on the clean image). Prints a table and writes JSON.

    .venv/bin/python benchmarks/pose.py [--params pose/params.yaml] [--model PATH] [--rounds 3] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch
from report import ROOT, add_json_out, load_average, utc_now, write_json

from holotune.adapters import LoraOptions, apply_lora, can_adapt
from holotune.config import read_params
from holotune.evaluation.metrics import nme
from holotune.evaluation.scoring import RoiJitter, sample_info, split_dataset
from holotune.landmarks import NUM_POSE
from holotune.models import create_model
from holotune.models.spec import get_module
from holotune.runtime.holistic import refine_from_heatmap
from holotune.training.outputs import decode_landmarks

SPEC = get_module("pose")


def step_ms(placement_targets: tuple[str, ...] | None, batch: torch.Tensor) -> float:
    """ms per sample of one LoRA forward (landmark and presence heads) + backward."""
    model = apply_lora(create_model(SPEC.model), "pose", LoraOptions(
        r=8, lora_alpha=16, lora_dropout=0.0, placement="trunk", target_modules=placement_targets))
    base = model.get_base_model()
    start = time.perf_counter()
    outputs = base.forward_head(base.forward_features(batch), SPEC.trained_outputs)
    decode_landmarks("pose", outputs).square().mean().backward()
    return 1000.0 * (time.perf_counter() - start) / len(batch)


def training_cost(rounds: int) -> dict:
    torch.manual_seed(0)
    batch = torch.rand(16, 3, *SPEC.model_spec.input_size)
    stock = create_model(SPEC.model)
    every = tuple(n for n in stock.layers_feeding(list(SPEC.trained_outputs)) if can_adapt(getattr(stock, n)))
    times: dict[str, list[float]] = {"trunk": [], "all_layers": []}
    step_ms(None, batch)  # warm-up
    for _ in range(rounds):
        times["trunk"].append(step_ms(None, batch))
        times["all_layers"].append(step_ms(every, batch))
    out = {k: statistics.median(v) for k, v in times.items()}
    out["ratio"] = out["all_layers"] / out["trunk"]
    out["layers"] = {"trunk": 14, "all_layers": len(every)}
    return out


@torch.no_grad()
def crop_outputs(model: torch.nn.Module, dataset) -> dict[str, np.ndarray]:
    """Per crop: raw and heatmap-refined landmarks (N, 33, 3), world landmarks (N, 33, 3), targets, masks."""
    rows: dict[str, list] = {"raw": [], "refined": [], "world": [], "target": [], "mask": [], "ids": []}
    names = SPEC.model_spec.output_names
    for batch in torch.utils.data.DataLoader(dataset, batch_size=16, shuffle=False):
        outputs = model(batch["image"])
        out = dict(zip(names, outputs))
        raw = decode_landmarks("pose", outputs).numpy()
        heatmaps = out["heatmap"].numpy()[..., :NUM_POSE]
        refined = raw.copy()
        for i in range(len(raw)):
            refined[i, :, :2] = refine_from_heatmap(raw[i, :, :2].astype(np.float32), heatmaps[i])
        rows["raw"].append(raw)
        rows["refined"].append(refined)
        rows["world"].append(out["world_landmarks"].numpy().reshape(len(raw), -1, 3)[:, :NUM_POSE])
        rows["target"].append(batch["target"].numpy())
        rows["mask"].append(batch["mask"].numpy())
        rows["ids"] += [dataset.images[dataset.items[int(k)][0]].sample_id for k in batch["index"]]
    return {k: (np.concatenate(v) if k != "ids" else v) for k, v in rows.items()}


def nme_pct(pred: np.ndarray, out: dict, keep: np.ndarray) -> float:
    values = nme(torch.from_numpy(pred[keep]), torch.from_numpy(out["target"][keep]),
                 torch.from_numpy(out["mask"][keep]), "pose")
    return 100.0 * float(np.nanmean(values.numpy()))


def refinement_and_world(params: dict) -> dict:
    evaluate = params["evaluate"]
    jitter = RoiJitter(**evaluate["roi_jitter"], seed=evaluate["seed"])
    dataset = split_dataset(ROOT / evaluate["shards_dir"], "test", ROOT / evaluate["manifest"], "pose", jitter)
    info = sample_info(ROOT / evaluate["manifest"])
    stock = crop_outputs(create_model(SPEC.model).eval(), dataset)
    tuned = crop_outputs(create_model(SPEC.model, checkpoint_path=ROOT / evaluate["model"]).eval(), dataset)
    conditions = np.array([info.get(s, {}).get("condition") or "all" for s in stock["ids"]])
    splits = {"clean": conditions == "clean", "shifted": conditions != "clean"}
    out: dict = {"crops": {k: int(v.sum()) for k, v in splits.items()}, "nme": {}, "world_drift_mm": {}}
    for split, keep in splits.items():
        out["nme"][split] = {f"{model}_{kind}": nme_pct(res[kind], res, keep)
                             for model, res in (("stock", stock), ("finetuned", tuned)) for kind in ("raw", "refined")}
        drift = np.linalg.norm(tuned["world"][keep] - stock["world"][keep], axis=-1).mean(axis=1)
        out["world_drift_mm"][split] = {"mean": 1000.0 * float(drift.mean()), "p90": 1000.0 * float(np.percentile(drift, 90))}
    return out


def format_table(report: dict) -> str:
    t = report["training_step"]
    lines = [f"training step (batch 16, ms/sample): trunk (14 layers) {t['trunk']:.1f}, all {t['layers']['all_layers']} "
             f"layers {t['all_layers']:.1f}: {t['ratio']:.1f}x"]
    r = report.get("test_split")
    if r:
        lines.append(f"{'split':<9}{'crops':>6}{'stock raw':>11}{'refined':>9}{'tuned raw':>11}{'refined':>9}"
                     f"{'world drift mm (p90)':>22}")
        for split, n in r["crops"].items():
            e, w = r["nme"][split], r["world_drift_mm"][split]
            lines.append(f"{split:<9}{n:>6}{e['stock_raw']:>10.2f}%{e['stock_refined']:>8.2f}%{e['finetuned_raw']:>10.2f}%"
                         f"{e['finetuned_refined']:>8.2f}%{w['mean']:>14.1f} ({w['p90']:.1f})")
    else:
        lines.append(f"test split: {report['skipped']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(ROOT / "pose" / "params.yaml"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", help="the fine-tuned model.pt (default: the params' evaluate.model)")
    add_json_out(parser, "pose")
    args = parser.parse_args()
    torch.set_num_threads(2)
    params = read_params(args.params)
    if args.model:
        params["evaluate"]["model"] = args.model
    report: dict = {"date": utc_now(), "machine": {"load_average": load_average(), "threads": 2},
                    "labels": "pseudo-labels: the stock model's output on the clean image",
                    "training_step": training_cost(args.rounds)}
    model = ROOT / params["evaluate"]["model"]
    if model.is_file() and (ROOT / params["evaluate"]["shards_dir"]).is_dir():
        report["test_split"] = refinement_and_world(params)
    else:
        report["skipped"] = f"no {model.relative_to(ROOT)}: run `make pose` first"
    print(format_table(report))
    write_json(report, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
