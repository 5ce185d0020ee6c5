"""The stock models as a wheel of their own (``holotune models package``), where the runtime finds them,
what the serving install says when something is missing (the stock models, the ``train`` or ``registry``
extra), and the ONNX facts the runtime reads without the ``onnx`` package."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from holotune.cli import main
from holotune.export import export_stock_models
from holotune.models.spec import MODEL_SPECS
from holotune.runtime.holistic import USED_OUTPUTS
from holotune.runtime.onnx_file import prune_outputs, read_model
from holotune.runtime.sessions import EXPORT_REVISION, MEDIAPIPE_VERSION, _dims
from holotune.stock_models import (
    DIST_NAME,
    PACKAGE,
    PackageError,
    read_wheel,
    verify_exports,
    wheel_filename,
    write_wheel,
)


@pytest.fixture(scope="module")
def stock_onnx() -> dict[str, Path]:
    return export_stock_models()  # once per machine; kept in the user cache


@pytest.fixture(scope="module")
def wheel(stock_onnx, tmp_path_factory) -> Path:
    """The wheel, built through the command line from this machine's exports (verified)."""
    out = tmp_path_factory.mktemp("dist")
    onnx_dir = next(iter(stock_onnx.values())).parent
    assert main(["models", "package", "--out", str(out), "--onnx-dir", str(onnx_dir)]) == 0
    return out / wheel_filename()


