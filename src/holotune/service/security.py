"""The service's guards: the bearer token and workspace-confined paths (the ASGI middlewares that
apply them to requests, and the size limits, are in :mod:`holotune.service.middleware`).

Path checks follow the traversal bugs MLflow's own server shipped (CVE-2023-1177 ``../`` in a
parameter, CVE-2023-2780 ``\\..\\`` backslashes, CVE-2023-6831 / CVE-2024-1560 percent- and
double-percent-encoded dots, CVE-2023-6909 / CVE-2024-3848 ``#`` fragments, CVE-2024-1593 ``;``
path parameters, ``file://`` sources, query strings): a request path is a plain relative or
absolute POSIX path, never a URI, never decoded, with no ``..`` segment, and its realpath (every
symlink followed) must lie inside the workspace.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import secrets
from pathlib import Path
from urllib.parse import parse_qs

# Characters a request path may never hold: NUL and control characters, backslash (a Windows
# separator on the server's side of a traversal), '%' (encoded sequences are never decoded, so
# they could only be a trick), URI syntax ('#', '?', ';', ':'), and what the Hydra override
# grammar or OmegaConf would interpret ('$', '{', '}', quotes, ',', '[', ']').
FORBIDDEN_PATH_CHARS = re.compile(r"[\x00-\x1f\x7f\\%#?;:$'\"{},\[\]]")
MAX_PATH_LENGTH = 1024


class PathRejected(ValueError):
    """A request path that is not allowed; ``field`` names the request field."""

    def __init__(self, field: str, value: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for 0.0.0.0, :: and every other address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def resolve_in_workspace(value: str, workspace: Path, field: str, *, must_exist: bool,
                         want: str = "any") -> Path:
    """The realpath of request path ``value``, relative to ``workspace`` unless absolute.

    Args:
        value: the path as the client sent it.
        workspace: the resolved workspace root.
        field: request field name, for the error.
        must_exist: the path must exist (a dataset) or may be created (a checkpoint folder).
        want: ``file``, ``dir`` or ``any``: what an existing path must be.

    Raises:
        PathRejected: bad characters, a ``..`` segment, a URI, or a realpath outside the workspace.
    """
    if not isinstance(value, str) or not value.strip():
        raise PathRejected(field, str(value), "must be a non-empty path")
    if len(value) > MAX_PATH_LENGTH:
        raise PathRejected(field, value[:64] + "...", f"longer than {MAX_PATH_LENGTH} characters")
    bad = FORBIDDEN_PATH_CHARS.search(value)
    if bad:
        raise PathRejected(field, value, f"character {bad.group()!r} is not allowed in a path "
                                         "(no URIs, escapes, encodings or control characters)")
    if any(part == ".." for part in value.split("/")):
        raise PathRejected(field, value, "'..' segments are not allowed")
    candidate = Path(value) if value.startswith("/") else workspace / value
    real = Path(os.path.realpath(candidate))  # follows every symlink, also in not-yet-existing tails
    if not real.is_relative_to(workspace):
        raise PathRejected(field, value, f"resolves to {real}, outside the workspace {workspace}")
    if real == workspace and not must_exist:
        raise PathRejected(field, value, "must be a folder inside the workspace, not the workspace itself")
    if must_exist and not real.exists():
        raise PathRejected(field, value, f"no such file or folder in the workspace: {real}")
    if real.exists():
        if want == "file" and not real.is_file():
            raise PathRejected(field, value, f"{real} is not a file")
        if want == "dir" and not real.is_dir():
            raise PathRejected(field, value, f"{real} exists and is not a folder")
    return real


def load_token(token: str | None, token_file: Path | None, state_dir: Path) -> tuple[str, str]:
    """The bearer token and where it came from (``settings``, the file, or a generated file).

    A generated token is 32 random bytes (URL-safe base64) kept in ``<state_dir>/api_token``
    with mode 0600, and reused on the next start.
    """
    if token:
        return token, "settings"
    if token_file:
        text = Path(token_file).read_text().strip().splitlines()
        if not text or not text[0].strip():
            raise ValueError(f"token file {token_file} is empty")
        return text[0].strip(), str(token_file)
    path = state_dir / "api_token"
    saved = path.read_text().strip() if path.is_file() else ""
    if saved:
        return saved, str(path)
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token, f"{path} (generated)"


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison (no timing oracle on the token's prefix)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def websocket_token(scope) -> str | None:
    """The token a WebSocket handshake carries: ``Authorization: Bearer <token>``, else the ``token``
    query parameter (browsers cannot set headers on a WebSocket); ``None`` if neither."""
    header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and given.strip():
        return given.strip()
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0].strip() if values and values[0].strip() else None


class TokenRedactor(logging.Filter):
    """Blanks ``token=...`` query parameters in log records: uvicorn logs each WebSocket's path with
    its query string, where a browser client puts the token."""

    PATTERN = re.compile(r"([?&]token=)[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(self.PATTERN.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = self.PATTERN.sub(r"\1***", record.msg)
        return True
