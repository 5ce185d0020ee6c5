"""422 errors in FastAPI's own shape (``{"detail": [{"loc", "msg", "type", "input"}]}``), for checks
the request models cannot make (paths, job states, image contents)."""

from __future__ import annotations

import math

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def body_error(field: str, message: str, value=None) -> dict:
    """One ``detail`` entry naming body field ``field``."""
    return {"loc": ("body", field), "msg": message, "type": "value_error", "input": value}


def field_error(field: str, message: str, value=None) -> RequestValidationError:
    """A 422 naming the body field."""
    return RequestValidationError([body_error(field, message, value)])


def json_safe(value):
    """``value`` with non-finite floats as strings: Python's json reads ``NaN``, JSON cannot carry it back."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """The exception handler for every 422: FastAPI's body, safe for any input."""
    return JSONResponse(status_code=422, content={"detail": json_safe(jsonable_encoder(exc.errors()))})
