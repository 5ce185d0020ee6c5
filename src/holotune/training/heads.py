"""New heads that attach at a model's trunk/head seam (plain torch: training, evaluation and export share them)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn


class ClassHead(nn.Module):
    """A new classification head on a trunk feature (the module's ``ModuleSpec.class_feature``).

    Attributes:
        feature: the :meth:`forward_features` key it reads.
        class_names: one name per class, index order.
    """

    def __init__(self, in_features: int, class_names: list[str], feature: str, dropout: float = 0.2):
        super().__init__()
        self.feature = feature
        self.class_names = list(class_names)
        self.num_classes = len(class_names)
        # The pooled ReLU6 features are large and unnormalized (no BatchNorm left in the model):
        # normalizing them keeps the new head stable at the adapters' learning rates.
        self.head = nn.Sequential(nn.LayerNorm(in_features), nn.Dropout(dropout), nn.Linear(in_features, self.num_classes))

    def forward(self, features: Tensor) -> Tensor:
        """(N, in_features) -> (N, num_classes) logits."""
        return self.head(features)


def load_class_head(path: str | Path) -> ClassHead:
    """The :class:`ClassHead` saved by the ``finetune`` stage (``classifier.pt``), in eval mode."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    head = ClassHead(saved["in_features"], list(saved["class_names"]), feature=saved["feature"])
    head.load_state_dict(saved["state_dict"])
    return head.eval()
