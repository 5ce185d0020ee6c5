"""The service's ASGI middlewares: the bearer token, curl's form-labelled JSON, request size limits.

They answer before FastAPI reads or validates a body, so a request without a token or over its
size limit costs the service nothing; their errors look like FastAPI's own (``{"detail": ...}``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from holotune.service.security import token_matches

if TYPE_CHECKING:
    from holotune.service.state import Service

INFER_PATH = "/api/v1/infer"  # the POSTs that are not JSON and, on loopback, need no token
VIDEO_PATH = "/api/v1/infer/video"
INFERENCE_PATHS = (INFER_PATH, VIDEO_PATH)
STREAM_PATH = "/api/v1/stream"  # the WebSocket; it checks the token itself (see routes.stream)
# Paths open without a token even on a public bind: the OpenAPI schema and its viewers.
OPEN_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")


async def send_json_error(send, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    """Answer from ASGI middleware with ``{"detail": detail}``, as FastAPI's own errors look."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class TokenGuard:
    """ASGI middleware: the bearer token, checked before the body is read or validated.

    Mutating requests (every POST but the inference uploads) always need it; on a bind that is not
    loopback every request does, except the OpenAPI pages. Missing: 401 with
    ``WWW-Authenticate: Bearer``; wrong: 403.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        service: Service | None = getattr(scope["app"].state, "service", None)
        path, method = scope["path"], scope["method"]
        mutating = method not in ("GET", "HEAD", "OPTIONS") and path not in INFERENCE_PATHS
        if service is None or path in OPEN_PATHS or (service.loopback and not mutating):
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            why = "this endpoint" if service.loopback else "every endpoint on a non-loopback bind"
            return await send_json_error(send, 401, f"{why} needs a bearer token: send 'Authorization: Bearer "
                                                    "<token>' (the service's start-up log says where its token is)",
                                         [(b"www-authenticate", b"Bearer")])
        if not token_matches(given.strip(), service.token):
            return await send_json_error(send, 403, "wrong bearer token")
        return await self.app(scope, receive, send)


class FormAsJson:
    """ASGI middleware: a JSON endpoint's body sent as ``application/x-www-form-urlencoded`` (or with
    no type) is read as JSON. The original API's documented prune call is
    ``curl -X POST .../model/prune -d '{"method": "l1_norm", "sparsity": 0.3}'``, and ``curl -d``
    labels its body form-encoded."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] not in INFERENCE_PATHS:
            headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"content-type"]
            kind = dict(scope.get("headers") or []).get(b"content-type", b"").split(b";")[0].strip().lower()
            if kind in (b"", b"application/x-www-form-urlencoded"):
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        return await self.app(scope, receive, send)


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over its limit, whether announced or streamed.

    Args:
        app: the wrapped ASGI app.
        default_limit: bytes allowed for any path not in ``limits``.
        limits: path -> bytes (e.g. the image upload endpoint gets more).

    The body is read (up to the limit) before the app sees it, then replayed, so an oversize
    chunked upload is cut off after ``limit`` bytes instead of being buffered whole.
    """

    def __init__(self, app, default_limit: int, limits: dict[str, int] | None = None):
        self.app = app
        self.default_limit = default_limit
        self.limits = limits or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return await self.app(scope, receive, send)
        limit = self.limits.get(scope["path"], self.default_limit)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await self._reject(send, scope["path"], limit)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await self._reject(send, scope["path"], limit)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    @staticmethod
    async def _reject(send, path: str, limit: int) -> None:
        await send_json_error(send, 413, f"request body is larger than the {limit}-byte limit of {path}",
                              [(b"connection", b"close")])
