"""The model card of an exported model: a markdown page a reviewer reads before promoting it.

Sections: the model and where it is registered; the data (samples per split and condition, hash);
the parameters; metrics before and after per split with 95 % intervals and the gate; parity (merge,
ONNX vs torch); size and latency next to the stock model; pruning; limits. A landmark gesture head
gets a shorter card of its own (:func:`write_gesture_card`).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path


def _data_table(manifest: str | os.PathLike | None) -> list[str]:
    from holotune.data.manifest import read_manifest

    if not manifest or not Path(manifest).is_file():
        return ["(no manifest)"]
    samples = list(read_manifest(manifest))
    counts = Counter((s.split, s.meta.get("condition") or "all") for s in samples)
    groups = {split: len({s.group for s in samples if s.split == split}) for split in ("train", "val", "test")}
    conditions = sorted({c for _, c in counts})
    lines = ["| split | identities | " + " | ".join(conditions) + " |", "|---|---|" + "---|" * len(conditions)]
    for split in ("train", "val", "test"):
        lines.append(f"| {split} | {groups[split]} | " + " | ".join(str(counts[(split, c)]) for c in conditions) + " |")
    return lines


def _metric_rows(metrics: dict) -> list[str]:
    splits = metrics["splits"]
    names = [m for m in splits["all"]["baseline"] if "_ci95_" not in m]
    lines = []
    for metric in names:
        lower = "lower is better" if metric == "nme" else "higher is better"
        lines += [f"**{metric}** (%, {lower})", "",
                  "| split | samples | identities | stock [95% CI] | fine-tuned [95% CI] | change |", "|---|---|---|---|---|---|"]
        for split, s in splits.items():
            b, f, d = s["baseline"], s["finetuned"], s["delta"]
            change = (f"{d[metric + '_pct']:+.1f}% [{d[metric + '_pct_ci95_low']:+.1f}, {d[metric + '_pct_ci95_high']:+.1f}]"
                      if f"{metric}_pct" in d else f"{d[metric]:+.1f} points")
            lines.append(f"| {split} | {s['n']} | {s['identities']} | {b[metric]:.3f} [{b[metric + '_ci95_low']:.3f}, "
                         f"{b[metric + '_ci95_high']:.3f}] | {f[metric]:.3f} [{f[metric + '_ci95_low']:.3f}, "
                         f"{f[metric + '_ci95_high']:.3f}] | {change} |")
        lines.append("")
    return lines


def _file_rows(record: dict) -> list[str]:
    """The exported files with their sha256, and what each one replaces."""
    tflite = record.get("tflite")
    use = {"model.onnx": "holotune's ONNX Runtime Holistic (`--face-mesh` / `--hands` / `--pose`, or the registry)",
           "model.tflite": f"MediaPipe itself: rename to `{tflite['drop_in_for']}` and replace the stock file"
           if tflite else ""}
    rows = ["| file | bytes | sha256 | for |", "|---|---|---|---|"]
    for name, f in (record.get("files") or {}).items():
        rows.append(f"| `{name}` | {f['bytes']:,} | `{f['sha256']}` | {use.get(name, '')} |")
    return rows


def _tflite_rows(tflite: dict | None, runs: int) -> list[str]:
    """Size and TFLite interpreter latency rows of ``model.tflite`` (none without one), and its parity line."""
    if not tflite:
        return []
    size, latency, parity = tflite["size_bytes"], tflite["latency_ms"], tflite["parity"]
    return [
        f"| .tflite file (bytes) | {size['stock']:,} | {size['finetuned']:,} | "
        f"{100 * (size['finetuned'] / size['stock'] - 1):+.2f}% |",
        f"| TFLite interpreter latency (ms, median of {runs}, XNNPACK, 1 thread) | {latency['stock']:.2f} | "
        f"{latency['finetuned']:.2f} | {latency['finetuned'] - latency['stock']:+.2f} ms |",
        "",
        "- `model.tflite` under the TFLite interpreter vs torch, max abs difference on real crops: "
        + ", ".join(f"`{k}` {v:.2g} (bound {parity['bounds'][k]:.2g})" for k, v in parity["tflite_vs_torch"].items())
        + " (float16 storage of the weights; the bound is 1 % of each output's scale); vs torch with the weights rounded to "
        "float16 as the file stores them: "
        + ", ".join(f"`{k}` {v:.2g}" for k, v in parity["tflite_vs_torch_float16_weights"].items()) + ".",
    ]


def write_model_card(path: str | os.PathLike, record: dict, metrics: dict | None,
                     manifest: str | os.PathLike | None) -> Path:
    """Write ``MODEL_CARD.md`` from an export record (:func:`holotune.release.release`) and evaluate metrics."""
    path = Path(path)
    reg = record.get("registered")
    size, latency = record["size_bytes"], record["latency_ms"]
    lines = [
        f"# holotune {record['module']} ({record['model']}), fine-tuned",
        "",
        f"- ONNX: `{Path(record['onnx']).name}`, the stock signature (input `input` (N, 3, H, W); the stock output "
        "names and shapes), swappable into `holotune.runtime.Holistic`.",
        f"- Registry: `{reg['name']}` version {reg['version']}, alias `{reg['alias']}` (promote with "
        f"`holotune models promote {reg['name']} {reg['version']}`)" if reg else "- Registry: not registered.",
        f"- Git commit `{record['git_commit']}`, data hash `{record['data_hash']}`.",
        "",
        "## Files",
        "",
        *_file_rows(record),
        "",
        "## Data",
        "",
        *_data_table(manifest),
        "",
        "## Parameters",
        "",
        "```json",
        json.dumps(record.get("params") or {}, indent=1, sort_keys=True),
        "```",
        "",
        "## Metrics: stock vs fine-tuned, same test crops",
        "",
    ]
    if metrics:
        lines += [f"Split `{metrics['split']}`; 95% intervals: bootstrap over test identities "
                  f"({metrics['bootstrap']['resamples']} resamples). Reference split (the forgetting gate): conditions "
                  f"{metrics['reference_conditions']}.", "", *_metric_rows(metrics)]
        gate = metrics["gate"]
        lines += [f"**Gate:** {'passed' if gate['passed'] else 'FAILED'}: {gate['message']}."
                  + (" Accepted with `evaluate.allow_regression=true`." if not gate["passed"] else ""), ""]
        if "classification" in metrics:
            c = metrics["classification"]
            lines += [f"Classification ({', '.join(c['class_names'])}): accuracy {c['finetuned']['accuracy']:.3f}, "
                      f"macro-F1 {c['finetuned']['macro_f1']:.3f} on {c['finetuned']['n']} test samples; confusion "
                      f"matrix (rows true, columns predicted): `{c['confusion_matrix']}`.", ""]
    else:
        lines += ["(no evaluate metrics)", ""]
    merge = record["merge"]
    parity = record["parity"]["onnx_vs_torch"]
    lines += [
        "## Parity",
        "",
        (f"- LoRA merged into the weights: merged vs unmerged max abs difference {merge['merged_vs_unmerged']:.2g}; "
         f"merged vs the finetune stage's `model.pt` {merge['merged_vs_model_pt']:.2g}."
         if merge.get("source") == "adapter" else "- Full fine-tune: no adapter to merge."),
        "- ONNX Runtime vs torch, max abs difference on real crops: "
        + ", ".join(f"`{k}` {v:.2g}" for k, v in parity.items()) + f" (tolerance {record['parity']['atol']:g}).",
        "",
        "## Size and latency (next to the stock model, one run)",
        "",
        "| | stock | fine-tuned | change |",
        "|---|---|---|---|",
        f"| ONNX file (bytes) | {size['stock']:,} | {size['finetuned']:,} | "
        f"{100 * (size['finetuned'] / size['stock'] - 1):+.2f}% |",
        f"| ONNX Runtime latency (ms, median of {latency['runs']}, 1 thread, batch 1) | {latency['stock']:.2f} | "
        f"{latency['finetuned']:.2f} | {latency['finetuned'] - latency['stock']:+.2f} ms |",
        *_tflite_rows(record.get("tflite"), latency["runs"]),
        "",
    ]
    prune = record.get("prune")
    if prune:
        lines += ["## Pruning (the prune stage's report; not applied to this export)", "", "```json",
                  json.dumps({k: v for k, v in prune.items() if not isinstance(v, (list, dict)) or k in
                              ("sparsity", "metric_change", "size_bytes", "latency_ms")}, indent=1)[:3000], "```", ""]
    lines += [
        "## Limits",
        "",
        "- Labels of the default data are the stock model's own predictions on the clean image (pseudo-labels): "
        "error measures agreement with stock-on-clean, not with human annotation.",
        "- The shift (masks, sunglasses, low light) is synthetic; the test set holds few identities; read the "
        "intervals, not only the point estimates.",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def write_gesture_card(path: str | os.PathLike, record: dict, metrics: dict | None) -> Path:
    """``MODEL_CARD.md`` of a landmark gesture head: classes, data, scores per condition, parity, size, latency."""
    path = Path(path)
    c = (metrics or {}).get("classification")
    lines = [f"# holotune landmark gesture head ({len(record['class_names'])} classes)", "",
             f"- ONNX: `{Path(record['onnx']).name}`: input `features` (N, 127) = `holotune.gesture.hand_features` of "
             "Holistic's 21 hand landmarks, output `logits` (N, C); class names in the ONNX metadata. Serve it with "
             "`Holistic(gesture=...)` or `holotune infer --gesture`; below a score of 0.5 a hand is `none`.",
             f"- Classes (index order): {', '.join(record['class_names'])}.",
             f"- Registered: {record['registered']['uri'] if record['registered'] else 'no'}.", ""]
    if c:
        share = metrics.get("synthetic", 0.0)
        lines += [f"## Test split ({c['finetuned']['n']} hands; {100 * share:.0f} % synthetic)", "",
                  f"Accuracy {100 * c['finetuned']['accuracy']:.1f} %, macro-F1 {100 * c['finetuned']['macro_f1']:.1f} %.", "",
                  "| condition | hands | accuracy | macro-F1 |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['n']} | {100 * v['accuracy']:.1f} % | {100 * v['macro_f1']:.1f} % |"
                  for k, v in c["conditions"].items()]
        lines.append("")
    latency = record["latency_ms"]
    lines += ["## Parity, size, latency", "",
              f"- ONNX Runtime vs torch: max |Δ logits| {record['parity']['onnx_vs_torch']['logits']:.2g} on "
              f"{record['parity']['samples']} hands.",
              f"- Size: {record['size_bytes']['finetuned']:,} B.",
              f"- Latency (1 thread): {latency['per_hand_ms']:.4f} ms per hand (features + head, median).", ""]
    path.write_text("\n".join(lines))
    return path