def _unpacked(wheel: Path, target: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def _python(code: str, *, pythonpath: Path | None = None, block: tuple[str, ...] = (), **env) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter; ``block``: top-level modules made unimportable (as on the serving
    install: ``import`` fails and ``importlib.util.find_spec`` finds nothing)."""
    prelude = f"import sys\nfor _m in {list(block)!r}:\n    sys.modules[_m] = None\n"
    environ = {k: v for k, v in os.environ.items() if k != "HOLOTUNE_ONNX_DIR"}
    if pythonpath is not None:
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=600,
                          env={**environ, **env})


# ---------------------------------------------------------------- the wheel
def test_the_wheel_holds_the_six_exports_with_their_hashes(wheel, stock_onnx):
    from holotune.models import tflite_path

    assert wheel.name == f"holotune_stock_models-{MEDIAPIPE_VERSION}+r{EXPORT_REVISION}-py3-none-any.whl"
    manifest = read_wheel(wheel)  # every file against RECORD, every model against the manifest
    assert (manifest["package"], manifest["mediapipe"], manifest["export_revision"]) == (PACKAGE, "0.10.21",
                                                                                         EXPORT_REVISION)
    assert manifest["version"] == f"0.10.21+r{EXPORT_REVISION}"
    assert sorted(manifest["models"]) == sorted(MODEL_SPECS)
    for name, entry in manifest["models"].items():
        data = stock_onnx[name].read_bytes()
        assert entry["file"] == f"{name}.onnx" and entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["tflite_sha256"] == hashlib.sha256(tflite_path(name).read_bytes()).hexdigest()
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = f"{PACKAGE}-{manifest['version']}.dist-info"
        assert {f"{dist_info}/METADATA", f"{dist_info}/WHEEL", f"{dist_info}/RECORD", f"{PACKAGE}/__init__.py",
                f"{PACKAGE}/manifest.json"} <= names
        assert len(names) == 5 + len(MODEL_SPECS)
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        assert f"Name: {DIST_NAME}\n" in metadata and f"Version: {manifest['version']}\n" in metadata
        assert "Tag: py3-none-any" in archive.read(f"{dist_info}/WHEEL").decode()


def test_the_same_exports_give_the_same_wheel_bytes(wheel, tmp_path):
    manifest = read_wheel(wheel)
    onnx_dir = _unpacked(wheel, tmp_path / "unpacked") / PACKAGE
    again = write_wheel(onnx_dir, manifest, tmp_path / "again")
    assert again.read_bytes() == wheel.read_bytes()


def test_a_wheel_whose_file_changed_is_refused_naming_the_file(wheel, tmp_path):
    tampered = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data + b"\0" if item.filename.endswith("hand_recrop.onnx") else data)
    with pytest.raises(PackageError, match=r"holotune_stock_models/hand_recrop.onnx does not match its RECORD hash"):
        read_wheel(tampered)
    (tmp_path / "junk.whl").write_bytes(b"not a zip")
    with pytest.raises(PackageError, match=r"junk.whl: not a readable wheel"):
        read_wheel(tmp_path / "junk.whl")


def test_verification_refuses_an_export_that_differs_from_the_tflite(stock_onnx, tmp_path):
    for name, path in stock_onnx.items():
        (tmp_path / path.name).symlink_to(path)
    model = onnx.load(str(stock_onnx["face_landmark"]))
    bias = next(t for t in model.graph.initializer if len(t.dims) == 1 and "conv2d_21" in t.name.lower())
    values = onnx.numpy_helper.to_array(bias) + np.float32(0.5)
    bias.CopyFrom(onnx.numpy_helper.from_array(values, bias.name))
    (tmp_path / "face_landmark.onnx").unlink()
    onnx.save(model, str(tmp_path / "face_landmark.onnx"))
    with pytest.raises(PackageError, match=r"face_landmark.onnx: differs from MediaPipe's .*face_landmark.tflite "
                                           r"beyond 0.01: \{'landmarks'"):
        verify_exports(tmp_path)


def test_package_usage_errors(tmp_path, capsys):
    assert main(["models", "package", "--out", str(tmp_path), "--tolerance", "0"]) == 2
    assert "--tolerance must be > 0, got 0.0" in capsys.readouterr().err


# ---------------------------------------------------------------- where the runtime finds them
def test_the_installed_wheel_is_where_the_runtime_reads_the_stock_models(wheel, tmp_path):
    site = _unpacked(wheel, tmp_path / "site")
    code = ("from holotune.runtime.sessions import stock_model_dir, ensure_stock_models\n"
            "from holotune.runtime import Holistic\nimport numpy as np, json\n"
            "paths = ensure_stock_models()\nh = Holistic(); h.process(np.zeros((64, 64, 3), np.uint8)); h.close()\n"
            "print(json.dumps({'dir': str(stock_model_dir()), 'paths': sorted(str(p) for p in paths.values()),"
            " 'torch': sys.modules.get('torch') is not None}))")
    done = _python(code, pythonpath=site, block=("torch",), XDG_CACHE_HOME=str(tmp_path / "empty-cache"))
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["dir"] == str(site / PACKAGE) and not out["torch"]
    assert out["paths"] == sorted(str(site / PACKAGE / f"{n}.onnx") for n in MODEL_SPECS)
    # $HOLOTUNE_ONNX_DIR comes first.
    done = _python("from holotune.runtime.sessions import stock_model_dir; print(stock_model_dir())",
                   pythonpath=site, HOLOTUNE_ONNX_DIR=str(tmp_path / "mine"))
    assert done.stdout.strip() == str(tmp_path / "mine"), done.stderr[-2000:]


def test_without_torch_and_without_the_wheel_the_message_says_how_to_get_them(tmp_path):
    code = ("from holotune.runtime.sessions import ensure_stock_models, ModelLoadError\n"
            "try:\n    ensure_stock_models()\nexcept ModelLoadError as e:\n    print(e)\n")
    done = _python(code, block=("torch", PACKAGE), XDG_CACHE_HOME=str(tmp_path / "empty-cache"))
    assert done.returncode == 0, done.stderr[-2000:]
    message = done.stdout.strip()
    assert "no pose_detection.onnx, pose_landmark_full.onnx" in message and str(tmp_path / "empty-cache") in message
    assert "pip install 'holotune[train]'" in message and wheel_filename() in message
    assert "holotune models package --out DIR" in message and "HOLOTUNE_ONNX_DIR" in message
    # The command lines say the same, and exit 1 (serve) or 2 (infer) without a traceback.
    (tmp_path / "x.png").write_bytes(b"")
    for argv, rc in ((["infer", str(tmp_path / "x.png")], 2), (["serve", "--port", "1"], 1)):
        done = _python(f"from holotune.cli import main\nsys.exit(main({argv!r}))", block=("torch", PACKAGE),
                       XDG_CACHE_HOME=str(tmp_path / "empty-cache"))
        assert done.returncode == rc and "the stock ONNX models are not installed" in done.stderr, done.stderr[-2000:]
        assert "Traceback" not in done.stderr


def test_a_wheel_for_another_export_revision_is_not_used(wheel, tmp_path):
    site = _unpacked(wheel, tmp_path / "site")
    manifest_path = site / PACKAGE / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "export_revision": EXPORT_REVISION - 1}))
    code = ("from holotune.runtime.sessions import ensure_stock_models, ModelLoadError\n"
            "try:\n    ensure_stock_models()\nexcept ModelLoadError as e:\n    print(e)\n")
    done = _python(code, pythonpath=site, block=("torch",), XDG_CACHE_HOME=str(tmp_path / "empty-cache"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert (f"holds mediapipe 0.10.21 exports of revision {EXPORT_REVISION - 1}; this holotune needs "
            f"0.10.21+r{EXPORT_REVISION}") in done.stdout


# ---------------------------------------------------------------- the extras a command needs
@pytest.mark.parametrize("argv, block, says", [
    (["models", "list"], ("torch",), "holotune models list needs the training install (missing: torch): "
                                     "pip install 'holotune[train]'"),
    (["models", "verify", "face_landmark"], ("torch",), "holotune models verify needs the training install"),
    (["bench", "runtime"], ("mediapipe",), "holotune bench runtime needs the training install (missing: mediapipe)"),
    (["tensorboard", "--logdir", "."], ("tensorboard",), "holotune tensorboard needs the training install"),
    (["models", "versions", "holotune-face_mesh"], ("mlflow",),
     "holotune models versions needs the registry client (missing: mlflow): pip install 'holotune[registry]'"),
])
def test_a_command_whose_extra_is_missing_says_which_and_exits_2(argv, block, says, tmp_path):
    done = _python(f"from holotune.cli import main\nsys.exit(main({argv!r}))", block=block)
    assert done.returncode == 2, done.stderr[-2000:]
    assert says in done.stderr and "Traceback" not in done.stderr


def test_a_registry_uri_without_the_registry_client_says_what_to_install(stock_onnx, tmp_path):
    code = ("from holotune.runtime import Holistic, ModelLoadError\ntry:\n"
            "    Holistic(face_mesh='models:/holotune-face_mesh@champion')\nexcept ModelLoadError as e:\n    print(e)\n")
    done = _python(code, block=("mlflow",))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ("models:/holotune-face_mesh@champion: a registry URI needs the registry client "
                                   "(missing: mlflow): pip install 'holotune[registry]'")


def test_without_the_training_install_the_job_endpoints_answer_503(monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from holotune import extras
    from holotune.service import ServiceSettings, create_app
    from holotune.service.settings import resolve_settings
    from holotune.service.state import Service, ServiceError

    monkeypatch.setattr(extras, "training_missing", lambda: ["torch", "peft"])
    client = TestClient(create_app(ServiceSettings(workspace=tmp_path, token="t")))  # no lifespan: routes only
    detail = "the fine-tuning API needs the training install (missing: torch, peft): pip install 'holotune[train]'"
    for method, path in [("POST", "/api/v1/finetune/start"), ("POST", "/api/v1/model/prune"),
                         ("GET", "/api/v1/finetune/jobs"), ("GET", "/api/v1/finetune/metrics")]:
        r = client.request(method, path, json={})
        assert (r.status_code, r.json()) == (503, {"detail": detail}), (method, path)
    # No project root (a non-editable install) is no reason to refuse to start: there are no jobs to run.
    settings = replace(resolve_settings(ServiceSettings(workspace=tmp_path, token="t")), project_root=None)
    service = Service(settings)
    assert not service.jobs_enabled and service.training_missing == ["torch", "peft"]
    service.release()
    monkeypatch.setattr(extras, "training_missing", lambda: [])
    with pytest.raises(ServiceError, match="no project root with stages/ and conf/ found"):
        Service(settings)


# ---------------------------------------------------------------- ONNX files without the onnx package
@pytest.mark.parametrize("name", list(MODEL_SPECS))
def test_what_the_runtime_reads_from_an_onnx_file_equals_onnx_s_reading(stock_onnx, name):
    model = onnx.load(str(stock_onnx[name]))
    info = read_model(stock_onnx[name].read_bytes())
    assert info.inputs == [(i.name, _dims(i)) for i in model.graph.input]
    assert info.outputs == [(o.name, _dims(o)) for o in model.graph.output]
    assert info.metadata == {p.key: p.value for p in model.metadata_props}


@pytest.mark.parametrize("name", sorted(USED_OUTPUTS))
def test_pruned_outputs_keep_exactly_the_nodes_onnx_s_extractor_keeps(stock_onnx, name):
    import onnxruntime as ort

    keep = USED_OUTPUTS[name]
    data = stock_onnx[name].read_bytes()
    pruned = onnx.load_from_string(prune_outputs(data, keep))
    onnx.checker.check_model(pruned)
    extracted = onnx.utils.Extractor(onnx.load_from_string(data)).extract_model(["input"], keep)
    assert sorted(n.name for n in pruned.graph.node) == sorted(n.name for n in extracted.graph.node)
    assert len(pruned.graph.node) < len(onnx.load_from_string(data).graph.node)
    assert sorted(t.name for t in pruned.graph.initializer) == sorted(t.name for t in extracted.graph.initializer)
    assert sorted(o.name for o in pruned.graph.output) == sorted(keep)
    x = np.random.default_rng(0).random((2, 3, *MODEL_SPECS[name].input_size), np.float32)
    full = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(keep, {"input": x})
    cut = ort.InferenceSession(pruned.SerializeToString(), providers=["CPUExecutionProvider"]).run(keep, {"input": x})
    for a, b in zip(full, cut):
        np.testing.assert_array_equal(a, b)


def test_an_unreadable_onnx_file_is_refused_naming_it(tmp_path):
    from holotune.runtime.sessions import ModelLoadError, ModelSession

    (tmp_path / "bad.onnx").write_bytes(b"\x0f\xff\xff")
    with pytest.raises(ModelLoadError, match=r"bad.onnx: not a readable ONNX model: .*protobuf"):
        ModelSession(MODEL_SPECS["face_landmark"], tmp_path / "bad.onnx")
