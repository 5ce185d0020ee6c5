"""Video in and out for Holistic's video mode: frames with timestamps from a file, an image
sequence, a camera or a stream URL; overlay videos out. Imports no torch (OpenCV's FFmpeg decodes).

>>> with VideoReader("clip.mp4") as video:
...     for item in video:                       # Frame | FrameError, in frame order
...         if isinstance(item, Frame):
...             result = stream.process(item.image, item.timestamp_ms)

What OpenCV 4.11 (FFmpeg 5.1) does with bad data, measured on MJPG ``.avi`` and mp4v ``.mp4``
clips damaged on purpose (``tests/test_video_io.py`` builds them), and what this module makes of it:

- A frame whose data the decoder rejects (an MJPG frame without JPEG data, an mp4v frame with a
  damaged header): ``read()`` fails for that frame and the next ``read()`` returns the next frame.
  OpenCV's ``CAP_PROP_POS_FRAMES`` does not count the failed read, so frame indices are counted
  here, one per ``read()``. A failed read before the container's frame count is answered by reading
  ahead: if a later frame decodes, the skipped ones are a :class:`FrameError` naming them.
- A file cut short: every read from the cut on fails although the container announced more frames;
  reading ahead finds nothing, and one :class:`FrameError` names the frames missing at the end. An
  mp4 cut before its index (``moov``) does not open at all (:class:`VideoError`).
- Damage inside a frame's coded data is concealed by the decoder: ``read()`` succeeds with a partly
  wrong picture and nothing tells the caller (FFmpeg logs it; its log is quiet here unless
  ``$OPENCV_FFMPEG_LOGLEVEL`` is set, since the losses it can see are reported by frame index).
- A JPEG of another size inside an MJPG ``.avi`` comes back scaled to the stream's size (FFmpeg's
  scaler), so a file's frames keep one size; image sequences (``frame_%04d.png``, read frame by
  frame) and live sources can change size: such a frame has ``resized_from`` set, and the caller
  restarts its tracker.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from holotune.runtime.image import MIN_SIDE

DEFAULT_FPS = 30.0  # MediaPipe's synthetic rate, for sources that give none (image sequences)
MAX_FPS = 1000.0  # a container rate above this (or <= 0, NaN) is not believed
# Consecutive unreadable frames read ahead before concluding that a file ends early: 10 s at 30 fps.
MAX_READ_AHEAD = 300
LIVE_TIMEOUT_MS = 10_000  # open and read timeouts for stream URLs: a dead stream ends, it does not hang
WRITE_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
_SEQUENCE = re.compile(r"%0?\d*d")  # printf-style frame number: frame_%04d.png
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

# FFmpeg reads this once, when OpenCV first opens a file: quiet (-8) unless the user asked otherwise.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


class VideoError(ValueError):
    """A video source that cannot be read at all (missing, not a video, no frames); the message names it."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based position in the source, counting unreadable frames too.
        timestamp_ms: milliseconds: the container's presentation time where it is sane, else
            ``index * 1000 / fps``; for a live source, wall-clock time since its first frame.
            Strictly increasing within one reader.
        image: (H, W, 3) uint8 RGB.
        resized_from: (width, height) of the frames before this one when this frame's size differs
            (a tracker should restart), else ``None``.
    """

    index: int
    timestamp_ms: float
    image: np.ndarray
    resized_from: tuple[int, int] | None = None

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    def record(self, name: str) -> dict:
        """The frame's JSON line head: ``video``, ``frame``, ``timestamp_ms``, ``width``, ``height``, and
        ``reset`` (why tracking restarts) when the frame size changed."""
        record = {"video": name, "frame": self.index, "timestamp_ms": round(self.timestamp_ms, 3),
                  "width": self.width, "height": self.height}
        if self.resized_from is not None:
            record["reset"] = (f"{name}: frame {self.index} is {self.width}x{self.height}, the frames before "
                               f"{self.resized_from[0]}x{self.resized_from[1]}: tracking restarted")
        return record


@dataclass(frozen=True)
class FrameError:
    """Frames ``index`` .. ``index + count - 1`` could not be read; the message names the source and frames."""

    index: int
    count: int
    message: str

    @classmethod
    def refused(cls, name: str, frame: Frame, reason: Exception | str) -> "FrameError":
        """A frame that decoded but that Holistic refused (e.g. a timestamp out of order)."""
        return cls(frame.index, 1, f"{name}: frame {frame.index}: {reason}")

    def record(self, name: str) -> dict:
        """The JSON error line: ``video``, ``frame`` (the first lost), ``frames_lost``, ``error``."""
        return {"video": name, "frame": self.index, "frames_lost": self.count, "error": self.message}


def is_image_sequence(source: str | os.PathLike) -> bool:
    """True for a printf-style file pattern such as ``frames/frame_%04d.png`` (not a URL)."""
    text = os.fspath(source)
    return bool(_SEQUENCE.search(text)) and not _URL.match(text)


def is_url(source: str | os.PathLike) -> bool:
    """True for ``scheme://...`` (rtsp, http, file, ...)."""
    return bool(_URL.match(os.fspath(source)))


