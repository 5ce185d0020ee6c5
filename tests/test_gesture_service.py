"""Gestures end to end: registered gesture heads (holotune-gesture) and a hand model's image head
(holotune-hands), checked at registration and promotion, followed by a real ``holotune serve``
process and swapped under concurrent load with zero failed requests; a head that does not fit is
refused and the old one keeps serving; ``holotune infer --json --gesture`` prints the gestures.

No photo that ships with the repository or its packages gives a MediaPipe hand (``holotune.samples``),
so the served hand model is the stock one with hand presence forced to 1 (``gesture_models.make_hand_model``):
the cameraman's two pose-derived hand ROIs (his gloved hands on the camera, wrists well visible) then
give two hands, and every hand gets a gesture.
"""

from __future__ import annotations

import json

import pytest
from gesture_models import make_gesture_onnx, make_hand_model
from service_harness import ServerProcess, infer_under_load, jpeg

from holotune.registry import (
    CHALLENGER,
    CLASS_NAMES_TAG,
    EXPERIMENT,
    RegistryError,
    list_versions,
    promote,
    register_gesture,
    register_model,
    registered_name,
)
from holotune.samples import sample_images

GESTURE = "holotune-gesture"
HANDS = "holotune-hands"
FIST = ["none", "fist", "palm"]
OK = ["none", "wave", "ok", "stop"]
THUMB = ["none", "thumb"]  # the hand model's image head


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """holotune-hands v1 stock, v2 forced presence with an image head (THUMB, champion);
    holotune-gesture v1 FIST (fist wins), v2 OK (ok wins), and three that must not be served:
    v3 input width 100, v4 no metadata (both logged around register_gesture, which refuses them),
    v5 a FIST head whose class-names tag was rewritten."""
    import mlflow
    import onnx

    from holotune.export import export_stock_models

    root = tmp_path_factory.mktemp("gestures")
    workspace = root / "workspace"
    workspace.mkdir()
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    files = {
        "hand": make_hand_model(export_stock_models()["hand_landmark_full"], root / "hand_thumb.onnx",
                                image_head=THUMB, bias_towards="thumb"),
        "fist": make_gesture_onnx(root / "fist.onnx", FIST, "fist"),
        "ok": make_gesture_onnx(root / "ok.onnx", OK, "ok"),
        "wide": make_gesture_onnx(root / "wide.onnx", FIST, "fist", width=100),
        "nometa": make_gesture_onnx(root / "nometa.onnx", FIST, "fist", metadata=False),
    }
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.create_experiment(EXPERIMENT, artifact_location=(root / "mlruns").as_uri())
    versions = {"hand": register_model(files["hand"], "hands", tracking_uri=uri)}
    promote(HANDS, versions["hand"], tracking_uri=uri, expect_class_names=THUMB)
    versions["fist"] = register_gesture(files["fist"], tags={"note": "fist wins"}, tracking_uri=uri)
    versions["ok"] = register_gesture(files["ok"], tracking_uri=uri)
    for bad in ("wide", "nometa"):
        with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name(EXPERIMENT).experiment_id):
            info = mlflow.onnx.log_model(onnx.load(str(files[bad])), name="model", registered_model_name=GESTURE,
                                         pip_requirements=mlflow.onnx.get_default_pip_requirements())
        versions[bad] = str(info.registered_model_version)
        mlflow.MlflowClient().set_model_version_tag(GESTURE, versions[bad], CLASS_NAMES_TAG, json.dumps(FIST))
    versions["retagged"] = register_gesture(files["fist"], tracking_uri=uri)
    mlflow.MlflowClient().set_model_version_tag(GESTURE, versions["retagged"], CLASS_NAMES_TAG,
                                                json.dumps(["none", "fist", "peace"]))
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    yield {"workspace": workspace, "uri": uri, "files": files, "versions": versions}
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


