"""Landmark and classification metrics as the field reports them, per sample (torch, any device).

Conventions (all distances in the 2-D image plane of the crop; z is not scored):

* **NME**, face: mean point error / inter-ocular distance (outer eye corners,
  :attr:`holotune.models.spec.ModuleSpec.nme_points`) of the *label*, the 300-W / WFLW convention.
  Hands and pose: mean point error / the diagonal of the label's bounding box (of labelled points).
* **PCK@t** (hands, pose): share of labelled points whose error is below ``t`` x the longer side
  of the label's bounding box (the "bounding-box normalized" PCK of hand and body benchmarks).
* Classification: accuracy, macro-F1 (classes absent from both truth and prediction are left out
  of the mean) and the confusion matrix (rows: true class, columns: predicted).

Every function takes ``pred``/``target`` (N, K, >=2) in the same units and ``mask`` (N, K) with
1 = labelled; unlabelled points never count. A sample with no labelled point scores NaN (never 0),
so it cannot hide in a mean.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from holotune.models.spec import get_module

PCK_THRESHOLDS = (0.05, 0.1)
"""The PCK thresholds reported for hands and pose."""


def point_errors(pred: Tensor, target: Tensor) -> Tensor:
    """(N, K) Euclidean xy error per point."""
    return torch.linalg.vector_norm(pred[..., :2] - target[..., :2], dim=-1)


def _bbox_sides(target: Tensor, mask: Tensor) -> Tensor:
    """(N, 2) width and height of the labelled points' bounding box."""
    labelled = mask[..., None] > 0
    lo = torch.where(labelled, target[..., :2], torch.full_like(target[..., :2], float("inf"))).amin(1)
    hi = torch.where(labelled, target[..., :2], torch.full_like(target[..., :2], -float("inf"))).amax(1)
    return (hi - lo).clamp_min(0.0)


def normalizer(target: Tensor, mask: Tensor, module: str) -> Tensor:
    """(N,) the NME normalizer: the distance of the module's ``nme_points`` (face: inter-ocular) or,
    without them, the labelled points' bounding-box diagonal (hands, pose)."""
    points = get_module(module).nme_points
    if points is not None:
        a, b = points
        return torch.linalg.vector_norm(target[:, a, :2] - target[:, b, :2], dim=-1)
    return torch.linalg.vector_norm(_bbox_sides(target, mask), dim=-1)


def nme(pred: Tensor, target: Tensor, mask: Tensor, module: str) -> Tensor:
    """(N,) normalized mean error (a fraction; x100 for %). NaN where a sample has no labelled point."""
    err = point_errors(pred, target)
    count = mask.sum(-1)
    mean_err = (err * mask).sum(-1) / count.clamp_min(1.0)
    out = mean_err / normalizer(target, mask, module).clamp_min(1e-6)
    return torch.where(count > 0, out, torch.full_like(out, float("nan")))


def pck(pred: Tensor, target: Tensor, mask: Tensor, threshold: float) -> Tensor:
    """(N,) share of labelled points within ``threshold`` x the longer bounding-box side. NaN if none labelled."""
    size = _bbox_sides(target, mask).amax(-1).clamp_min(1e-6)
    hit = (point_errors(pred, target) < threshold * size[:, None]).to(mask.dtype)
    count = mask.sum(-1)
    out = (hit * mask).sum(-1) / count.clamp_min(1.0)
    return torch.where(count > 0, out, torch.full_like(out, float("nan")))


def normalized_point_errors(pred: Tensor, target: Tensor, mask: Tensor, module: str) -> Tensor:
    """(N, K) each point's error / the sample's NME normalizer; NaN where the point is unlabelled."""
    err = point_errors(pred, target) / normalizer(target, mask, module).clamp_min(1e-6)[:, None]
    return torch.where(mask > 0, err, torch.full_like(err, float("nan")))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, macro-F1 and confusion matrix of integer labels ``y_true``/``y_pred`` (N,).

    Returns ``{"accuracy", "macro_f1", "confusion_matrix": [[...]], "per_class": {name: {precision,
    recall, f1, support}}, "n"}``; an empty input gives NaN scores (not 0).
    """
    n = len(class_names)
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        bad = values[(values < 0) | (values >= n)]
        if bad.size:
            raise ValueError(f"{name} holds class index {int(bad[0])}, outside 0..{n - 1} ({class_names})")
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    per_class, f1s = {}, []
    for i, name in enumerate(class_names):
        tp, support, predicted = confusion[i, i], confusion[i].sum(), confusion[:, i].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                           "support": int(support)}
        if support or predicted:
            f1s.append(f1)
    total = int(confusion.sum())
    return {
        "n": total,
        "accuracy": float(np.trace(confusion) / total) if total else float("nan"),
        "macro_f1": float(np.mean(f1s)) if f1s else float("nan"),
        "confusion_matrix": confusion.tolist(),
        "per_class": per_class,
    }
