"""Training crops: MediaPipe's tracking ROIs from labels, and labels mapped into crop coordinates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from holotune.data.crops import cut_crop, module_rois, to_crop
from holotune.landmarks import PARTS
from holotune.runtime.geometry import Rect, project_to_image


def test_to_crop_inverts_the_runtime_projection():
    rng = np.random.default_rng(0)
    rect = Rect(0.4, 0.6, 0.3, 0.45, math.radians(25))  # square in pixels for a 300x200 image
    crop_points = rng.uniform(0, 1, size=(50, 3)).astype(np.float32)
    image_points = project_to_image(crop_points.astype(np.float64), rect)
    np.testing.assert_allclose(to_crop(image_points, rect), crop_points, atol=1e-6)


@pytest.fixture(scope="module")
def astronaut_labels():
    from holotune.export import export_stock_models
    from holotune.runtime import Holistic
    from holotune.samples import sample_images

    export_stock_models()
    image = sample_images()["astronaut"]
    with Holistic() as h:
        arr = h.process(image).to_array()
    mask = (~np.isnan(arr[:, 0])).astype(np.float32)
    return image, np.nan_to_num(arr[:, :3]), mask


def test_face_crop_frames_the_face_like_mediapipe_tracking(astronaut_labels):
    image, keypoints, mask = astronaut_labels
    [(part, rect)] = module_rois("face_mesh", keypoints, mask, (image.shape[1], image.shape[0]))
    assert part == "face"
    crop, padding = cut_crop(image, rect, (192, 192), keep_aspect_ratio=False)
    labels = to_crop(keypoints[PARTS["face"]], rect, padding)
    assert crop.shape == (192, 192, 3)
    # The mesh fills the middle two thirds of the crop (box x1.5).
    span = labels[:, :2].max(axis=0) - labels[:, :2].min(axis=0)
    assert np.all((span > 0.55) & (span < 0.75))
    assert np.allclose(labels[:, :2].mean(axis=0), 0.5, atol=0.08)
    # The stock face model on this crop predicts (nearly) the labels: the crop is what it expects.
    from holotune.runtime.sessions import open_stock

    out = open_stock("face_landmark").run(crop[None].transpose(0, 3, 1, 2).astype(np.float32) / 255)
    predicted = out["landmarks"].reshape(468, 3) / 192
    assert np.abs(predicted[:, :2] - labels[:, :2]).mean() < 0.01


def test_unlabelled_parts_give_no_roi(astronaut_labels):
    image, keypoints, mask = astronaut_labels
    size = (image.shape[1], image.shape[0])
    assert module_rois("hands", keypoints, mask, size) == []  # the teacher found no hand
    assert [p for p, _ in module_rois("pose", keypoints, mask, size)] == ["pose"]
