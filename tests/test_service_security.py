"""Every rejection the service makes, over real HTTP: path traversal (the variants MLflow's own
server was bitten by), missing and wrong tokens, oversize bodies and images, bad JSON, unknown
fields and modules, and inference input errors. No rejected request may create a job."""

from __future__ import annotations

import io
import os
import stat

import numpy as np
import pytest
from service_harness import ServerProcess

from holotune.service.security import PathRejected, is_loopback, load_token, resolve_in_workspace


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """workspace/ with data and symlinks, a sibling workspace-evil/ and an outside/ folder."""
    root = tmp_path_factory.mktemp("security")
    ws, outside, evil = root / "workspace", root / "outside", root / "workspace-evil"
    for folder in (ws / "data", outside, evil):
        folder.mkdir(parents=True)
    (ws / "data" / "train.tfrecord").write_bytes(b"\0" * 64)
    (outside / "secret.tfrecord").write_bytes(b"secret")
    (evil / "secret.tfrecord").write_bytes(b"secret")
    (ws / "data" / "escape").symlink_to(outside, target_is_directory=True)
    (ws / "data" / "link.tfrecord").symlink_to(outside / "secret.tfrecord")
    (ws / "data" / "inner.tfrecord").symlink_to(ws / "data" / "train.tfrecord")
    return {"root": root, "ws": ws, "outside": outside, "evil": evil}


@pytest.fixture(scope="module")
def server(layout):
    server = ServerProcess(layout["ws"], args=["--poll-interval", "0", "--max-upload-bytes", "2000000",
                                               "--max-image-pixels", "4000000"]).start()
    yield server
    server.stop()
    server.kill_jobs()


@pytest.fixture(scope="module")
def http(server):
    with server.client() as client:
        yield client


# (value, a fragment of the reason). {ws} and {outside} are filled in.
TRAVERSALS = [
    ("../outside/secret.tfrecord", "'..' segments are not allowed"),                     # CVE-2023-1177
    ("data/../../outside/secret.tfrecord", "'..' segments are not allowed"),
    ("{ws}/../outside/secret.tfrecord", "'..' segments are not allowed"),
    ("data/..", "'..' segments are not allowed"),
    ("/etc/passwd", "outside the workspace"),                                             # absolute, outside
    ("{outside}/secret.tfrecord", "outside the workspace"),
    ("{ws}-evil/secret.tfrecord", "outside the workspace"),                               # prefix confusion
    ("data/escape/secret.tfrecord", "outside the workspace"),                             # symlinked folder
    ("data/link.tfrecord", "outside the workspace"),                                      # symlinked file
    ("data/train.tfrecord\x00.png", "character '\\x00' is not allowed"),                  # NUL byte
    ("..\\outside\\secret.tfrecord", "character '\\\\' is not allowed"),                  # CVE-2023-2780
    ("data\\..\\..\\outside", "character '\\\\' is not allowed"),
    ("%2e%2e/outside/secret.tfrecord", "character '%' is not allowed"),                   # CVE-2023-6831
    ("%252e%252e/outside/secret.tfrecord", "character '%' is not allowed"),               # CVE-2024-1560
    ("..%2foutside%2fsecret.tfrecord", "character '%' is not allowed"),
    ("file:///etc/passwd", "character ':' is not allowed"),                               # CVE-2023-2356
    ("http:///#/../../outside/secret.tfrecord", "character ':' is not allowed"),          # CVE-2023-6909
    ("data/#/../../outside/secret.tfrecord", "character '#' is not allowed"),             # CVE-2024-3848
    ("data/..;/..;/outside/secret.tfrecord", "character ';' is not allowed"),             # CVE-2024-1593
    ("data/train.tfrecord?/../../outside", "character '?' is not allowed"),               # query string
    ("data/${oc.env:HOME}", "character '$' is not allowed"),                              # OmegaConf interpolation
    ("data/x\ny", "character '\\n' is not allowed"),
    ("~/.ssh/id_rsa", "no such file or folder in the workspace"),                         # '~' is never expanded
    ("\uff0e\uff0e/outside/secret.tfrecord", "no such file or folder in the workspace"),  # fullwidth dots: literal
    ("", "must be a non-empty path"),
    ("a/" * 600, "longer than 1024 characters"),
]


def _start(http, server, **body):
    return http.post("/api/v1/finetune/start", json={"dataset_path": "data/train.tfrecord", **body},
                     headers=server.auth)


