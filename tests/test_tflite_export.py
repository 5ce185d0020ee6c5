"""Writing weights back into MediaPipe's own .tflite: byte-identical for stock weights, TFLite == torch on
real crops for a merged LoRA model, and clear refusals for what the file cannot hold."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from stage_options import lora

from holotune.adapters import apply_lora, merge_lora
from holotune.cli import main as cli_main
from holotune.export import ExportParityError
from holotune.models import create_model, read_tflite
from holotune.models.factory import tflite_path
from holotune.models.verification import DEFAULT_TOLERANCE
from holotune.pruning.channels.plan import prune_channels
from holotune.tflite_export import (
    FLOAT16_RTOL,
    TFLiteExportError,
    export_tflite,
    weight_slots,
    write_tflite,
)

LANDMARK_MODELS = {"face_mesh": "face_landmark", "hands": "hand_landmark_full", "pose": "pose_landmark_full"}


def merged_lora(module: str, scale: float = 0.02, seed: int = 0):
    """A merged LoRA model as the finetune stage leaves it: the stock graph, the head branch's weights moved."""
    peft_model = apply_lora(create_model(LANDMARK_MODELS[module]), module, lora(r=4, lora_alpha=8, placement="branch"))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:  # B starts at zero (a no-op adapter)
                param.copy_(scale * torch.randn(param.shape, generator=generator))
    return merge_lora(peft_model).eval()


@pytest.mark.parametrize("name", ["face_landmark", "hand_landmark_full", "pose_landmark_full", "pose_detection"])
def test_stock_weights_write_back_to_the_identical_file(name, tmp_path):
    record = write_tflite(create_model(name), tmp_path / f"{name}.tflite")
    assert record["weights_changed"] == 0
    assert (tmp_path / f"{name}.tflite").read_bytes() == tflite_path(name).read_bytes()


def test_float16_weights_stay_float16_and_bias_and_prelu_map_to_their_tensors():
    model = create_model("face_landmark")
    slots = {s.parameter: s for s in weight_slots(model)}
    assert len(slots) == sum(1 for _ in model.parameters())
    assert {s.dtype for s in slots.values()} == {"float16"}  # the stock file stores every weight as float16
    conv = model.conv2d_21
    assert slots["conv2d_21.weight"].shape == (conv.out_channels, *conv.kernel_size, conv.in_channels)  # OHWI
    assert slots["conv2d_21.bias"].shape == (conv.out_channels,)
    prelu = next(n for n, m in model.named_modules() if isinstance(m, torch.nn.PReLU))
    assert int(np.prod(slots[f"{prelu}.weight"].shape)) == getattr(model, prelu).num_parameters


@pytest.mark.parametrize("module", ["face_mesh", "hands", "pose"])
def test_a_merged_lora_model_written_back_runs_in_tflite_as_in_torch(module, tmp_path):
    model = merged_lora(module)
    stock = tflite_path(LANDMARK_MODELS[module])
    record = export_tflite(model, tmp_path / stock.name)
    assert record["weights_changed"] > 0
    out = tmp_path / stock.name
    # a drop-in: the stock size, ops, tensor names and shapes, and different weights
    assert out.stat().st_size == stock.stat().st_size and out.read_bytes() != stock.read_bytes()
    new, old = read_tflite(out), read_tflite(stock)
    assert [op.kind for op in new.ops] == [op.kind for op in old.ops]
    assert [(t.name, t.shape, t.dtype) for t in new.tensors.values()] == \
           [(t.name, t.shape, t.dtype) for t in old.tensors.values()]
    # the float16 bound against the float32 module; the write itself is exact up to the interpreter's own error
    assert all(v <= record["bounds"][k] for k, v in record["parity"].items())
    crop = max(model.spec.input_size)
    assert record["bounds"]["landmarks"] <= FLOAT16_RTOL * 2 * crop  # ~1 % of the crop (points may lie outside it)
    assert record["parity"]["landmarks"] <= 0.5  # measured 0.01-0.2 px: float16 rounding is far below a pixel
    assert max(record["parity_float16_weights"].values()) <= DEFAULT_TOLERANCE
    final = model.head_layers[model.output_names[0]][-1]  # the head's final layer really changed, in float16
    slot = next(s for s in weight_slots(model, old) if s.parameter == f"{final}.weight")
    assert new.tensors[slot.storage].data.dtype == np.float16
    assert not np.array_equal(new.tensors[slot.storage].data, old.tensors[slot.storage].data)


