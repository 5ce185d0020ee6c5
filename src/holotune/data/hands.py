"""Labelled hands from the ingest manifest, as the landmark gesture head reads them (numpy only).

Each labelled manifest row gives one hand: the subject's left or right hand whose 21 landmarks are all
labelled; when both are, the larger one in the image (the gesturing hand is nearer and bigger, and
MediaPipe's recognizer takes one hand per training image too). A row with a label but no labelled
hand cannot train the head: it is counted (``no_hand``), never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from holotune.gesture import FEATURE_SIZE, hand_features
from holotune.landmarks import PARTS


class HandDataError(ValueError):
    """Manifest rows that cannot make labelled hands; the message names the file, row or class."""


@dataclass
class HandSamples:
    """The labelled hands of one split.

    Attributes:
        features: (N, FEATURE_SIZE) float32, :func:`holotune.gesture.hand_features`.
        labels: (N,) int64 class indices.
        sides: the hand each row used (``left`` | ``right``).
        conditions: each sample's ``meta.condition`` (``clean`` where it has none).
        sample_ids: manifest sample ids.
        no_hand: labelled rows of the split without a fully labelled hand (not in the arrays).
        synthetic: how many of the samples the manifest marks synthetic (``meta.synthetic``).
    """

    features: np.ndarray
    labels: np.ndarray
    sides: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    sample_ids: list[str] = field(default_factory=list)
    no_hand: int = 0
    synthetic: int = 0

    def __len__(self) -> int:
        return len(self.labels)


def load_hands(manifest: str | Path, split: str, class_names: list[str]) -> HandSamples:
    """The labelled hands of ``split`` in the ingest ``manifest``, labels checked against ``class_names``.

    Raises:
        HandDataError: the manifest is missing, or a row's class is not in ``class_names``.
    """
    from holotune.data.manifest import read_manifest

    path = Path(manifest)
    if not path.is_file():
        raise HandDataError(f"{path}: no manifest (run the ingest stage)")
    features, labels, sides, conditions, ids, no_hand, synthetic = [], [], [], [], [], 0, 0
    for sample in read_manifest(path):
        if sample.split != split or sample.label is None:
            continue
        name = sample.label_name
        if not 0 <= sample.label < len(class_names) or (name is not None and class_names[sample.label] != name):
            raise HandDataError(f"{path}: sample {sample.sample_id} has label {sample.label} ({name!r}), which is not "
                                f"that index of class_names {class_names}")
        picked = pick_hand(sample.keypoints, sample.mask, (sample.meta["width"], sample.meta["height"]))
        if picked is None:
            no_hand += 1
            continue
        side, points = picked
        features.append(hand_features(points, side, (sample.meta["width"], sample.meta["height"])))
        labels.append(sample.label)
        sides.append(side)
        conditions.append(str(sample.meta.get("condition", "clean")))
        ids.append(sample.sample_id)
        synthetic += bool(sample.meta.get("synthetic"))
    return HandSamples(np.asarray(features, np.float32).reshape(-1, FEATURE_SIZE), np.asarray(labels, np.int64),
                       sides, conditions, ids, no_hand, synthetic)


def pick_hand(keypoints: np.ndarray | None, mask: np.ndarray | None,
              size: tuple[int, int]) -> tuple[str, np.ndarray] | None:
    """``(side, (21, 3) points)`` of the larger fully labelled hand of a (543, 3) sample, or ``None``."""
    if keypoints is None or mask is None:
        return None
    best, best_extent = None, -1.0
    for side in ("left", "right"):
        part = PARTS[f"{side}_hand"]
        if not (mask[part] > 0).all():
            continue
        points = keypoints[part]
        extent = float(np.ptp(points[:, :2] * size, axis=0).max())
        if extent > best_extent:
            best, best_extent = (side, points), extent
    return best
