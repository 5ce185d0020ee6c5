"""Inference and hot model updates over real HTTP: /api/v1/infer gives what `holotune infer --json`
gives; a bounded load test promotes a new face model mid-stream with zero failed requests; a
version that fails to load (NaN outputs, wrong signature) keeps the old one serving and says why;
rollback; and the server process never imports torch."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from service_harness import ServerProcess, build_registry, infer_under_load, jpeg

from holotune.registry import promote
from holotune.samples import sample_images

FACE = "holotune-face_mesh"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    workspace = root / "workspace"
    workspace.mkdir()
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    return {"workspace": workspace, "uri": uri, "versions": build_registry(workspace, uri)}


@pytest.fixture(scope="module")
def server(registry):
    server = ServerProcess(registry["workspace"], tracking_uri=registry["uri"],
                           args=["--poll-interval", "0.5", "--no-finetune-api"]).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def astronaut() -> bytes:
    return jpeg(sample_images()["astronaut"])


def _infer(http, image: bytes) -> dict:
    r = http.post("/api/v1/infer", files={"image": ("astronaut.jpg", image, "image/jpeg")})
    assert r.status_code == 200, r.text
    return r.json()


def test_infer_gives_what_the_cli_gives(server, astronaut, tmp_path, capsys):
    import json

    from holotune.cli import main

    (tmp_path / "astronaut.jpg").write_bytes(astronaut)
    assert main(["infer", str(tmp_path / "astronaut.jpg"), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    with server.client() as http:
        got = _infer(http, astronaut)
    assert got["models"] == {"face_mesh": "1", "hands": None, "pose": None, "gesture": None}  # v1 is the stock model
    for key in ("width", "height", "pose", "pose_world", "face", "left_hand", "right_hand"):
        if cli[key] is None:
            assert got[key] is None, key
        else:
            np.testing.assert_allclose(np.array(got[key]), np.array(cli[key]), atol=1e-6, err_msg=key)
    assert len(got["pose"]) == 33 and len(got["face"]) == 468


def test_promotion_under_load_swaps_with_zero_failed_requests(server, registry, astronaut):
    """4 clients post images while v2 is promoted; bounded at 400 requests or 90 s."""
    promoted_after = 16
    responses = infer_under_load(server, astronaut, lambda: promote(FACE, registry["versions"]["shifted"],
                                                                    tracking_uri=registry["uri"]),
                                 part="face_mesh", new_version="2", promoted_after=promoted_after, limit=400,
                                 seconds=90)
    import mlflow

    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)

    failed = [(status, body) for _, body, status in responses if status != 200]
    assert not failed, failed[:3]
    versions = [body["models"]["face_mesh"] for _, body, _ in responses]
    assert versions.count("1") >= promoted_after and versions.count("2") >= 12, versions
    for index in range(4):  # each client sees the swap once, never back
        mine = [body["models"]["face_mesh"] for i, body, _ in responses if i == index]
        assert mine == sorted(mine), mine
    faces = {v: [np.array(body["face"]) for _, body, _ in responses if body["models"]["face_mesh"] == v]
             for v in ("1", "2")}
    for v, arrays in faces.items():  # every response of a version is computed by that version alone
        assert all(np.array_equal(a, arrays[0]) for a in arrays), v
    moved = np.abs(faces["2"][0] - faces["1"][0]).max()
    assert 1e-3 < moved < 0.05  # v2 adds 2 crop pixels to every landmark
    poses = [np.array(body["pose"]) for _, body, _ in responses]
    assert all(np.array_equal(p, poses[0]) for p in poses)  # the pose model did not change
    with server.client() as http:
        face = http.get("/api/v1/models").json()["parts"]["face_mesh"]
    assert face["version"] == "2" and face["error"] is None and face["source"] == f"models:/{FACE}/2"


def test_a_version_that_fails_to_load_keeps_the_old_one(server, registry, astronaut):
    versions = registry["versions"]
    with server.client() as http:
        before = _infer(http, astronaut)
        serving = before["models"]["face_mesh"]
        for bad, reason in ((versions["nan"], "smoke inference: output 'landmarks' has non-finite values"),
                            (versions["wrong_signature"], "input must be 'input' (N, 3, 192, 192) for face_landmark")):
            promote(FACE, bad, tracking_uri=registry["uri"])
            r = http.post("/api/v1/models/reload", headers=server.auth)
            assert r.status_code == 200
            face = r.json()["parts"]["face_mesh"]
            assert face["changed"] is False and face["version"] == serving
            assert face["error"].startswith(f"version {bad} not served (still serving {serving}): ")
            assert reason in face["error"]
            state = http.get("/api/v1/models").json()["parts"]["face_mesh"]
            assert state["error"] == face["error"] and state["failed_version"] == bad
            after = _infer(http, astronaut)
            assert after["models"]["face_mesh"] == serving and after["face"] == before["face"]
        # Rollback: champion back to the stock version 1, picked up by the poller (no reload call).
        promote(FACE, versions["stock"], tracking_uri=registry["uri"])
        deadline = time.monotonic() + 20
        while http.get("/api/v1/models").json()["parts"]["face_mesh"]["version"] != "1":
            assert time.monotonic() < deadline, "the poller did not pick up the rollback"
            time.sleep(0.2)
        rolled = _infer(http, astronaut)
        assert rolled["models"]["face_mesh"] == "1"
        np.testing.assert_allclose(np.array(rolled["face"]), _stock_face(astronaut), atol=1e-6)
        models = http.get("/api/v1/models").json()
        assert models["alias"] == "champion" and models["parts"]["face_mesh"]["error"] is None
        assert models["parts"]["hands"]["version"] is None and models["parts"]["pose"]["version"] is None
    import mlflow

    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def _stock_face(image: bytes) -> np.ndarray:
    import io

    from PIL import Image

    from holotune.runtime import Holistic

    with Holistic() as holistic:
        return holistic.process(np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))).face


def test_the_server_process_never_imports_torch(server):
    maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
    assert "onnxruntime" in maps  # the check can see libraries at all
    assert "libtorch" not in maps and "torch/lib" not in maps


def test_finetune_api_can_be_switched_off(server):
    off = "the fine-tuning API is off (start the service without --no-finetune-api)"
    with server.client() as http:
        for method, path, kwargs in [("GET", "/api/v1/finetune/jobs", {}),
                                     ("GET", "/api/v1/finetune/jobs/ft_20250405_face_mesh01", {}),
                                     ("GET", "/api/v1/finetune/logs?job_id=nope", {}),
                                     ("GET", "/logs/ft_20250405_face_mesh01", {}),
                                     ("GET", "/api/v1/finetune/metrics", {}),
                                     ("POST", "/api/v1/finetune/start", {"json": {"epochs": -1}}),
                                     ("POST", "/api/v1/finetune/cancel?job_id=ft_20250405_face_mesh01", {}),
                                     ("POST", "/api/v1/model/prune", {"json": {}})]:
            r = http.request(method, path, headers=server.auth, **kwargs)
            assert (r.status_code, r.json()) == (404, {"detail": off}), (method, path)  # not validated first
        assert http.get("/api/v1/finetune/status").status_code == 200
        assert http.put("/api/v1/finetune/jobs", headers=server.auth).status_code == 405
        paths = http.get("/openapi.json").json()["paths"]
        assert sorted(paths) == ["/api/v1/finetune/status", "/api/v1/infer", "/api/v1/infer/video", "/api/v1/models",
                                 "/api/v1/models/reload", "/api/v1/models/{name}/audit", "/api/v1/models/{name}/promote",
                                 "/api/v1/models/{name}/versions"]
