"""What do gestures cost at serving time? Both heads, measured in one run.

1. **Landmark head** (``task.input=landmarks``): a hand as the runtime classifies it
   (``GestureModel.classify``: ``hand_features``, the ONNX Runtime run, the 0.5 threshold rule), one hand
   and two hands per call. The model is the gesture pipeline's export (``--model``), or, if that is
   missing, a freshly initialised head of the same shape (the cost does not depend on the weights).
2. **Image head** (``task.input=image``): the hand model exported with its gesture output (a class head
   on the 1152-wide trunk feature, 8 classes) against the stock hand model, both computing what Holistic
   reads (``landmarks``, ``hand_flag``; plus ``gesture``), ONNX Runtime, 1 thread, batch 1, interleaved in
   one process (``--runs`` calls each, median), so machine noise hits both alike.

The issue's bars: the landmark head <= 0.1 ms per hand; the hand model with its gesture output <= 3 %
slower than stock.

    .venv/bin/python benchmarks/gestures.py [--runs 400] [--model models/gestures/exported/hands/gesture.onnx]
                                            [--json-out benchmarks/results/gestures.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
from report import ROOT, add_json_out, cpu_name, load_average, utc_now, write_json

from holotune.export import export_gesture_head, export_with_gesture_head
from holotune.gesture import FEATURE_SIZE, GESTURE_OUTPUT, GestureModel
from holotune.models import MODEL_SPECS, MODULE_SPECS, create_model
from holotune.runtime.holistic import USED_OUTPUTS
from holotune.runtime.latency import gesture_latency, onnx_latency
from holotune.runtime.sessions import ensure_stock_models
from holotune.training.heads import ClassHead, LandmarkHead

CLASSES = ["none", "closed_fist", "open_palm", "pointing_up", "thumb_down", "thumb_up", "victory", "i_love_you"]
DEFAULT_MODEL = ROOT / "models" / "gestures" / "exported" / "hands" / "gesture.onnx"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=400, help="timed calls per model (default 400)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="the landmark head's gesture.onnx")
    add_json_out(parser, "gestures")
    args = parser.parse_args()
    torch.manual_seed(0)
    features = np.random.default_rng(0).normal(size=(64, FEATURE_SIZE)).astype(np.float32)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        model_path, source = Path(args.model), "the gesture pipeline's export"
        if not model_path.is_file():
            model_path, source = scratch / "gesture.onnx", "a freshly initialised head (no export found)"
            export_gesture_head(LandmarkHead(FEATURE_SIZE, CLASSES).eval(), model_path, features)
        landmark = gesture_latency(GestureModel(model_path), features, runs=args.runs * 5)

        name = MODULE_SPECS["hands"].model
        stock = ensure_stock_models([name])[name]
        hand = create_model(name).eval()
        head = ClassHead(MODULE_SPECS["hands"].class_feature_width, CLASSES, MODULE_SPECS["hands"].class_feature).eval()
        with_head = export_with_gesture_head(hand, head, scratch / "hand_gesture.onnx")["path"]
        timed = onnx_latency({"stock": stock, "with_gesture": with_head}, MODEL_SPECS[name], runs=args.runs,
                             outputs=USED_OUTPUTS[name], optional_outputs=(GESTURE_OUTPUT,))
    ratio = timed["with_gesture"]["median_ms"] / timed["stock"]["median_ms"]
    print(f"\nlandmark head ({source}, {Path(args.model).name}): {1000 * landmark['per_hand_ms']:.1f} µs per hand "
          f"(p90 {1000 * landmark['per_hand_p90_ms']:.1f} µs), {1000 * landmark['two_hands_ms']:.1f} µs for two hands "
          f"(bar: <= 100 µs per hand)")
    print("\nhand model | median ms | p10 ms | p90 ms")
    print("---|---|---|---")
    for key, t in timed.items():
        print(f"{key} | {t['median_ms']:.3f} | {t['p10_ms']:.3f} | {t['p90_ms']:.3f}")
    print(f"\nwith the gesture output / stock: {ratio:.3f} ({100 * (ratio - 1):+.1f} %; bar: <= +3 %)\n")
    write_json({"date": utc_now(), "machine": {"cpu": cpu_name(), "cpus": os.cpu_count(), "python": platform.python_version(),
                                              "load_average": load_average()},
                "runs": args.runs, "landmark_head": {"model": source, "classes": len(CLASSES), **landmark},
                "image_head": {"outputs": [*USED_OUTPUTS[name], GESTURE_OUTPUT], "classes": len(CLASSES), "latency": timed,
                               "ratio_to_stock": ratio}}, args.json_out)


if __name__ == "__main__":
    main()
