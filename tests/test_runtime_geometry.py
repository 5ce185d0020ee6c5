"""ROI math and SSD decoding of the ONNX Runtime Holistic, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from holotune.runtime.detection import FACE_DETECTOR, POSE_DETECTOR, ssd_anchors, weighted_nms
from holotune.runtime.geometry import (
    Rect,
    alignment_rect,
    crop_image,
    normalize_radians,
    pad_roi,
    project_to_image,
    remove_letterbox,
    transform_rect,
)


def test_normalize_radians_wraps_to_minus_pi_pi():
    assert normalize_radians(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert normalize_radians(math.pi) == pytest.approx(-math.pi)
    assert normalize_radians(0.3) == pytest.approx(0.3)


def test_transform_rect_squares_the_long_side_in_pixels_then_scales():
    rect = transform_rect(Rect(0.5, 0.5, 0.2, 0.1), (400, 200), scale=2.0)
    # long side = max(0.2*400, 0.1*200) = 80 px -> 0.2 x 0.4 normalized, then x2
    assert (rect.width, rect.height) == pytest.approx((0.4, 0.8))


def test_transform_rect_shifts_along_the_rotated_axis():
    up = transform_rect(Rect(0.5, 0.5, 0.2, 0.2, 0.0), (100, 100), shift_y=-0.1, square_long=False)
    assert (up.x_center, up.y_center) == pytest.approx((0.5, 0.48))
    # Rotated 90 degrees clockwise, "up" in the ROI points to the image's +x.
    right = transform_rect(Rect(0.5, 0.5, 0.2, 0.2, math.pi / 2), (100, 100), shift_y=-0.1, square_long=False)
    assert (right.x_center, right.y_center) == pytest.approx((0.52, 0.5))


def test_alignment_rect_is_a_square_around_the_start_point():
    rect = alignment_rect(np.array([0.5, 0.5]), np.array([0.5, 0.25]), math.pi / 2, (200, 100))
    # |end - start| = 25 px; side 50 px; the vector points up, so no rotation is needed.
    assert (rect.width * 200, rect.height * 100) == pytest.approx((50, 50))
    assert rect.rotation == pytest.approx(0.0)


def test_pad_roi_letterboxes_a_wide_roi():
    crop = pad_roi(Rect(0.5, 0.5, 1.0, 1.0), (400, 200), (100, 100), keep_aspect_ratio=True)
    assert crop.padding == pytest.approx((0.0, 0.25, 0.0, 0.25))
    assert (crop.rect.width * 400, crop.rect.height * 200) == pytest.approx((400, 400))
    assert remove_letterbox(np.array([[0.5, 0.25, 0.1]]), crop.padding) == pytest.approx(np.array([[0.5, 0.0, 0.1]]))


def test_crop_then_project_finds_a_marked_pixel():
    image = np.zeros((200, 300, 3), dtype=np.uint8)
    image[118:123, 178:183] = 255  # a bright dot centred at (180, 120) px
    rect = Rect(0.55, 0.5, 0.3, 0.45, math.radians(30))  # square in pixels: 90 x 90, rotated
    crop = pad_roi(rect, (300, 200), (64, 64), keep_aspect_ratio=True)
    pixels = crop_image(image, crop, (64, 64), border_zero=True)
    ys, xs = np.nonzero(pixels[:, :, 0] > 128)
    found = np.array([[(xs.mean() + 0.5) / 64, (ys.mean() + 0.5) / 64]])
    x, y = project_to_image(found, crop.rect)[0]
    assert (x * 300, y * 200) == pytest.approx((180.5, 120.5), abs=1.0)


def test_anchor_counts_match_the_models():
    assert ssd_anchors(POSE_DETECTOR).shape == (2254, 2)
    assert ssd_anchors(FACE_DETECTOR).shape == (896, 2)
    anchors = ssd_anchors(POSE_DETECTOR)
    np.testing.assert_allclose(anchors[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(anchors[1], anchors[0])  # 2 anchors per cell
    np.testing.assert_allclose(anchors[-1], [6.5 / 7, 6.5 / 7])


def test_weighted_nms_averages_the_cluster_by_score():
    scores = np.array([0.9, 0.6, 0.8])
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.1, 0.0, 1.1, 1.0], [5.0, 5.0, 6.0, 6.0]])
    keypoints = np.array([[[0.0, 0.0]], [[1.0, 1.0]], [[5.0, 5.0]]])
    first, second = weighted_nms(scores, boxes, keypoints, threshold=0.3)
    assert first.score == 0.9
    np.testing.assert_allclose(first.box, [0.04, 0.0, 1.04, 1.0])  # (0.9*0 + 0.6*0.1) / 1.5
    np.testing.assert_allclose(first.keypoints, [[0.4, 0.4]])
    assert second.score == 0.8
    assert len(weighted_nms(scores, boxes, keypoints, threshold=0.3, max_detections=1)) == 1


def _refine_loop(points, heatmap, kernel=9, min_conf=0.5):
    """A line-by-line transcription of MediaPipe's RefineLandmarksFromHeatMap."""
    hm_h, hm_w, _ = heatmap.shape
    out = points.copy()
    for i, (x, y) in enumerate(points):
        col, row = int(x * hm_w), int(y * hm_h)
        if col < 0 or col >= hm_w or row < 0 or col >= hm_h:
            continue
        off = (kernel - 1) // 2
        total = wc = wr = best = 0.0
        for r in range(max(0, row - off), min(hm_h, row + off + 1)):
            for c in range(max(0, col - off), min(hm_w, col + off + 1)):
                conf = 1.0 / (1.0 + math.exp(-heatmap[r, c, i]))
                total, best, wc, wr = total + conf, max(best, conf), wc + c * conf, wr + r * conf
        if best >= min_conf and total > 0:
            out[i] = (wc / hm_w / total, wr / hm_h / total)
    return out


def test_heatmap_refinement_matches_mediapipes_loop():
    from holotune.runtime.holistic import refine_from_heatmap

    rng = np.random.default_rng(0)
    heatmap = rng.normal(-1.0, 2.0, size=(64, 64, 39)).astype(np.float32)
    # Points inside, on every edge, just outside (truncation keeps -0.01 at column 0), and far out.
    points = rng.uniform(0, 1, size=(39, 2)).astype(np.float32)
    points[:6] = [[0.0, 0.0], [0.999, 0.999], [-0.01, 0.5], [0.5, -0.01], [1.2, 0.5], [0.5, 1.5]]
    np.testing.assert_allclose(refine_from_heatmap(points, heatmap), _refine_loop(points, heatmap), atol=1e-5)
