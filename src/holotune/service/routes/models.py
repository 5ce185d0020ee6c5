"""The registry over HTTP: a model's versions (aliases, tags, gate figures), promotion (rollback is
promoting an older version) with its audit log. The service's registry is ``settings.tracking_uri``,
the one the inference follows and the jobs register into.

Promotion moves the alias the inference follows (``--alias``, default ``champion``) through
:func:`holotune.registry.promote`, the CLI's path too: a version whose evaluation gate failed is
refused (409) unless ``force``; gesture versions have their class names checked. The served models
are then reloaded at once (as ``POST /api/v1/models/reload``). Every promotion that reaches the
registry, done or refused, is one JSON line in ``<state_dir>/registry_audit.jsonl``: UTC time,
model, alias, version asked and resolved, the previous version, ``forced``, the outcome, and the
caller (client address, user agent, the first 12 hex digits of the token's sha256, never the token).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from holotune import extras
from holotune.registry import (
    CHALLENGER,
    GateFailed,
    RegistryError,
    RegistryNotFound,
    RegistryUnavailable,
    list_versions,
    promote,
    redact_uri,
)
from holotune.service.routes.common import BEARER
from holotune.service.state import Service, get_service

router = APIRouter(tags=["models"], dependencies=BEARER)
AUDIT_FILE = "registry_audit.jsonl"
# A registered model's name, as a path segment (it also goes into an MLflow search filter).
ModelName = PathParam(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", examples=["holotune-face_mesh"])
_promoting = threading.Lock()  # one promotion at a time: "previous" and the audit line stay in order


class PromoteRequest(BaseModel):
    """``POST /api/v1/models/{name}/promote``: which version becomes the alias the service follows."""

    model_config = ConfigDict(extra="forbid")

    version: int | str = Field(description="a version number, or 'challenger' (the version that alias points at)",
                               examples=[2, "challenger"])
    force: bool = Field(False, strict=True, description="promote a version whose evaluation gate failed")

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        if isinstance(value, str) and (value == CHALLENGER or (value.isdigit() and int(value) >= 1)):
            return int(value) if value.isdigit() else value
        raise ValueError(f"must be a version number (1, 2, ...) or {CHALLENGER!r}")


def _needs_registry() -> None:
    absent = extras.registry_missing()
    if absent:  # the serving install without the [registry] extra
        raise HTTPException(503, extras.needs_registry("the registry API", absent))


def _refusal(exc: RegistryError) -> HTTPException:
    """404 no such model or version, 503 the registry cannot be opened, 409 the version cannot be promoted."""
    status = 404 if isinstance(exc, RegistryNotFound) else 503 if isinstance(exc, RegistryUnavailable) else 409
    return HTTPException(status, str(exc))


def _summary(service: Service, name: str) -> dict:
    uri = service.settings.tracking_uri
    versions = list_versions(name, uri)
    aliases = {alias: v["version"] for v in versions for alias in v["aliases"]}
    part = next((p for p, s in service.follower.parts.items() if s.registered_model == name), None)
    return {"name": name, "tracking_uri": redact_uri(uri), "alias": service.follower.alias, "aliases": aliases,
            "serving": service.follower.parts[part].version if part else None,
            "versions": [{**v, "stock": v["tags"].get("stock") == "true"} for v in versions]}


@router.get("/api/v1/models/{name}/versions")
async def versions(name: str = ModelName, service: Service = Depends(get_service)) -> dict:
    """Every version of a registered model (oldest first): `aliases`, `tags`, `run_id`, `stock`, the
    evaluation `gate` (`{"gate_passed": true | false | null, "metrics": {...}}` from the version's
    `gate_passed` and `metric.*` tags), and `job_id` (the service job that registered it, or `null`);
    plus the alias map, the alias the service follows and the version serving it (`serving`)."""
    _needs_registry()
    try:
        return await anyio.to_thread.run_sync(_summary, service, name)
    except RegistryError as exc:
        raise _refusal(exc) from None


def _caller(request: Request) -> dict:
    header = request.headers.get("authorization", "")
    token = header.partition(" ")[2].strip()
    return {"address": request.client.host if request.client else None,
            "user_agent": request.headers.get("user-agent"),
            "token_sha256": hashlib.sha256(token.encode()).hexdigest()[:12] if token else None}


def audit(service: Service, entry: dict) -> dict:
    """Append ``entry`` (with the UTC time first) to ``<state_dir>/registry_audit.jsonl``; returns it."""
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **entry}
    line = (json.dumps(entry, sort_keys=False) + "\n").encode()
    fd = os.open(Path(service.state_dir) / AUDIT_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return entry


def _promote(service: Service, name: str, body: PromoteRequest, caller: dict) -> tuple[int, dict]:
    """Promote under the lock and write the audit line: ``(status, body)``."""
    uri, alias = service.settings.tracking_uri, service.follower.alias
    entry = {"model": name, "alias": alias, "requested": body.version, "version": None, "previous": None,
             "forced": body.force, "gate": None, "outcome": "refused", "status": None, "reason": None,
             "caller": caller, "tracking_uri": redact_uri(uri)}
    with _promoting:
        try:
            listed = list_versions(name, uri)
            entry["previous"] = next((v["version"] for v in listed if alias in v["aliases"]), None)
            known = {v["version"]: v for v in listed}
            if str(body.version) in known:
                entry["gate"] = known[str(body.version)]["gate"]
            version = promote(name, body.version, alias, uri, force=body.force)
        except GateFailed as exc:
            entry.update(version=exc.version, gate=exc.gate, status=409,
                         reason=f"{exc}: send \"force\": true to promote it anyway")
        except RegistryError as exc:
            entry.update(status=_refusal(exc).status_code, reason=str(exc))
        else:
            entry.update(version=version, gate=known.get(version, {}).get("gate"), outcome="promoted", status=200)
        audit(service, entry)
    return entry["status"], entry


@router.post("/api/v1/models/{name}/promote",
             responses={404: {"description": "no such registered model, version or alias"},
                        409: {"description": "the version's evaluation gate failed (send `force`), or its "
                                             "class names do not match its model"},
                        503: {"description": "the registry cannot be opened, or the registry client is not installed"}})
async def promote_version(request: Request, body: PromoteRequest, name: str = ModelName,
                          service: Service = Depends(get_service)):
    """Make `version` (a number, or `challenger`) the version the service follows (`champion`);
    rollback is promoting an older version (1: the stock model). Needs the token, on every bind.
    A version whose evaluation gate failed (tag `gate_passed=false`) is refused with 409 unless
    `force` is true. The served models are reloaded at once (`reload`, as `POST /api/v1/models/reload`
    answers); every attempt is written to the audit log (`GET /api/v1/models/{name}/audit`)."""
    _needs_registry()
    status, entry = await anyio.to_thread.run_sync(_promote, service, name, body, _caller(request))
    if status != 200:
        extra = {"version": entry["version"], "gate": entry["gate"]} if status == 409 and entry["gate"] else {}
        return JSONResponse(status_code=status, content={"detail": entry["reason"], **extra})
    follower = service.follower
    checked = await anyio.to_thread.run_sync(lambda: follower.check(force=True))
    return {"name": name, "alias": entry["alias"], "version": entry["version"], "previous": entry["previous"],
            "forced": entry["forced"], "gate": entry["gate"], "reload": checked}


@router.get("/api/v1/models/{name}/audit")
def audit_log(name: str = ModelName, limit: int = Query(100, ge=1, le=10_000),
              service: Service = Depends(get_service)) -> dict:
    """The last `limit` promotions of a model, done and refused, oldest first, from the audit log."""
    path = Path(service.state_dir) / AUDIT_FILE
    entries = []
    if path.is_file():
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a crash: skipped
                    continue
                if isinstance(entry, dict) and entry.get("model") == name:
                    entries.append(entry)
    return {"name": name, "path": str(path), "entries": entries[-limit:]}
