"""The ``holotune`` command line: list and verify, human and JSON output, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from holotune.cli import main
from holotune.models import list_models


def test_models_list_json(capsys):
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    assert list(rows) == list_models()
    hand = rows["hand_landmark_full"]
    assert hand["params"] == 2_715_680 and hand["input_shape"] == [1, 3, 224, 224]
    assert hand["head_layers"]["landmarks"] == ["conv_landmarks"] and hand["module"] == "hands"
    assert rows["face_landmark"]["outputs"]["landmarks"]["shape"] == [1, 1, 1404]
    assert rows["pose_detection"]["input_range"] == [-1.0, 1.0]
    assert Path(rows["face_landmark"]["file"]).name == "face_landmark.tflite"


def test_models_list_table(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "face_landmark" in out and "landmarks->conv2d_21" in out and "604,685" in out


def test_models_verify_json_shape(capsys):
    assert main(["models", "verify", "hand_recrop", "face_landmark", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True and list(report["models"]) == ["hand_recrop", "face_landmark"]
    face = report["models"]["face_landmark"]
    assert face["params"] == 604_685
    assert set(face["outputs"]) == {"landmarks", "face_flag"}
    for diffs in face["outputs"].values():
        assert set(diffs) == {"torch_vs_tflite", "onnx_vs_torch", "batch_vs_single"}
        assert all(0 <= v <= 1e-2 for v in diffs.values())


def test_verify_exits_nonzero_when_parity_fails(capsys):
    # A tolerance no float32 port can meet: the command must report failure, not pass silently.
    assert main(["models", "verify", "hand_recrop", "--no-onnx", "--tolerance", "1e-12"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "PARITY FAILED" in out


def test_verify_unknown_model_is_a_usage_error(capsys):
    assert main(["models", "verify", "face_mesh_v2"]) == 2
    assert "unknown model(s) face_mesh_v2" in capsys.readouterr().err


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "holotune"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip().startswith("holotune 0.1.0")