def _field_error(response, *loc) -> str:
    assert response.status_code == 422, response.text
    errors = [e for e in response.json()["detail"] if tuple(e["loc"][1:]) == loc]
    assert errors, response.json()
    return errors[0]["msg"]


@pytest.mark.parametrize(("value", "reason"), TRAVERSALS, ids=[repr(v[0])[:40] for v in TRAVERSALS])
def test_dataset_path_traversal_is_refused(http, server, layout, value, reason):
    value = value.format(ws=layout["ws"], outside=layout["outside"]) if "{" in value and "$" not in value else value
    assert reason in _field_error(_start(http, server, dataset_path=value), "dataset_path")


@pytest.mark.parametrize(("value", "reason"), [
    ("../outside/ckpt", "'..' segments are not allowed"),
    ("{outside}/ckpt", "outside the workspace"),
    ("data/escape/ckpt", "outside the workspace"),   # a new folder under a symlink that leaves
    ("ckpt\\..\\..\\x", "character '\\\\' is not allowed"),
    ("%2e%2e/ckpt", "character '%' is not allowed"),
    (".", "not the workspace itself"),
    ("data/train.tfrecord", "exists and is not a folder"),
])
def test_checkpoint_dir_traversal_is_refused(http, server, layout, value, reason):
    value = value.format(outside=layout["outside"])
    assert reason in _field_error(_start(http, server, checkpoint_dir=value), "checkpoint_dir")
    assert not (layout["outside"] / "ckpt").exists()


@pytest.mark.parametrize(("body", "loc", "message"), [
    ({"module": "faces"}, ("module",), "Input should be 'face_mesh', 'hands' or 'pose'"),
    ({"learning_rte": 1e-4}, ("learning_rte",), "Extra inputs are not permitted"),
    ({"learning_rate": 0}, ("learning_rate",), "greater than 0"),
    ({"epochs": 1.5}, ("epochs",), "valid integer"),
    ({"lora_rank": 0}, ("lora_rank",), "greater than or equal to 1"),
    ({"validation_split": 1.0}, ("validation_split",), "less than 1"),
    ({"task_type": "classification", "class_names": ["a", "b"]}, ("task_type",), "needs module='hands'"),
    ({"module": "hands", "task_type": "classification", "num_classes": 3, "class_names": ["fist", "palm"]},
     ("num_classes",), "num_classes=3 but class_names has 2 entries"),
    ({"module": "hands", "task_type": "classification", "class_names": ["fist", "pa'lm"]}, ("class_names", 1),
     "should match pattern"),
    ({"num_classes": 3}, ("num_classes",), "only for task_type='classification'"),
    ({"module": "hands", "task_type": "classification", "class_names": ["fist", "none"]}, ("class_names",),
     "the first class must be 'none', the background class"),
    ({"task_input": "landmarks"}, ("task_input",), "task_input is only for task_type='classification'"),
    ({"module": "hands", "task_type": "classification", "class_names": ["none", "a"], "task_input": "pixels"},
     ("task_input",), "Input should be 'image' or 'landmarks'"),
    ({"max_time": "10 minutes"}, ("max_time",), "should match pattern"),
    ({"dataset_path": "data/notes.txt"}, ("dataset_path",), "no such file"),
])
def test_invalid_fields_are_422_naming_the_field(http, server, body, loc, message):
    assert message in _field_error(_start(http, server, **body), *loc)


def test_unknown_dataset_kind_is_422(http, server, layout):
    (layout["ws"] / "data" / "notes.txt").write_text("not a dataset")
    try:
        msg = _field_error(_start(http, server, dataset_path="data/notes.txt"), "dataset_path")
        assert "cannot tell what kind of dataset notes.txt is" in msg and "set dataset_kind" in msg
    finally:
        (layout["ws"] / "data" / "notes.txt").unlink()


