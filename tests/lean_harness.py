"""The lean serving install, built for real: for tests/test_lean_install.py and benchmarks/lean.py.

Not a conftest: those two import it. The project is copied as the Dockerfile's serve stage copies it
(:data:`SERVE_STAGE_FILES`), the stock-models wheel is built from this (full) install, and
``tools/install_serving.sh`` makes the venv, the same script the image runs. Nothing is faked: the
lean venv's own ``holotune`` runs, with its own site-packages, on a real photograph.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from holotune.stock_models import SERVING_INSTALL, package_stock_models

PROJECT = Path(__file__).resolve().parents[1]
# What the Dockerfile's serve stage copies into the image before it runs the install script.
SERVE_STAGE_FILES = ("requirements.lock", "pyproject.toml", "README.md", SERVING_INSTALL, "src")
# Variables of this (full) environment that must not reach the lean one: it finds everything itself.
ISOLATED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "HOLOTUNE_ONNX_DIR", "MLFLOW_TRACKING_URI",
            "MLFLOW_REGISTRY_URI", "HOLOTUNE_API_TOKEN", "HOLOTUNE_API_TOKEN_FILE", "HOLOTUNE_WORKSPACE",
            "HOLOTUNE_PROJECT_ROOT")


def venv_problem(python: str) -> str | None:
    """Why ``python`` cannot create a virtual environment with pip here, or ``None`` if it can."""
    found = shutil.which(python)
    if found is None:
        return f"{python} is not on PATH"
    done = subprocess.run([found, "-c", "import venv, ensurepip"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return f"{python} cannot create a virtual environment: {done.stderr.strip()[-300:]}"
    return None


def copy_project(target: Path) -> Path:
    """The files the serve stage copies, into ``target`` (no caches, no build leftovers)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in SERVE_STAGE_FILES:
        source, dest = PROJECT / name, target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, ignore=ignore)
        else:
            shutil.copy2(source, dest)
    return target


def build_lean_venv(root: Path, python: str = "python3.11") -> tuple[Path, subprocess.CompletedProcess]:
    """``<root>/venv``: the stock-models wheel built here (reusing this machine's exports, unverified:
    tests/test_stock_models.py verifies it), then ``tools/install_serving.sh`` as the image runs it.
    Returns the venv and the install's completed process (check its return code)."""
    wheels = root / "dist"
    package_stock_models(wheels, verify=False)
    project = copy_project(root / "project")
    env = {**lean_env(root), "PYTHON": shutil.which(python) or python}
    done = subprocess.run(["sh", str(project / SERVING_INSTALL), str(root / "venv"), str(project), str(wheels)],
                          capture_output=True, text=True, env=env, timeout=1800)
    return root / "venv", done


def lean_env(home: Path) -> dict[str, str]:
    """This process's environment without what would leak the full install into the lean one; an
    empty per-machine cache (``XDG_CACHE_HOME``), so the stock models can only come from the wheel."""
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    env["XDG_CACHE_HOME"] = str(home / "cache")
    return env


def photo(target: Path) -> Path:
    """A real photograph (scikit-image's astronaut, from this full install; the lean one has no
    scikit-image) copied to ``target``."""
    found = importlib.util.find_spec("skimage")
    source = Path(next(iter(found.submodule_search_locations))) / "data" / "astronaut.png"
    return Path(shutil.copy(source, target))


def du_bytes(path: Path) -> int:
    """Disk usage of a folder, as ``du`` counts it (allocated blocks; hard links once)."""
    seen, total = set(), 0
    for folder, _, files in os.walk(path):
        for name in (".", *files):  # ".": the folder itself
            st = os.lstat(os.path.join(folder, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def lean_server(venv: Path, workspace: Path, port: int, env: dict[str, str], log: Path):
    """``<venv>/bin/holotune serve`` on 127.0.0.1 (loopback: inference and reads need no token), as a
    :class:`service_harness.ServerProcess` following its default registry; ``with`` starts it,
    ``wait_ready()`` gives the seconds to the first answer."""
    from service_harness import ServerProcess

    return ServerProcess(workspace, command=[str(venv / "bin" / "holotune")], env=env, log_path=log, port=port,
                         token=None, default_registry=True)
