"""The fine-tuned face model's gain through the whole Holistic pipeline, in MediaPipe itself and in holotune's runtime.

The evaluate stage scores the face model on crops (``reports/metrics.json``: NME on the tracking-ROI
crop of the label, stock vs fine-tuned). This runs the full pipeline instead, pose detection -> pose
landmarks -> face ROI -> face detector -> face-mesh ROI -> face landmarks, on the test split's full
images (``data/interim/manifest.jsonl``), four ways:

* MediaPipe's own ``mediapipe.solutions.holistic.Holistic`` (0.10.21), stock;
* the same, its ``face_landmark.tflite`` replaced by the fine-tuned model written back into the stock
  file (:func:`holotune.tflite_export.export_finetuned_tflite` from ``models/face_mesh/model.pt``),
  through a resource folder (:mod:`holotune.mediapipe_resources`);
* holotune's ONNX Runtime Holistic, stock, and with the exported ``model.onnx``
  (``models/exported/face_mesh/model.onnx``; exported from ``model.pt`` here if the export stage has not run).

Options: ``static_image_mode=True, model_complexity=1, refine_face_landmarks=False``, and a fresh
MediaPipe instance per image (static mode is not stateless, docs/mediapipe_holistic.md §12.1).

Per condition (``clean``, ``low_light``, ``mask``, ``both``; ``shifted`` pools the last three) and
face domain: how often each pipeline outputs a face (detection rate: pose found, face detector
found, face flag > 0.5), and face NME (%, :func:`holotune.evaluation.metrics.nme`: mean point error
over the label's outer-eye distance, in image pixels) on the images where *both* stock and fine-tuned
found a face, with the change and its 95 % bootstrap interval over test identities
(:func:`holotune.evaluation.comparison.compare_metric`, as the evaluate stage computes it).

Beside it, the crop level: the evaluate stage's own scoring (:func:`holotune.evaluation.scoring.score_samples`
on the tracking-ROI crops of the labels, ``evaluate.roi_jitter``) rerun on the same split, over all its
images and over the images where MediaPipe found the face both times (which separates how much of the
difference comes from which images the pipeline finds a face on). The last evaluate run's figures
(``reports/metrics.json``, on whatever data that run saw) go into the JSON report.

Labels are pseudo-labels (the stock model on the clean image); occluders and low light are rendered.

    .venv/bin/python benchmarks/mediapipe_gain.py [--model models/face_mesh/model.pt] [--onnx PATH]
        [--manifest data/interim/manifest.jsonl] [--split test] [--limit N] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from report import RESULTS, ROOT, add_json_out, load_average, utc_now, versions, write_json

OPTIONS = {"static_image_mode": True, "model_complexity": 1, "refine_face_landmarks": False}
CONDITIONS = ("clean", "low_light", "mask", "both", "shifted")
VARIANTS = ("mp_stock", "mp_tuned", "ort_stock", "ort_tuned")
RUNTIMES = {"MediaPipe": ("mp_stock", "mp_tuned"), "ONNX Runtime": ("ort_stock", "ort_tuned")}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def face_nme(pred: np.ndarray | None, target: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> float:
    """Face NME (fraction) of ``pred`` (468, >=2) against ``target`` (468, >=2), both in normalized image
    coordinates, measured in pixels of the ``size`` (w, h) image; NaN when no face was found."""
    import torch

    from holotune.evaluation.metrics import nme

    if pred is None:
        return float("nan")
    scale = np.array(size, dtype=np.float64)
    as_px = lambda points: torch.from_numpy(points[None, :, :2].astype(np.float64) * scale)  # noqa: E731
    return float(nme(as_px(pred), as_px(target), torch.from_numpy(mask[None].astype(np.float64)), "face_mesh")[0])


def on_labelled_face(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> bool:
    """The predicted face's centroid lies in the bounding box of the labelled face: Holistic follows the most
    prominent person, which in a group photo need not be the one labelled."""
    labelled = target[mask > 0, :2]
    centre = pred[:, :2].mean(0)
    return bool(labelled.size and np.all(centre >= labelled.min(0)) and np.all(centre <= labelled.max(0)))


def prepare_models(args, work: Path) -> tuple[Path, Path, dict]:
    """The fine-tuned .tflite (written back from model.pt) and .onnx; returns (tflite, onnx, record)."""
    from holotune.tflite_export import export_finetuned_tflite

    tflite_record = export_finetuned_tflite("face_mesh", args.model, work / "face_landmark.tflite")
    onnx_path = Path(args.onnx)
    onnx_source = "the export stage"
    if not onnx_path.is_file():
        from holotune.export import export_finetuned

        onnx_path = Path(export_finetuned("face_mesh", args.model, work / "face_mesh.onnx")["path"])
        onnx_source = f"exported here from {args.model} ({args.onnx} is missing)"
    print(f"fine-tuned model: {args.model}\n  .tflite {tflite_record['path']} ({tflite_record['weights_changed']} "
          f"weight tensors rewritten; TFLite vs torch max diff {max(tflite_record['parity'].values()):.3g})\n"
          f"  .onnx   {onnx_path} ({onnx_source})")
    record = {"model": str(args.model), "model_sha256": sha256(Path(args.model)),
              "tflite": tflite_record["path"], "tflite_parity": tflite_record["parity"],
              "onnx": str(onnx_path), "onnx_sha256": sha256(onnx_path), "onnx_source": onnx_source}
    return Path(tflite_record["path"]), onnx_path, record


def run_pipelines(samples, resources: Path, onnx_path: Path) -> dict[str, np.ndarray]:
    """Every sample through the four pipelines: per-variant NME (NaN: no face on the labelled person),
    whether a face was output on another person, and the parity of the two runtimes (max |dx|, |dy| of
    the face, where both output one)."""
    import mediapipe as mp

    from holotune.landmarks import FACE_SLICE
    from holotune.mediapipe_resources import open_holistic
    from holotune.runtime import Holistic
    from holotune.runtime.conformance import mediapipe_parts
    from holotune.runtime.image import load_image

    nmes = {v: np.full(len(samples), np.nan) for v in VARIANTS}
    elsewhere = {v: np.zeros(len(samples), dtype=bool) for v in VARIANTS}
    parity = {"stock": np.full(len(samples), np.nan), "tuned": np.full(len(samples), np.nan)}
    seconds = dict.fromkeys(VARIANTS, 0.0)
    start = time.perf_counter()
    with Holistic() as ort_stock, Holistic(face_mesh=onnx_path) as ort_tuned:
        for i, sample in enumerate(samples):
            image = load_image(ROOT / sample.image)
            size = (image.shape[1], image.shape[0])
            faces = {}
            for variant, build in (("mp_stock", lambda: mp.solutions.holistic.Holistic(**OPTIONS)),
                                   ("mp_tuned", lambda: open_holistic(resources, **OPTIONS))):
                t = time.perf_counter()
                solution = build()
                try:
                    faces[variant] = mediapipe_parts(solution.process(image))["face"]
                finally:
                    solution.close()
                seconds[variant] += time.perf_counter() - t
            for variant, holistic in (("ort_stock", ort_stock), ("ort_tuned", ort_tuned)):
                t = time.perf_counter()
                faces[variant] = holistic.process(image).face
                seconds[variant] += time.perf_counter() - t
            target, mask = sample.keypoints[FACE_SLICE], sample.mask[FACE_SLICE]
            for variant, face in faces.items():
                if face is not None and not on_labelled_face(face, target, mask):
                    elsewhere[variant][i] = True
                else:
                    nmes[variant][i] = face_nme(face, target, mask, size)
            for kind in parity:
                a, b = faces[f"mp_{kind}"], faces[f"ort_{kind}"]
                if a is not None and b is not None:
                    parity[kind][i] = float(np.abs(a[:, :2] - b[:, :2]).max())
            if (i + 1) % 50 == 0 or i + 1 == len(samples):
                print(f"  {i + 1}/{len(samples)} images, {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return {"nme": nmes, "elsewhere": elsewhere, "parity": parity, "seconds": seconds}


def crop_nme_now(args, params: dict, samples) -> dict[str, np.ndarray]:
    """Crop-level NME (fraction) of stock and fine-tuned per sample, scored as the evaluate stage scores
    (its shards, ROI jitter and seed), aligned to ``samples`` (NaN where a sample has no crop)."""
    from holotune.evaluation.scoring import RoiJitter, score_samples, split_dataset
    from holotune.models import create_model

    ev = params["evaluate"]
    jitter = RoiJitter(**ev["roi_jitter"], seed=ev["seed"])
    dataset = split_dataset(ROOT / ev["shards_dir"], args.split, args.manifest, "face_mesh", jitter)
    out = {}
    for key, model in (("stock", create_model("face_landmark")),
                       ("tuned", create_model("face_landmark", checkpoint_path=args.model))):
        scores = score_samples(model, dataset)
        by_id = dict(zip(scores.sample_ids, scores.nme))
        out[key] = np.array([by_id.get(s.sample_id, np.nan) for s in samples], dtype=np.float64)
    return out


def summarize(samples, results: dict, crops: dict[str, np.ndarray], n_boot: int) -> dict[str, dict]:
    """Per split (condition, pooled shifted, per domain): detection rates and NME on both-found images
    for each runtime, and the crop-level change on all images and on MediaPipe's both-found images."""
    from holotune.evaluation.comparison import compare_metric, condition_splits
    from holotune.evaluation.scoring import SampleScores

    groups = [s.group or s.sample_id for s in samples]
    rows = SampleScores([s.sample_id for s in samples], groups, [s.meta.get("condition") or "all" for s in samples],
                        np.zeros(len(samples)), np.zeros(len(samples)), np.zeros((len(samples), 0)),
                        domains=[s.meta.get("domain") for s in samples])
    nmes = results["nme"]

    def change(stock: np.ndarray, tuned: np.ndarray, keep: np.ndarray) -> dict:
        keep = keep & ~np.isnan(stock) & ~np.isnan(tuned)
        if not keep.any():
            return {"n": 0}
        picked = [groups[i] for i in np.flatnonzero(keep)]
        c = compare_metric(100.0 * stock[keep], 100.0 * tuned[keep], picked, n_boot=n_boot)
        return {"n": int(keep.sum()), "identities": len(set(picked)), "nme_stock": c["baseline"],
                "nme_tuned": c["finetuned"], "change_pct": c["delta_pct"],
                "change_pct_ci95": [c["delta_pct_ci95_low"], c["delta_pct_ci95_high"]]}

    splits = condition_splits(rows, ("clean",))
    domains = sorted({name.split("/")[0] for name in splits if "/" in name}, key=lambda d: (d != "sharp", d))
    order = [f"{prefix}{c}" for prefix in ("", *(f"{d}/" for d in domains)) for c in CONDITIONS]
    out = {}
    for split in (name for name in order if name in splits):
        keep = splits[split]
        entry = {"images": int(keep.sum()), "identities": len({groups[i] for i in np.flatnonzero(keep)})}
        for runtime, (stock, tuned) in RUNTIMES.items():
            found_s, found_t = ~np.isnan(nmes[stock]) & keep, ~np.isnan(nmes[tuned]) & keep
            r = {"found_stock_pct": 100.0 * found_s.sum() / max(keep.sum(), 1),
                 "found_tuned_pct": 100.0 * found_t.sum() / max(keep.sum(), 1),
                 "other_face_stock": int((results["elsewhere"][stock] & keep).sum()),
                 "other_face_tuned": int((results["elsewhere"][tuned] & keep).sum()),
                 "both_found": change(nmes[stock], nmes[tuned], keep)}
            entry[runtime] = r
        mp_both = keep & ~np.isnan(nmes["mp_stock"]) & ~np.isnan(nmes["mp_tuned"])
        entry["crop_level"] = {"all": change(crops["stock"], crops["tuned"], keep),
                               "mediapipe_both_found": change(crops["stock"], crops["tuned"], mp_both)}
        out[split] = entry
    return out