@pytest.mark.parametrize(("content", "kind"), [
    (b'{"dataset_path": "data/train.tfrecord", ', "json_invalid"),
    (b'[1, 2, 3]', "model_attributes_type"),
    (b'"data/train.tfrecord"', "model_attributes_type"),
    (b'{"dataset_path": "data/train.tfrecord", "learning_rate": NaN}', "finite_number"),  # Python's json reads NaN
])
def test_bad_json_is_422(http, server, content, kind):
    r = http.post("/api/v1/finetune/start", content=content,
                  headers={**server.auth, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == kind, r.text


def test_prune_without_a_completed_job_is_422(http, server):
    msg = _field_error(http.post("/api/v1/model/prune", json={"method": "l1_norm", "sparsity": 0.3},
                                 headers=server.auth), "job_id")
    assert msg.startswith("no completed fine-tuning job to prune")
    assert "no fine-tuning job ft_20250405_face01" in _field_error(
        http.post("/api/v1/model/prune", json={"job_id": "ft_20250405_face01"}, headers=server.auth), "job_id")
    assert "Input should be 'l1_norm' or 'channels'" in _field_error(
        http.post("/api/v1/model/prune", json={"method": "random"}, headers=server.auth), "method")
    assert "less than 1" in _field_error(
        http.post("/api/v1/model/prune", json={"sparsity": 1.5}, headers=server.auth), "sparsity")


MUTATING = [("post", "/api/v1/finetune/start", {"json": {"dataset_path": "data/train.tfrecord"}}),
            ("post", "/api/v1/model/prune", {"json": {"method": "l1_norm", "sparsity": 0.3}}),
            ("post", "/api/v1/finetune/cancel", {"params": {"job_id": "ft_20250405_face01"}}),
            ("post", "/api/v1/models/reload", {}),
            ("post", "/api/v1/models/holotune-face_mesh/promote", {"json": {"version": 1}})]


@pytest.mark.parametrize(("method", "path", "kwargs"), MUTATING, ids=[m[1] for m in MUTATING])
def test_mutating_endpoints_need_the_token(http, server, method, path, kwargs):
    missing = getattr(http, method)(path, **kwargs)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "needs a bearer token" in missing.json()["detail"]
    basic = getattr(http, method)(path, headers={"Authorization": "Basic dXNlcjpwYXNz"}, **kwargs)
    assert basic.status_code == 401
    wrong = getattr(http, method)(path, headers={"Authorization": "Bearer not-the-token"}, **kwargs)
    assert wrong.status_code == 403 and wrong.json() == {"detail": "wrong bearer token"}
    prefix = getattr(http, method)(path, headers={"Authorization": f"Bearer {server.token[:-1]}"}, **kwargs)
    assert prefix.status_code == 403


def test_the_token_is_checked_before_the_body(http):
    """An unauthenticated client learns nothing from validation: bad JSON without a token is 401."""
    r = http.post("/api/v1/finetune/start", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 401


def test_reads_on_loopback_need_no_token(http):
    assert http.get("/api/v1/finetune/status").status_code == 200
    assert http.get("/api/v1/models").status_code == 200
    assert http.get("/docs").status_code == 200 and http.get("/openapi.json").json()["info"]["title"] == "holotune"


def test_oversize_bodies_are_413(http, server):
    big = {"dataset_path": "data/train.tfrecord", "class_names": ["x" * 60] * 1200}
    r = http.post("/api/v1/finetune/start", json=big, headers=server.auth)
    assert r.status_code == 413 and "larger than the 65536-byte limit" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit must hold while streaming
        yield b'{"dataset_path": "data/train.tfrecord", "pad": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    r = http.post("/api/v1/finetune/start", content=chunks(), headers={**server.auth, "Content-Type": "application/json"})
    assert r.status_code == 413
    upload = http.post("/api/v1/infer", files={"image": ("big.jpg", b"\xff" * 2_100_000, "image/jpeg")})
    assert upload.status_code == 413 and "2000000-byte limit of /api/v1/infer" in upload.json()["detail"]


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_errors(http):
    bomb = _png(2500, 2000)  # 5 Mpx in ~10 kB: refused before decoding
    assert len(bomb) < 100_000
    r = http.post("/api/v1/infer", files={"image": ("bomb.png", bomb, "image/png")})
    assert r.status_code == 413 and "2500x2000 pixels, more than the 4000000-pixel limit" in r.json()["detail"]
    assert "not an image file" in _field_error(
        http.post("/api/v1/infer", files={"image": ("a.jpg", b"hello", "image/jpeg")}), "image")
    assert "empty file" in _field_error(http.post("/api/v1/infer", files={"image": ("a.jpg", b"", "image/jpeg")}),
                                        "image")
    assert "need at least 2x2" in _field_error(
        http.post("/api/v1/infer", files={"image": ("tiny.png", _png(1, 5), "image/png")}), "image")
    assert http.post("/api/v1/infer", files={"file": ("a.png", _png(8, 8), "image/png")}).status_code == 422


def test_unknown_jobs_are_404(http):
    assert http.get("/api/v1/finetune/logs", params={"job_id": "ft_20250405_face01"}).status_code == 404
    assert http.get("/logs/ft_20250405_face01").status_code == 404
    assert http.get("/api/v1/finetune/metrics", params={"job_id": "ft_20250405_face01"}).status_code == 404


def test_no_rejected_request_created_a_job(http, layout):
    assert http.get("/api/v1/finetune/jobs").json() == {"jobs": []}
    assert not [p.name for p in (layout["ws"] / "jobs").iterdir() if p.name.startswith(("ft_", "pr_"))]


# ---------------------------------------------------------------------------- in-process units
def test_public_bind_needs_the_token_for_reads_too(tmp_path):
    from fastapi.testclient import TestClient

    from holotune.service import ServiceSettings, create_app

    app = create_app(ServiceSettings(host="0.0.0.0", workspace=tmp_path, token="s3cret", poll_interval_s=0,
                                     tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"))
    with TestClient(app) as client:
        assert client.get("/api/v1/finetune/status").status_code == 401
        assert client.get("/api/v1/models").status_code == 401
        assert client.get("/api/v1/finetune/status", headers={"Authorization": "Bearer nope"}).status_code == 403
        ok = client.get("/api/v1/finetune/status", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["status"] == "ready"
        assert client.get("/openapi.json").status_code == 200  # the schema holds no secrets


def test_the_schema_names_every_endpoint_and_documents_the_token(tmp_path):
    from holotune.service import ServiceSettings, create_app

    schema = create_app(ServiceSettings(workspace=tmp_path, token="t", project_root=tmp_path)).openapi()
    operations = {(path, method): op for path, item in schema["paths"].items() for method, op in item.items()}
    assert sorted(op["operationId"] for op in operations.values()) == [
        "audit_log_api_v1_models__name__audit_get", "cancel_api_v1_finetune_cancel_post", "infer_api_v1_infer_post",
        "infer_video_api_v1_infer_video_post", "job_detail_api_v1_finetune_jobs__job_id__get",
        "jobs_api_v1_finetune_jobs_get", "log_text_logs__job_id__get", "logs_api_v1_finetune_logs_get",
        "metrics_api_v1_finetune_metrics_get", "models_api_v1_models_get", "promote_version_api_v1_models__name__promote_post",
        "prune_api_v1_model_prune_post", "reload_api_v1_models_reload_post", "start_api_v1_finetune_start_post",
        "status_api_v1_finetune_status_get", "versions_api_v1_models__name__versions_get"]
    assert all(op["security"] == [{"HTTPBearer": []}] for op in operations.values())
    assert {op["tags"][0] for (path, _), op in operations.items() if "finetune" in path or "logs" in path or
            "prune" in path} == {"finetune"}


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
                                                ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                                ("::", False), ("192.168.1.5", False), ("example.com", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_paths_inside_the_workspace_resolve(layout):
    ws = layout["ws"]
    train = ws / "data" / "train.tfrecord"
    assert resolve_in_workspace("data/train.tfrecord", ws, "dataset_path", must_exist=True) == train
    assert resolve_in_workspace(str(train), ws, "dataset_path", must_exist=True) == train
    assert resolve_in_workspace("data/inner.tfrecord", ws, "dataset_path", must_exist=True) == train  # symlink inside
    assert resolve_in_workspace("./data//train.tfrecord", ws, "dataset_path", must_exist=True) == train
    assert resolve_in_workspace("checkpoints/new run", ws, "checkpoint_dir", must_exist=False,
                                want="dir") == ws / "checkpoints" / "new run"
    with pytest.raises(PathRejected) as err:
        resolve_in_workspace("data/link.tfrecord", ws, "dataset_path", must_exist=True)
    assert err.value.field == "dataset_path" and str(layout["outside"]) in err.value.reason


def test_a_generated_token_is_private_and_kept(tmp_path):
    token, source = load_token(None, None, tmp_path)
    assert len(token) >= 40 and source.endswith("(generated)")
    assert stat.S_IMODE(os.stat(tmp_path / "api_token").st_mode) == 0o600
    assert load_token(None, None, tmp_path) == (token, str(tmp_path / "api_token"))
    (tmp_path / "given").write_text("from-file\n")
    assert load_token(None, tmp_path / "given", tmp_path)[0] == "from-file"
    assert load_token("explicit", tmp_path / "given", tmp_path)[0] == "explicit"
    assert np.all([c.isalnum() or c in "-_" for c in token])