@pytest.fixture(scope="module")
def server(registry):
    # No polling: every swap below comes from POST /api/v1/models/reload, where the test asks for it.
    server = ServerProcess(registry["workspace"], tracking_uri=registry["uri"], log_name="gesture-server.log",
                           args=["--poll-interval", "0", "--no-finetune-api"]).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def camera() -> bytes:
    return jpeg(sample_images()["camera"])


def _infer(http, image: bytes) -> dict:
    r = http.post("/api/v1/infer", files={"image": ("camera.jpg", image, "image/jpeg")})
    assert r.status_code == 200, r.text
    return r.json()


def _labels(body: dict) -> list[str]:
    return [body[k]["label"] for k in ("left_gesture", "right_gesture") if body[k] is not None]


def _set_alias(registry, version: str) -> None:
    """``champion`` -> ``version`` straight in MLflow, past promote()'s checks (as the MLflow UI could)."""
    import mlflow

    mlflow.MlflowClient(registry["uri"], registry["uri"]).set_registered_model_alias(GESTURE, "champion", version)


def test_registration_tags_and_names(registry):
    assert registered_name("gesture") == GESTURE
    gestures = list_versions(GESTURE, registry["uri"])
    assert gestures[0]["version"] == "1" and "stock" not in gestures[0]["tags"]  # no stock version 1 rule
    assert json.loads(gestures[0]["tags"][CLASS_NAMES_TAG]) == FIST and gestures[0]["tags"]["note"] == "fist wins"
    assert gestures[0]["tags"]["holotune.input"] == "landmarks"
    assert json.loads(gestures[1]["tags"][CLASS_NAMES_TAG]) == OK and CHALLENGER in gestures[-1]["aliases"]
    hands = list_versions(HANDS, registry["uri"])
    assert hands[0]["tags"]["stock"] == "true" and CLASS_NAMES_TAG not in hands[0]["tags"]
    assert json.loads(hands[1]["tags"][CLASS_NAMES_TAG]) == THUMB and hands[1]["tags"]["holotune.input"] == "image"
    with pytest.raises(RegistryError, match="no stock version"):
        register_model(registry["files"]["fist"], "gesture", tracking_uri=registry["uri"])


def test_register_gesture_refuses_a_head_that_does_not_fit(registry):
    files = registry["files"]
    with pytest.raises(RegistryError) as wide:
        register_gesture(files["wide"], tracking_uri=registry["uri"])
    assert str(files["wide"]) in str(wide.value)
    assert "input must be 'features' (N, 127)" in str(wide.value) and "got [('features', ['batch', 100])]" in str(wide.value)
    with pytest.raises(RegistryError) as nometa:
        register_gesture(files["nometa"], tracking_uri=registry["uri"])
    message = str(nometa.value)
    assert str(files["nometa"]) in message and "not a landmark gesture head" in message
    assert "takes 'features' (N, 127) and gives 'logits' (N, C)" in message
    with pytest.raises(RegistryError, match="no such ONNX file"):
        register_gesture(files["fist"].parent / "missing.onnx", tracking_uri=registry["uri"])
    assert len(list_versions(GESTURE, registry["uri"])) == 5  # nothing was registered


def test_promotion_checks_class_names(registry, capsys):
    from holotune.cli import main

    uri, versions = registry["uri"], registry["versions"]
    with pytest.raises(RegistryError) as expected:
        promote(GESTURE, versions["ok"], tracking_uri=uri, expect_class_names=FIST)
    assert str(expected.value) == (f"{GESTURE} version {versions['ok']} has class names {OK} (tag {CLASS_NAMES_TAG}), "
                                   f"expected {FIST}; not promoted")
    with pytest.raises(RegistryError) as retagged:
        promote(GESTURE, versions["retagged"], tracking_uri=uri)
    assert str(retagged.value) == (f"{GESTURE} version {versions['retagged']}: tag {CLASS_NAMES_TAG} says "
                                   f"['none', 'fist', 'peace'], its ONNX metadata says {FIST}; not promoted")
    with pytest.raises(RegistryError, match="no 'holotune.gesture.class_names' in the ONNX metadata"):
        promote(GESTURE, versions["nometa"], tracking_uri=uri)
    with pytest.raises(RegistryError, match=r"holotune-face_mesh has no version 1"):
        promote("holotune-face_mesh", 1, tracking_uri=uri, expect_class_names=FIST)
    with pytest.raises(RegistryError, match=r"version 1 has no holotune.class_names tag \(not a gesture model\)"):
        promote(HANDS, 1, tracking_uri=uri, expect_class_names=FIST)
    assert main(["models", "promote", GESTURE, versions["ok"], "--alias", "staging", "--expect-classes",
                 "none,fist,palm", "--tracking-uri", uri]) == 2
    assert f"has class names {OK} (tag {CLASS_NAMES_TAG}), expected {FIST}" in capsys.readouterr().err
    assert main(["models", "promote", GESTURE, versions["ok"], "--alias", "staging", "--expect-classes",
                 "none,wave,ok,stop", "--tracking-uri", uri]) == 0
    assert "staging" in list_versions(GESTURE, uri)[int(versions["ok"]) - 1]["aliases"]


