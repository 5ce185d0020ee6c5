# syntax=docker/dockerfile:1
# holotune in containers, two images from this file:
#
#   docker build -t holistic-tracking:latest .                      # train (the default): the full install
#   docker build --target serve -t holistic-tracking:serve .        # serve: inference only, no torch
#
# train, the equivalent of the original image (fine-tuning API, TensorBoard):
#
#   mkdir -p custom_data checkpoints jobs
#   docker run -d --name holistic-dev -p 8080:8080 -p 6006:6006 \
#     -v ./custom_data:/workspace/data -v ./checkpoints:/workspace/checkpoints \
#     -v ./jobs:/workspace/jobs \
#     holistic-tracking:latest --enable_finetune_api
#
# serve, the lean serving install (README "A lean serving install", docs/serving_install.md): the base
# dependencies and the registry client, no torch or training stack, and the stock models from the
# holotune_stock_models wheel the full stage builds (`holotune models package`). Same API on 8080; the
# job endpoints answer 503 (they need the training install); no TensorBoard:
#
#   docker run -d --name holistic-serve -p 8080:8080 -v ./jobs:/workspace/jobs holistic-tracking:serve
#
# The API listens on 8080 (OpenAPI at /docs), TensorBoard (train) over every job's logs on 6006. The
# bind is not loopback, so every endpoint needs the bearer token: pass -e HOLOTUNE_API_TOKEN=...,
# or read the generated one with `docker exec holistic-dev cat /workspace/jobs/api_token`.
# The ./jobs mount keeps what the service writes (job table, logs, TensorBoard events, the MLflow
# database and artifacts) across container re-creation: MLFLOW_TRACKING_URI below puts the registry in
# /workspace/jobs/mlflow.db, for the service, its jobs and `docker exec ... holotune models ...` alike
# (outside a container the default is <workspace>/mlflow.db). The containers run as uid 1000: add
# --user "$(id -u):$(id -g)" if the mounted folders belong to another user.
# See docs/service.md.

# ---------------------------------------------------------------- base: what both images share
FROM python:3.11-slim-bookworm AS base

# opencv-contrib-python (a mediapipe dependency, and the serving install's OpenCV) loads libGL and glib
# at import. Not version-pinned: a Debian point release removes the old versions from the archive.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOLOTUNE_WORKSPACE=/workspace \
    MLFLOW_TRACKING_URI=sqlite:////workspace/jobs/mlflow.db \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/cache

RUN groupadd --gid 1000 holotune \
    && useradd --create-home --uid 1000 --gid 1000 holotune \
    && mkdir -p /workspace/data /workspace/checkpoints /workspace/jobs \
    && chown -R holotune /workspace

# ---------------------------------------------------------------- full: the full install, and the stock-models wheel
FROM base AS full

ENV HOLOTUNE_PROJECT_ROOT=/opt/holotune \
    HOLOTUNE_ONNX_DIR=/opt/holotune/onnx

WORKDIR /opt/holotune
# Dependencies first (the slow layer, cached until the lock changes), pinned exactly as `make install`
# pins them; then the package itself, so a code change does not reinstall torch and mediapipe.
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps .
# MediaPipe's stock models as ONNX, exported once here (the serving process never imports torch), and
# the same files verified against MediaPipe's .tflite and packed as the wheel the serve image installs.
RUN holotune models export --dir /opt/holotune/onnx \
    && holotune models package --onnx-dir /opt/holotune/onnx --out /opt/holotune/dist

# ---------------------------------------------------------------- serve: the lean serving install
FROM base AS serve

WORKDIR /opt/holotune
COPY requirements.lock pyproject.toml README.md ./
COPY tools/install_serving.sh ./tools/
COPY src ./src
# The one install script tests/test_lean_install.py runs too; the wheel is mounted, not copied into a layer.
RUN --mount=type=bind,from=full,source=/opt/holotune/dist,target=/tmp/stock-models \
    sh tools/install_serving.sh /opt/venv /opt/holotune /tmp/stock-models
ENV PATH=/opt/venv/bin:$PATH

USER 1000:1000
WORKDIR /workspace
EXPOSE 8080

# Arguments after the image name are appended (e.g. --no-finetune-api hides the job endpoints).
ENTRYPOINT ["holotune", "serve", "--host", "0.0.0.0", "--port", "8080", "--workspace", "/workspace"]
CMD []

# ---------------------------------------------------------------- train: the full image (the default target)
FROM full AS train

# The stage scripts and their Hydra config: a job runs them as the CLI does.
COPY conf ./conf
COPY stages ./stages

USER 1000:1000
WORKDIR /workspace
EXPOSE 8080 6006

# Arguments after the image name are appended (the original's --enable_finetune_api is accepted).
ENTRYPOINT ["holotune", "serve", "--host", "0.0.0.0", "--port", "8080", "--workspace", "/workspace", \
            "--tensorboard-port", "6006"]
CMD []
