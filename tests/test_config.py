"""The config contract: the committed params.yaml is exactly the composition of conf/."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _tool():
    spec = importlib.util.spec_from_file_location("params_tool", ROOT / "tools" / "params.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_params_yaml_equals_the_composition_of_conf():
    committed = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert committed == _tool().compose_params(ROOT / "conf"), "params.yaml is stale: run `make params`"


def test_dvc_is_set_up_for_hydra_composition():
    config = (ROOT / ".dvc" / "config").read_text()
    assert "[hydra]" in config and "enabled = True" in config
    assert "analytics = false" in config  # no telemetry calls from machines without internet


def test_library_never_imports_hydra():
    for path in (ROOT / "src" / "holotune").rglob("*.py"):
        text = path.read_text()
        assert "import hydra" not in text and "from hydra" not in text and "omegaconf" not in text, path