def crop_level(metrics_path: Path) -> dict[str, dict]:
    """The last evaluate run's crop-level figures by split, from reports/metrics.json (empty if absent)."""
    import json

    if not metrics_path.is_file():
        return {}
    splits = json.loads(metrics_path.read_text()).get("splits", {})
    return {name: {"n": s["n"], "nme_stock": s["baseline"]["nme"], "nme_tuned": s["finetuned"]["nme"],
                   "change_pct": s["delta"]["nme_pct"],
                   "change_pct_ci95": [s["delta"]["nme_pct_ci95_low"], s["delta"]["nme_pct_ci95_high"]]}
            for name, s in splits.items()}


def print_table(summary: dict) -> None:
    def change(c: dict, ci: bool = True) -> str:
        if not c["n"]:
            return f"{0:>4} {'':>{34 if ci else 20}}"
        text = f"{c['n']:>4} {c['nme_stock']:6.2f} {c['nme_tuned']:6.2f} {c['change_pct']:+6.1f}"
        return text + (f" [{c['change_pct_ci95'][0]:+5.1f},{c['change_pct_ci95'][1]:+5.1f}]" if ci else "")

    def runtime(r: dict) -> str:
        return f"{r['found_stock_pct']:5.1f}→{r['found_tuned_pct']:5.1f} {change(r['both_found'])}"

    head = f"{'found %':>11} {'both':>4} {'NME st':>6} {'NME ft':>6} {'Δ %':>6} {'[95 % CI]':>13}"
    crop_head = f"{'n':>4} {'NME st':>6} {'NME ft':>6} {'Δ %':>6}"
    print(f"\n{'':<16}{'':>5} | {'MediaPipe 0.10.21 (.tflite)':^51} | {'holotune ONNX Runtime (.onnx)':^51} | "
          f"{'crop level, all images':^25} | {'crop level, MP both found':^25}")
    print(f"{'split':<16}{'imgs':>5} | {head} | {head} | {crop_head} | {crop_head}")
    for split, e in summary.items():
        print(f"{split:<16}{e['images']:>5} | {runtime(e['MediaPipe'])} | {runtime(e['ONNX Runtime'])} | "
              f"{change(e['crop_level']['all'], False)} | {change(e['crop_level']['mediapipe_both_found'], False)}")
    print("found %: images with a face output on the labelled person (stock → fine-tuned); both: images where stock "
          "and fine-tuned both found it, on which NME (%, outer-eye distance, image pixels) is compared; Δ: "
          "fine-tuned vs stock, 95 % CI over identities. Crop level: the evaluate stage's scoring (tracking-ROI crops "
          "of the label, with its ROI jitter) on this split: all images, and MediaPipe's both-found images.")
    other = {name: (sum(e[name]["other_face_stock"] for k, e in summary.items() if k in CONDITIONS[:4]),
                    sum(e[name]["other_face_tuned"] for k, e in summary.items() if k in CONDITIONS[:4]))
             for name in RUNTIMES}
    print("a face on another person than the labelled one (group photos; not counted as found), stock/fine-tuned: "
          + ", ".join(f"{name} {s}/{t}" for name, (s, t) in other.items()))