class VideoReader:
    """The frames of one video source, in order: :class:`Frame` and :class:`FrameError` items.

    Args:
        source: a video file, an image sequence pattern (``frame_%04d.png``), any URL OpenCV's
            FFmpeg opens (``rtsp://``, ``http://``, ``file://``), or a camera index (``int``).
        fps: frames per second for index-based timestamps (default: the container's rate if sane,
            else 30); given, it also replaces the container's timestamps.
        live: timestamps from the wall clock, and a failed read ends the source (default: cameras,
            and URLs with no frame count, i.e. streams).
        timeout_ms: open and read timeout of URL sources.
        name: what messages call the source (default: the path, URL or ``camera N``), e.g. an
            upload's file name rather than the temporary file holding it.

    Raises:
        VideoError: no such file, not a video, no video stream, or no frame could be read. The
            first frame is read here, so an unusable source fails at once.

    After the iteration, :attr:`end_reason` says why it ended (the end of the file, or a camera or
    stream that stopped delivering frames).
    """

    def __init__(self, source: str | int | os.PathLike, *, fps: float | None = None, live: bool | None = None,
                 timeout_ms: int = LIVE_TIMEOUT_MS, name: str | None = None):
        self.source = source
        camera = isinstance(source, int)
        self.name = name or (f"camera {source}" if camera else os.fspath(source))
        self.end_reason: str | None = None
        if fps is not None and not 0 < fps <= MAX_FPS:
            raise ValueError(f"fps must be in (0, {MAX_FPS:g}], got {fps}")
        self._capture = self._open(source, camera, timeout_ms)
        count = self._capture.get(cv2.CAP_PROP_FRAME_COUNT)
        sequence = not camera and is_image_sequence(self.name)
        # An image sequence's count is exact; OpenCV reports no rate for it (1 fps), so it gets the default.
        self.frame_count: int | None = int(count) if math.isfinite(count) and count > 0 else None
        container_fps = self._capture.get(cv2.CAP_PROP_FPS)
        sane_fps = (math.isfinite(container_fps) and 0 < container_fps <= MAX_FPS) and not sequence
        self.fps = float(fps or (container_fps if sane_fps else DEFAULT_FPS))
        self._container_times = fps is None and not sequence
        streamed = camera or (is_url(os.fspath(source)) and self.frame_count is None)
        self.live = streamed if live is None else bool(live)
        self._index = 0  # the index the next read() returns
        self._last_ms: float | None = None
        self._clock0: float | None = None
        self._size: tuple[int, int] | None = None
        self._pending: list[Frame | FrameError] = []
        self._read_error: str | None = None
        self.frames_read = 0
        self.frames_lost = 0
        first = self._next()
        if first is None or (isinstance(first, FrameError) and self._finished):
            self.close()
            if first is None:
                what = "delivered no frame" if self.live else "has no frames"
                raise VideoError(f"{self.name}: {what}")
            raise VideoError(f"{self.name}: no frame could be read ({first.message})")
        self._pending.insert(0, first)  # before a frame that reading ahead queued
        self.width, self.height = self._size or (0, 0)

    # ------------------------------------------------------------------ opening
    def _open(self, source, camera: bool, timeout_ms: int) -> cv2.VideoCapture:
        if camera:
            capture = cv2.VideoCapture(source)
            if not capture.isOpened():
                raise VideoError(f"{self.name}: cannot open (no such camera, no permission, or in use)")
            return capture
        text = os.fspath(source)
        if is_url(text):
            capture = cv2.VideoCapture(text, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                                                               cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
            if not capture.isOpened():
                raise VideoError(f"{text}: cannot open the stream (unreachable, no video, or a format OpenCV's "
                                 f"FFmpeg cannot read; waited up to {timeout_ms / 1000:g} s)")
            return capture
        if is_image_sequence(text):
            # Read here, file by file, not by OpenCV's CAP_IMAGES: that one counts frames only up to
            # the first unreadable file and ends there silently; FFmpeg's image2 scales every frame
            # to the first one's size. Here a bad file is one frame's error and sizes are kept.
            return ImageSequence(text)
        path = Path(text)
        if not path.exists():
            raise VideoError(f"{self.name}: no such file")
        if not path.is_file():
            raise VideoError(f"{self.name}: not a file")
        if path.stat().st_size == 0:
            raise VideoError(f"{self.name}: empty file")
        capture = cv2.VideoCapture(text, cv2.CAP_FFMPEG)
        if not capture.isOpened():
            raise VideoError(f"{self.name}: cannot open as a video (not a video file, no video stream in it, "
                             "truncated before its index, or a codec OpenCV's FFmpeg cannot decode)")
        if capture.get(cv2.CAP_PROP_FRAME_WIDTH) <= 0:
            capture.release()
            raise VideoError(f"{self.name}: no video stream")
        return capture

    # ------------------------------------------------------------------ reading
    @property
    def _finished(self) -> bool:
        return self.end_reason is not None

    def __iter__(self):
        while True:
            item = self._pending.pop(0) if self._pending else self._next()
            if item is None:
                return
            yield item

    def _next(self) -> Frame | FrameError | None:
        """The next item, or ``None`` at the end (:attr:`end_reason` says why)."""
        if self._finished:
            return None
        rgb = self._read()
        if rgb is not None:
            return self._frame(rgb)
        first = self._index - 1  # the index that failed
        why = self._read_error
        if self.live:
            self.end_reason = (f"{self.name} stopped delivering frames after {self.frames_read} frame(s)"
                               + (" (closed or unplugged?)" if isinstance(self.source, int) else ""))
            return None
        if self.frame_count is None or first >= self.frame_count:
            self.end_reason = f"end of {self.name}"
            return None
        # A failure before the announced end: one unreadable frame, or the end of the data? Read ahead.
        while self._index < self.frame_count and self._index - first < MAX_READ_AHEAD:
            rgb = self._read()
            if rgb is not None:
                lost = self._index - 1 - first
                self.frames_lost += lost
                frames = f"frame {first}" if lost == 1 else f"frames {first}-{first + lost - 1}"
                self._pending.append(self._frame(rgb))
                return FrameError(first, lost, f"{self.name}: {frames} unreadable ({why or 'corrupt data'}); skipped")
        lost = self.frame_count - first
        self.frames_lost += lost
        self.end_reason = f"{self.name} ends early"
        frames = f"frame {first}" if lost == 1 else f"frames {first}-{self.frame_count - 1}"
        return FrameError(first, lost, f"{self.name}: {frames} of the {self.frame_count} the container lists "
                                       f"could not be read{f' ({why})' if why else ''}: the file ends early "
                                       "(truncated or corrupt from there on)")

    def _read(self) -> np.ndarray | None:
        """The next frame as decoded (BGR from OpenCV, RGB from an image sequence), or ``None``;
        :attr:`_read_error` says why when the source can tell."""
        self._index += 1
        self._read_error = None
        if isinstance(self._capture, ImageSequence):
            rgb, self._read_error = self._capture.read_rgb()
            return rgb
        try:
            ok, bgr = self._capture.read()
        except cv2.error as exc:  # a decoder error OpenCV raises instead of returning False
            self._read_error = str(exc).strip()
            return None
        if not ok or bgr is None or bgr.size == 0:
            return None
        if bgr.ndim == 2:
            return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB if bgr.shape[2] == 4 else cv2.COLOR_BGR2RGB)

    def _frame(self, rgb: np.ndarray) -> Frame | FrameError:
        index = self._index - 1
        if rgb.dtype != np.uint8:  # 16-bit video frames: scale to 8 bits as runtime.image does
            rgb = (rgb.astype(np.float64) * (255.0 / 65535.0) + 0.5).clip(0, 255).astype(np.uint8)
        height, width = rgb.shape[:2]
        if min(width, height) < MIN_SIDE:
            self.frames_lost += 1
            return FrameError(index, 1, f"{self.name}: frame {index} is {width}x{height} pixels; "
                                        f"need at least {MIN_SIDE}x{MIN_SIDE}")
        resized_from = self._size if self._size is not None and self._size != (width, height) else None
        self._size = (width, height)
        self.frames_read += 1
        return Frame(index, self._timestamp(index), np.ascontiguousarray(rgb), resized_from)

    def _timestamp(self, index: int) -> float:
        step = 1000.0 / self.fps
        if self.live:
            now = time.monotonic()
            self._clock0 = now if self._clock0 is None else self._clock0
            ms = (now - self._clock0) * 1000.0
        else:
            ms = index * step
            if self._container_times:
                position = self._capture.get(cv2.CAP_PROP_POS_MSEC)  # after read(): this frame's time
                if math.isfinite(position) and position >= 0 and (self._last_ms is None or position > self._last_ms):
                    ms = position
        if self._last_ms is not None and ms <= self._last_ms:  # Holistic needs strictly increasing times
            ms = self._last_ms + (1e-3 if self.live else step)
        self._last_ms = ms
        return ms

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageSequence:
    """Numbered image files (``frame_%04d.png``, from 0 or 1 on) as a capture :class:`VideoReader` reads.

    The frame count is the run of consecutive numbers that exist. Each file is decoded by
    :func:`holotune.runtime.image.load_image` (EXIF orientation, 16-bit, palettes), so an
    unreadable one is reported with its reason.
    """

    def __init__(self, pattern: str):
        self.pattern = pattern
        try:
            self.start = 0 if Path(pattern % 0).is_file() else 1
        except TypeError:
            raise VideoError(f"{pattern}: a sequence pattern takes one frame number, e.g. frame_%04d.png") from None
        if not Path(pattern % self.start).is_file():
            raise VideoError(f"{pattern}: no file matches the pattern (numbering starts at 0 or 1): "
                             f"{Path(pattern % 0)} does not exist")
        count = 0
        while Path(pattern % (self.start + count)).is_file():
            count += 1
        self.count = count
        self._next = 0

    def read_rgb(self) -> tuple[np.ndarray | None, str | None]:
        """The next file as (H, W, 3) uint8 RGB, or ``None`` and why (``None`` too after the last)."""
        from holotune.runtime.image import ImageError, load_image

        if self._next >= self.count:
            return None, None
        path = self.pattern % (self.start + self._next)
        self._next += 1
        try:
            return load_image(path), None
        except ImageError as exc:
            return None, str(exc)

    def get(self, prop: int) -> float:
        return float(self.count) if prop == cv2.CAP_PROP_FRAME_COUNT else 0.0

    def release(self) -> None:
        pass


