"""The prune stage: exact unstructured sparsity on the head layers, and structured channel pruning that
respects channel coupling, keeps the stock ONNX signature, reloads, and stays close at small sparsity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from stage_options import prune_options

from holotune.models import create_model
from holotune.models.spec import MODULE_MODELS
from holotune.models.verification import compare_outputs
from holotune.pruning import (
    PruneError,
    PruneReport,
    apply_channel_plan,
    channel_groups,
    check_options,
    load_pruned,
    multiply_adds,
    parameter_count,
    plan_channels,
    prune,
    prune_channels,
    prune_l1,
    removed_count,
)
from holotune.runtime.sessions import ModelSession

ROOT = Path(__file__).resolve().parent.parent


def _outputs(model, x):
    with torch.no_grad():
        return model(x)


def _assert_same(model, got, expected, atol: float = 1e-2) -> None:
    """Every output within ``atol``, compared as the parity checks do (segmentation as probabilities)."""
    for name, a, b in zip(model.output_names, got, expected):
        a, b = (v.numpy() if isinstance(v, torch.Tensor) else v for v in (a, b))
        assert compare_outputs(model.spec, name, a, b) <= atol, name


def _landmark_px(a: torch.Tensor, b: torch.Tensor, per_point: int) -> torch.Tensor:
    """(N, K) xy distance between two landmark outputs, in crop pixels."""
    n = a.shape[0]
    return (a.reshape(n, -1, per_point)[..., :2] - b.reshape(n, -1, per_point)[..., :2]).norm(dim=-1)


# ------------------------------------------------------------------------------------------ l1_norm
@pytest.fixture(scope="module")
def l1_face():
    """face_landmark with 30% of each head layer's weights zeroed, and the layers pruned."""
    model = create_model("face_landmark")
    layers = check_options(model, prune_options(method="l1_norm", sparsity=0.3, layers=None, module="face_mesh"))
    zeros_before = {n: int((getattr(model, n).weight == 0).sum()) for n in layers}
    report = prune_l1(model, layers, 0.3)
    return model, layers, zeros_before, report


def test_l1_norm_zeros_the_requested_share_of_each_head_layer_and_nothing_else(l1_face):
    model, layers, zeros_before, report = l1_face
    stock = create_model("face_landmark")
    # The head layers of both trained outputs, conv weights only (PReLU slopes are not connections).
    assert layers == [n for o in ("landmarks", "face_flag") for n in stock.head_layers[o] if "p_re_lu" not in n]
    for name in layers:
        w = getattr(model, name).weight
        expected = max(round(0.3 * w.numel()), zeros_before[name])  # torch.nn.utils.prune rounds per layer
        assert int((w == 0).sum()) == expected == report["layers"][name]["zeros"]
        kept = w != 0  # the survivors are the largest magnitudes, unchanged
        assert torch.equal(w[kept], getattr(stock, name).weight[kept])
        assert getattr(stock, name).weight[~kept].abs().max() <= getattr(stock, name).weight[kept].abs().min()
    assert report["pruned_layers"]["sparsity"] == pytest.approx(0.3, abs=1e-4)
    assert report["model"]["sparsity"] < report["pruned_layers"]["sparsity"]
    pruned = {f"{n}.weight" for n in layers}
    for key, value in stock.state_dict().items():  # every other tensor bit-identical, no mask buffers left
        assert key in model.state_dict()
        if key not in pruned:
            assert torch.equal(model.state_dict()[key], value), key
    assert set(model.state_dict()) == set(stock.state_dict())


