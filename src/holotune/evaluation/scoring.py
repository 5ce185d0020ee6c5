"""Score a landmark model on a split's crops: one row per sample, then means.

The crops are MediaPipe's tracking ROIs of the labelled parts (:class:`~holotune.training.data.CropDataset`
with no augmentation), so the stock and the fine-tuned model see exactly the same pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from holotune.evaluation.metrics import PCK_THRESHOLDS, nme, normalized_point_errors, pck
from holotune.gesture import decide_indices
from holotune.training.data import CropDataset, LabelledImage, load_split
from holotune.training.outputs import decode_landmarks, presence_logit

NO_CONDITION = "all"
"""The condition of samples whose manifest row names none (user data without a ``condition``)."""


@dataclass
class SampleScores:
    """Per-sample scores of one model on one dataset, row-aligned.

    Attributes:
        sample_ids, groups, conditions: (N,) identifiers; ``groups`` is the identity (subject) used
            by the bootstrap; a sample without one is its own group.
        nme: (N,) fraction (not %).
        pck: threshold -> (N,) share of points (hands, pose only; empty for face_mesh).
        presence: (N,) presence probability of the part.
        point_errors: (N, K) normalized error per landmark, NaN where unlabelled.
        predicted_class: (N,) class index from the classification head, or ``None``; MediaPipe's rule
            applies (:func:`holotune.gesture.decide_indices`: a top class scoring below 0.5 is ``none``).
        labels: (N,) true class index (-1 unlabelled), or ``None``.
        domains: (N,) the manifest's ``domain`` (e.g. ``sharp``, ``lfw``), ``None`` where it names none.
    """

    sample_ids: list[str]
    groups: list[str]
    conditions: list[str]
    nme: np.ndarray
    presence: np.ndarray
    point_errors: np.ndarray
    pck: dict[float, np.ndarray] = field(default_factory=dict)
    predicted_class: np.ndarray | None = None
    labels: np.ndarray | None = None
    domains: list[str | None] | None = None

    def select(self, keep: np.ndarray) -> "SampleScores":
        """The rows where ``keep`` (N,) bool is true."""
        idx = np.flatnonzero(keep)
        pick = lambda values: [values[i] for i in idx]  # noqa: E731
        return SampleScores(
            pick(self.sample_ids), pick(self.groups), pick(self.conditions), self.nme[idx], self.presence[idx],
            self.point_errors[idx], {t: v[idx] for t, v in self.pck.items()},
            None if self.predicted_class is None else self.predicted_class[idx],
            None if self.labels is None else self.labels[idx],
            None if self.domains is None else pick(self.domains),
        )

    def metrics(self) -> dict[str, np.ndarray]:
        """Flat name -> (N,) per-sample values: ``nme`` (%), ``pck@t`` (%), ``presence_rate`` (% > 0.5)."""
        out = {"nme": 100.0 * self.nme}
        out.update({f"pck@{t:g}": 100.0 * v for t, v in self.pck.items()})
        out["presence_rate"] = 100.0 * (self.presence > 0.5)
        return out


def sample_info(manifest: str | os.PathLike | None) -> dict[str, dict]:
    """sample_id -> {"group", "condition", "domain"} from a manifest (empty if there is none)."""
    from holotune.data.manifest import read_manifest

    if not manifest or not Path(manifest).is_file():
        return {}
    return {s.sample_id: {"group": s.group, "condition": s.meta.get("condition"), "domain": s.meta.get("domain")}
            for s in read_manifest(manifest)}


@torch.no_grad()
def score_samples(model: nn.Module, dataset: CropDataset, info: dict[str, dict] | None = None, *,
                  classifier: nn.Module | None = None, batch_size: int = 32) -> SampleScores:
    """Run ``model`` (a holotune landmark model, stock or merged) over ``dataset``; one row per item.

    ``classifier`` (a :class:`~holotune.training.heads.ClassHead`) adds predicted classes for
    samples of hand models. ``info`` (from :func:`sample_info`) supplies groups, conditions and domains.
    """
    info = info or {}
    module = dataset.module
    model.eval()
    rows: dict[str, list] = {"ids": [], "nme": [], "presence": [], "errors": [], "pred": [], "label": []}
    pcks: dict[float, list] = {t: [] for t in PCK_THRESHOLDS} if dataset.module_spec.pck else {}
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch in loader:
        if classifier is not None:
            features = model.forward_features(batch["image"])
            outputs = model.forward_head(features)
            probabilities = torch.softmax(classifier(features[classifier.feature]), -1).numpy()
            rows["pred"].append(decide_indices(probabilities))  # served as the runtime serves it: below 0.5 is none
        else:
            outputs = model(batch["image"])
        pred = decode_landmarks(module, outputs)
        target, mask = batch["target"], batch["mask"]
        rows["nme"].append(nme(pred, target, mask, module).numpy())
        rows["errors"].append(normalized_point_errors(pred, target, mask, module).numpy())
        rows["presence"].append(torch.sigmoid(presence_logit(module, outputs)).numpy())
        rows["label"].append(batch["label"].numpy())
        for t in pcks:
            pcks[t].append(pck(pred, target, mask, t).numpy())
        for index in batch["index"].tolist():
            image_idx, _part = dataset.items[index]
            rows["ids"].append(dataset.images[image_idx].sample_id)
    ids = rows["ids"]
    groups = [(info.get(s, {}).get("group") or s) for s in ids]
    conditions = [(info.get(s, {}).get("condition") or NO_CONDITION) for s in ids]
    cat = lambda key: np.concatenate(rows[key]) if rows[key] else np.zeros(0)  # noqa: E731
    return SampleScores(
        ids, groups, conditions, cat("nme"), cat("presence"),
        np.concatenate(rows["errors"]) if rows["errors"] else np.zeros((0, 0)),
        {t: np.concatenate(v) for t, v in pcks.items() if v},
        cat("pred").astype(np.int64) if rows["pred"] else None,
        cat("label").astype(np.int64) if rows["label"] else None,
        [info.get(s, {}).get("domain") for s in ids],
    )


@dataclass(frozen=True, kw_only=True)
class RoiJitter:
    """The tracking-ROI error evaluation crops carry (all zero: crops centred on the labels); the
    evaluate stage's comes from ``conf/evaluate`` (``roi_jitter``), which ``conf/prune`` shares.

    In MediaPipe's tracking loop a frame's ROI comes from the previous frame's landmarks, so it is
    off by the motion in between; a crop computed from the label itself is an idealized best case
    (and makes stock error on clean data a pure self-consistency figure). Each sample gets one fixed
    draw (seeded by the sample's position and ``seed``), the same for every model scored.

    Attributes:
        shift: max ROI centre offset, fraction of the ROI size.
        scale: max relative ROI size change.
        rotation_deg: max ROI rotation, degrees.
        seed: the draw.
    """

    shift: float
    scale: float
    rotation_deg: float
    seed: int = 0


CENTRED = RoiJitter(shift=0.0, scale=0.0, rotation_deg=0.0)


@torch.no_grad()
def presence_rate(model: nn.Module, module: str, images: np.ndarray, batch_size: int = 50) -> float:
    """% of ``images`` ((N, H, W, 3) uint8 RGB at the model's input size) the presence head calls present (p > 0.5)."""
    model.eval()
    hits = 0
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size].transpose(0, 3, 1, 2))).float() / 255.0
        hits += int((torch.sigmoid(presence_logit(module, model(x))) > 0.5).sum())
    return 100.0 * hits / max(len(images), 1)


