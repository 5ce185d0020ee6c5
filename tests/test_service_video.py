"""Video through the service: ``POST /api/v1/infer/video`` (JSON lines per frame, error lines, the
limits) and the ``/api/v1/stream`` WebSocket (per-connection tracking, bad frames, the session
limits and the token), in-process; then a real ``holotune serve`` where a model promoted in the
middle of a WebSocket session comes in between two frames and no frame is lost."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from service_harness import ServerProcess, build_registry, jpeg
from starlette.websockets import WebSocketDisconnect
from test_cli_video import pan
from test_video_io import corrupt_frame, write_clip

from holotune.runtime import Holistic
from holotune.runtime.video import Frame, VideoReader
from holotune.samples import sample_images
from holotune.service import ServiceSettings, create_app

FACE = "holotune-face_mesh"
PARTS = ("pose", "pose_world", "face", "left_hand", "right_hand")
STOCK = {"face_mesh": "1", "hands": None, "pose": None, "gesture": None}


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> dict:
    """``holotune-face_mesh``: v1 stock (champion), v2 with every face landmark moved 2 crop pixels (and
    the harness's other versions, unused here)."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    versions = build_registry(root, uri)
    return {"uri": uri, "versions": versions}


@pytest.fixture(scope="module")
def client(tmp_path_factory, registry):
    workspace = tmp_path_factory.mktemp("video-service")
    settings = ServiceSettings(workspace=workspace, token="s3cret", poll_interval_s=0, finetune_api=False,
                               tracking_uri=registry["uri"], max_video_bytes=1_000_000, max_frame_pixels=300 * 300,
                               max_video_frames=20, max_video_seconds=4.0, max_stream_sessions=2,
                               max_stream_frame_bytes=200_000)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("video") / "pan.avi", pan(6))


def service(client):
    return client.app.state.service


def upload(client, path: Path, name: str | None = None, **params):
    return client.post("/api/v1/infer/video", params=params,
                       files={"video": (name or path.name, path.read_bytes(), "video/x-msvideo")})