# ----------------------------------------------------------------------------------------- channels
@pytest.mark.parametrize("module", ["face_mesh", "hands"])
def test_channels_at_sparsity_zero_is_the_unpruned_model(module, crops):
    name = MODULE_MODELS[module]
    model, stock, x = create_model(name), create_model(name), crops[name][:1]
    plan = prune_channels(model, 0.0, calibration=torch.cat([x, x.flip(-1)]), multiple=8)
    assert plan["keep"] == {} and plan["removed_groups"] == 0 and plan["groups"] > 0
    assert parameter_count(model) == parameter_count(stock)
    for a, b in zip(_outputs(model, x), _outputs(stock, x)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("module", ["face_mesh", "hands", "pose"])
def test_removing_a_channel_group_that_nothing_reads_leaves_the_outputs_unchanged(module, crops):
    """The coupling is right: silence every layer that reads a group, then remove the group (through
    its residual ADDs, channel PADs, depthwise convs, PReLUs, pools and resizes): outputs stay put."""
    name = MODULE_MODELS[module]
    model, x = create_model(name), crops[MODULE_MODELS[module]][:2]
    groups, pinned = channel_groups(model)
    assert pinned > 0  # the input and output channels
    widest = max(groups, key=lambda g: len(g.site))  # e.g. face: a channel of the residual stream, stage 1 to heads
    picks = [widest, groups[len(groups) // 3], groups[-1]]
    with torch.no_grad():
        for g in picks:
            for s in model.steps:
                layer = getattr(model, s.layer) if s.layer else None
                if s.layer in g.reads:
                    for t, c in g.members:
                        if t == s.op.inputs[0]:
                            layer.weight[:, c] = 0
    expected = _outputs(model, x)
    removed = {m for g in picks for m in g.members}
    keep = {t: [c for c in range(model.tensor_shape(t)[-1]) if (t, c) not in removed]
            for t in {t for t, _ in removed}}
    apply_channel_plan(model, keep)
    assert parameter_count(model) < parameter_count(create_model(name))
    _assert_same(model, _outputs(model, x), expected)


def test_slice_channels_keeps_shapes_layers_and_computed_tensors_consistent(crops):
    """TFLiteModule's public graph view after :meth:`slice_channels`: the recorded shapes, the layers and
    the tensors the model computes agree, and a head-only forward (a cached step list) still runs."""
    model, x = create_model("face_landmark"), crops["face_landmark"][:1]
    model.forward_head(model.forward_features(x), outputs=("landmarks",))  # fills the head-step cache
    plan = plan_channels(model, 0.5, multiple=8)
    model.slice_channels(plan["keep"])
    assert plan["keep"] and all(model.channel_count(t) == len(kept) for t, kept in plan["keep"].items())
    for t, a in model.activations(x).items():  # NCHW inside, NHWC recorded
        shape = model.tensor_shape(t)
        assert (a.shape[1], *a.shape[2:]) == (shape[-1], *shape[1:-1]) if a.dim() == 4 else a.shape == shape, t
    for s in model.steps:
        layer = getattr(model, s.layer) if s.layer else None
        if isinstance(layer, torch.nn.Conv2d):
            assert layer.out_channels == model.channel_count(s.op.outputs[0]), s.layer
            assert layer.in_channels == model.channel_count(s.op.inputs[0]), s.layer
    landmarks, flag = model.forward_head(model.forward_features(x), outputs=("landmarks",))
    assert flag is None and landmarks.shape == _outputs(create_model("face_landmark"), x)[0].shape


@pytest.mark.parametrize("module", ["face_mesh", "hands", "pose"])
def test_half_the_channels_go_and_the_model_still_runs_with_stock_output_shapes(module, crops):
    name = MODULE_MODELS[module]
    model, stock = create_model(name), create_model(name)
    plan = prune_channels(model, 0.5, multiple=8)
    assert plan["removed_groups"] == sum(removed_count(s["size"], 0.5, 8) for s in plan["sites"])
    assert parameter_count(model) < 0.6 * parameter_count(stock)
    assert multiply_adds(model) < 0.75 * multiply_adds(stock)
    for a, b in zip(_outputs(model, crops[name]), _outputs(stock, crops[name])):
        assert a.shape == b.shape and torch.isfinite(a).all()


def test_removed_count_rounds_to_the_multiple_and_keeps_a_group():
    assert removed_count(64, 0.3, 8) == 16  # 19.2 -> 16
    assert removed_count(16, 0.25, 8) == 8  # 4 -> half up to 8, not to even (0)
    assert removed_count(16, 0.2, 8) == 0
    assert removed_count(24, 0.99, 8) == 16  # one multiple is kept
    assert removed_count(8, 0.9, 8) == 0
    assert removed_count(10, 0.95) == 9


def test_small_sparsity_stays_close_when_calibrated(crops):
    """20% of each site's channels out of face_landmark: the refit keeps landmarks within ~1 px; pruning by
    weight L1 alone moves them by ~25 px (192-px crops; calibrated on the same 3 crops and their mirrors)."""
    x = crops["face_landmark"]
    stock = create_model("face_landmark")
    expected = _outputs(stock, x)
    calibrated, weights_only = create_model("face_landmark"), create_model("face_landmark")
    plan = prune_channels(calibrated, 0.2, calibration=torch.cat([x, x.flip(-1)]), multiple=8)
    prune_channels(weights_only, 0.2, multiple=8)
    assert plan["removed_groups"] > 0 and parameter_count(calibrated) == parameter_count(weights_only)
    refit = _landmark_px(_outputs(calibrated, x)[0], expected[0], 3)
    plain = _landmark_px(_outputs(weights_only, x)[0], expected[0], 3)
    assert refit.mean() < 2.0 and refit.max() < 5.0
    assert refit.mean() < plain.mean() / 5
    flag, flag_stock = _outputs(calibrated, x)[1].flatten(), expected[1].flatten()  # logits 11-27 on these crops
    assert torch.equal(flag > 0, flag_stock > 0) and ((flag - flag_stock).abs() < 0.25 * flag_stock.abs()).all()


def test_channel_layers_restrict_pruning_to_the_named_layers():
    model = create_model("face_landmark")
    branch = ["conv2d_19", "p_re_lu_19", "depthwise_conv2d_18", "conv2d_20", "p_re_lu_20"]  # the mesh head's 32 channels
    before = {n: p.shape for n, p in model.named_parameters()}
    plan = prune_channels(model, 0.5, branch, multiple=8)
    assert [s["size"] for s in plan["sites"]] == [32] and plan["removed_groups"] == 16
    changed = {n.split(".")[0] for n, p in model.named_parameters() if p.shape != before[n]}
    assert changed == set(branch) | {"conv2d_21"}  # conv2d_21 reads the branch: its input columns go


# -------------------------------------------------------------------------------------- the stage
def test_channels_stage_writes_a_smaller_model_with_the_stock_signature(shards, tmp_path, crops):
    stock = create_model("face_landmark")
    torch.save(stock.state_dict(), tmp_path / "model.pt")
    out = tmp_path / "pruned"
    report = prune(prune_options(method="channels", sparsity=0.25, layers=None, calibration_samples=8, module="face_mesh",
                            model=tmp_path / "model.pt", out_dir=out, shards_dir=shards / "shards",
                            manifest=shards / "interim" / "manifest.jsonl", split="val", latency_runs=5))
    assert isinstance(report, PruneReport)
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report.to_dict()))
    footprint = report.footprint
    assert footprint.params["after"] < 0.8 * footprint.params["before"]
    assert footprint.macs["after"] < footprint.macs["before"]
    for kind in ("state_dict", "onnx"):
        assert footprint.sizes[kind]["after"]["bytes"] < 0.8 * footprint.sizes[kind]["before"]["bytes"]
    assert report.sparsity_reached == pytest.approx(report.channels["removed_groups"] / report.channels["groups"])
    assert report.calibration.startswith("8 crops of the train split")
    assert set(footprint.latency_ms) == {"before", "after"} and footprint.speedup > 0
    metrics = report.metrics
    assert metrics.split == "val" and metrics.before["n"] == metrics.after["n"] > 0
    assert metrics.change["nme"] == pytest.approx(metrics.after["nme"] - metrics.before["nme"])
    assert report.summary().startswith("prune: channels 0.25 -> reached ") and "val: nme " in report.summary()
    # The pruned model reloads from model.pt, and its ONNX file is one the runtime accepts in place of the stock one.
    model = load_pruned(out / "model.pt", "face_landmark")
    assert parameter_count(model) == footprint.params["after"]
    session = ModelSession(stock.spec, out / "model.onnx")  # raises unless input/output names and shapes are stock
    got = session.run(crops["face_landmark"].numpy())
    _assert_same(model, [got[n] for n in model.output_names], _outputs(model, crops["face_landmark"]))
    with pytest.raises(PruneError, match="holds a pruned 'face_landmark', not 'hand_landmark_full'"):
        load_pruned(out / "model.pt", "hand_landmark_full")
    with pytest.raises(PruneError, match="plain state_dict"):
        load_pruned(tmp_path / "model.pt")


@pytest.mark.parametrize("overrides, message", [
    ({"method": "l1_norm", "sparsity": 1.0}, r"prune.sparsity must be in \[0, 1\), got 1.0"),
    ({"method": "l1_norm", "sparsity": -0.1}, r"prune.sparsity must be in \[0, 1\), got -0.1"),
    ({"method": "channels", "sparsity": "0.3"}, r"prune.sparsity must be in \[0, 1\), got '0.3'"),
    ({"method": "l2_norm", "sparsity": 0.3}, r"prune.method: unknown method 'l2_norm'; one of \['l1_norm', 'channels'\]"),
    ({"method": "l1_norm", "sparsity": 0.3, "layers": ["conv2d_99"]},
     r"prune.layers: no layer named 'conv2d_99' in face_landmark"),
    ({"method": "channels", "sparsity": 0.3, "layers": ["conv2d_99"]}, r"prune.layers: no layer named 'conv2d_99'"),
    ({"method": "l1_norm", "sparsity": 0.3, "layers": ["p_re_lu_19"]},
     r"'p_re_lu_19' is a PReLU; l1_norm prunes Conv2d/Linear"),
    ({"method": "channels", "sparsity": 0.3, "channel_multiple": 0},
     r"prune.channel_multiple must be an integer >= 1, got 0"),
])
def test_bad_options_fail_naming_the_value(overrides, message):
    with pytest.raises(PruneError, match=message):
        check_options(create_model("face_landmark"), prune_options(**{"module": "face_mesh", "layers": None, **overrides}))


def test_bad_module_or_missing_model_fails_before_any_work(tmp_path):
    with pytest.raises(PruneError, match="prune.module: unknown module 'feet'"):
        prune(prune_options(module="feet", model=None, out_dir=tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match=f"prune.model: {tmp_path / 'nope.pt'} does not exist"):
        prune(prune_options(module="face_mesh", model=tmp_path / "nope.pt", out_dir=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_stage_script_writes_the_report(shards, tmp_path):
    torch.save(create_model("face_landmark").state_dict(), tmp_path / "model.pt")
    out = tmp_path / "pruned"
    overrides = [f"prune.model={tmp_path / 'model.pt'}", f"prune.out_dir={out}",
                 f"prune.shards_dir={shards / 'shards'}", f"prune.manifest={shards / 'interim' / 'manifest.jsonl'}",
                 "prune.sparsity=0.5", f"hydra.run.dir={tmp_path}", "hydra.output_subdir=null",
                 "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
    done = subprocess.run([sys.executable, str(ROOT / "stages" / "prune.py"), *overrides], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "model.pt", "report.json"]
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "l1_norm" and report["sparsity_reached"] == pytest.approx(0.5, abs=1e-4)
    # The zeros survive the save (the stock layout reloads) and the ONNX export (each pruned weight is in the file).
    model = create_model("face_landmark", checkpoint_path=out / "model.pt")
    initializers = [numpy_helper.to_array(t) for t in onnx.load(str(out / "model.onnx")).graph.initializer]
    for name, entry in report["sparsity_detail"]["layers"].items():
        w = getattr(model, name).weight.detach().numpy()
        assert (w == 0).sum() == entry["zeros"] >= round(0.5 * w.size)
        assert any(i.shape == w.shape and np.array_equal(i, w) for i in initializers), name
    x = torch.rand(2, 3, 192, 192)
    got = ModelSession(model.spec, out / "model.onnx").run(x.numpy())
    _assert_same(model, [got[n] for n in model.output_names], _outputs(model, x))
    assert report["sizes"]["onnx"]["after"]["bytes"] == report["sizes"]["onnx"]["before"]["bytes"]  # zeros are stored
    assert report["sizes"]["onnx"]["after"]["gzip_bytes"] < report["sizes"]["onnx"]["before"]["gzip_bytes"]
    assert "not faster" in report["note"]
    assert report["metrics"] is None and "split 'test' has no labelled face_mesh samples" in report["metrics_note"]
    assert done.stdout.startswith("prune: l1_norm 0.5 -> reached 0.500")
    bad = subprocess.run([sys.executable, str(ROOT / "stages" / "prune.py"), *overrides, "prune.method=magic"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert bad.returncode == 1 and "prune: prune.method: unknown method 'magic'" in bad.stderr
    assert "Traceback" not in bad.stderr
