"""Video in and out (holotune.runtime.video) on small clips built here from the sample photos:
frames, indices and timestamps; a corrupt frame in an MJPG .avi and in an mp4v .mp4 is reported by
index and the rest is read; a file cut short names the frames it lacks; unreadable sources fail
naming the file; image sequences keep each frame's size; live sources end with a message; the
writer round-trips."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from holotune.runtime.video import Frame, FrameError, VideoError, VideoReader, VideoWriter
from holotune.samples import sample_images

SIZE = 256
FPS = 10.0


def photos(n: int, size: int = SIZE) -> list[np.ndarray]:
    """``n`` (size, size, 3) uint8 RGB frames cycling through grace_hopper, astronaut, camera."""
    images = sample_images()
    names = ("grace_hopper", "astronaut", "camera")
    return [cv2.resize(images[names[i % 3]], (size, size), interpolation=cv2.INTER_AREA) for i in range(n)]


def write_clip(path: Path, frames: list[np.ndarray], fps: float = FPS) -> Path:
    """A clip written by cv2.VideoWriter: MJPG in .avi, mp4v in .mp4."""
    fourcc = {".avi": "MJPG", ".mp4": "mp4v"}[path.suffix]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (frames[0].shape[1], frames[0].shape[0]))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def frame_starts(data: bytes, suffix: str) -> list[int]:
    """Byte offsets of each frame's coded data: JPEG SOI markers in MJPG, VOP start codes in mp4v."""
    marker = b"\xff\xd8\xff" if suffix == ".avi" else b"\x00\x00\x01\xb6"
    return [m.start() for m in re.finditer(re.escape(marker), data)]


def corrupt_frame(src: Path, dst: Path, index: int) -> Path:
    """A copy of ``src`` with frame ``index``'s coded data zeroed (its chunk and the container intact)."""
    data = bytearray(src.read_bytes())
    starts = frame_starts(bytes(data), src.suffix)
    end = starts[index + 1] if index + 1 < len(starts) else data.find(b"moov") - 4
    if src.suffix == ".avi":
        end -= 8  # the next chunk's header ('00dc' + size) stays
    data[starts[index]:end] = bytes(end - starts[index])
    dst.write_bytes(bytes(data))
    return dst


def same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two frames are the same photo (lossy coding apart): mean |difference| < 8 of 255."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) < 8.0


def closest(image: np.ndarray, candidates: list[np.ndarray]) -> int:
    """Index of the candidate frame ``image`` is nearest to (mean |difference|)."""
    return int(np.argmin([np.abs(image.astype(np.int16) - c.astype(np.int16)).mean() for c in candidates]))


@pytest.fixture(scope="module")
def source() -> list[np.ndarray]:
    return photos(10)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, source) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    return {suffix: write_clip(root / f"clip{suffix}", source) for suffix in (".avi", ".mp4")}


def items(reader: VideoReader) -> list[Frame | FrameError]:
    with reader:
        return list(reader)


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_frames_indices_and_timestamps(clips, source, suffix):
    reader = VideoReader(clips[suffix])
    assert (reader.frame_count, reader.fps, reader.live, reader.width, reader.height) == (10, FPS, False, SIZE, SIZE)
    got = items(reader)
    assert [f.index for f in got] == list(range(10))
    assert [f.timestamp_ms for f in got] == pytest.approx([100.0 * i for i in range(10)])
    assert all(f.image.dtype == np.uint8 and f.image.shape == (SIZE, SIZE, 3) for f in got)
    assert all(same_picture(f.image, source[f.index]) for f in got)  # RGB, in order
    assert not same_picture(got[0].image, source[1])  # (the check can tell the photos apart)
    assert all(f.resized_from is None for f in got)
    assert reader.end_reason == f"end of {clips[suffix]}" and reader.frames_lost == 0


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_a_corrupt_frame_is_reported_by_index_and_the_rest_is_read(clips, source, tmp_path, suffix):
    """OpenCV's read() fails on the damaged frame and goes on; its own position counter then lags
    by one, so the frames after it must still carry their true index and picture. (In the mp4 the
    next frame is predicted from a lost one, so it is damaged, but still nearest its own photo.)"""
    bad = corrupt_frame(clips[suffix], tmp_path / f"bad{suffix}", 4)
    got = items(VideoReader(bad))
    errors = [i for i in got if isinstance(i, FrameError)]
    assert len(errors) == 1 and (errors[0].index, errors[0].count) == (4, 1)
    assert errors[0].message == f"{bad}: frame 4 unreadable (corrupt data); skipped"
    frames = [i for i in got if isinstance(i, Frame)]
    assert [f.index for f in frames] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert [f.timestamp_ms for f in frames] == pytest.approx([0, 100, 200, 300, 500, 600, 700, 800, 900])
    assert [closest(f.image, source[:3]) for f in frames] == [f.index % 3 for f in frames]
    assert [i.index for i in got] == sorted(i.index for i in got)  # the error comes in frame order