def test_gesture_swap_under_load_with_zero_failed_requests(server, registry, camera):
    """The image head (hands v2) first; then gesture v1 (landmark head, takes precedence); then 4
    clients post while v2 is promoted and reloaded: bounded at 300 requests or 40 s."""
    uri, versions = registry["uri"], registry["versions"]
    classes = {("hands", versions["hand"]): THUMB, ("gesture", versions["fist"]): FIST, ("gesture", versions["ok"]): OK}
    with server.client() as http:
        first = _infer(http, camera)
        assert first["models"] == {"face_mesh": None, "hands": versions["hand"], "pose": None, "gesture": None}
        assert _labels(first) == ["thumb", "thumb"]  # both hands, from the hand model's image head
        state = http.get("/api/v1/models").json()["parts"]
        assert state["hands"]["class_names"] == THUMB and state["gesture"]["version"] is None
        promote(GESTURE, versions["fist"], tracking_uri=uri, expect_class_names=FIST)
        reload = http.post("/api/v1/models/reload", headers=server.auth).json()["parts"]
        assert reload["gesture"] == {"version": versions["fist"], "changed": True, "error": None}
        assert _labels(_infer(http, camera)) == ["fist", "fist"]

    promoted_after = 12
    reload = {}

    def swap() -> None:
        promote(GESTURE, versions["ok"], tracking_uri=uri, expect_class_names=OK)
        with server.client() as http:
            reload.update(http.post("/api/v1/models/reload", headers=server.auth).json()["parts"])

    responses = infer_under_load(server, camera, swap, part="gesture", new_version=versions["ok"],
                                 promoted_after=promoted_after, limit=300, seconds=40)

    assert reload["gesture"] == {"version": versions["ok"], "changed": True, "error": None}
    failed = [(status, body) for _, body, status in responses if status != 200]
    assert not failed, failed[:3]
    served = [body["models"]["gesture"] for _, body, _ in responses]
    assert served.count(versions["fist"]) >= promoted_after and served.count(versions["ok"]) >= 12, served
    for _, body, _ in responses:  # every label is one of the classes of the version the response names
        labels = _labels(body)
        assert len(labels) == 2 and set(labels) <= set(classes[("gesture", body["models"]["gesture"])]), body["models"]
        assert labels == (["ok", "ok"] if body["models"]["gesture"] == versions["ok"] else ["fist", "fist"])
    for index in range(4):  # each client sees the swap once, never back
        mine = [body["models"]["gesture"] for i, body, _ in responses if i == index]
        assert mine == sorted(mine, key=int), mine
    with server.client() as http:
        gesture = http.get("/api/v1/models").json()["parts"]["gesture"]
    assert gesture["version"] == versions["ok"] and gesture["class_names"] == OK and gesture["error"] is None
    assert gesture["source"] == f"models:/{GESTURE}/{versions['ok']}"