def lines(response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


def tracked(frames, timestamps=None) -> list[dict]:
    """What a fresh HolisticStream gives on ``frames`` (RGB), in process."""
    with Holistic() as holistic:
        stream = holistic.stream()
        return [stream.process(f, None if timestamps is None else t).to_dict()
                for f, t in zip(frames, timestamps or [None] * len(frames))]


def assert_parts_equal(got: dict, want: dict, atol: float = 1e-6) -> None:
    for part in PARTS:
        if want[part] is None:
            assert got[part] is None, part
        else:
            np.testing.assert_allclose(np.array(got[part]), np.array(want[part]), atol=atol, err_msg=part)


# ---------------------------------------------------------------------------- POST /api/v1/infer/video
def test_an_uploaded_video_streams_a_line_per_frame_and_a_summary(client, clip):
    got = lines(upload(client, clip, "my clip.avi"))
    frames = [f for f in VideoReader(clip) if isinstance(f, Frame)]
    want = tracked([f.image for f in frames], [f.timestamp_ms for f in frames])
    assert [r["frame"] for r in got[:-1]] == list(range(6)) and all(r["video"] == "my clip.avi" for r in got)
    assert [r["timestamp_ms"] for r in got[:-1]] == [0.0, 100.0, 200.0, 300.0, 400.0, 500.0]
    for record, expected in zip(got, want):
        assert (record["width"], record["height"], record["models"]) == (256, 256, STOCK)
        assert_parts_equal(record, expected)
    assert got[-1] == {"video": "my clip.avi", "frames": 6, "errors": 0, "frames_lost": 0, "models": STOCK,
                       "end": "end of my clip.avi"}
    assert list(service(client).upload_dir.iterdir()) == []  # the temporary file is gone
    assert service(client).infer_pending == 0
    static = lines(upload(client, clip, static_image_mode=True))
    with Holistic() as holistic:
        assert all(static[i]["pose"] == holistic.process(f.image).to_dict()["pose"] for i, f in enumerate(frames))


def test_a_corrupt_frame_is_an_error_line_and_the_rest_is_processed(client, clip, tmp_path):
    bad = corrupt_frame(clip, tmp_path / "bad.avi", 3)
    got = lines(upload(client, bad))
    assert got[3] == {"video": "bad.avi", "frame": 3, "frames_lost": 1,
                      "error": "bad.avi: frame 3 unreadable (corrupt data); skipped"}
    assert [r["frame"] for r in got[:-1]] == [0, 1, 2, 3, 4, 5] and all(r["pose"] for r in got[:-1] if r["frame"] != 3)
    assert got[-1]["frames"] == 5 and got[-1]["errors"] == 1 and got[-1]["frames_lost"] == 1


def test_upload_limits_and_bad_uploads_name_the_field(client, clip, tmp_path):
    def detail(response, status):
        assert response.status_code == status, response.text
        return response.json()["detail"]

    big = tmp_path / "big.avi"
    big.write_bytes(b"\0" * 1_000_001)
    assert detail(upload(client, big), 413) == "request body is larger than the 1000000-byte limit of /api/v1/infer/video"
    wide = write_clip(tmp_path / "wide.avi", pan(2, size=320))
    assert detail(upload(client, wide), 413) == ("video: wide.avi has 320x320 frames, more than the 90000-pixel "
                                                 "limit (max_frame_pixels)")
    long = write_clip(tmp_path / "long.avi", pan(21, size=32, step=1), fps=100)
    assert detail(upload(client, long), 413) == ("video: long.avi has 21 frames, more than the limit of 20 "
                                                 "(max_video_frames)")
    slow = write_clip(tmp_path / "slow.avi", pan(10, size=32, step=1), fps=2)
    assert detail(upload(client, slow), 413) == ("video: slow.avi lasts 5.0 s, more than the limit of 4 s "
                                                 "(max_video_seconds)")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    [error] = detail(upload(client, text), 422)
    assert error["loc"] == ["body", "video"] and error["msg"].startswith("notes.mp4: cannot open as a video")
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    [error] = detail(upload(client, empty), 422)
    assert error["loc"] == ["body", "video"] and error["msg"] == "empty.avi: empty file"
    [error] = detail(client.post("/api/v1/infer/video", files={"image": ("a.avi", b"x")}), 422)
    assert error["loc"] == ["body", "video"]
    svc = service(client)
    assert list(svc.upload_dir.iterdir()) == [] and svc.infer_pending == 0
    svc.infer_pending = svc.settings.max_pending_infer  # the queue is full: refused before saving
    try:
        assert upload(client, clip).status_code == 503
    finally:
        svc.infer_pending = 0


# ---------------------------------------------------------------------------- WebSocket /api/v1/stream
def results(ws, count: int) -> list[dict]:
    return [ws.receive_json() for _ in range(count)]


def test_the_stream_protocol_results_errors_and_resets(client):
    frames = pan(5)
    with client.websocket_connect("/api/v1/stream") as ws:
        ready = ws.receive_json()
        assert ready == {"type": "ready", "models": STOCK, "limits": {
            "max_frame_bytes": 200_000, "max_frame_pixels": 90_000, "max_session_seconds": 3600.0}}
        ws.send_text(json.dumps({"timestamp_ms": 40}))
        ws.send_bytes(jpeg(frames[0]))
        first = ws.receive_json()
        assert (first["type"], first["frame"], first["timestamp_ms"], first["models"]) == ("result", 0, 40.0, STOCK)
        assert first["pose"] and first["face"]
        ws.send_bytes(b"not an image")
        assert ws.receive_json() == {"type": "error", "frame": 1,
                                     "error": "frame 1: not an image file (or an unsupported format)"}
        ws.send_text(json.dumps({"timestamp_ms": 10}))  # earlier than frame 0: refused, the session goes on
        ws.send_bytes(jpeg(frames[1]))
        error = ws.receive_json()
        assert error["type"] == "error" and error["frame"] == 2 and "timestamp_ms must increase: got 10" in error["error"]
        ws.send_text("{bad json")
        assert ws.receive_json()["error"].startswith("a text message must be a JSON object of options")
        ws.send_text(json.dumps({"timestmp_ms": 5}))
        assert ws.receive_json() == {"type": "error", "frame": None,
                                     "error": "unknown option(s) timestmp_ms; known: reset, timestamp_ms"}
        ws.send_bytes(b"\xff" * 200_001)
        assert ws.receive_json()["error"] == ("frame 3 is 200001 bytes, more than the 200000-byte limit "
                                              "(max_stream_frame_bytes)")
        ws.send_bytes(jpeg(cv2.resize(frames[1], (320, 320))))
        assert ws.receive_json()["error"] == ("frame 4 is 320x320 pixels, more than the 90000-pixel limit "
                                              "(max_frame_pixels)")
        ws.send_bytes(jpeg(cv2.resize(frames[2], (224, 192))))  # a new size: tracking restarts
        resized = ws.receive_json()
        assert resized["frame"] == 5 and resized["timestamp_ms"] is None and (resized["width"], resized["height"]) == (
            224, 192)
        assert resized["reset"] == "frame 5 is 224x192, the frames before 256x256: tracking restarted"
        ws.send_bytes(jpeg(cv2.resize(frames[3], (224, 192))))
        assert "reset" not in ws.receive_json()
    # The restarted track equals a fresh one on those two frames (decoded as the service decodes them).
    decoded = [np.asarray(Image.open(io.BytesIO(jpeg(cv2.resize(f, (224, 192))))).convert("RGB")) for f in frames[2:4]]
    assert_parts_equal(resized, tracked(decoded)[0])
    assert service(client).stream_sessions == 0


def test_each_connection_tracks_alone(client):
    """Two sessions interleaved frame by frame give exactly what each gives alone."""
    grace = sample_images()["grace_hopper"]
    clips = {"a": [jpeg(f) for f in pan(5)],
             "b": [jpeg(cv2.resize(grace[i * 6: i * 6 + 480, 10 + i * 4: 490 + i * 4], (256, 256))) for i in range(5)]}
    alone = {}
    for key, frames in clips.items():
        with client.websocket_connect("/api/v1/stream") as ws:
            ws.receive_json()
            alone[key] = []
            for frame in frames:
                ws.send_bytes(frame)
                alone[key].append(ws.receive_json())
    assert alone["a"][2]["face"] != alone["b"][2]["face"]
    with client.websocket_connect("/api/v1/stream") as a, client.websocket_connect("/api/v1/stream") as b:
        a.receive_json(), b.receive_json()
        both = {"a": [], "b": []}
        for frame_a, frame_b in zip(clips["a"], clips["b"]):
            a.send_bytes(frame_a)
            b.send_bytes(frame_b)
            both["a"].append(a.receive_json())
            both["b"].append(b.receive_json())
    assert both == alone


def test_session_limits_close_with_a_code_and_reason(client):
    with client.websocket_connect("/api/v1/stream") as one, client.websocket_connect("/api/v1/stream") as two:
        one.receive_json(), two.receive_json()
        with client.websocket_connect("/api/v1/stream") as three:
            with pytest.raises(WebSocketDisconnect) as closed:
                three.receive_json()
        assert closed.value.code == 1013
        assert closed.value.reason == "2 stream sessions already open (the limit, max_stream_sessions); try again later"
    svc = service(client)
    settings = svc.settings
    svc.settings = dataclasses.replace(settings, max_stream_seconds=0.5)
    try:
        with client.websocket_connect("/api/v1/stream") as ws:
            assert ws.receive_json()["limits"]["max_session_seconds"] == 0.5
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
        assert closed.value.code == 4408
        assert closed.value.reason == ("session time limit of 0.5 s reached (max_stream_seconds); reconnect to go on")
    finally:
        svc.settings = settings
    assert svc.stream_sessions == 0


def test_a_public_bind_needs_the_token_header_or_query(tmp_path, registry):
    app = create_app(ServiceSettings(host="0.0.0.0", workspace=tmp_path, token="s3cret", poll_interval_s=0,
                                     finetune_api=False, tracking_uri=registry["uri"]))
    with TestClient(app) as client:
        for kwargs, code in (({}, 4401), ({"headers": {"Authorization": "Bearer nope"}}, 4403),
                             ({"params": "token=nope"}, 4403)):
            path = "/api/v1/stream" + (f"?{kwargs.pop('params')}" if "params" in kwargs else "")
            with client.websocket_connect(path, **kwargs) as ws:
                with pytest.raises(WebSocketDisconnect) as closed:
                    ws.receive_json()
            assert closed.value.code == code, closed.value.reason
        assert "Authorization: Bearer" in closed.value.reason or closed.value.reason == "wrong bearer token"
        for path, headers in (("/api/v1/stream", {"Authorization": "Bearer s3cret"}),
                              ("/api/v1/stream?token=s3cret", {})):
            with client.websocket_connect(path, headers=headers) as ws:
                assert ws.receive_json()["type"] == "ready"
        # The upload endpoint follows /api/v1/infer: the token on a public bind.
        assert client.post("/api/v1/infer/video", files={"video": ("a.avi", b"x")}).status_code == 401


def test_the_token_is_redacted_from_log_lines():
    import logging

    from holotune.service.security import TokenRedactor

    record = logging.LogRecord("uvicorn.error", logging.INFO, "", 0, '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5", "/api/v1/stream?a=1&token=s3cret&b=2"), None)
    assert TokenRedactor().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "WebSocket /api/v1/stream?a=1&token=***&b=2" [accepted]'


# ---------------------------------------------------------------------------- a real server
def test_a_real_server_swaps_a_promoted_model_between_frames_of_a_websocket_session(registry, tmp_path, clip):
    """A client streams 40 frames in lockstep over a real WebSocket; after the 10th result, v2 is
    promoted and the service told to reload. Every frame gets its result; the versions go 1 -> 2
    once, and the face jumps at that frame by v2's shift, not before."""
    from websockets.sync.client import connect

    from holotune.registry import promote

    server = ServerProcess(tmp_path / "ws", tracking_uri=registry["uri"],
                           args=["--poll-interval", "0", "--no-finetune-api"], log_name="server-ws.log")
    (tmp_path / "ws").mkdir()
    server.start()
    frame = jpeg(pan(1)[0])  # the same picture each time: only the model changes the face
    got: list[dict] = []
    swapped = threading.Event()
    tenth = threading.Event()

    def stream() -> None:
        with connect(f"ws://127.0.0.1:{server.port}/api/v1/stream", open_timeout=30) as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "ready"
            for i in range(40):
                if i == 20:
                    swapped.wait(timeout=60)  # keep streaming until the swap has happened
                ws.send(frame)
                got.append(json.loads(ws.recv(timeout=30)))
                if i == 9:
                    tenth.set()

    try:
        worker = threading.Thread(target=stream)
        worker.start()
        assert tenth.wait(timeout=60)
        promote(FACE, registry["versions"]["shifted"], tracking_uri=registry["uri"])
        with server.client() as http:
            reload = http.post("/api/v1/models/reload", headers=server.auth).json()
            swapped.set()
            assert reload["parts"]["face_mesh"] == {"version": "2", "changed": True, "error": None}
            # The upload endpoint over real HTTP, streamed line by line, on the new model.
            with http.stream("POST", "/api/v1/infer/video",
                             files={"video": ("pan.avi", clip.read_bytes(), "video/x-msvideo")}) as response:
                records = [json.loads(line) for line in response.iter_lines() if line]
            # A client that goes away mid-video: the temporary upload is removed all the same.
            long = write_clip(tmp_path / "long.avi", pan(100, size=128, step=1))
            with http.stream("POST", "/api/v1/infer/video", files={"video": ("long.avi", long.read_bytes())}) as r:
                first = json.loads(next(r.iter_lines()))
            uploads = tmp_path / "ws" / "jobs" / "uploads"
            deadline = time.monotonic() + 10
            while list(uploads.iterdir()) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert first["frame"] == 0 and list(uploads.iterdir()) == []
        worker.join(timeout=120)
        maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
    finally:
        swapped.set()
        promote(FACE, registry["versions"]["stock"], tracking_uri=registry["uri"])
        server.stop()
        import mlflow

        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    assert [r["type"] for r in got] == ["result"] * 40 and [r["frame"] for r in got] == list(range(40))
    versions = [r["models"]["face_mesh"] for r in got]
    first_v2 = versions.index("2")
    assert 10 <= first_v2 <= 20 and versions == ["1"] * first_v2 + ["2"] * (40 - first_v2), versions
    def step(part: str, i: int) -> float:  # how far ``part`` moved (x, y) from frame i - 1 to frame i
        return float(np.abs(np.array(got[i][part])[:, :2] - np.array(got[i - 1][part])[:, :2]).max())

    jitter = max(step("face", i) for i in range(5, first_v2))  # the tracker settling on a still picture
    assert step("face", first_v2) > max(2e-3, 5 * jitter), (step("face", first_v2), jitter)  # v2's 2-pixel move
    assert len(records) == 7 and records[-1]["models"]["face_mesh"] == "2" and records[-1]["frames"] == 6
    assert "libtorch" not in maps and "torch/lib" not in maps and "onnxruntime" in maps
