"""What ``evaluate`` draws: DVC plot data (CSV/JSON) and before/after overlay images.

* ``training.csv``: the fine-tuning curves (epoch, train and val loss, val NME...) read back from
  the run's TensorBoard event files;
* ``conditions.csv``: the primary metric per condition, stock vs fine-tuned;
* ``per_landmark.csv``: mean normalized error per landmark, stock vs fine-tuned (with the region
  or landmark name);
* ``confusion.json``: one ``{"actual", "predicted"}`` row per test sample for DVC's ``confusion``
  template (an empty list when the run has no class head);
* overlays: the crop with the label and the prediction drawn with MediaPipe's connection sets,
  stock on the left, fine-tuned on the right.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import cv2
import numpy as np

from holotune.models.spec import get_module

log = logging.getLogger(__name__)

def read_training_curves(tensorboard_dir: str | Path) -> list[dict]:
    """Per-epoch scalars of the newest TensorBoard run under ``tensorboard_dir`` (empty if none).

    Rows: ``{"epoch": int, "<tag>": value, ...}`` for the epoch-level tags (``train/loss_epoch``,
    ``val/loss``, ``val/nme``...), keyed by the ``epoch`` scalar Lightning logs with them.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = sorted(Path(tensorboard_dir).glob("**/events.out.tfevents.*"), key=lambda p: p.stat().st_mtime)
    if not runs:
        return []
    acc = EventAccumulator(str(runs[-1].parent), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags().get("scalars", [])
    if "epoch" not in tags:
        return []
    epoch_at = {e.step: int(e.value) for e in acc.Scalars("epoch")}
    rows: dict[int, dict] = {}
    for tag in tags:
        if tag == "epoch" or tag.endswith("_step") or tag.startswith("hp_"):
            continue
        if not (tag.startswith("val/") or tag.endswith("_epoch") or tag.startswith("train/")):
            continue
        for event in acc.Scalars(tag):
            if event.step in epoch_at:
                epoch = epoch_at[event.step]
                rows.setdefault(epoch, {"epoch": epoch})[tag.replace("/", "_")] = float(event.value)
    return [rows[e] for e in sorted(rows)]


def write_csv(path: Path, rows: list[dict]) -> None:
    """``rows`` as CSV with the union of their keys as columns (first row's order first)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def write_plots(out_dir: Path, module: str, metric: str, splits: dict, base_errors: np.ndarray,
                new_errors: np.ndarray, curves: list[dict], confusion_rows: list[dict] | None) -> list[Path]:
    """Write the DVC plot files into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if curves:
        write_csv(out_dir / "training.csv", curves)
        written.append(out_dir / "training.csv")
    rows = [{"split": name, "stock": s["baseline"][metric], "finetuned": s["finetuned"][metric]}
            for name, s in splits.items()]
    write_csv(out_dir / "conditions.csv", rows)
    written.append(out_dir / "conditions.csv")
    with np.errstate(invalid="ignore"):
        base, new = 100 * np.nanmean(base_errors, 0), 100 * np.nanmean(new_errors, 0)
    rows = [{"landmark": i, "name": get_module(module).landmark_name(i), "stock": round(float(b), 4),
             "finetuned": round(float(n), 4)} for i, (b, n) in enumerate(zip(base, new)) if np.isfinite(b)]
    write_csv(out_dir / "per_landmark.csv", rows)
    written.append(out_dir / "per_landmark.csv")
    # Always written (empty without a class head): DVC fails on a declared plot file that is missing.
    (out_dir / "confusion.json").write_text(json.dumps(confusion_rows or [], indent=1))
    written.append(out_dir / "confusion.json")
    return written


def draw_comparison(crop: np.ndarray, target: np.ndarray, mask: np.ndarray, stock: np.ndarray, finetuned: np.ndarray,
                    module: str, captions: tuple[str, str], scale: int = 2) -> np.ndarray:
    """Side by side: [label (grey) + stock (red) | label (grey) + fine-tuned (green)], captions on top.

    ``crop`` (H, W, 3) uint8 RGB; ``target``, ``stock``, ``finetuned`` (K, >=2) crop-normalized; ``mask`` (K,).
    Only edges between labelled points are drawn. Returns (scale*H, 2*scale*W + 4, 3) uint8 RGB.
    """
    panels = []
    labelled = mask > 0
    for pred, colour, caption in ((stock, (230, 60, 60), captions[0]), (finetuned, (40, 200, 80), captions[1])):
        panel = cv2.resize(crop, (crop.shape[1] * scale, crop.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
        h, w = panel.shape[:2]
        for points, c in ((target, (200, 200, 200)), (pred, colour)):
            xy = np.round(points[:, :2] * (w, h)).astype(np.int32)
            for a, b in get_module(module).connections:
                if labelled[a] and labelled[b]:
                    cv2.line(panel, tuple(map(int, xy[a])), tuple(map(int, xy[b])), c, 1, cv2.LINE_AA)
        cv2.rectangle(panel, (0, 0), (w, 22), (0, 0, 0), -1)
        cv2.putText(panel, caption, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
        panels.append(panel)
    return np.concatenate([panels[0], np.full((panels[0].shape[0], 4, 3), 255, np.uint8), panels[1]], axis=1)