def test_the_follower_refuses_a_head_that_does_not_fit(server, registry, camera):
    versions = registry["versions"]
    with server.client() as http:
        serving = http.get("/api/v1/models").json()["parts"]["gesture"]["version"]
        before = _infer(http, camera)
        assert before["models"]["gesture"] == serving
        for bad, reason in (
                (versions["wide"], "input must be 'features' (N, 127), the hand features of 21 landmarks; "
                                   "got [('features', ['batch', 100])]"),
                (versions["nometa"], "holotune.gesture.input=None: not a landmark gesture head"),
                (versions["retagged"], f"class names {FIST} in the ONNX metadata, the version's tag "
                                       "holotune.class_names says ['none', 'fist', 'peace']")):
            _set_alias(registry, bad)
            r = http.post("/api/v1/models/reload", headers=server.auth)
            assert r.status_code == 200
            gesture = r.json()["parts"]["gesture"]
            assert gesture["changed"] is False and gesture["version"] == serving
            assert gesture["error"].startswith(f"version {bad} not served (still serving {serving}): ")
            assert reason in gesture["error"], gesture["error"]
            state = http.get("/api/v1/models").json()["parts"]["gesture"]
            assert state["error"] == gesture["error"] and state["failed_version"] == bad
            after = _infer(http, camera)
            assert after["models"]["gesture"] == serving and _labels(after) == _labels(before)
        _set_alias(registry, serving)
        assert http.post("/api/v1/models/reload", headers=server.auth).json()["parts"]["gesture"]["error"] is None


def test_video_and_stream_routes_carry_the_gestures(server, registry, camera, tmp_path):
    """The uploaded-video route and the WebSocket stream give each frame's gestures, from the served head."""
    from test_video_io import write_clip
    from websockets.sync.client import connect

    serving = registry["versions"]["ok"]
    clip = write_clip(tmp_path / "camera.avi", [sample_images()["camera"]] * 3)
    with server.client() as http:
        assert http.get("/api/v1/models").json()["parts"]["gesture"]["version"] == serving
        with http.stream("POST", "/api/v1/infer/video", files={"video": ("camera.avi", clip.read_bytes())}) as r:
            assert r.status_code == 200
            lines = [json.loads(line) for line in r.iter_lines() if line]
    assert len(lines) == 4 and lines[-1]["frames"] == 3 and lines[-1]["models"]["gesture"] == serving
    for line in lines[:3]:
        assert line["models"]["gesture"] == serving and _labels(line) == ["ok", "ok"], line["models"]
    with connect(f"ws://127.0.0.1:{server.port}/api/v1/stream", open_timeout=30) as ws:
        assert json.loads(ws.recv(timeout=30))["models"]["gesture"] == serving
        for _ in range(2):
            ws.send(camera)
            result = json.loads(ws.recv(timeout=30))
            assert result["type"] == "result" and result["models"]["gesture"] == serving
            assert _labels(result) == ["ok", "ok"] and 0.9 < result["right_gesture"]["score"] <= 1.0


def test_infer_cli_prints_gestures(registry, tmp_path, camera, capsys):
    from holotune.cli import main

    image = tmp_path / "camera.jpg"
    image.write_bytes(camera)
    files = registry["files"]
    assert main(["infer", "--json", "--gesture", str(files["fist"]), "--hands", str(files["hand"]), str(image)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["left_gesture"]["label"] == line["right_gesture"]["label"] == "fist"  # the landmark head wins
    assert 0.9 < line["left_gesture"]["score"] <= 1.0
    assert main(["infer", "--json", "--gesture", str(files["fist"]), "--gesture-threshold", "1.0",
                 "--hands", str(files["hand"]), str(image)]) == 0
    assert json.loads(capsys.readouterr().out)["right_gesture"]["label"] == "none"  # below the threshold
    assert main(["infer", "--json", "--gesture", str(files["fist"]), str(image)]) == 0  # stock hands: no hand here
    line = json.loads(capsys.readouterr().out)
    assert line["left_hand"] is None and line["left_gesture"] is None and line["right_gesture"] is None
    assert main(["infer", "--json", "--gesture", str(files["wide"]), str(image)]) == 2
    assert "input must be 'features' (N, 127)" in capsys.readouterr().err
