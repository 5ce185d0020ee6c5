"""Pose fine-tuning keeps the outputs the runtime reads consistent.

* The heatmap the runtime refines landmarks with, and the segmentation, stay bit-identical to stock
  after trunk LoRA is merged (no adapted layer feeds them), so heatmap refinement keeps doing what it
  did: pulling landmarks that are a few heatmap cells off back onto the stock heatmap's peak.
* The auxiliary landmarks (33 hip centre, 34 body-circle point) that video mode tracks the next ROI
  from are derived from hips and shoulders as the stock model places them, and the training crop is
  the ROI the runtime would track from them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from holotune.adapters import LoraOptions, apply_lora, merge_lora, placement_targets
from holotune.data.crops import cut_crop, module_rois, to_crop
from holotune.landmarks import NUM_POSE, PARTS, pose_auxiliary_points
from holotune.models import create_model
from holotune.models.spec import MODEL_SPECS
from holotune.runtime.holistic import refine_from_heatmap

SPEC = MODEL_SPECS["pose_landmark_full"]


@pytest.fixture(scope="module")
def photos():
    """Real photos with the stock Holistic's pose (the pose data's labels are made this way): (image, (33, 4) pose,
    (2, 4) auxiliary landmarks) per photo."""
    from holotune.export import export_stock_models
    from holotune.runtime import Holistic
    from holotune.samples import sample_images

    export_stock_models()
    out = []
    with Holistic() as holistic:
        sessions = holistic.models()
        for image in sample_images().values():
            size = (image.shape[1], image.shape[0])
            roi = holistic.detect_pose(image, size, sessions)
            pose = holistic.pose_landmarks(image, size, roi, sessions)
            out.append((image, pose.landmarks, pose.auxiliary))
    return out


def _tuned_model(seed: int = 0):
    """The stock pose model with trunk LoRA whose B matrices are random (as after training), merged."""
    torch.manual_seed(seed)
    peft_model = apply_lora(create_model("pose_landmark_full"), "pose",
                            LoraOptions(r=4, lora_alpha=8, lora_dropout=0.0, placement="trunk", target_modules=None))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.02)
    return merge_lora(peft_model).eval()


def test_trunk_lora_on_pose_leaves_heatmap_and_segmentation_layers_alone():
    model = create_model("pose_landmark_full")
    targets = set(placement_targets(model, "pose", "trunk"))
    assert targets, "trunk LoRA adapts nothing"
    assert not targets & set(model.layers_feeding(["heatmap", "segmentation"]))
    assert {"convld_3d", "conv_poseflag"} <= targets  # the landmark and presence heads do train


def test_merged_pose_model_keeps_the_stock_heatmap_and_segmentation_exactly(photos):
    stock, tuned = create_model("pose_landmark_full").eval(), _tuned_model()
    image, pose, _ = photos[0]
    size = (image.shape[1], image.shape[0])
    [(_, rect)] = module_rois("pose", np.pad(pose[:, :3], ((0, 543 - NUM_POSE), (0, 0))),
                              np.r_[np.ones(NUM_POSE), np.zeros(543 - NUM_POSE)], size)
    crop, _ = cut_crop(image, rect, SPEC.input_size, SPEC.keep_aspect_ratio)
    x = torch.from_numpy(SPEC.to_input(crop).transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        a, b = dict(zip(SPEC.output_names, stock(x))), dict(zip(SPEC.output_names, tuned(x)))
    assert torch.equal(a["heatmap"], b["heatmap"]) and torch.equal(a["segmentation"], b["segmentation"])
    assert (a["landmarks"] - b["landmarks"]).abs().max() > 1e-3  # while the landmarks did change


def _crop_points(model, image, pose, seed):
    """One jittered pose crop: the model's raw and heatmap-refined points and the label, crop-normalized (33, 2)."""
    from stage_options import augment

    from holotune.data.augment import jitter_rect

    size = (image.shape[1], image.shape[0])
    keypoints = np.zeros((543, 3))
    keypoints[PARTS["pose"]] = pose[:, :3]
    mask = np.r_[np.ones(NUM_POSE), np.zeros(543 - NUM_POSE)]
    [(_, rect)] = module_rois("pose", keypoints, mask, size)
    rect = jitter_rect(rect, augment(rotation_deg=10, scale=0.1, shift=0.05), np.random.default_rng(seed))
    crop, padding = cut_crop(image, rect, SPEC.input_size, SPEC.keep_aspect_ratio)
    x = torch.from_numpy(SPEC.to_input(crop).transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        out = dict(zip(SPEC.output_names, model(x)))
    h, w = SPEC.input_size
    raw = out["landmarks"][0].reshape(-1, 5)[:NUM_POSE, :2].numpy() / (w, h)
    refined = refine_from_heatmap(raw.astype(np.float32), out["heatmap"][0].numpy()[:, :, :NUM_POSE])
    return raw, refined, to_crop(pose[:, :3], rect, padding)[:, :2]


def test_heatmap_refinement_still_corrects_a_tuned_models_small_errors(photos):
    """Refinement moves a landmark to the stock heatmap's local peak. On real photos it brings the
    stock model's raw points closer to its own refined output (the labels); for a tuned model whose
    raw points moved off by LoRA, the same unchanged heatmap pulls them back towards the labels."""
    stock, tuned = create_model("pose_landmark_full").eval(), _tuned_model(1)
    errors = {name: {"raw": [], "refined": []} for name in ("stock", "tuned")}
    for i, (image, pose, _) in enumerate(photos):
        for seed in range(2):
            for name, model in (("stock", stock), ("tuned", tuned)):
                raw, refined, label = _crop_points(model, image, pose, 10 * i + seed)
                visible = pose[:, 3] > 0.5
                errors[name]["raw"].append(np.linalg.norm(raw - label, axis=1)[visible])
                errors[name]["refined"].append(np.linalg.norm(refined - label, axis=1)[visible])
    mean = {n: {k: float(np.mean(np.concatenate(v))) for k, v in e.items()} for n, e in errors.items()}
    assert mean["tuned"]["raw"] > mean["stock"]["raw"]  # the perturbation moved the points off
    for name in ("stock", "tuned"):
        assert mean[name]["refined"] < mean[name]["raw"], mean


def test_auxiliary_points_rule_matches_the_stock_model_on_real_photos(photos):
    for image, pose, auxiliary in photos:
        px = np.array([image.shape[1], image.shape[0]], np.float64)
        derived = pose_auxiliary_points(pose[:, :2] * px)
        truth = auxiliary[:, :2] * px
        torso = np.linalg.norm(derived[1] - derived[0]) / 1.85
        # Hip centre within 6 % and the body-circle point within 30 % of a torso length (the stock ratio
        # varies from person to person: 1.70-2.26 torso lengths on 26 photos).
        assert np.linalg.norm(derived[0] - truth[0]) < 0.06 * torso
        assert np.linalg.norm(derived[1] - truth[1]) < 0.3 * torso


def test_pose_training_crop_is_the_runtimes_tracking_roi(photos):
    """The crop the labels give equals the ROI video mode would track from the stock auxiliary
    landmarks, up to the rule's error (centre within 5 %, side within 15 %, angle within 5 degrees)."""
    from holotune.runtime.tracking import pose_rect_from_keypoints

    for image, pose, auxiliary in photos:
        size = (image.shape[1], image.shape[0])
        keypoints = np.zeros((543, 3))
        keypoints[PARTS["pose"]] = pose[:, :3]
        [(_, ours)] = module_rois("pose", keypoints, np.r_[np.ones(NUM_POSE), np.zeros(543 - NUM_POSE)], size)
        theirs = pose_rect_from_keypoints(auxiliary[0, :2], auxiliary[1, :2], size)
        side = theirs.width * size[0]
        assert np.hypot((ours.x_center - theirs.x_center) * size[0], (ours.y_center - theirs.y_center) * size[1]) < 0.05 * side
        assert abs(ours.width * size[0] / side - 1) < 0.15
        assert abs(np.degrees(ours.rotation - theirs.rotation)) < 5


def test_auxiliary_loss_is_zero_on_derived_targets_and_ignores_unlabelled_torsos():
    from holotune.training.module import auxiliary_loss

    target = torch.rand(3, NUM_POSE, 3)
    mask = torch.ones(3, NUM_POSE)
    exact = pose_auxiliary_points(target[..., :2])
    assert auxiliary_loss(exact, target, mask).item() == pytest.approx(0.0, abs=1e-7)
    off = exact.clone()
    off[0] += 0.1  # sample 0 off by 0.1 in x and y
    assert auxiliary_loss(off, target, mask).item() == pytest.approx(np.hypot(0.1, 0.1) / 3, rel=1e-5)
    mask[0, 11] = 0  # sample 0's left shoulder unlabelled: it no longer counts
    assert auxiliary_loss(off, target, mask).item() == pytest.approx(0.0, abs=1e-7)
