"""One registry for the pipeline, the CLI and the service, and the registry over HTTP, on a real
``holotune serve`` process: the README's flow (a model registered in the workspace's ./mlflow.db,
``holotune models promote`` and ``holotune serve`` run there with no registry flag: v2 serves);
``GET /api/v1/models/{name}/versions`` with the gate figures; ``POST .../promote`` with the token
(hot update, rollback, ``challenger``, the audit log); and the errors: unknown model or version
(404), a failed gate (409, then ``force``), a bad body (422), a registry that cannot be opened (503),
and the serving install without the registry client (503)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from service_harness import TOKEN, ServerProcess, build_registry, jpeg
from test_service_models import FACE, _infer, _stock_face

from holotune.samples import sample_images

SHIFTED_TAGS = {"gate_passed": "true", "metric.shifted.nme.change_pct": "-19.3000",
                "metric.clean.nme.change_pct": "-0.5000", "holotune.job_id": "ft_20250405_face_mesh01"}
FAILED_TAGS = {"gate_passed": "false", "metric.shifted.nme.change_pct": "12.0000"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A workspace whose ./mlflow.db holds holotune-face_mesh v1 stock (champion), v2 shifted (gate
    passed, made by a job; challenger), v3 NaN outputs (gate failed), v4 the hand model."""
    import mlflow

    workspace = tmp_path_factory.mktemp("registry") / "workspace"
    workspace.mkdir()
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    versions = build_registry(workspace, uri)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    for version, tags in ((versions["shifted"], SHIFTED_TAGS), (versions["nan"], FAILED_TAGS)):
        for key, value in tags.items():
            client.set_model_version_tag(FACE, version, key, value)
    client.set_registered_model_alias(FACE, "challenger", versions["shifted"])
    return {"workspace": workspace, "uri": uri, "versions": versions}


