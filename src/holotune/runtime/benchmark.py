"""Holotune's Holistic vs ``mediapipe.solutions.holistic`` on the same images, in one process.

Both run static-image Holistic (model_complexity=1) on each image; calls are interleaved in
blocks so machine noise hits both alike; the figure to read is the ratio of medians
(holotune / MediaPipe), taken in one run. MediaPipe runs each model on 1 XNNPACK thread and its
branches concurrently on the graph scheduler; holotune runs 1 ONNX Runtime thread per model and
its face and hand branches concurrently.
"""

from __future__ import annotations

import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from holotune.runtime.holistic import Holistic
from holotune.runtime.image import IMAGE_SUFFIXES, load_image


def load_bench_images(folder: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Images by name: every image file in ``folder``, or the sample photos (and a crop) by default."""
    if folder is None:
        from holotune.samples import sample_images

        images = dict(sample_images())
        images["astronaut_crop"] = np.ascontiguousarray(images["astronaut"][40:400, 60:420])
        return images
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return {p.name: load_image(p) for p in files}


def benchmark_runtime(images: dict[str, np.ndarray], runs: int = 15, warmup: int = 2, block: int = 5) -> dict:
    """Median per-image latency (ms) of holotune and MediaPipe Holistic; see the module docstring."""
    import mediapipe as mp

    ours = Holistic()
    rows = {}
    try:
        for name, image in images.items():
            theirs = mp.solutions.holistic.Holistic(static_image_mode=True, model_complexity=1)
            try:
                calls = {"holotune": lambda: ours.process(image), "mediapipe": lambda: theirs.process(image)}
                times: dict[str, list[float]] = {k: [] for k in calls}
                for fn in calls.values():
                    for _ in range(warmup):
                        fn()
                while any(len(t) < runs for t in times.values()):
                    for key, fn in calls.items():
                        for _ in range(min(block, runs - len(times[key]))):
                            start = time.perf_counter()
                            fn()
                            times[key].append((time.perf_counter() - start) * 1000.0)
            finally:
                theirs.close()
            med = {k: float(np.median(v)) for k, v in times.items()}
            rows[name] = {
                "size": [int(image.shape[1]), int(image.shape[0])],
                "holotune_ms": med["holotune"],
                "mediapipe_ms": med["mediapipe"],
                "holotune_p90_ms": float(np.percentile(times["holotune"], 90)),
                "mediapipe_p90_ms": float(np.percentile(times["mediapipe"], 90)),
                "ratio": med["holotune"] / med["mediapipe"],
            }
    finally:
        ours.close()
    total_ours = sum(r["holotune_ms"] for r in rows.values())
    total_theirs = sum(r["mediapipe_ms"] for r in rows.values())
    return {
        "images": rows,
        "ratio_of_totals": total_ours / total_theirs,
        "runs": runs,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def format_table(report: dict) -> str:
    """The report as a printable table."""
    lines = [f"{'image':<22}{'size':>10}{'holotune ms':>13}{'mediapipe ms':>14}{'ratio':>8}"]
    for name, r in report["images"].items():
        size = f"{r['size'][0]}x{r['size'][1]}"
        lines.append(f"{name:<22}{size:>10}{r['holotune_ms']:>13.1f}{r['mediapipe_ms']:>14.1f}{r['ratio']:>8.2f}")
    lines.append(f"ratio of summed medians (holotune / mediapipe): {report['ratio_of_totals']:.2f}  "
                 f"(goal <= 1.0; {report['runs']} runs per image, {report['cpu_count']} CPUs)")
    return "\n".join(lines)