def test_the_parity_check_catches_a_file_that_does_not_match(tmp_path, monkeypatch):
    import holotune.models.verification as verification

    real = verification.run_tflite

    def stock_instead(spec, inputs, num_threads=1, path=None):  # a writer that silently wrote nothing
        return real(spec, inputs, num_threads)

    monkeypatch.setattr(verification, "run_tflite", stock_instead)
    with pytest.raises(ExportParityError, match="TFLite interpreter differs from torch beyond the bound: landmarks"):
        export_tflite(merged_lora("face_mesh", scale=0.05), tmp_path / "face_landmark.tflite")


def test_a_changed_sparse_weight_is_refused_and_an_unchanged_one_is_kept(tmp_path):
    model = create_model("pose_detection")  # 38 of its weights are stored sparse (DENSIFY)
    slots = weight_slots(model)
    sparse = next(s for s in slots if s.sparse)
    dense = next(s for s in slots if not s.sparse and s.parameter.endswith(".weight"))
    with torch.no_grad():
        model.get_parameter(dense.parameter).mul_(1.5)
    assert write_tflite(model, tmp_path / "a.tflite")["weights_changed"] == 1  # dense change: written
    with torch.no_grad():
        model.get_parameter(sparse.parameter).add_(0.01)
    with pytest.raises(TFLiteExportError, match=rf"{sparse.parameter} changed, and the stock file stores it sparse"):
        write_tflite(model, tmp_path / "b.tflite")
    assert not (tmp_path / "b.tflite").exists()


def test_a_channel_pruned_model_is_refused_naming_the_graph_change(tmp_path):
    model = create_model("face_landmark")
    pruned = copy.deepcopy(model)
    prune_channels(pruned, 0.25, list(model.head_layers["landmarks"]))
    with pytest.raises(TFLiteExportError, match=r"the graph changed .*channel pruning.*export the pruned model as ONNX"):
        write_tflite(pruned, tmp_path / "face_landmark.tflite")


def test_unmerged_adapters_and_unstorable_values_are_refused(tmp_path):
    peft_model = apply_lora(create_model("face_landmark"), "face_mesh", lora(r=2, lora_alpha=4))
    with pytest.raises(TFLiteExportError, match=r"no place in the stock .tflite file \(unmerged LoRA"):
        write_tflite(peft_model.get_base_model(), tmp_path / "x.tflite")
    model = create_model("face_landmark")
    with torch.no_grad():
        model.conv2d_21.weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(TFLiteExportError, match="conv2d_21.weight holds NaN"):
        write_tflite(model, tmp_path / "x.tflite")
    with torch.no_grad():
        model.conv2d_21.weight[0, 0, 0, 0] = 1e6
    with pytest.raises(TFLiteExportError, match=r"conv2d_21.weight reaches 1e\+06, beyond float16"):
        write_tflite(model, tmp_path / "x.tflite")
    assert not (tmp_path / "x.tflite").exists()


def test_models_pull_errors_are_clear(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = cli_main(["models", "pull", "holotune-face_mesh", "--format", "tflite", "--out", str(tmp_path),
                     "--tracking-uri", uri])
    assert code == 2 and "expected <name>@<alias> or <name>/<version>" in capsys.readouterr().err
    code = cli_main(["models", "pull", "holotune-face_mesh@champion", "--format", "tflite", "--out", str(tmp_path),
                     "--tracking-uri", uri])
    assert code == 2 and "holotune-face_mesh has no alias 'champion'" in capsys.readouterr().err
