"""The export stage: merge LoRA, ONNX with the stock signature, parity, model card, registration."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from stage_options import export_options, lora

from holotune.adapters import apply_lora, merge_lora
from holotune.models import create_model
from holotune.models.factory import tflite_path
from holotune.registry import CHALLENGER, CHAMPION, list_versions, pull_model, sha256
from holotune.release import ReleaseError, release
from holotune.runtime.sessions import stock_model_path


@pytest.fixture()
def finetuned(tmp_path):
    """A face_mesh 'finetune' output: a LoRA adapter with non-zero (random) weights and its merged model.pt."""
    peft_model = apply_lora(create_model("face_landmark"), "face_mesh", lora(r=4, lora_alpha=8))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:  # B starts at zero (a no-op adapter); make the adapter do something
                param.copy_(0.01 * torch.randn(param.shape, generator=generator))
    out = tmp_path / "models" / "face_mesh"
    peft_model.save_pretrained(str(out / "adapter"))
    import copy

    torch.save(merge_lora(copy.deepcopy(peft_model)).state_dict(), out / "model.pt")
    return out


def test_release_merges_exports_documents_and_registers(finetuned, tmp_path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)  # MLflow's artifact root lands in tmp_path
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    metrics = {"split": "test", "primary_metric": "nme", "reference_conditions": ["clean"],
               "bootstrap": {"resamples": 200},
               "gate": {"passed": True, "message": "reference split: nme 2.0 -> 2.01, +0.5%; the gate allows 2% higher"},
               "splits": {name: {"n": 8, "identities": 4,
                                 "baseline": {"nme": 5.0, "nme_ci95_low": 4.0, "nme_ci95_high": 6.0},
                                 "finetuned": {"nme": 4.0, "nme_ci95_low": 3.0, "nme_ci95_high": 5.0},
                                 "delta": {"nme": -1.0, "nme_pct": -20.0, "nme_pct_ci95_low": -25.0,
                                           "nme_pct_ci95_high": -15.0}}
                          for name in ("reference", "shifted", "all")}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    try:
        record = release(export_options(module="face_mesh", model_dir=str(finetuned), out_dir=str(tmp_path / "export"),
                                       metrics=str(tmp_path / "metrics.json"), params={"finetune": {"lora_rank": 4}},
                                       latency_runs=5, tracking_uri=uri,
                                       tags={"holotune.job_id": "ft_20250405_face_mesh01", "gate_passed": "forged"}))
    finally:
        mlflow.set_tracking_uri(None)
    assert record["merge"]["source"] == "adapter"
    assert record["merge"]["merged_vs_unmerged"] < 1e-3 and record["merge"]["merged_vs_model_pt"] < 1e-6
    assert max(record["parity"]["onnx_vs_torch"].values()) < 1e-2
    # the stock signature, so the runtime can swap it in
    exported, stock = onnx.load(record["onnx"]), onnx.load(str(stock_model_path("face_landmark")))
    assert [i.name for i in exported.graph.input] == [i.name for i in stock.graph.input] == ["input"]
    assert [o.name for o in exported.graph.output] == [o.name for o in stock.graph.output]
    # a merged LoRA costs nothing: the same graph, so the same bytes (the benchmark measures latency)
    size = record["size_bytes"]
    assert size["finetuned"] == size["stock"]
    assert not any(node.metadata_props for node in exported.graph.node)  # no build paths in the file
    assert record["latency_ms"]["finetuned"] > 0 and record["latency_ms"]["stock"] > 0
    assert record["key_metrics"]["shifted.nme.change_pct"] == -20.0
    # registered: v1 the stock model (champion), v2 this export (challenger), with tags
    assert record["registered"]["version"] == "2"
    versions = list_versions("holotune-face_mesh", uri)
    assert CHAMPION in versions[0]["aliases"] and versions[0]["tags"]["stock"] == "true"
    assert CHALLENGER in versions[1]["aliases"]
    tags = versions[1]["tags"]
    assert tags["data_hash"] == record["data_hash"] and tags["gate_passed"] == "true"
    assert json.loads(tags["params"]) == {"finetune": {"lora_rank": 4}}
    assert tags["metric.shifted.nme.change_pct"] == "-20.0000" and tags["git_commit"]
    assert tags["holotune.job_id"] == "ft_20250405_face_mesh01"  # export.tags: the service's jobs name themselves
    assert record["registered"]["tags"] == {"holotune.job_id": "ft_20250405_face_mesh01", "gate_passed": "true"}
    card = (tmp_path / "export" / "MODEL_CARD.md").read_text()
    for heading in ("## Data", "## Parameters", "## Metrics", "## Parity", "## Size and latency", "## Limits"):
        assert heading in card
    assert "holotune-face_mesh` version 2, alias `challenger`" in card and "-20.0% [-25.0, -15.0]" in card
    assert json.loads((tmp_path / "export" / "export.json").read_text())["registered"]["version"] == "2"
    # the same weights in MediaPipe's own file: drop-in, same size, checked, registered on the same version
    tflite = record["tflite"]
    assert tflite["drop_in_for"] == "face_landmark.tflite" and tflite["weights_changed"] > 0
    assert tflite["size_bytes"]["finetuned"] == tflite["size_bytes"]["stock"]
    assert all(v <= tflite["parity"]["bounds"][k] for k, v in tflite["parity"]["tflite_vs_torch"].items())
    assert 0.5 < tflite["parity"]["bounds"]["landmarks"] < 0.02 * 192  # 1 % of the landmarks' scale (crop pixels)
    assert tflite["latency_ms"]["finetuned"] > 0 and tflite["latency_ms"]["stock"] > 0
    files = record["files"]
    assert set(files) == {"model.onnx", "model.tflite"}
    for name, f in files.items():
        assert f"`{f['sha256']}`" in card and f["sha256"] == sha256(tmp_path / "export" / name)
        assert tags[f"holotune.sha256.{name.split('.')[1]}"] == f["sha256"]
    pulled = pull_model("holotune-face_mesh@challenger", "tflite", tmp_path / "pulled", uri)
    assert pulled.name == "face_landmark.tflite" and sha256(pulled) == files["model.tflite"]["sha256"]
    assert sha256(pull_model("holotune-face_mesh/2", "onnx", tmp_path / "pulled", uri)) == files["model.onnx"]["sha256"]
    # version 1 (the stock model, the rollback target) carries the stock .tflite
    stock_tflite = pull_model("holotune-face_mesh@champion", "tflite", tmp_path / "stock", uri)
    assert stock_tflite.read_bytes() == tflite_path("face_landmark").read_bytes()


def test_release_refuses_a_stale_adapter(finetuned, tmp_path):
    state = torch.load(finetuned / "model.pt", weights_only=True)
    state["conv2d_21.weight"] += 0.1  # model.pt from another run than adapter/
    torch.save(state, finetuned / "model.pt")
    with pytest.raises(ReleaseError, match="merged differs from .*model.pt by"):
        release(export_options(module="face_mesh", model_dir=str(finetuned), out_dir=str(tmp_path / "e"), register=False))


def test_release_errors_name_the_file(tmp_path):
    with pytest.raises(ReleaseError, match=f"{tmp_path / 'nothing' / 'model.pt'}: no fine-tuned model"):
        release(export_options(module="face_mesh", model_dir=str(tmp_path / "nothing"), out_dir=str(tmp_path / "e"),
                              register=False))
    with pytest.raises(ReleaseError, match="unknown module 'face'"):
        release(export_options(module="face", model_dir=str(tmp_path), out_dir=str(tmp_path / "e"), register=False))
