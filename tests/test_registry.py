"""The MLflow registry: stock model as version 1 (champion), candidates as challenger, promote and roll back."""

from __future__ import annotations

import shutil

import pytest

from holotune.cli import main
from holotune.registry import CHALLENGER, CHAMPION, RegistryError, list_versions, promote, register_model


@pytest.fixture()
def tracking(tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root (./mlruns) lands in tmp_path
    yield uri
    mlflow.set_tracking_uri(None)


def test_register_promote_rollback_and_serve(tracking, tmp_path, capsys):
    from holotune.export import export_stock_models
    from holotune.runtime import Holistic
    from holotune.samples import sample_images

    candidate = shutil.copy(export_stock_models()["face_landmark"], tmp_path / "face_ft.onnx")
    version = register_model(candidate, "face_mesh", tags={"git_commit": "abc123", "val_nme": "0.08"},
                             tracking_uri=tracking)
    assert version == "2"
    versions = list_versions("holotune-face_mesh", tracking)
    assert [v["version"] for v in versions] == ["1", "2"]
    assert versions[0]["tags"]["stock"] == "true" and CHAMPION in versions[0]["aliases"]
    assert CHALLENGER in versions[1]["aliases"] and versions[1]["tags"]["git_commit"] == "abc123"
    assert main(["models", "promote", "holotune-face_mesh", "2", "--tracking-uri", tracking]) == 0
    assert CHAMPION in list_versions("holotune-face_mesh", tracking)[1]["aliases"]
    with Holistic(face_mesh="models:/holotune-face_mesh@champion") as h:  # serves the promoted version
        assert h.process(sample_images()["astronaut"]).face is not None
    promote("holotune-face_mesh", 1, tracking_uri=tracking)  # rollback
    assert CHAMPION in list_versions("holotune-face_mesh", tracking)[0]["aliases"]
    assert main(["models", "versions", "holotune-face_mesh", "--tracking-uri", tracking]) == 0
    assert "v1 (stock)  aliases: champion" in capsys.readouterr().out


def test_registry_errors_name_the_model_and_version(tracking, capsys):
    with pytest.raises(RegistryError, match="no registered model named 'holotune-nothing'"):
        list_versions("holotune-nothing", tracking)
    assert main(["models", "promote", "holotune-nothing", "3", "--tracking-uri", tracking]) == 2
    assert "holotune-nothing has no version 3" in capsys.readouterr().err
    with pytest.raises(RegistryError, match="unknown module 'faces'"):
        register_model(__file__, "faces", tracking_uri=tracking)


def test_a_registry_whose_version_1_is_not_stock_is_refused(tracking, tmp_path):
    """Version 1 is the rollback target: a registered model that someone else started is not silently adopted."""
    import mlflow

    from holotune.export import export_stock_models
    from holotune.registry import _log_onnx, connect

    mlflow_module, _ = connect(tracking)
    onnx_file = export_stock_models()["face_landmark"]
    _log_onnx(mlflow_module, onnx_file, "face_mesh", "holotune-face_mesh",
              {"holotune.module": "face_mesh"})  # a version 1 without the stock tag
    with pytest.raises(RegistryError, match="holotune-face_mesh: version 1 is not the stock MediaPipe model"):
        register_model(onnx_file, "face_mesh", tracking_uri=tracking)
    assert mlflow.MlflowClient(tracking).get_registered_model("holotune-face_mesh").name == "holotune-face_mesh"
