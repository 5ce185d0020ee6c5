"""Per-sample checks for incoming keypoint labels; each failure is a reason that names field and value.

Nothing here drops data: callers quarantine a sample with the reason (or fail, in strict mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from holotune.landmarks import NUM_KEYPOINTS


class SampleError(ValueError):
    """A sample that fails a check; ``str()`` is the reason."""


@dataclass(frozen=True)
class LabelRules:
    """What counts as a valid label.

    Attributes:
        coordinate_tolerance: how far labelled x, y may lie outside [0, 1] (normalized image units);
            MediaPipe itself returns points slightly outside the image for cut-off limbs.
    """

    coordinate_tolerance: float = 0.5


def parse_keypoints(value, rules: LabelRules = LabelRules()) -> np.ndarray:
    """A (543, 3) float32 array from a nested or flat list, or :class:`SampleError`.

    Accepts 543 rows of (x, y, z) or a flat list of 1629 numbers; rejects other counts, non-numbers,
    NaN and inf.
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise SampleError("keypoints: not a list of numbers") from None
    if arr.ndim == 1 and arr.size % 3 == 0:
        arr = arr.reshape(-1, 3)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise SampleError(f"keypoints: shape {list(arr.shape)}, expected [{NUM_KEYPOINTS}, 3] (x, y, z per point)")
    if arr.shape[0] != NUM_KEYPOINTS:
        raise SampleError(f"keypoints: {arr.shape[0]} points, expected {NUM_KEYPOINTS} "
                          "(pose 33, face 468, left hand 21, right hand 21)")
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise SampleError(f"keypoints: {int(bad.sum())} non-finite value(s), first at point {row} "
                          f"{'xyz'[col]} = {arr[row, col]}")
    return arr.astype(np.float32)


def parse_mask(value) -> np.ndarray:
    """A (543,) float32 0/1 mask from a list, or :class:`SampleError`."""
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise SampleError("mask: not a list of numbers") from None
    if arr.size != NUM_KEYPOINTS:
        raise SampleError(f"mask: {arr.size} values, expected {NUM_KEYPOINTS}")
    if not np.isfinite(arr).all() or ((arr < 0) | (arr > 1)).any():
        raise SampleError("mask: values must be finite and in [0, 1]")
    return arr.astype(np.float32)


def check_coordinates(keypoints: np.ndarray, mask: np.ndarray, rules: LabelRules = LabelRules()) -> None:
    """Labelled x, y must lie within [-tolerance, 1 + tolerance]."""
    tol = rules.coordinate_tolerance
    labelled = mask > 0
    xy = keypoints[labelled, :2]
    outside = (xy < -tol) | (xy > 1 + tol)
    if outside.any():
        index = np.flatnonzero(labelled)[np.argwhere(outside)[0][0]]
        worst = float(np.abs(xy[outside] - 0.5).max() + 0.5)
        raise SampleError(f"keypoints: {int(outside.any(axis=1).sum())} labelled point(s) far outside [0, 1] "
                          f"(first: point {index}, up to {worst:.3g}; tolerance {tol})")


def check_label(label, label_name, class_names: list[str] | None) -> tuple[int | None, str | None]:
    """Resolve a class label given as an index and/or a name against ``class_names``."""
    if label is None and label_name is None:
        return None, None
    if class_names is None:
        if label_name is not None and label is None:
            raise SampleError(f"label: class name {label_name!r} given but no class_names are configured")
        return int(label), label_name
    if label_name is not None:
        if label_name not in class_names:
            raise SampleError(f"label: unknown class {label_name!r}; class_names are {class_names}")
        index = class_names.index(label_name)
        if label is not None and int(label) != index:
            raise SampleError(f"label: index {label} disagrees with class {label_name!r} (index {index})")
        return index, label_name
    if isinstance(label, str):
        return check_label(None, label, class_names)
    if not 0 <= int(label) < len(class_names):
        raise SampleError(f"label: {label} out of range for {len(class_names)} classes")
    return int(label), class_names[int(label)]
