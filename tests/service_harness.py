"""A real ``holotune serve`` process on a loopback port, for the service tests and benchmarks/service.py.

Not a conftest: the service test modules import it. Nothing here fakes the server: it is the CLI
in a child process, uvicorn on 127.0.0.1, the SQLite job table and real job workers.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

TOKEN = "test-token-0123456789"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``holotune serve`` on 127.0.0.1 with ``workspace``; ``start()`` waits until it answers.

    Args:
        workspace: the service's workspace (jobs in ``<workspace>/jobs``).
        tracking_uri: MLflow URI (default: a SQLite file in the workspace).
        args: extra ``holotune serve`` arguments.
        token: the bearer token (given through ``$HOLOTUNE_API_TOKEN``).
        default_registry: start it as a user would in the workspace: no ``--tracking-uri`` and no
            ``$MLFLOW_TRACKING_URI``, so that it follows its own default.
    """

    def __init__(self, workspace: Path, *, tracking_uri: str | None = None, args: list[str] | None = None,
                 token: str | None = TOKEN, log_name: str = "server.log", default_registry: bool = False,
                 command: list[str] | None = None, env: dict[str, str] | None = None, log_path: Path | None = None,
                 port: int | None = None):
        self.workspace = Path(workspace)
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tracking_uri = tracking_uri or f"sqlite:///{self.workspace / 'mlflow.db'}"
        self.args = args or []
        self.token = token
        self.default_registry = default_registry
        self.command = command or [sys.executable, "-m", "holotune.cli"]  # or another venv's holotune
        self.env = env
        self.log_path = log_path or self.workspace.parent / log_name
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=timeout)

    def launch(self) -> "ServerProcess":
        """Start the process and return at once (:meth:`wait_ready` waits for it)."""
        env = {**(os.environ if self.env is None else self.env)}
        if self.token is not None:
            env["HOLOTUNE_API_TOKEN"] = self.token
        tracking = ["--tracking-uri", self.tracking_uri]
        if self.default_registry:
            env.pop("MLFLOW_TRACKING_URI", None)
            tracking = []
        cmd = [*self.command, "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--workspace", str(self.workspace), *tracking, "--log-level", "warning", *self.args]
        self.workspace.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workspace)
        return self

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds from the process start to the first 200 of the readiness endpoint."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"holotune serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base}/api/v1/finetune/status", timeout=2).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"holotune serve did not answer within {timeout} s:\n{self.log()}")

    def start(self, timeout: float = 120.0) -> "ServerProcess":
        """:meth:`launch`, then wait until it answers (stopping it if it never does)."""
        self.launch()
        try:
            self.wait_ready(timeout)
        except RuntimeError:
            self.stop()
            raise
        return self

    def __enter__(self) -> "ServerProcess":
        return self.launch()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Graceful stop (SIGINT, as Ctrl-C); SIGKILL after 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def kill_jobs(self) -> None:
        """Kill every job process group still running (test teardown: jobs outlive the server)."""
        from holotune.service.jobs import RUNNING, JobStore

        db = self.workspace / "jobs" / "jobs.db"
        if not db.exists():
            return
        for job in JobStore(db).list(status=RUNNING):
            if job.pid:
                try:
                    os.killpg(job.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def tiny_dataset(shards_root: Path, workspace: Path) -> Path:
    """``<workspace>/data/train.tfrecord``: the session's tiny default-data train shard, in the
    original API's TFRecord schema (28 images in all the splits of the fixture)."""
    target = workspace / "data" / "train.tfrecord"
    target.parent.mkdir(parents=True, exist_ok=True)
    shards = sorted((shards_root / "shards").glob("*.tfrecord"))
    with open(target, "wb") as out:  # train + val shards: one file, as the article's example
        for shard in shards:
            out.write(shard.read_bytes())
    return target


def wait_for_job(client: httpx.Client, job_id: str, statuses: tuple[str, ...], timeout: float = 180.0,
                 headers: dict | None = None) -> dict:
    """Poll the job list until ``job_id`` has one of ``statuses``; returns its summary."""
    deadline = time.monotonic() + timeout
    job = None
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/finetune/jobs/{job_id}", headers=headers).json()
        if job.get("status") in statuses:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not reach {statuses} in {timeout} s: {job}")


# ---------------------------------------------------------------------------- registry fixtures
def model_with_output_op(src: Path, dst: Path, output: str, op: str, value: float) -> Path:
    """A copy of ONNX model ``src`` whose ``output`` goes through ``op`` (``Add``/``Mul``) with
    ``value``: same signature, different numbers (``Add`` 2.0 moves face landmarks by 2 crop
    pixels; ``Mul`` NaN makes a model that loads but must fail the smoke inference)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    raw = f"{output}_raw"
    for node in model.graph.node:
        node.output[:] = [raw if o == output else o for o in node.output]
        node.input[:] = [raw if i == output else i for i in node.input]
    model.graph.initializer.append(numpy_helper.from_array(np.array([value], np.float32), f"{output}_k"))
    model.graph.node.append(helper.make_node(op, [raw, f"{output}_k"], [output]))
    onnx.save(model, str(dst))
    return dst


def build_registry(root: Path, tracking_uri: str) -> dict[str, str]:
    """``holotune-face_mesh`` with v1 stock (champion), v2 shifted (+2 px), v3 NaN output, v4 the
    hand model (wrong signature). Returns name -> version."""
    import mlflow
    import onnx

    from holotune.export import export_stock_models
    from holotune.registry import EXPERIMENT, ensure_stock_version, register_model

    stock = export_stock_models()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    # Artifacts next to the database, whatever the working directory.
    mlflow.create_experiment(EXPERIMENT, artifact_location=(root / "mlruns").as_uri())
    versions = {"stock": ensure_stock_version("face_mesh", tracking_uri)}
    versions["shifted"] = register_model(model_with_output_op(stock["face_landmark"], root / "face_shift.onnx",
                                                              "landmarks", "Add", 2.0), "face_mesh",
                                         tags={"note": "landmarks + 2 px"}, tracking_uri=tracking_uri)
    versions["nan"] = register_model(model_with_output_op(stock["face_landmark"], root / "face_nan.onnx",
                                                          "landmarks", "Mul", float("nan")), "face_mesh",
                                     tracking_uri=tracking_uri)
    with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name(EXPERIMENT).experiment_id):
        info = mlflow.onnx.log_model(onnx.load(str(stock["hand_landmark_full"])), name="model",
                                     registered_model_name="holotune-face_mesh")
    versions["wrong_signature"] = str(info.registered_model_version)
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    return versions


def jpeg(image) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG bytes (quality 95)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def infer_under_load(server: ServerProcess, image: bytes, swap, *, part: str, new_version: str, promoted_after: int,
                     limit: int, seconds: float, clients: int = 4) -> list[tuple[int, dict | None, int]]:
    """``clients`` threads POST ``image`` to ``/api/v1/infer`` while ``swap()`` runs after ``promoted_after``
    responses; they stop at ``limit`` responses, at 12 served by ``new_version`` of ``part``, or after
    ``seconds``. Returns every ``(client, body or None, status)`` (a transport error is status 0)."""
    import threading

    responses: list[tuple[int, dict | None, int]] = []
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        with server.client(timeout=30) as http:
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    r = http.post("/api/v1/infer", files={"image": ("a.jpg", image, "image/jpeg")})
                    item = (index, r.json() if r.status_code == 200 else None, r.status_code)
                except Exception as exc:  # a transport error is a failed request too
                    item = (index, {"error": repr(exc)}, 0)
                with lock:
                    responses.append(item)
                    new = sum(1 for _, body, _ in responses if body and body.get("models", {}).get(part) == new_version)
                    if len(responses) >= limit or new >= 12:
                        stop.set()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    while len(responses) < promoted_after and time.monotonic() < deadline:
        time.sleep(0.05)
    swap()
    for t in threads:
        t.join()
    return responses
