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


class LandmarkHead(nn.Module):
    """The landmark gesture head: hand features -> class logits, as Model Maker's gesture classifier
    (``docs/gestures.md`` §2: [BatchNorm -> ReLU -> Dropout -> Dense] per layer, then the class layer).

    Model Maker's head sits on a 128-d pretrained embedding; holotune's reads the raw
    :func:`holotune.gesture.hand_features`, so a first dense layer makes the embedding.

    Attributes:
        class_names: one name per class, index order (``none`` first).
        layer_widths: the hidden layers' widths.
    """

    def __init__(self, in_features: int, class_names: list[str], layer_widths: tuple[int, ...] = (64, 64),
                 dropout: float = 0.1):
        super().__init__()
        self.class_names = list(class_names)
        self.num_classes = len(class_names)
        self.in_features, self.layer_widths, self.dropout = in_features, tuple(layer_widths), dropout
        layers: list[nn.Module] = []
        width = in_features
        for hidden in self.layer_widths:
            layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, self.num_classes))
        self.head = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        """(N, in_features) -> (N, num_classes) logits."""
        return self.head(features)

    def save(self, path: str | Path) -> None:
        """Write the head and what rebuilds it (``gesture.pt``)."""
        torch.save({"state_dict": self.state_dict(), "class_names": self.class_names, "in_features": self.in_features,
                    "layer_widths": list(self.layer_widths), "dropout": self.dropout}, path)


def load_landmark_head(path: str | Path) -> LandmarkHead:
    """The :class:`LandmarkHead` saved by the ``finetune`` stage (``gesture.pt``), in eval mode."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    head = LandmarkHead(saved["in_features"], list(saved["class_names"]), tuple(saved["layer_widths"]),
                        saved["dropout"])
    head.load_state_dict(saved["state_dict"])
    return head.eval()
