"""Training crops: MediaPipe's tracking ROIs from labels, and labels mapped into crop coordinates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from stage_options import augment

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


def test_augmented_crops_keep_labels_exact(astronaut_labels):
    from holotune.data.augment import flip_sample, jitter_rect, photometric
    from holotune.runtime.sessions import open_stock

    image, keypoints, mask = astronaut_labels
    rng = np.random.default_rng(1)
    face_model = open_stock("face_landmark")
    options = augment(rotation_deg=20, scale=0.15, shift=0.08)
    for flip in (False, True):
        img, kp, m = flip_sample(image, keypoints, mask) if flip else (image, keypoints, mask)
        [(_, rect)] = module_rois("face_mesh", kp, m, (img.shape[1], img.shape[0]))
        rect = jitter_rect(rect, options, rng)
        crop, padding = cut_crop(img, rect, (192, 192), keep_aspect_ratio=False)
        labels = to_crop(kp[PARTS["face"]], rect, padding)
        predicted = face_model.run(crop[None].transpose(0, 3, 1, 2).astype(np.float32) / 255)["landmarks"]
        # The stock model follows the rotated/scaled/shifted (and mirrored) crop: labels moved with it.
        assert np.abs(predicted.reshape(468, 3)[:, :2] / 192 - labels[:, :2]).mean() < 0.015, flip
    noisy = photometric(crop, augment(color=0.3, blur_prob=1.0, occlusion_prob=1.0), rng)
    assert noisy.shape == crop.shape and noisy.dtype == np.uint8 and not np.array_equal(noisy, crop)


def test_flip_twice_is_identity(astronaut_labels):
    from holotune.data.augment import flip_sample

    image, keypoints, mask = astronaut_labels
    back = flip_sample(*flip_sample(image, keypoints, mask))
    np.testing.assert_array_equal(back[0], image)
    np.testing.assert_allclose(back[1], keypoints, atol=1e-6)
    np.testing.assert_array_equal(back[2], mask)
