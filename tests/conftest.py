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