def main() -> int:
    from holotune.config import read_params

    params = read_params(ROOT / "params.yaml")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / params["finetune"]["out_dir"] / "model.pt"))
    parser.add_argument("--onnx", default=str(ROOT / params["export"]["out_dir"] / "model.onnx"),
                        help="the fine-tuned ONNX model (exported here from --model if missing)")
    parser.add_argument("--manifest", default=str(ROOT / params["evaluate"]["manifest"]))
    parser.add_argument("--metrics", default=str(ROOT / params["evaluate"]["out_dir"] / "metrics.json"))
    parser.add_argument("--split", default=params["evaluate"]["split"])
    parser.add_argument("--limit", type=int, default=0, help="at most this many images, evenly spaced (0: all)")
    parser.add_argument("--bootstrap", type=int, default=params["evaluate"]["bootstrap"])
    parser.add_argument("--work-dir", default=str(RESULTS / "mediapipe_gain"),
                        help="where the .tflite, the resource folder (and a missing .onnx) are written")
    add_json_out(parser, "mediapipe_gain")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    from holotune.data.manifest import read_manifest
    from holotune.mediapipe_resources import lay_out_resources

    for label, path in (("--model", args.model), ("--manifest", args.manifest)):
        if not Path(path).is_file():
            print(f"mediapipe_gain: {label} {path}: no such file (run the pipeline first: make demo)", file=sys.stderr)
            return 2
    samples = [s for s in read_manifest(args.manifest) if s.split == args.split and s.image and s.keypoints is not None]
    if not samples:
        print(f"mediapipe_gain: {args.manifest}: no labelled {args.split!r} samples", file=sys.stderr)
        return 2
    if args.limit and args.limit < len(samples):
        samples = [samples[i] for i in np.linspace(0, len(samples) - 1, args.limit).round().astype(int)]
    work = Path(args.work_dir)
    tflite_path, onnx_path, models = prepare_models(args, work)
    resources = lay_out_resources({"face_mesh": tflite_path}, work / "resources")
    print(f"resource folder: {resources}\n{len(samples)} {args.split} images; 4 pipelines each...")
    results = run_pipelines(samples, resources, onnx_path)
    print("crop level: the evaluate stage's scoring on the same split...", file=sys.stderr)
    summary = summarize(samples, results, crop_nme_now(args, params, samples), args.bootstrap)
    print_table(summary)
    parity = {}
    for kind, diffs in results["parity"].items():
        found = diffs[~np.isnan(diffs)]
        parity[kind] = {"images": int(found.size), "median": float(np.median(found)) if found.size else None,
                        "p95": float(np.percentile(found, 95)) if found.size else None,
                        "max": float(found.max()) if found.size else None,
                        "within_2e-3_pct": float(100.0 * np.mean(found <= 2e-3)) if found.size else None}
        found_mp, found_ort = ~np.isnan(results["nme"][f"mp_{kind}"]), ~np.isnan(results["nme"][f"ort_{kind}"])
        parity[kind]["same_found_pct"] = float(100.0 * np.mean(found_mp == found_ort))
        print(f"MediaPipe vs ONNX Runtime, {kind}: face found alike on {parity[kind]['same_found_pct']:.1f} % of images; "
              f"where both found one, max |Δx|,|Δy| median {parity[kind]['median']:.1e}, p95 {parity[kind]['p95']:.1e}, "
              f"max {parity[kind]['max']:.1e} ({parity[kind]['within_2e-3_pct']:.1f} % within 2e-3)")
    per_image = {v: round(1000 * s / len(samples), 1) for v, s in results["seconds"].items()}
    print("ms per image (MediaPipe includes building a fresh instance): "
          + ", ".join(f"{v} {ms}" for v, ms in per_image.items()))
    write_json({"date": utc_now(), "options": OPTIONS, "split": args.split, "manifest": str(args.manifest),
                "images": len(samples), "models": models, "resources": str(resources), "splits": summary,
                "last_evaluate_run": {"metrics": str(args.metrics), "splits": crop_level(Path(args.metrics))},
                "parity": parity,
                "per_image": {"sample_ids": [s.sample_id for s in samples],
                              **{f"nme_{v}": [None if np.isnan(x) else round(float(x), 6) for x in results["nme"][v]]
                                 for v in VARIANTS}},
                "ms_per_image": per_image,
                "machine": {"platform": platform.platform(), "load_average": load_average()},
                "versions": versions("mediapipe", "onnxruntime", "torch"),
                "note": "NME on images where stock and fine-tuned both found a face; labels are pseudo-labels "
                        "(stock on the clean image); occluders and low light rendered"}, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