@pytest.fixture(scope="module")
def server(registry):
    """The README's flow: `holotune models promote holotune-face_mesh 2`, then `holotune serve`, both
    run in the workspace with neither --tracking-uri nor $MLFLOW_TRACKING_URI."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    cli = subprocess.run([sys.executable, "-m", "holotune.cli", "models", "promote", FACE, "2"],
                         cwd=registry["workspace"], env=env, capture_output=True, text=True, timeout=300)
    server = ServerProcess(registry["workspace"], default_registry=True, args=["--poll-interval", "0"]).start()
    server.cli = cli
    yield server
    server.stop()


@pytest.fixture(scope="module")
def astronaut() -> bytes:
    return jpeg(sample_images()["astronaut"])


def _promote(http, body, token: str | None = TOKEN, name: str = FACE):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.post(f"/api/v1/models/{name}/promote", json=body, headers=headers)


def _champion(http) -> str:
    return http.get(f"/api/v1/models/{FACE}/versions").json()["aliases"]["champion"]


def test_make_demo_promote_serve_uses_one_registry(server, registry):
    assert server.cli.returncode == 0, server.cli.stderr[-2000:]
    assert server.cli.stdout.strip() == f"{FACE}@champion -> version 2"
    with server.client() as http:
        models = http.get("/api/v1/models").json()
    assert models["tracking_uri"] == f"sqlite:///{os.path.realpath(registry['workspace'])}/mlflow.db"
    assert models["parts"]["face_mesh"]["version"] == "2" and models["parts"]["face_mesh"]["error"] is None
    assert not (registry["workspace"] / "jobs" / "mlflow.db").exists()  # no second, empty registry


def test_versions_list_aliases_tags_and_gate_figures(server, registry):
    with server.client() as http:
        r = http.get(f"/api/v1/models/{FACE}/versions")  # a read: no token on loopback
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == FACE and body["alias"] == "champion" and body["serving"] == "2"
    assert body["aliases"] == {"champion": "2", "challenger": "2"}
    versions = {v["version"]: v for v in body["versions"]}
    assert list(versions) == ["1", "2", "3", "4"]
    stock, shifted, nan = versions["1"], versions["2"], versions["3"]
    assert stock["stock"] is True and stock["gate"] == {"gate_passed": None, "metrics": {}} and stock["job_id"] is None
    assert shifted["aliases"] == ["challenger", "champion"] and shifted["tags"]["note"] == "landmarks + 2 px"
    assert shifted["gate"] == {"gate_passed": True, "metrics": {"clean.nme.change_pct": -0.5,
                                                                "shifted.nme.change_pct": -19.3}}
    assert shifted["job_id"] == "ft_20250405_face_mesh01" and shifted["run_id"]
    assert nan["gate"] == {"gate_passed": False, "metrics": {"shifted.nme.change_pct": 12.0}}


def test_promote_needs_the_token_and_swaps_rolls_back_and_audits(server, registry, astronaut):
    audit_file = registry["workspace"] / "jobs" / "registry_audit.jsonl"
    with server.client() as http:
        v2 = _infer(http, astronaut)
        assert v2["models"]["face_mesh"] == "2"
        missing = _promote(http, {"version": 1}, token=None)  # loopback, yet promotion needs the token
        assert missing.status_code == 401 and "needs a bearer token" in missing.json()["detail"]
        assert _promote(http, {"version": 1}, token="not-the-token").status_code == 403
        assert _champion(http) == "2" and not audit_file.exists()
        # Rollback: the stock version 1, served at once (no poller: --poll-interval 0).
        r = _promote(http, {"version": 1})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["version"], body["previous"], body["alias"], body["forced"]) == ("1", "2", "champion", False)
        assert body["reload"]["face_mesh"] == {"version": "1", "changed": True, "error": None}
        rolled = _infer(http, astronaut)
        assert rolled["models"]["face_mesh"] == "1"
        np.testing.assert_allclose(np.array(rolled["face"]), _stock_face(astronaut), atol=1e-6)
        assert np.abs(np.array(rolled["face"]) - np.array(v2["face"])).max() > 1e-3
        # The challenger (v2) becomes champion again.
        r = _promote(http, {"version": "challenger"})
        assert r.status_code == 200, r.text
        assert (r.json()["version"], r.json()["previous"]) == ("2", "1")
        assert r.json()["gate"]["gate_passed"] is True
        again = _infer(http, astronaut)
        assert again["models"]["face_mesh"] == "2" and again["face"] == v2["face"]
        audit = http.get(f"/api/v1/models/{FACE}/audit").json()["entries"]
    assert [(e["outcome"], e["requested"], e["version"], e["previous"]) for e in audit] == [
        ("promoted", 1, "1", "2"), ("promoted", "challenger", "2", "1")]
    fingerprint = hashlib.sha256(TOKEN.encode()).hexdigest()[:12]
    for entry in audit:
        assert entry["time"].endswith("Z") and entry["model"] == FACE and entry["alias"] == "champion"
        assert entry["caller"]["address"] == "127.0.0.1" and entry["caller"]["token_sha256"] == fingerprint
        assert entry["forced"] is False and entry["status"] == 200
    assert TOKEN not in audit_file.read_text()
    assert [json.loads(line)["version"] for line in audit_file.read_text().splitlines()] == ["1", "2"]


def test_bad_promotions_are_refused_with_the_reason(server, registry):
    with server.client() as http:
        r = _promote(http, {"version": 1}, name="holotune-nothing")
        assert r.status_code == 404 and r.json()["detail"].startswith("no registered model named 'holotune-nothing' "
                                                                      "in the registry sqlite:///")
        assert http.get("/api/v1/models/holotune-nothing/versions").status_code == 404
        r = _promote(http, {"version": 9})
        assert (r.status_code, r.json()["detail"]) == (404, f"{FACE} has no version 9")
        r = _promote(http, {"version": 3})  # its gate failed
        assert r.status_code == 409
        body = r.json()
        assert body["detail"] == (f"{FACE} version 3 failed its evaluation gate (tag gate_passed=false; "
                                  "shifted.nme.change_pct=12.0); not promoted: send \"force\": true to promote it anyway")
        assert body["version"] == "3" and body["gate"] == {"gate_passed": False,
                                                           "metrics": {"shifted.nme.change_pct": 12.0}}
        assert _champion(http) == "2"
        for bad, field, message in (({"version": "latest"}, "version", "must be a version number (1, 2, ...) or "
                                                                       "'challenger'"),
                                    ({"version": 0}, "version", "must be a version number"),
                                    ({"version": 2, "alias": "staging"}, "alias", "Extra inputs are not permitted"),
                                    ({"version": 2, "force": "yes"}, "force", "valid boolean"),
                                    ({}, "version", "Field required")):
            r = _promote(http, bad)
            assert r.status_code == 422, (bad, r.text)
            [error] = r.json()["detail"]
            assert error["loc"] == ["body", field] and message in error["msg"], (bad, error)
        r = http.get("/api/v1/models/bad'name/versions")
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "name"]
        # Forced: the registry moves; the NaN model fails its smoke test, so v2 keeps serving.
        r = _promote(http, {"version": 3, "force": True})
        assert r.status_code == 200, r.text
        assert (r.json()["version"], r.json()["forced"]) == ("3", True)
        face = r.json()["reload"]["face_mesh"]
        assert face["version"] == "2" and face["changed"] is False and "non-finite values" in face["error"]
        assert _champion(http) == "3"
        assert _promote(http, {"version": 2}).status_code == 200
        audit = http.get(f"/api/v1/models/{FACE}/audit", params={"limit": 4}).json()["entries"]
    assert [(e["outcome"], e["status"], e["version"], e["forced"]) for e in audit] == [
        ("refused", 404, None, False), ("refused", 409, "3", False), ("promoted", 200, "3", True),
        ("promoted", 200, "2", False)]
    assert audit[1]["gate"]["gate_passed"] is False and "failed its evaluation gate" in audit[1]["reason"]


def test_the_cli_applies_the_same_gate_rule_and_takes_challenger(registry, capsys):
    from holotune.cli import main
    from holotune.registry import list_versions

    uri = registry["uri"]
    try:
        assert main(["models", "promote", FACE, "3", "--tracking-uri", uri]) == 2
        assert "version 3 failed its evaluation gate" in capsys.readouterr().err
        assert main(["models", "promote", FACE, "challenger", "--tracking-uri", uri]) == 0
        assert capsys.readouterr().out.strip() == f"{FACE}@champion -> version 2 (challenger)"
        assert main(["models", "versions", FACE, "--tracking-uri", uri]) == 0
        out = capsys.readouterr().out
        assert f"{FACE} v3  aliases: -  gate: FAILED" in out
        assert f"{FACE} v2  aliases: challenger, champion  gate: passed  job: ft_20250405_face_mesh01" in out
        assert "champion" in list_versions(FACE, uri)[1]["aliases"]
    finally:
        import mlflow

        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


def test_a_registry_that_cannot_be_opened_is_503_naming_it(tmp_path):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    corrupt = workspace / "corrupt.db"
    corrupt.write_bytes(b"not an SQLite database, " * 8)
    server = ServerProcess(workspace, tracking_uri=f"sqlite:///{corrupt}",
                           args=["--poll-interval", "0", "--no-finetune-api"], log_name="corrupt-server.log").start()
    try:
        expected = f"cannot open the registry sqlite:///{corrupt}: {corrupt} is not an SQLite database"
        with server.client() as http:
            r = http.get(f"/api/v1/models/{FACE}/versions")
            assert (r.status_code, r.json()) == (503, {"detail": expected})
            r = _promote(http, {"version": 2})
            assert (r.status_code, r.json()) == (503, {"detail": expected})
            face = http.get("/api/v1/models").json()["parts"]["face_mesh"]  # inference goes on, on the stock model
            assert face["version"] is None and expected in face["error"]
    finally:
        server.stop()


def test_a_folder_as_registry_is_refused_at_once(tmp_path):
    """MLflow itself retries a sqlite path it cannot open for about 100 s; the check answers first."""
    from holotune.registry import RegistryUnavailable, list_versions, promote

    folder = tmp_path / "registry.db"
    folder.mkdir()
    uri = f"sqlite:///{folder}"
    for call in (lambda: list_versions(FACE, uri), lambda: promote(FACE, 2, tracking_uri=uri)):
        with pytest.raises(RegistryUnavailable) as error:
            call()
        assert str(error.value) == f"cannot open the registry {uri}: {folder} is not a file"


def test_without_the_registry_client_the_endpoints_name_the_extra(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from holotune import extras
    from holotune.service import ServiceSettings, create_app

    monkeypatch.setattr(extras, "registry_missing", lambda: ["mlflow"])
    app = create_app(ServiceSettings(workspace=tmp_path, token="t", poll_interval_s=0, finetune_api=False))
    expected = ("the registry API needs the registry client (missing: mlflow): "
                "pip install 'holotune[registry]'")
    with TestClient(app) as client:
        assert client.get(f"/api/v1/models/{FACE}/versions").json() == {"detail": expected}
        r = client.post(f"/api/v1/models/{FACE}/promote", json={"version": 2}, headers={"Authorization": "Bearer t"})
        assert (r.status_code, r.json()) == (503, {"detail": expected})


def test_the_default_registry_is_the_workspace_s(tmp_path, monkeypatch):
    from holotune.service.settings import ServiceSettings, resolve_settings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_settings(ServiceSettings.from_env(workspace=tmp_path)).tracking_uri == \
        f"sqlite:///{os.path.realpath(tmp_path)}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere/mlflow.db")  # relative: made absolute
    assert resolve_settings(ServiceSettings.from_env(workspace=tmp_path)).tracking_uri == \
        f"sqlite:///{os.path.realpath(tmp_path)}/elsewhere/mlflow.db"
    assert resolve_settings(ServiceSettings.from_env(workspace=tmp_path, tracking_uri="http://mlflow:5000")) \
        .tracking_uri == "http://mlflow:5000"
