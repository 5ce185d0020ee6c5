"""The HTTP service: the original fine-tuning API, pruning, and Holistic inference with hot model updates.

    from holotune.service import ServiceSettings, create_app
    app = create_app(ServiceSettings(workspace="/workspace"))     # uvicorn.run(app, host=..., port=...)

``create_app`` only wires things together: the routers (:mod:`holotune.service.routes`), the
middlewares (:mod:`holotune.service.middleware`) and a lifespan that builds the
:class:`~holotune.service.state.Service` (the job table, the ONNX sessions, the registry follower,
the job runner). The service process never imports torch: jobs run in their own processes,
inference on ONNX Runtime.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError

from holotune import __version__, extras
from holotune.service.errors import validation_error
from holotune.service.middleware import INFER_PATH, VIDEO_PATH, BodySizeLimit, FormAsJson, TokenGuard
from holotune.service.routes import inference, jobs, logs, models, stream, video
from holotune.service.settings import ServiceSettings, resolve_settings
from holotune.service.state import Service

DESCRIPTION = ("Fine-tune MediaPipe Holistic's landmark models and serve them on ONNX Runtime. "
               "Mutating endpoints need `Authorization: Bearer <token>`.")


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The FastAPI app for ``settings`` (defaults: loopback, the current folder as workspace)."""
    settings = resolve_settings(settings or ServiceSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service = Service(settings)
        try:
            await service.start()
            app.state.service = service
            yield
        finally:
            app.state.service = None
            await service.stop()

    app = FastAPI(title="holotune", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.service = None
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(FormAsJson)
    app.add_middleware(BodySizeLimit, default_limit=settings.max_body_bytes,
                       limits={INFER_PATH: settings.max_upload_bytes, VIDEO_PATH: settings.max_video_bytes})
    app.add_middleware(TokenGuard)  # outermost: no body is read before the token is checked
    app.include_router(jobs.status_router)
    absent = extras.training_missing() if settings.finetune_api else []
    if settings.finetune_api and not absent:
        app.include_router(jobs.router)
        app.include_router(logs.router)
    elif absent:  # the serving install: the job endpoints say what to install
        app.include_router(switched_off([jobs.router, logs.router], extras.needs_training("the fine-tuning API", absent),
                                        status_code=503))
    else:
        app.include_router(switched_off([jobs.router, logs.router], jobs.SWITCHED_OFF))
    app.include_router(inference.router)
    app.include_router(models.router)
    app.include_router(video.router)
    app.include_router(stream.router)
    return app


def switched_off(routers: list[APIRouter], detail: str, status_code: int = 404) -> APIRouter:
    """The routers' paths and methods, each answering ``status_code`` (404: switched off; 503: not
    installed) with ``detail`` and left out of the OpenAPI schema: an API that is off says why
    instead of a bare "Not Found"."""

    async def refuse():
        raise HTTPException(status_code, detail)

    off = APIRouter(include_in_schema=False)
    for router in routers:
        for route in router.routes:
            off.add_api_route(route.path, refuse, methods=route.methods, name=f"{route.name}_off")
    return off
