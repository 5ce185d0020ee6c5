"""Gesture head evaluation: accuracy, macro-F1 and the confusion matrix on the test split, per condition.

Both heads are scored as the runtime serves them (MediaPipe's rule, :func:`holotune.gesture.decide_indices`:
a top class scoring below the threshold is ``none``). The landmark head is scored here end to end
(:func:`evaluate_landmark_head`); the image head's predictions come from the landmark evaluation's
crops (:func:`holotune.evaluation.report.evaluate`) and are summarized by :func:`gesture_report`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from holotune.evaluation.metrics import classification_metrics

log = logging.getLogger(__name__)


def gesture_report(labels: np.ndarray, predicted: np.ndarray, conditions: list[str], class_names: list[str]) -> dict:
    """``{"class_names", "baseline", "finetuned": {n, accuracy, macro_f1}, "per_class", "confusion_matrix",
    "conditions": {condition: {n, accuracy, macro_f1, confusion_matrix}}}`` for (N,) true and predicted indices."""
    overall = classification_metrics(labels, predicted, class_names)
    by_condition = {}
    conditions_arr = np.asarray(conditions, dtype=object)
    for condition in sorted(set(conditions)):
        rows = conditions_arr == condition
        c = classification_metrics(labels[rows], predicted[rows], class_names)
        by_condition[condition] = {k: c[k] for k in ("n", "accuracy", "macro_f1", "confusion_matrix")}
    return {"class_names": list(class_names), "baseline": None,
            "finetuned": {k: overall[k] for k in ("n", "accuracy", "macro_f1")},
            "per_class": overall["per_class"], "confusion_matrix": overall["confusion_matrix"],
            "conditions": by_condition}


def confusion_rows(labels: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> list[dict]:
    """One ``{"actual", "predicted"}`` row per sample, for DVC's confusion plot."""
    return [{"actual": class_names[t], "predicted": class_names[p]} for t, p in zip(labels, predicted)]


def evaluate_landmark_head(gesture: str, manifest: str | None, split: str, out_dir: str | Path,
                           threshold: float) -> dict:
    """Score the landmark head ``gesture`` (``gesture.pt``) on ``split``'s hands; write ``metrics.json``
    and ``plots/confusion.json`` under ``out_dir``; returns the metrics.

    The hand model is not trained in this task (the head reads its landmarks), so the landmark gate
    passes by construction: ``gate.landmarks`` says so rather than re-measuring an unchanged model.

    Raises:
        FileNotFoundError: no ``gesture.pt`` or manifest.
        ValueError: no labelled hand in ``split``.
    """
    import torch

    from holotune.data.hands import load_hands
    from holotune.gesture import decide_indices
    from holotune.training.heads import load_landmark_head

    if not Path(gesture).is_file():
        raise FileNotFoundError(f"evaluate.gesture: {gesture} does not exist (run the finetune stage with "
                                "task.input=landmarks)")
    if not manifest or not Path(manifest).is_file():
        raise FileNotFoundError(f"evaluate.manifest: {manifest} does not exist (run the ingest stage)")
    head = load_landmark_head(gesture)
    hands = load_hands(manifest, split, head.class_names)
    if len(hands) == 0:
        raise ValueError(f"{manifest}: no labelled hand in the {split} split ({hands.no_hand} labelled rows without one)")
    with torch.no_grad():
        probabilities = torch.softmax(head(torch.from_numpy(hands.features)), -1).numpy()
    predicted = decide_indices(probabilities, threshold)
    report = gesture_report(hands.labels, predicted, hands.conditions, head.class_names)
    report["top1_accuracy"] = float((probabilities.argmax(-1) == hands.labels).mean())  # before the threshold rule
    report["threshold"] = threshold
    metrics = {
        "module": "hands",
        "task_input": "landmarks",
        "split": split,
        "samples": len(hands),
        "no_hand": hands.no_hand,
        "synthetic": hands.synthetic / len(hands),  # the share of scored hands the data marks synthetic
        "classification": report,
        "gate": {"passed": True, "landmarks": "unchanged: task.input=landmarks trains no hand-model weight",
                 "message": "the hand model is the stock one (the landmark head reads its output)"},
    }
    out_dir = Path(out_dir)
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out_dir / "plots" / "confusion.json").write_text(
        json.dumps(confusion_rows(hands.labels, predicted, head.class_names), indent=1))
    return metrics

