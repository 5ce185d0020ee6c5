"""Live Holistic over a WebSocket: the client sends frames, the service answers each with its keypoints.

Protocol (``/api/v1/stream``; docs/service.md has the full description):

- The service accepts, then sends ``{"type": "ready", "models", "limits"}``.
- Client -> service: a **binary** message is one frame, an encoded image (JPEG, PNG, WebP...);
  frames are numbered from 0 in the order they arrive. A **text** message is a JSON object of
  options for the next frame: ``{"timestamp_ms": 1234.5}`` (milliseconds, strictly increasing;
  without it a frame is 33.333 ms after the previous one) and/or ``{"reset": true}`` (a new clip:
  tracking restarts).
- Service -> client, per frame: ``{"type": "result", "frame", "timestamp_ms", "width", "height",
  "pose", "pose_world", "face", "left_hand", "right_hand", "left_gesture", "right_gesture", "models"}``
  (each gesture ``{"label", "score"}`` or ``null``; plus ``"reset"`` when the frame size changed and tracking restarted), or ``{"type": "error", "frame", "error"}`` for a
  frame that cannot be used (not an image, too large, a timestamp out of order); the session goes
  on. A bad text message gets ``{"type": "error", "frame": null, "error"}``.
- Close codes: 4401 no token, 4403 wrong token (only where the token is needed: on a public bind),
  1013 too many sessions (try again later), 4408 the session time limit.

Each connection has its own tracking state (``service.holistic.stream()``) on the shared models;
each frame takes the inference limiter and the swap lock alone, so a promoted model comes in
between two frames and no frame is dropped: each result names the versions that computed it.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import time

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from holotune.service.middleware import STREAM_PATH
from holotune.service.security import token_matches, websocket_token

router = APIRouter(tags=["inference"])

CLOSE_NO_TOKEN = 4401
CLOSE_WRONG_TOKEN = 4403
CLOSE_BUSY = 1013  # RFC 6455 "Try Again Later"
CLOSE_TIME_LIMIT = 4408
OPTIONS = frozenset({"timestamp_ms", "reset"})


@router.websocket(STREAM_PATH)
async def stream(websocket: WebSocket) -> None:
    """Live Holistic: send encoded frames as binary messages, get one JSON message of keypoints per frame."""
    service = websocket.app.state.service
    settings = service.settings
    await websocket.accept()  # first, so that a refusal can carry its close code and reason
    if not service.loopback:
        given = websocket_token(websocket.scope)
        if given is None:
            return await websocket.close(CLOSE_NO_TOKEN, "a token is needed on a public bind: send 'Authorization: "
                                                         "Bearer <token>' or ?token=<token>")
        if not token_matches(given, service.token):
            return await websocket.close(CLOSE_WRONG_TOKEN, "wrong bearer token")
    if service.stream_sessions >= settings.max_stream_sessions:
        return await websocket.close(CLOSE_BUSY, f"{service.stream_sessions} stream sessions already open (the "
                                                 "limit, max_stream_sessions); try again later")
    service.stream_sessions += 1
    try:
        await Session(service, websocket).run()
    finally:
        service.stream_sessions -= 1


class Session:
    """One WebSocket connection: its tracking stream, frame counter and pending options."""

    def __init__(self, service, websocket: WebSocket):
        self.service = service
        self.settings = service.settings
        self.websocket = websocket
        self.stream = service.holistic.stream()
        self.frame = 0  # the number the next binary message gets
        self.size: tuple[int, int] | None = None
        self.timestamp_ms: float | None = None  # for the next frame, if the client sent one
        self.deadline = time.monotonic() + self.settings.max_stream_seconds

    async def run(self) -> None:
        settings = self.settings
        await self.websocket.send_json({
            "type": "ready", "models": self.service.follower.versions(),
            "limits": {"max_frame_bytes": settings.max_stream_frame_bytes,
                       "max_frame_pixels": settings.max_frame_pixels,
                       "max_session_seconds": settings.max_stream_seconds}})
        try:
            while True:
                remaining = self.deadline - time.monotonic()
                try:
                    message = await asyncio.wait_for(self.websocket.receive(), timeout=max(remaining, 0))
                except asyncio.TimeoutError:
                    return await self.websocket.close(
                        CLOSE_TIME_LIMIT, f"session time limit of {settings.max_stream_seconds:g} s reached "
                                          "(max_stream_seconds); reconnect to go on")
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    reply = await self.on_frame(message["bytes"])
                else:
                    reply = self.on_options(message.get("text") or "")
                if reply is not None:
                    await self.websocket.send_json(reply)
        except WebSocketDisconnect:
            return

    def on_options(self, text: str) -> dict | None:
        """A text message: options for the next frame; an error message if they are not understood."""
        try:
            options = json.loads(text)
        except ValueError:
            return self.error(None, f"a text message must be a JSON object of options ({', '.join(sorted(OPTIONS))}), "
                                    f"got {text[:80]!r}")
        if not isinstance(options, dict):
            return self.error(None, f"a text message must be a JSON object, got {type(options).__name__}")
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            return self.error(None, f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(OPTIONS))}")
        if "timestamp_ms" in options:
            value = options["timestamp_ms"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                return self.error(None, f"timestamp_ms must be a finite number of milliseconds, got {value!r}")
            self.timestamp_ms = float(value)
        if options.get("reset"):
            self.stream.reset()
            self.size = None
        return None

    async def on_frame(self, data: bytes) -> dict:
        """A binary message: decode, track, answer (an error answer for a frame that cannot be used)."""
        index, timestamp_ms = self.frame, self.timestamp_ms
        self.frame += 1
        self.timestamp_ms = None
        settings = self.settings
        if len(data) > settings.max_stream_frame_bytes:
            return self.error(index, f"frame {index} is {len(data)} bytes, more than the "
                                     f"{settings.max_stream_frame_bytes}-byte limit (max_stream_frame_bytes)")
        rgb, problem = await anyio.to_thread.run_sync(decode_frame, data, f"frame {index}", settings.max_frame_pixels)
        if problem:
            return self.error(index, problem)
        size = (rgb.shape[1], rgb.shape[0])
        record = {"type": "result", "frame": index, "timestamp_ms": timestamp_ms, "width": size[0], "height": size[1]}
        if self.size is not None and size != self.size:
            self.stream.reset()
            record["reset"] = (f"frame {index} is {size[0]}x{size[1]}, the frames before {self.size[0]}x{self.size[1]}: "
                               "tracking restarted")
        try:
            result, versions = await anyio.to_thread.run_sync(self.service.track, self.stream, rgb, timestamp_ms,
                                                              limiter=self.service.infer_limiter)
        except ValueError as exc:  # e.g. a timestamp that does not increase; the stream state is unchanged
            return self.error(index, f"frame {index}: {exc}")
        self.size = size
        return {**record, **result.to_dict(), "models": versions}

    @staticmethod
    def error(frame: int | None, message: str) -> dict:
        return {"type": "error", "frame": frame, "error": message}


def decode_frame(data: bytes, name: str, max_pixels: int):
    """One binary message to (H, W, 3) uint8 RGB: ``(rgb, None)``, or ``(None, why)`` naming ``name``."""
    from holotune.runtime.image import ImageError, ImageTooLargeError, decode_image

    if not data:
        return None, f"{name}: empty message"
    try:
        return decode_image(io.BytesIO(data), name, max_pixels), None
    except ImageTooLargeError as exc:
        return None, f"{exc} (max_frame_pixels)"
    except ImageError as exc:
        return None, str(exc)
