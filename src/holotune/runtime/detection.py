"""SSD detection decoding as MediaPipe's pose and face detectors use it.

``ssd_anchors`` is ``SsdAnchorsCalculator`` with ``fixed_anchor_size``; ``decode_detections`` is
``TensorsToDetectionsCalculator`` (``reverse_output_order``: x before y, no exp on sizes, sigmoid
score clipped at ±100); ``weighted_nms`` is ``NonMaxSuppressionCalculator`` with the WEIGHTED
algorithm and IoU overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DetectorConfig:
    """Decoding options of one SSD detector model.

    Attributes:
        input_size: square tensor side in pixels (also the box scale).
        strides: feature-map stride per anchor layer; consecutive equal strides share a grid.
        num_keypoints: keypoints per detection.
        min_suppression_threshold: IoU above which boxes join the top box's cluster.
    """

    input_size: int
    strides: tuple[int, ...]
    num_keypoints: int
    min_suppression_threshold: float = 0.3


POSE_DETECTOR = DetectorConfig(input_size=224, strides=(8, 16, 32, 32, 32), num_keypoints=4)
FACE_DETECTOR = DetectorConfig(input_size=128, strides=(8, 16, 16, 16), num_keypoints=6)


@dataclass(frozen=True)
class Detection:
    """One detection, tensor- or image-normalized.

    Attributes:
        score: sigmoid score in [0, 1].
        box: (xmin, ymin, xmax, ymax).
        keypoints: (K, 2) x, y.
    """

    score: float
    box: np.ndarray
    keypoints: np.ndarray


def ssd_anchors(config: DetectorConfig) -> np.ndarray:
    """Anchor centres (A, 2), in the order the model's outputs list them.

    Each layer has 2 anchors per cell (aspect 1.0 plus the interpolated scale); layers with the
    same stride are merged into one grid with their anchors side by side. With a fixed anchor
    size every anchor is 1x1, so only the centres matter.
    """
    centres = []
    layer = 0
    while layer < len(config.strides):
        stride = config.strides[layer]
        same = 0
        while layer < len(config.strides) and config.strides[layer] == stride:
            same += 1
            layer += 1
        cells = int(np.ceil(config.input_size / stride))
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, 2 * same, axis=0))
    return np.concatenate(centres).astype(np.float32)


def decode_detections(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, config: DetectorConfig, min_score: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one image's raw outputs, keeping scores >= ``min_score``.

    Args:
        raw_boxes: (A, 4 + 2K) regressors in tensor pixels relative to the anchor.
        raw_scores: (A,) or (A, 1) logits.
        anchors: (A, 2) from :func:`ssd_anchors`.

    Returns:
        ``(scores (D,), boxes (D, 4) xmin/ymin/xmax/ymax, keypoints (D, K, 2))``, tensor-normalized,
        in anchor order.
    """
    scale = float(config.input_size)
    with np.errstate(over="ignore"):  # exp(100) overflows float32 to inf: the score is then 0, as in C++
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.reshape(-1).astype(np.float32), -100.0, 100.0)))
    keep = scores >= min_score
    raw, a = raw_boxes[keep].astype(np.float32), anchors[keep]
    xc, yc = raw[:, 0] / scale + a[:, 0], raw[:, 1] / scale + a[:, 1]
    w, h = raw[:, 2] / scale, raw[:, 3] / scale
    boxes = np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], axis=1)
    kps = raw[:, 4 : 4 + 2 * config.num_keypoints].reshape(-1, config.num_keypoints, 2) / scale + a[:, None, :]
    valid = (w >= 0) & (h >= 0)
    return scores[keep][valid], boxes[valid], kps[valid]


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(
    scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, threshold: float, max_detections: int = -1
) -> list[Detection]:
    """MediaPipe's weighted non-max suppression.

    Repeatedly take the best remaining box; every remaining box with IoU > ``threshold`` against it
    (itself included) joins its cluster; the output box and keypoints are the cluster's
    score-weighted mean, the score the best one's.
    """
    order = np.argsort(-scores, kind="stable")
    out: list[Detection] = []
    while order.size and (max_detections < 0 or len(out) < max_detections):
        top = order[0]
        overlap = _iou(boxes[top], boxes[order])
        cluster, order = order[overlap > threshold], order[overlap <= threshold]
        if cluster.size == 0:  # a degenerate (zero-area) top box overlaps nothing, not even itself
            cluster, order = np.array([top]), order[order != top]
        weights = scores[cluster][:, None]
        total = weights.sum()
        out.append(
            Detection(
                score=float(scores[top]),
                box=(boxes[cluster] * weights).sum(axis=0) / total,
                keypoints=(keypoints[cluster] * weights[:, :, None]).sum(axis=0) / total,
            )
        )
    return out