def test_a_file_cut_short_names_the_frames_it_lacks(clips, source, tmp_path):
    data = clips[".avi"].read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: frame_starts(data, ".avi")[6] - 8])  # frames 0-5 whole, the index gone
    reader = VideoReader(cut)
    got = items(reader)
    assert [f.index for f in got if isinstance(f, Frame)] == [0, 1, 2, 3, 4, 5]
    error = got[-1]
    assert isinstance(error, FrameError) and (error.index, error.count) == (6, 4)
    assert error.message.startswith(f"{cut}: frames 6-9 of the 10 the container lists could not be read")
    assert "ends early" in error.message and reader.frames_lost == 4


def test_an_mp4_cut_before_its_index_does_not_open(clips, tmp_path):
    data = clips[".mp4"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=rf"^{re.escape(str(cut))}: cannot open as a video"):
        VideoReader(cut)


def test_unreadable_sources_fail_naming_the_source(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    no_frames = tmp_path / "no_frames.avi"
    cv2.VideoWriter(str(no_frames), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64)).release()
    cases = {tmp_path / "missing.mp4": "no such file", empty: "empty file", text: "cannot open as a video",
             no_frames: "has no frames", tmp_path: "not a file",
             tmp_path / "seq_%04d.png": "no file matches the pattern"}
    for path, reason in cases.items():
        with pytest.raises(VideoError) as err:
            VideoReader(path)
        assert str(err.value).startswith(f"{path}: {reason}"), str(err.value)
    with pytest.raises(VideoError, match="^camera 97: cannot open"):
        VideoReader(97)
    with pytest.raises(ValueError, match="fps must be in"):
        VideoReader(tmp_path / "missing.mp4", fps=0)


def test_an_image_sequence_keeps_frame_sizes_and_reports_a_bad_file(tmp_path, source):
    """Frames 0-1 256x256, frame 2 not an image, frames 3-4 200x160: a size change is flagged on
    the frame where it happens (the caller restarts tracking); timestamps at 30 fps."""
    small = [cv2.resize(f, (200, 160)) for f in source[3:5]]
    for i, frame in enumerate([source[0], source[1], None, *small]):
        path = tmp_path / f"f_{i:04d}.png"
        if frame is None:
            path.write_text("garbage")
        else:
            cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    pattern = str(tmp_path / "f_%04d.png")
    reader = VideoReader(pattern)
    assert (reader.frame_count, reader.fps) == (5, 30.0)
    got = items(reader)
    assert [type(i).__name__ for i in got] == ["Frame", "Frame", "FrameError", "Frame", "Frame"]
    assert got[2].index == 2 and got[2].message.startswith(f"{pattern}: frame 2 unreadable ({tmp_path}/f_0002.png: ")
    assert [(f.width, f.height, f.resized_from) for f in got if isinstance(f, Frame)] == [
        (256, 256, None), (256, 256, None), (200, 160, (256, 256)), (200, 160, None)]
    assert [f.timestamp_ms for f in got if isinstance(f, Frame)] == pytest.approx([0, 1000 / 30, 100, 400 / 3])
    assert np.array_equal(got[3].image, small[0])  # PNG: lossless, RGB
    # Numbering from 1 is found too.
    (tmp_path / "g_0001.png").write_bytes((tmp_path / "f_0000.png").read_bytes())
    assert [f.index for f in items(VideoReader(tmp_path / "g_%04d.png"))] == [0]


def test_a_live_source_uses_the_wall_clock_and_ends_with_a_message(clips):
    reader = VideoReader(clips[".avi"], live=True)
    got = items(reader)
    times = [f.timestamp_ms for f in got]
    assert len(got) == 10 and times[0] == 0.0 and all(b > a for a, b in zip(times, times[1:]))
    assert times[-1] < 5000  # milliseconds of reading, not the clip's 900 ms of content
    assert reader.end_reason == f"{clips['.avi']} stopped delivering frames after 10 frame(s)"


def test_fps_given_replaces_the_containers_timestamps(clips):
    got = items(VideoReader(clips[".mp4"], fps=25))
    assert [f.timestamp_ms for f in got] == pytest.approx([40.0 * i for i in range(10)])


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_the_writer_round_trips_and_letterboxes_other_sizes(tmp_path, source, suffix):
    path = tmp_path / "out" / f"overlay{suffix}"
    with VideoWriter(path, fps=12) as writer:
        for frame in source[:3]:
            writer.write(frame)
        writer.write(np.full((64, 128, 3), 255, np.uint8))  # wider: scaled to 256x128, black above and below
    assert writer.frames_written == 4 and writer.size == (SIZE, SIZE)
    reader = VideoReader(path)
    assert (reader.frame_count, reader.fps) == (4, 12.0)
    got = items(reader)
    assert all(same_picture(f.image, source[f.index]) for f in got[:3])
    last = got[3].image.astype(int)
    assert last[:50].mean() < 10 and last[80:176].mean() > 240 and last[-50:].mean() < 10


def test_the_writer_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(VideoError, match=r"out\.webm: cannot write \.webm; use one of \.avi, \.m4v"):
        VideoWriter(tmp_path / "out.webm", fps=30)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises((VideoError, OSError)):
        VideoWriter(blocker / "out.mp4", fps=30).write(np.zeros((8, 8, 3), np.uint8))


def test_reading_video_imports_no_torch(clips):
    code = ("import sys; from holotune.runtime.video import VideoReader; "
            f"n = sum(1 for _ in VideoReader({str(clips['.avi'])!r})); "
            "assert n == 10, n; assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
