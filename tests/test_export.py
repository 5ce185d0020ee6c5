"""ONNX export: the stock signature, a dynamic batch, PReLU in the form ORT runs fast."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from holotune.export import SplitPReLU, export_onnx, exportable
from holotune.models import create_model
from holotune.models.verification import run_onnx


@pytest.mark.parametrize("high, folded", [(0.7, True), (1.0, True), (1.5, False)])
def test_split_prelu_equals_prelu(high, folded):
    prelu = nn.PReLU(8)
    with torch.no_grad():
        prelu.weight.copy_(torch.linspace(-0.5, high, 8))
    split = SplitPReLU(prelu)
    assert split.fold_relu is folded  # relu((1-a)x) = (1-a)relu(x) only while every a <= 1
    x = torch.randn(4, 8, 5, 5) * 3
    torch.testing.assert_close(split(x), prelu(x), rtol=0, atol=1e-6)


def test_exportable_swaps_prelu_without_touching_the_model():
    model = create_model("face_landmark")
    export_model = exportable(model)
    assert not any(isinstance(m, nn.PReLU) for m in export_model.modules())
    assert isinstance(model.p_re_lu_1, nn.PReLU)  # the training model keeps nn.PReLU
    x = torch.rand(2, *model.input_shape)
    with torch.no_grad():
        for a, b in zip(export_model(x), model(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def face_onnx(tmp_path_factory):
    model = create_model("face_landmark")
    return model, export_onnx(model, tmp_path_factory.mktemp("onnx") / "face_landmark.onnx")


def test_onnx_has_the_stock_signature_and_a_dynamic_batch(face_onnx):
    model, path = face_onnx
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["input"]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 192, 192]
    assert [o.name for o in graph.output] == ["landmarks", "face_flag"]
    ops = {n.op_type for n in graph.node}
    assert "PRelu" not in ops and "Conv" in ops


@pytest.mark.parametrize("batch", [1, 3, 7])
def test_onnx_runs_at_any_batch(face_onnx, batch):
    model, path = face_onnx
    x = torch.rand(batch, *model.input_shape)
    with torch.no_grad():
        expected = [t.numpy() for t in model(x)]
    for got, want in zip(run_onnx(path, x.numpy()), expected):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)


def test_old_opset_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="opset 17 is too old"):
        export_onnx(create_model("hand_recrop"), tmp_path / "x.onnx", opset=17)


def test_fine_tuned_export_keeps_the_signature_and_matches_torch(tmp_path):
    from holotune.export import export_finetuned

    model = create_model("face_landmark")
    with torch.no_grad():  # stands in for a merged LoRA update of the mesh head
        model.conv2d_21.bias.add_(0.5)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    report = export_finetuned("face_mesh", tmp_path / "model.pt", tmp_path / "face.onnx")
    assert max(report["parity"].values()) < 1e-3 and report["bytes"] > 1_000_000
    graph = onnx.load(str(tmp_path / "face.onnx")).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == ["landmarks", "face_flag"]
    x = torch.rand(2, 3, 192, 192)
    got = run_onnx(tmp_path / "face.onnx", x.numpy())[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x)[0].numpy(), atol=1e-3)


def test_export_fails_when_onnx_differs_from_torch(tmp_path, monkeypatch):
    import holotune.export as export_module

    real = export_module.exportable

    def broken(model):  # an export step that changes the numbers
        net = real(model)
        with torch.no_grad():
            net.conv2d_31.bias.add_(1.0)
        return net

    torch.save(create_model("face_landmark").state_dict(), tmp_path / "model.pt")
    monkeypatch.setattr(export_module, "exportable", broken)
    with pytest.raises(export_module.ExportParityError, match=r"face.onnx: ONNX Runtime differs from torch beyond 0.01: face_flag 1"):
        export_module.export_finetuned("face_mesh", tmp_path / "model.pt", tmp_path / "face.onnx")
