"""LoRA through peft: placements, target checks, identity at init, frozen base, merge == unmerged."""

from __future__ import annotations

import pytest
import torch
from stage_options import lora

from holotune.adapters import AdapterError, apply_lora, merge_lora, placement_targets
from holotune.models import create_model


@pytest.mark.parametrize(
    ("module", "model", "placement", "count", "includes"),
    [
        ("face_mesh", "face_landmark", "head", 2, ["conv2d_21", "conv2d_31"]),
        ("face_mesh", "face_landmark", "branch", 10, ["conv2d_16", "conv2d_21", "conv2d_28", "conv2d_31"]),
        ("face_mesh", "face_landmark", "trunk", 25, ["conv2d_1", "conv2d_21", "conv2d_31"]),
        ("hands", "hand_landmark_full", "head", 2, ["conv_landmarks", "conv_handflag"]),
        ("pose", "pose_landmark_full", "head", 2, ["convld_3d", "conv_poseflag"]),
    ],
)
def test_placements(module, model, placement, count, includes):
    targets = placement_targets(create_model(model), module, placement)
    assert len(targets) == count and set(includes) <= set(targets)
    assert not any(t.startswith("depthwise") for t in targets)


def test_adapter_starts_as_identity_and_only_adapters_train():
    model = create_model("face_landmark")
    x = torch.rand(2, 3, 192, 192)
    with torch.no_grad():
        before = [t.clone() for t in model(x)]
    stock = {k: v.clone() for k, v in model.state_dict().items()}
    peft_model = apply_lora(model, "face_mesh", lora(r=4, placement="branch"))
    with torch.no_grad():
        for a, b in zip(peft_model(x), before):
            assert torch.equal(a, b)  # lora_B starts at zero
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        loss = peft_model(x)[0].pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    base = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
            for k, v in peft_model.state_dict().items() if "lora_" not in k}
    for key, value in stock.items():
        assert torch.equal(base[key], value), key  # every stock weight bit-identical
    with torch.no_grad():
        unmerged = [t.clone() for t in peft_model(x)]
        merged_model = merge_lora(peft_model)
        merged = merged_model(x)
    assert type(merged_model).__name__ == "TFLiteModule"
    assert not torch.equal(unmerged[0], before[0])  # training moved the output
    for a, b in zip(merged, unmerged):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (lora(target_modules=("conv2d_does_not_exist",)), "no layer named 'conv2d_does_not_exist'"),
        (lora(target_modules=("depthwise_conv2d_1",)), "'depthwise_conv2d_1' is a depthwise Conv2d"),
        (lora(r=0), "lora_rank must be >= 1, got 0"),
        (lora(placement="everywhere"), "unknown lora_placement 'everywhere'"),
    ],
)
def test_bad_lora_options_are_refused_by_name(options, message):
    with pytest.raises(AdapterError, match=message):
        apply_lora(create_model("face_landmark"), "face_mesh", options)
