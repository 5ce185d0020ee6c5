# holotune serve in a container, the equivalent of the original image:
#
#   docker build -t holistic-tracking:latest .
#   mkdir -p custom_data checkpoints jobs
#   docker run -d --name holistic-dev -p 8080:8080 -p 6006:6006 \
#     -v ./custom_data:/workspace/data -v ./checkpoints:/workspace/checkpoints \
#     -v ./jobs:/workspace/jobs \
#     holistic-tracking:latest --enable_finetune_api
#
# The API listens on 8080 (OpenAPI at /docs), TensorBoard over every job's logs on 6006. The
# bind is not loopback, so every endpoint needs the bearer token: pass -e HOLOTUNE_API_TOKEN=...,
# or read the generated one with `docker exec holistic-dev cat /workspace/jobs/api_token`.
# The ./jobs mount keeps what the service writes (job table, logs, TensorBoard events, the MLflow
# database and artifacts) across container re-creation. The container runs as uid 1000: add
# --user "$(id -u):$(id -g)" if the mounted folders belong to another user.
# See docs/service.md.
FROM python:3.11-slim-bookworm

# opencv-contrib-python (a mediapipe dependency) loads libGL and glib at import.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOLOTUNE_PROJECT_ROOT=/opt/holotune \
    HOLOTUNE_WORKSPACE=/workspace \
    HOLOTUNE_ONNX_DIR=/opt/holotune/onnx \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/cache

WORKDIR /opt/holotune
# Dependencies first (the slow layer, cached until the lock changes), pinned exactly as `make install`
# pins them; then the package itself, so a code change does not reinstall torch and mediapipe.
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps .
# The stage scripts and their Hydra config: a job runs them as the CLI does.
COPY conf ./conf
COPY stages ./stages
# MediaPipe's stock models as ONNX, exported once here (the serving process never imports torch).
RUN holotune models export --dir /opt/holotune/onnx

RUN useradd --create-home --uid 1000 holotune \
    && mkdir -p /workspace/data /workspace/checkpoints /workspace/jobs \
    && chown -R holotune /workspace
USER holotune
WORKDIR /workspace
EXPOSE 8080 6006

# Arguments after the image name are appended (the original's --enable_finetune_api is accepted).
ENTRYPOINT ["holotune", "serve", "--host", "0.0.0.0", "--port", "8080", "--workspace", "/workspace", \
            "--tensorboard-port", "6006"]
CMD []