def eval_dataset(images: list[LabelledImage], module: str, jitter: RoiJitter = CENTRED) -> CropDataset:
    """The cached crop dataset evaluation uses: geometric ROI jitter only (no photometric change, no
    flips, no negatives), deterministic per sample."""
    from holotune.data.augment import AugmentOptions

    augment = AugmentOptions(rotation_deg=jitter.rotation_deg, scale=jitter.scale, shift=jitter.shift,
                             flip_prob=0.0, color=0.0, blur_prob=0.0, occlusion_prob=0.0)
    return CropDataset(images, module, augment, seed=jitter.seed, cache_images=True)


def split_dataset(shards_dir: str | os.PathLike, split: str, manifest: str | os.PathLike | None, module: str,
                  jitter: RoiJitter = CENTRED) -> CropDataset:
    """:func:`eval_dataset` over ``split``'s shards. Raises ``ValueError`` naming the folder if the
    split has no labelled ``module`` parts."""
    dataset = eval_dataset(load_split(shards_dir, split, str(manifest) if manifest else None), module, jitter)
    if len(dataset) == 0:
        raise ValueError(f"{shards_dir}: split {split!r} has no labelled {module} samples to score")
    return dataset


def score_model(model: nn.Module, module: str, shards_dir: str | os.PathLike, manifest: str | os.PathLike | None,
                jitter: RoiJitter, split: str = "test", batch_size: int = 32) -> dict[str, float]:
    """Mean metrics of ``model`` on ``split``: ``{"nme", "pck@0.05", "pck@0.1" (hands, pose), "presence_rate", "n"}``.

    NME, PCK and presence rate are in %; crops carry the tracking-ROI ``jitter`` (the evaluate stage's
    is ``conf/evaluate``'s ``roi_jitter``). Raises ``ValueError`` naming the folder if the split has no
    labelled ``module`` parts.
    """
    return mean_scores(model, split_dataset(shards_dir, split, manifest, module, jitter), batch_size)


def mean_scores(model: nn.Module, dataset: CropDataset, batch_size: int = 32) -> dict[str, float]:
    """:func:`score_model`'s means on a dataset already built (score several models on one)."""
    scores = score_samples(model, dataset, batch_size=batch_size)
    out = {name: float(np.nanmean(values)) for name, values in scores.metrics().items()}
    out["n"] = float(len(scores.sample_ids))
    return out
