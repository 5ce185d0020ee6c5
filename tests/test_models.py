"""The model factory: real layers with Keras names, the trunk/head seam, any batch, trainable."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from holotune.models import MODEL_SPECS, UnknownModelError, create_model, list_models, tflite_path

MEDIAPIPE_HOLISTIC_MODELS = [
    "pose_detection",
    "pose_landmark_full",
    "face_detection_short_range",
    "face_landmark",
    "hand_recrop",
    "hand_landmark_full",
]
# Parameter element counts, weights and biases, zeros included (docs/tflite_port.md §6).
EXPECTED_PARAMS = {
    "pose_detection": 2_965_314,
    "pose_landmark_full": 3_169_489,
    "face_detection_short_range": 101_390,
    "face_landmark": 604_685,
    "hand_recrop": 27_012,
    "hand_landmark_full": 2_715_680,
}


def test_factory_lists_every_model_holistic_runs():
    assert list_models() == MEDIAPIPE_HOLISTIC_MODELS


def test_models_come_from_the_installed_mediapipe_wheel():
    for name in list_models():
        path = tflite_path(name)
        assert path.is_file() and "site-packages/mediapipe/modules" in path.as_posix()


def test_unknown_model_is_a_clear_error():
    with pytest.raises(UnknownModelError, match="unknown model 'face_mesh_v2'; known models: pose_detection"):
        create_model("face_mesh_v2")


@pytest.mark.parametrize("name", MEDIAPIPE_HOLISTIC_MODELS)
def test_weights_are_parameters_of_standard_layers(models, name):
    model = models[name]
    assert sum(p.numel() for p in model.parameters()) == EXPECTED_PARAMS[name]
    owners = {type(m) for m in model.modules() if any(True for _ in m.parameters(recurse=False))}
    assert owners <= {nn.Conv2d, nn.Linear, nn.PReLU}
    # Every parameter is trainable and named after its Keras layer ("conv2d_21.weight").
    for pname, p in model.named_parameters():
        assert p.requires_grad and p.dtype == torch.float32
        assert pname.rsplit(".", 1)[0] in model.layer_info


@pytest.mark.parametrize(
    ("name", "head", "final_layer"),
    [
        ("face_landmark", "landmarks", "conv2d_21"),
        ("face_landmark", "face_flag", "conv2d_31"),
        ("hand_landmark_full", "landmarks", "conv_landmarks"),
        ("hand_landmark_full", "hand_flag", "conv_handflag"),
        ("hand_landmark_full", "handedness", "conv_handedness"),
        ("hand_landmark_full", "world_landmarks", "conv_world_landmarks"),
        ("pose_landmark_full", "landmarks", "convld_3d"),
        ("pose_landmark_full", "pose_flag", "conv_poseflag"),
        ("pose_landmark_full", "world_landmarks", "convworld_3d"),
        ("pose_landmark_full", "heatmap", "output_heatmap"),
        ("pose_landmark_full", "segmentation", "output_segmentation"),
        ("hand_recrop", "crop", "output_crop"),
    ],
)
def test_heads_end_at_the_named_layers(models, name, head, final_layer):
    assert models[name].head_layers[head][-1] == final_layer


def test_head_branches_and_seams(models):
    face = models["face_landmark"]
    assert len(face.head_layers["landmarks"]) == 15  # the mesh branch from the shared 6x6x128 trunk tensor
    hand = models["hand_landmark_full"]
    assert all(len(layers) == 1 for layers in hand.head_layers.values())
    assert isinstance(hand.conv_landmarks, nn.Linear) and hand.conv_landmarks.in_features == 1152


@pytest.mark.parametrize("name", MEDIAPIPE_HOLISTIC_MODELS)
def test_forward_features_then_head_equals_forward(models, crops, name):
    model, x = models[name], crops[name]
    with torch.no_grad():
        features = model.forward_features(x)
        split = model.forward_head(features)
        full = model(x)
    assert list(features) == model.feature_names
    for a, b in zip(split, full):
        assert torch.equal(a, b)


def test_seam_features_have_the_documented_shapes(models, crops):
    with torch.no_grad():
        face = models["face_landmark"].forward_features(crops["face_landmark"])
        hand = models["hand_landmark_full"].forward_features(crops["hand_landmark_full"])
    assert {k: tuple(v.shape) for k, v in face.items()} == {"p_re_lu_15": (3, 128, 6, 6)}
    assert {k: tuple(v.shape) for k, v in hand.items()} == {"global_average_pooling2d": (3, 1152)}


@pytest.mark.parametrize("name", MEDIAPIPE_HOLISTIC_MODELS)
def test_output_shapes_follow_the_spec_at_any_batch(models, name):
    model = models[name]
    for batch in (1, 5):
        with torch.no_grad():
            outs = model(torch.rand(batch, *model.input_shape))
        assert [tuple(o.shape) for o in outs] == [(batch, *o.shape) for o in MODEL_SPECS[name].outputs]


@pytest.mark.parametrize("name", ["face_landmark", "hand_landmark_full", "pose_landmark_full", "pose_detection"])
def test_backward_reaches_every_parameter(crops, name):
    model = create_model(name).train()
    x = crops[name][:2].clone().requires_grad_(True)
    loss = sum(o.float().pow(2).mean() for o in model(x))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert torch.isfinite(x.grad).all()


def test_checkpoint_round_trip(tmp_path, models, crops):
    model = create_model("hand_recrop")
    with torch.no_grad():
        model.output_crop.bias.add_(1.0)
    torch.save(model.state_dict(), tmp_path / "hand_recrop.pt")
    restored = create_model("hand_recrop", checkpoint_path=tmp_path / "hand_recrop.pt")
    x = crops["hand_recrop"]
    with torch.no_grad():
        assert torch.equal(restored(x)[0], model(x)[0])
        assert not torch.equal(restored(x)[0], models["hand_recrop"](x)[0])


def test_module_api_works_after_dtype_and_device_moves(crops):
    # nn.Module.to()/.double() go through nn.Module._apply: the converter must not shadow it.
    model = create_model("hand_recrop").to("cpu").double()
    with torch.no_grad():
        out = model(crops["hand_recrop"].double())[0]
    assert out.dtype == torch.float64


def test_forward_head_can_compute_only_some_outputs(models, crops):
    model, x = models["pose_landmark_full"], crops["pose_landmark_full"]
    with torch.no_grad():
        features = model.forward_features(x)
        full = model.forward_head(features)
        partial = model.forward_head(features, ("landmarks", "pose_flag"))
    assert torch.equal(partial[0], full[0]) and torch.equal(partial[1], full[1])
    assert partial[2] is None and partial[3] is None and partial[4] is None  # segmentation etc. not computed
    with pytest.raises(KeyError, match="unknown output"):
        model.forward_head(features, ("mesh",))
