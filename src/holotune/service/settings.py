"""What the HTTP service needs to know: where it binds, the workspace it may touch, limits, the registry.

Every field has a safe default: loopback bind, one job at a time, small bodies. ``resolve_settings``
fills the defaults that depend on the workspace and turns every path absolute (realpath), so the
rest of the service only ever compares resolved paths.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import holotune

TOKEN_ENV = "HOLOTUNE_API_TOKEN"
TOKEN_FILE_ENV = "HOLOTUNE_API_TOKEN_FILE"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
WORKSPACE_ENV = "HOLOTUNE_WORKSPACE"
PROJECT_ROOT_ENV = "HOLOTUNE_PROJECT_ROOT"


@dataclass(frozen=True)
class ServiceSettings:
    """Configuration of one service instance.

    Attributes:
        host, port: where uvicorn binds. Any host that is not loopback makes the bearer token
            mandatory on every endpoint, reads included.
        workspace: the only folder request paths (``dataset_path``, ``checkpoint_dir``) may resolve into.
        state_dir: job database, per-job folders and logs (default ``<workspace>/jobs``); it survives restarts.
        project_root: where ``stages/`` and ``conf/`` live (default: found from the installed package).
        token: the bearer token; ``None`` reads ``token_file``, else ``$HOLOTUNE_API_TOKEN`` /
            ``$HOLOTUNE_API_TOKEN_FILE`` (see :meth:`from_env`), else one is generated into
            ``<state_dir>/api_token`` (mode 0600).
        token_file: a file holding the token (first line).
        tracking_uri: MLflow tracking and registry URI: the registry the inference follows, the
            registry endpoints read and promote in, and the jobs register into. Default (see
            :meth:`from_env`): ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<workspace>/mlflow.db``, the
            file ``make demo`` and ``holotune models`` use when the workspace is the project folder.
            A relative ``sqlite:///`` path is made absolute against the current folder, as MLflow
            reads it (jobs run in ``state_dir``; they get the absolute URI). Experiments a job
            creates keep their artifacts in ``<state_dir>/mlruns``; existing ones where they were created.
        alias: the registry alias the inference runtime follows, for every part.
        poll_interval_s: seconds between registry checks for a moved alias; 0 disables polling
            (``POST /api/v1/models/reload`` still checks).
        max_running_jobs: jobs that run at once; the rest wait in the queue.
        max_body_bytes: largest JSON request body.
        max_upload_bytes: largest image upload to ``/api/v1/infer``.
        max_image_pixels: largest decoded image (width x height) ``/api/v1/infer`` accepts.
        max_video_bytes: largest video upload to ``/api/v1/infer/video`` (the body is held in memory
            while it arrives, then written to a temporary file for OpenCV).
        max_video_frames: most frames one uploaded video may have (from its container; a video that
            turns out longer is stopped there, with an error line).
        max_video_seconds: longest uploaded video, frames / frame rate as its container says.
        max_frame_pixels: largest video or stream frame, width x height.
        max_stream_sessions: WebSocket sessions on ``/api/v1/stream`` open at once; more are closed
            with code 1013 (try again later).
        max_stream_seconds: how long one WebSocket session may last; then it is closed with code 4408.
        max_stream_frame_bytes: largest encoded frame (one binary message) a session accepts.
        infer_concurrency: images processed at once (each uses up to 2 cores inside Holistic).
        max_pending_infer: inference requests admitted at once (running + waiting); more get 503.
        finetune_api: serve the job endpoints (``/api/v1/finetune/*``, ``/api/v1/model/prune``).
        public_url: base of ``log_url`` in responses (default: the URL the client used).
        python: interpreter that runs the job worker and the stage scripts.
        job_poll_s: how often the runner looks at its jobs and the queue (seconds).
        cancel_grace_s: seconds between SIGTERM and SIGKILL when a running job is cancelled.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    workspace: Path = Path(".")
    state_dir: Path | None = None
    project_root: Path | None = None
    token: str | None = None
    token_file: Path | None = None
    tracking_uri: str | None = None
    alias: str = "champion"
    poll_interval_s: float = 30.0
    max_running_jobs: int = 1
    max_body_bytes: int = 64 * 1024
    max_upload_bytes: int = 16 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_video_bytes: int = 64 * 1024 * 1024
    max_video_frames: int = 9_000  # 5 minutes at 30 fps
    max_video_seconds: float = 600.0
    max_frame_pixels: int = 3840 * 2160  # 4K UHD
    max_stream_sessions: int = 4
    max_stream_seconds: float = 3600.0
    max_stream_frame_bytes: int = 4 * 1024 * 1024
    infer_concurrency: int = 1
    max_pending_infer: int = 64
    finetune_api: bool = True
    public_url: str | None = None
    python: str = sys.executable
    job_poll_s: float = 0.5
    cancel_grace_s: float = 10.0

    @classmethod
    def from_env(cls, **fields) -> "ServiceSettings":
        """Settings from keyword fields, with the token, workspace, project root and registry also
        read from ``$HOLOTUNE_API_TOKEN``, ``$HOLOTUNE_API_TOKEN_FILE``, ``$HOLOTUNE_WORKSPACE``,
        ``$HOLOTUNE_PROJECT_ROOT`` and ``$MLFLOW_TRACKING_URI`` where a field is not given."""
        env = os.environ
        fields = {k: v for k, v in fields.items() if v is not None}
        if "token" not in fields and "token_file" not in fields:
            if env.get(TOKEN_ENV):
                fields["token"] = env[TOKEN_ENV]
            elif env.get(TOKEN_FILE_ENV):
                fields["token_file"] = Path(env[TOKEN_FILE_ENV])
        if "workspace" not in fields and env.get(WORKSPACE_ENV):
            fields["workspace"] = Path(env[WORKSPACE_ENV])
        if "project_root" not in fields and env.get(PROJECT_ROOT_ENV):
            fields["project_root"] = Path(env[PROJECT_ROOT_ENV])
        if "tracking_uri" not in fields and env.get(TRACKING_URI_ENV):
            fields["tracking_uri"] = env[TRACKING_URI_ENV]
        return cls(**fields)


def find_project_root() -> Path | None:
    """The folder holding ``stages/finetune.py`` and ``conf/``: an editable install's checkout, or
    the working directory; ``None`` if neither has them."""
    for candidate in (Path(holotune.__file__).resolve().parents[2], Path.cwd()):
        if (candidate / "stages" / "finetune.py").is_file() and (candidate / "conf" / "config.yaml").is_file():
            return candidate
    return None


def absolute_tracking_uri(uri: str) -> str:
    """A ``sqlite:///`` URI with a relative path made absolute against the current folder (where
    MLflow would look for it), so that processes started elsewhere (the jobs) open the same file;
    any other URI unchanged."""
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        path, sep, query = uri[len(prefix):].partition("?")
        if path and path != ":memory:" and not path.startswith("/"):
            return f"{prefix}{os.path.abspath(path)}{sep}{query}"
    return uri


def resolve_settings(settings: ServiceSettings) -> ServiceSettings:
    """Absolute, realpath'd paths and the workspace-dependent defaults filled in."""
    workspace = Path(os.path.realpath(settings.workspace))
    state_dir = Path(os.path.realpath(settings.state_dir or workspace / "jobs"))
    project_root = settings.project_root or find_project_root()
    if settings.max_running_jobs < 1:
        raise ValueError(f"max_running_jobs must be >= 1, got {settings.max_running_jobs}")
    if settings.infer_concurrency < 1:
        raise ValueError(f"infer_concurrency must be >= 1, got {settings.infer_concurrency}")
    for name in ("max_video_bytes", "max_video_frames", "max_video_seconds", "max_frame_pixels",
                 "max_stream_sessions", "max_stream_seconds", "max_stream_frame_bytes"):
        if not getattr(settings, name) > 0:
            raise ValueError(f"{name} must be > 0, got {getattr(settings, name)}")
    return replace(
        settings, workspace=workspace, state_dir=state_dir,
        project_root=Path(os.path.realpath(project_root)) if project_root else None,
        tracking_uri=absolute_tracking_uri(settings.tracking_uri or f"sqlite:///{workspace / 'mlflow.db'}"),
        token_file=Path(os.path.realpath(settings.token_file)) if settings.token_file else None,
    )
