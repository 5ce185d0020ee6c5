"""Holistic in video mode on an uploaded video: one JSON line per frame, streamed back as computed.

The upload goes to a temporary file (OpenCV reads files, not streams) in ``<state_dir>/uploads``,
removed when the response ends, however it ends. Each video gets its own tracking stream on the
served models; every frame takes the inference limiter and the swap lock on its own, so other
requests interleave with a long video and a promoted model comes in between two frames.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import anyio
from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile
from fastapi.responses import StreamingResponse

from holotune.service.errors import field_error
from holotune.service.middleware import VIDEO_PATH
from holotune.service.routes.common import BEARER
from holotune.service.state import Service, get_service

router = APIRouter(tags=["inference"], dependencies=BEARER)
NDJSON = "application/x-ndjson"
LINES_DOC = (
    "One JSON line per frame: `{\"video\", \"frame\", \"timestamp_ms\", \"width\", \"height\", \"pose\", "
    "\"pose_world\", \"face\", \"left_hand\", \"right_hand\", \"left_gesture\", \"right_gesture\", "
    "\"models\"}` (each gesture `{\"label\", \"score\"}` or `null`; plus `\"reset\"` where the frame size "
    "changed and tracking restarted); per unreadable frame `{\"video\", \"frame\", \"frames_lost\", \"error\"}`; "
    "last, `{\"video\", \"frames\", \"errors\", \"frames_lost\", \"models\", \"end\"}`.")


@router.post(VIDEO_PATH, response_class=StreamingResponse,
             responses={200: {"content": {NDJSON: {}}, "description": LINES_DOC}})
async def infer_video(
    video: UploadFile = File(..., description="a video file: mp4, avi, mov, mkv, webm..."),
    static_image_mode: bool = Query(False, description="process every frame alone (no tracking, no smoothing)"),
    smooth_face: bool = Query(False, description="one-euro smoothing of the face landmarks"),
    smooth_hands: bool = Query(False, description="one-euro smoothing of the hand landmarks"),
    service: Service = Depends(get_service),
) -> StreamingResponse:
    """Holistic in video mode (tracking and smoothing) on every frame of an uploaded video,
    streamed back as JSON lines (`application/x-ndjson`) as they are computed."""
    from holotune.runtime.smoothing import FACE_SMOOTHING, HAND_SMOOTHING

    settings = service.settings
    if service.infer_pending >= settings.max_pending_infer:  # before saving: refuse without the work
        raise HTTPException(503, f"{service.infer_pending} inference requests already pending; retry later",
                            headers={"Retry-After": "1"})
    service.infer_pending += 1
    name = Path(video.filename or "video").name
    path = None
    reader = None
    try:
        path = await anyio.to_thread.run_sync(save_upload, video.file, name, service.upload_dir)
        reader = await anyio.to_thread.run_sync(open_upload, path, name, settings)
    except BaseException:
        if reader is not None:
            reader.close()
        if path is not None:
            path.unlink(missing_ok=True)
        service.infer_pending -= 1
        raise
    stream = None if static_image_mode else service.holistic.stream(
        face_smoothing=FACE_SMOOTHING if smooth_face else None,
        hand_smoothing=HAND_SMOOTHING if smooth_hands else None)
    return StreamingResponse(video_lines(service, reader, path, stream), media_type=NDJSON)


def save_upload(source, name: str, folder: Path) -> Path:
    """Copy an upload into a new temporary file in ``folder`` (keeping a video suffix, which FFmpeg
    may use as a hint); 422 naming ``video`` if it is empty."""
    from holotune.runtime.image import VIDEO_SUFFIXES

    suffix = Path(name).suffix.lower()
    fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=suffix if suffix in VIDEO_SUFFIXES else "", dir=folder)
    path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as out:
            source.seek(0)
            shutil.copyfileobj(source, out, 1024 * 1024)
        if path.stat().st_size == 0:
            raise field_error("video", f"{name}: empty file")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def open_upload(path: Path, name: str, settings):
    """The saved upload as a :class:`VideoReader`, checked against the limits.

    Raises:
        RequestValidationError: 422 naming ``video``: not a readable video, or no frames.
        HTTPException: 413 naming ``video`` and the setting: frames too large, too many, too long.
    """
    from holotune.runtime.video import VideoError, VideoReader

    try:
        reader = VideoReader(path, live=False, name=name)
    except VideoError as exc:
        raise field_error("video", str(exc)) from None
    try:
        if reader.width * reader.height > settings.max_frame_pixels:
            raise HTTPException(413, f"video: {name} has {reader.width}x{reader.height} frames, more than the "
                                     f"{settings.max_frame_pixels}-pixel limit (max_frame_pixels)")
        if reader.frame_count is not None and reader.frame_count > settings.max_video_frames:
            raise HTTPException(413, f"video: {name} has {reader.frame_count} frames, more than the limit of "
                                     f"{settings.max_video_frames} (max_video_frames)")
        if reader.frame_count is not None and reader.frame_count / reader.fps > settings.max_video_seconds:
            raise HTTPException(413, f"video: {name} lasts {reader.frame_count / reader.fps:.1f} s, more than the "
                                     f"limit of {settings.max_video_seconds:g} s (max_video_seconds)")
    except BaseException:
        reader.close()
        raise
    return reader


def _next(iterator):
    return next(iterator, None)


async def video_lines(service: Service, reader, path: Path, stream):
    """The response body: a JSON line per frame or unreadable frame, then the summary line. Cleans up
    (reader, temporary file, pending count) when it ends, also when the client goes away."""
    from holotune.runtime.video import FrameError

    settings = service.settings
    name = reader.name
    frames = errors = lost = 0
    versions = None
    end = None
    try:
        items = iter(reader)
        while True:
            # Decoding runs in a thread outside the inference limiter, so it overlaps other work.
            item = await anyio.to_thread.run_sync(_next, items)
            if item is None:
                break
            if isinstance(item, FrameError):
                errors += 1
                lost += item.count
                yield encode_line(item.record(name))
                continue
            over = _over_limit(item, settings)
            if over:
                errors += 1
                end = f"stopped at frame {item.index}: {over}"
                yield encode_line({"video": name, "frame": item.index, "error": f"video: {name}: {over}"})
                break
            record = item.record(name)
            if "reset" in record and stream is not None:
                stream.reset()
            try:
                if stream is None:
                    result, versions = await anyio.to_thread.run_sync(service.process, item.image,
                                                                      limiter=service.infer_limiter)
                else:
                    result, versions = await anyio.to_thread.run_sync(service.track, stream, item.image,
                                                                      item.timestamp_ms, limiter=service.infer_limiter)
            except ValueError as exc:  # a frame Holistic refuses
                refused = FrameError.refused(name, item, exc)
                errors += 1
                lost += refused.count
                yield encode_line(refused.record(name))
                continue
            frames += 1
            yield encode_line({**record, **result.to_dict(), "models": versions})
        yield encode_line({"video": name, "frames": frames, "errors": errors, "frames_lost": lost,
                    "models": versions if versions is not None else service.follower.versions(),
                    "end": end or reader.end_reason})
    finally:
        reader.close()
        path.unlink(missing_ok=True)
        service.infer_pending -= 1


def _over_limit(frame, settings) -> str | None:
    """Why ``frame`` is past a limit (a video whose container under-reported it), or ``None``."""
    if frame.width * frame.height > settings.max_frame_pixels:
        return (f"frame {frame.index} is {frame.width}x{frame.height}, more than the {settings.max_frame_pixels}-"
                "pixel limit (max_frame_pixels)")
    if frame.index >= settings.max_video_frames:
        return f"more than {settings.max_video_frames} frames (max_video_frames)"
    if frame.timestamp_ms > settings.max_video_seconds * 1000.0:
        return f"longer than {settings.max_video_seconds:g} s (max_video_seconds)"
    return None


def encode_line(record: dict) -> bytes:
    """One JSON line of the response body."""
    return (json.dumps(record) + "\n").encode()
