"""``holotune infer`` on videos: a JSON line per frame in video mode (a fresh track per clip), the
overlay video, error lines for bad frames and unreadable clips, a size change that restarts
tracking, the video options, live sources (--source, --camera) with a frames/s readout, Ctrl-C
that finishes the outputs, and no torch on the way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_video_io import corrupt_frame, write_clip

from holotune.cli import main
from holotune.runtime import Holistic
from holotune.runtime.video import Frame, VideoReader
from holotune.samples import sample_images

PARTS = ("pose", "pose_world", "face", "left_hand", "right_hand", "left_gesture", "right_gesture")


def pan(n: int, size: int = 256, step: int = 4) -> list[np.ndarray]:
    """``n`` RGB frames of a camera panning over the astronaut photo, ``step`` photo pixels a frame."""
    photo = sample_images()["astronaut"]
    return [cv2.resize(photo[i * step: i * step + 400, 50 + i * step: 450 + i * step], (size, size),
                       interpolation=cv2.INTER_AREA) for i in range(n)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("cli") / "pan.avi", pan(6))


def run(capsys, *argv) -> tuple[int, list[dict], str]:
    """``holotune infer ARGV`` in this process: exit code, JSON lines, stderr."""
    code = main(["infer", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.startswith("{")], err


def decoded(path: Path) -> list[Frame]:
    with VideoReader(path) as reader:
        return [f for f in reader if isinstance(f, Frame)]


def test_a_clip_gives_a_line_per_frame_tracked_and_an_overlay_video(clip, tmp_path, capsys):
    overlay = tmp_path / "out.mp4"
    code, lines, err = run(capsys, clip, "--json", "--overlay", overlay)
    assert code == 0, err
    frames = decoded(clip)
    assert [r["frame"] for r in lines] == list(range(6)) and all(r["video"] == str(clip) for r in lines)
    assert [r["timestamp_ms"] for r in lines] == [0.0, 100.0, 200.0, 300.0, 400.0, 500.0]
    assert all((r["width"], r["height"]) == (256, 256) and r["pose"] and r["face"] for r in lines)
    # Video mode is the lead's HolisticStream, fed the container's timestamps: the same numbers.
    with Holistic() as holistic:
        stream = holistic.stream()
        expected = [stream.process(f.image, f.timestamp_ms).to_dict() for f in frames]
        static = [holistic.process(f.image).to_dict() for f in frames]
    for got, want in zip(lines, expected):
        for part in PARTS:
            np.testing.assert_allclose(np.array(got[part], float), np.array(want[part], float), atol=1e-6)
    assert lines[3]["pose"] != static[3]["pose"]  # tracked and smoothed, not frame by frame
    assert f"{clip}: 6 frame(s) processed (pose 6, face 6, left hand 0, right hand 0), 0 lost" in err
    # The overlay: every frame, the clip's size and rate, the landmarks drawn on the pictures.
    with VideoReader(overlay) as reader:
        assert (reader.frame_count, reader.fps, reader.width, reader.height) == (6, 10.0, 256, 256)
        drawn = [f.image for f in reader]
    changed = [np.abs(d.astype(int) - f.image.astype(int)).max(axis=2) > 60 for d, f in zip(drawn, frames)]
    assert all(0.002 < c.mean() < 0.2 for c in changed)  # lines and dots, not a different picture


def test_a_fresh_track_per_clip_and_the_video_options(clip, tmp_path, capsys):
    code, lines, _ = run(capsys, clip, clip, "--json")
    assert code == 0 and len(lines) == 12
    for a, b in zip(lines[:6], lines[6:]):  # the second clip starts from scratch: the same numbers
        assert a == b
    code, static, _ = run(capsys, clip, "--json", "--static-image-mode")
    with Holistic() as holistic:
        want = [holistic.process(f.image).to_dict() for f in decoded(clip)]
    assert code == 0 and [{k: r[k] for k in PARTS} for r in static] == want
    code, smooth, _ = run(capsys, clip, "--json", "--smooth-face")
    assert code == 0 and smooth[0]["face"] == lines[0]["face"]  # a one-euro filter passes its first value
    assert all(s["pose"] == r["pose"] for s, r in zip(smooth, lines))  # face smoothing only touches the face
    moved = [np.abs(np.array(s["face"]) - np.array(r["face"])).max() for s, r in zip(smooth[1:], lines[1:])]
    assert 1e-4 < max(moved) < 0.02, moved  # filtered, not replaced
    code, hands, _ = run(capsys, clip, "--json", "--smooth-hands")
    assert code == 0 and hands == lines[:6]  # no hand in this clip: nothing to smooth


def test_images_and_videos_mixed_with_an_overlay_folder(clip, tmp_path, capsys):
    image = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(image), cv2.cvtColor(pan(1)[0], cv2.COLOR_RGB2BGR))
    code, lines, _ = run(capsys, image, clip, "--json", "--overlay", tmp_path / "overlays")
    assert code == 0 and lines[0]["image"] == str(image) and [r.get("frame") for r in lines[1:]] == list(range(6))
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == ["astronaut.png", "pan.mp4"]
    code, _, err = run(capsys, image, clip, "--overlay", tmp_path / "one.mp4")
    assert code == 2 and "--overlay" in err and "exactly one video" in err
    code, _, err = run(capsys, clip, "--overlay", tmp_path / "one.webm")
    assert code == 2 and "cannot write .webm videos" in err
    code, _, err = run(capsys)
    assert code == 2 and "nothing to do" in err


def test_bad_frames_and_bad_clips_are_error_lines_and_the_rest_goes_on(clip, tmp_path, capsys):
    bad = corrupt_frame(clip, tmp_path / "bad.avi", 2)
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    code, lines, err = run(capsys, broken, bad, "--json")
    assert code == 1
    assert lines[0] == {"video": str(broken), "error": f"{broken}: cannot open as a video (not a video file, no "
                        "video stream in it, truncated before its index, or a codec OpenCV's FFmpeg cannot decode)"}
    assert lines[3] == {"video": str(bad), "frame": 2, "frames_lost": 1,
                        "error": f"{bad}: frame 2 unreadable (corrupt data); skipped"}
    assert [r["frame"] for r in lines[1:]] == [0, 1, 2, 3, 4, 5] and all(r["pose"] for r in lines[1:] if "pose" in r)
    assert f"holotune: {bad}: frame 2 unreadable" in err and "2 video frame(s) or file(s) failed" in err


def test_a_frame_size_change_restarts_tracking(tmp_path, capsys):
    frames = pan(4)
    frames[2:] = [cv2.resize(f, (224, 192)) for f in frames[2:]]
    for i, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"f_{i:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    pattern = str(tmp_path / "f_%03d.png")
    code, lines, err = run(capsys, pattern, "--json")
    assert code == 0, err
    assert lines[2]["reset"] == f"{pattern}: frame 2 is 224x192, the frames before 256x256: tracking restarted"
    assert "reset" not in lines[1] and "reset" not in lines[3] and (lines[2]["width"], lines[2]["height"]) == (224, 192)
    assert f"holotune: {lines[2]['reset']}" in err
    with Holistic() as holistic:  # frame 2 is a first frame again: a fresh stream gives the same
        fresh = holistic.stream().process(frames[2], lines[2]["timestamp_ms"]).to_dict()
    assert {k: lines[2][k] for k in PARTS} == fresh


def test_live_sources(clip, capsys):
    code, lines, err = run(capsys, "--source", clip, "--json", "--progress")
    assert code == 0 and [r["frame"] for r in lines] == list(range(6))
    assert "frames/s" in err and f"{clip}: 6 frame(s) processed" in err
    code, lines, err = run(capsys, "--camera", 97, "--json")
    assert code == 1 and lines == [{"video": "camera 97", "error": "camera 97: cannot open (no such camera, no "
                                                                  "permission, or in use)"}]
    code, _, err = run(capsys, "--camera", 0, "--source", clip)
    assert code == 2 and "not both" in err


def test_ctrl_c_finishes_the_outputs_and_exits_0(tmp_path):
    """SIGINT mid-clip: the lines so far are flushed, the overlay is a complete file with exactly
    those frames, a summary says so, exit 0."""
    clip = write_clip(tmp_path / "long.avi", pan(150, size=128, step=1))
    overlay = tmp_path / "live.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "holotune.cli", "infer", "--source", str(clip), "--json",
                             "--overlay", str(overlay)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]  # processing has started
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    records = [json.loads(line) for line in lines + out.splitlines() if line.strip()]
    assert 3 <= len(records) < 150 and [r["frame"] for r in records] == list(range(len(records)))
    assert "stopped by Ctrl-C" in err and "Traceback" not in err
    assert f"overlay {overlay} ({len(records)} frames)" in err
    with VideoReader(overlay) as reader:
        assert reader.frame_count == len(records) and sum(1 for _ in reader) == len(records)


def test_video_inference_imports_no_torch(clip):
    code = ("import sys, contextlib, io\n"
            "from holotune.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            f"    assert main(['infer', {str(clip)!r}, '--json']) == 0\n"
            "assert len(out.getvalue().splitlines()) == 6\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "print('ok')\n")
    env = {**os.environ}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    assert time.monotonic() - start < 60