class VideoWriter:
    """Writes (H, W, 3) uint8 RGB frames to a video file: mp4v in ``.mp4``/``.m4v``/``.mov``/``.mkv``,
    MJPG in ``.avi``.

    Args:
        path: the output file (its folder is created).
        fps: frames per second of the output.

    The file is opened at the first frame, whose size it keeps: a later frame of another size is
    scaled into it with black borders (letterbox). The file is complete only after :meth:`close`.

    Raises:
        VideoError: an unsupported suffix, or a file OpenCV cannot create.
    """

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in WRITE_FOURCC:
            raise VideoError(f"{self.path}: cannot write {suffix or 'a file without suffix'}; use one of "
                             f"{', '.join(sorted(WRITE_FOURCC))}")
        if not 0 < fps <= MAX_FPS:
            raise ValueError(f"fps must be in (0, {MAX_FPS:g}], got {fps}")
        self.fps = float(fps)
        self.size: tuple[int, int] | None = None
        self.frames_written = 0
        self._writer: cv2.VideoWriter | None = None

    def write(self, rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        if self._writer is None:
            self.size = (int(rgb.shape[1]), int(rgb.shape[0]))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*WRITE_FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), cv2.CAP_FFMPEG, fourcc, self.fps, self.size)
            if not self._writer.isOpened():
                self._writer = None
                raise VideoError(f"{self.path}: cannot create the video file (folder not writable?)")
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = letterbox(rgb, self.size)
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file (an mp4 is unreadable until its index is written here)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def letterbox(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` scaled to fit (width, height) ``size`` keeping its aspect ratio, centred on black."""
    width, height = size
    scale = min(width / rgb.shape[1], height / rgb.shape[0])
    w, h = max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))
    out = np.zeros((height, width, 3), dtype=np.uint8)
    x, y = (width - w) // 2, (height - h) // 2
    out[y : y + h, x : x + w] = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    return out
