"""Training samples for one fine-tuning module: model-input crops and labels in the model's units.

Each labelled part of each image (a face, a hand, a body) is one sample: the ROI MediaPipe would
track (:mod:`holotune.data.crops`), jittered and photometrically augmented in training
(:mod:`holotune.data.augment`), and the labels mapped into the crop. Targets are in the units
the model's landmarks decode to: x, y in [0, 1] of the crop, z as MediaPipe's
``TensorsToLandmarks`` scales it (see :data:`Z_SCALE`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from holotune.data.augment import NO_AUGMENTATION, AugmentOptions, flip_sample, jitter_rect, photometric
from holotune.data.crops import MODULE_PARTS, cut_crop, module_rois, to_crop
from holotune.landmarks import PARTS
from holotune.models.spec import MODEL_SPECS, MODULE_MODELS



@dataclass
class LabelledImage:
    """One image with its 543-layout labels.

    Attributes:
        image: encoded bytes (JPEG/PNG) or a decoded (H, W, 3) uint8 RGB array.
        keypoints: (543, 3) normalized image coordinates.
        mask: (543,) 1 = labelled.
        label: class index or ``None``.
        reference: a clean, reference-domain sample (self-distilled onto the stock model).
        sample_id: for reports.
    """

    image: bytes | np.ndarray
    keypoints: np.ndarray
    mask: np.ndarray
    label: int | None = None
    reference: bool = False
    sample_id: str = ""


def decode(image: bytes | np.ndarray) -> np.ndarray:
    """Encoded bytes or an array -> (H, W, 3) uint8 RGB."""
    if isinstance(image, np.ndarray):
        return image
    with Image.open(io.BytesIO(image)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


class CropDataset(Dataset):
    """Crops of one module's parts, one item per labelled part.

    Args:
        images: the labelled images.
        module: ``face_mesh`` | ``hands`` | ``pose``.
        augment: augmentation (use :data:`NO_AUGMENTATION` for evaluation).
        seed: base seed; item ``i`` of epoch ``e`` is deterministic given ``set_epoch(e)``.
        cache_images: keep decoded images in memory (``cache_dataset``).
        views: if set, augmentation cycles through this many fixed variants per item (epoch mod
            ``views``), so per-variant results (trunk features) can be cached across epochs.
        negatives: extra items, as a fraction of the positives, that show no labelled part (a
            same-sized ROI elsewhere in an image): presence target 0, so the presence head learns
            "absent" too and fine-tuning cannot teach it to say "present" everywhere.

    Items are dicts: ``image`` (3, H, W) float32 in the model's input range, ``target`` (K, 3)
    float32, ``mask`` (K,), ``reference`` (), ``present`` () 1 or 0 (negative), ``label`` () int64
    (-1 if none), ``index`` (), and ``key`` (): a unique id of the (item, augmentation variant) pair.
    """

    def __init__(self, images: list[LabelledImage], module: str, augment: AugmentOptions = NO_AUGMENTATION,
                 seed: int = 0, cache_images: bool = False, views: int | None = None, negatives: float = 0.0):
        if module not in MODULE_PARTS:
            raise ValueError(f"unknown module {module!r}; one of {sorted(MODULE_PARTS)}")
        self.images, self.module, self.augment, self.seed = images, module, augment, seed
        self.views = views
        self.spec = MODEL_SPECS[MODULE_MODELS[module]]
        self.epoch = 0
        self._cache: dict[int, np.ndarray] | None = {} if cache_images else None
        # One item per (image, part) that carries a full label; sizes come from a decode, once.
        self.items: list[tuple[int, str]] = []
        rois: dict[int, list] = {}
        for i, item in enumerate(images):
            size = self._size(i)
            rois[i] = module_rois(module, item.keypoints, item.mask, size)
            self.items += [(i, part) for part, _ in rois[i]]
        self.negatives = self._negative_rects(rois, round(negatives * len(self.items)))
        self.items += [(i, "negative") for i, _ in self.negatives]

    def _negative_rects(self, rois: dict[int, list], count: int) -> list:
        """``count`` (image index, Rect) pairs: squares the size of a positive ROI that overlap none."""
        from dataclasses import replace

        rng = np.random.default_rng([self.seed, 7])
        candidates = [i for i, r in rois.items() if r]
        out = []
        for attempt in range(count * 20):
            if len(out) == count or not candidates:
                break
            i = candidates[attempt % len(candidates)]
            w_img, h_img = self._size(i)
            _, pos = rois[i][0]
            side = pos.width * w_img * rng.uniform(0.7, 1.3)  # pixels
            cx, cy = rng.uniform(side / 2, max(side / 2, w_img - side / 2)), rng.uniform(side / 2, max(side / 2, h_img - side / 2))
            clear = all(abs(cx - r.x_center * w_img) > (side + r.width * w_img) / 2
                        or abs(cy - r.y_center * h_img) > (side + r.height * h_img) / 2 for _, r in rois[i])
            if clear:
                out.append((i, replace(pos, x_center=cx / w_img, y_center=cy / h_img, width=side / w_img,
                                       height=side / h_img)))
        return out

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def _size(self, i: int) -> tuple[int, int]:
        """(width, height) of image ``i``, from the header alone when it is not decoded yet."""
        image = self.images[i].image
        if isinstance(image, np.ndarray):
            return image.shape[1], image.shape[0]
        if self._cache is not None:
            return self._image(i).shape[1::-1]  # decode now: the cache keeps it
        with Image.open(io.BytesIO(image)) as img:
            return img.size

    def _image(self, i: int) -> np.ndarray:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        image = decode(self.images[i].image)
        if self._cache is not None:
            self._cache[i] = image
        return image

    def __getitem__(self, index: int) -> dict:
        i, part = self.items[index]
        if part == "negative":
            return self._negative(index)
        item = self.images[i]
        view = self.epoch % self.views if self.views else self.epoch
        rng = np.random.default_rng([self.seed, view, index])
        image, keypoints, mask = self._image(i), item.keypoints, item.mask
        if self.augment.flip_prob and rng.random() < self.augment.flip_prob:
            image, keypoints, mask = flip_sample(image, keypoints, mask)
            part = {"left_hand": "right_hand", "right_hand": "left_hand"}.get(part, part)
        size = (image.shape[1], image.shape[0])
        rect = dict(module_rois(self.module, keypoints, mask, size))[part]
        rect = jitter_rect(rect, self.augment, rng)
        crop, padding = cut_crop(image, rect, self.spec.input_size, self.spec.keep_aspect_ratio)
        crop = photometric(crop, self.augment, rng)
        rows = PARTS[part]
        target = to_crop(keypoints[rows].astype(np.float64), rect, padding)
        lo, hi = self.spec.input_range
        pixels = crop.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))),
            "target": torch.from_numpy(target.astype(np.float32)),
            "mask": torch.from_numpy(mask[rows].astype(np.float32)),
            "reference": torch.tensor(float(item.reference)),
            "present": torch.tensor(1.0),
            "label": torch.tensor(-1 if item.label is None else int(item.label), dtype=torch.int64),
            "index": torch.tensor(index),
            "key": torch.tensor(view * len(self.items) + index, dtype=torch.int64),
        }

    def _negative(self, index: int) -> dict:
        i, rect = self.negatives[index - (len(self.items) - len(self.negatives))]
        view = self.epoch % self.views if self.views else self.epoch
        rng = np.random.default_rng([self.seed, view, index])
        crop, _ = cut_crop(self._image(i), rect, self.spec.input_size, self.spec.keep_aspect_ratio)
        crop = photometric(crop, self.augment, rng)
        lo, hi = self.spec.input_range
        pixels = crop.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)
        k = sum(len(range(*PARTS[p].indices(543))) for p in MODULE_PARTS[self.module][:1])
        return {
            "image": torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))),
            "target": torch.zeros(k, 3), "mask": torch.zeros(k), "reference": torch.tensor(0.0),
            "present": torch.tensor(0.0), "label": torch.tensor(-1, dtype=torch.int64),
            "index": torch.tensor(index), "key": torch.tensor(view * len(self.items) + index, dtype=torch.int64),
        }


def load_split(shards_dir: str | os.PathLike, split: str, manifest: str | None) -> list[LabelledImage]:
    """Every record of ``split``'s shards as :class:`LabelledImage`; ``reference`` from the manifest."""
    from holotune.data.manifest import read_manifest
    from holotune.data.tfrecord import read_records

    conditions = {}
    if manifest and Path(manifest).is_file():
        conditions = {s.sample_id: s.meta.get("condition") for s in read_manifest(manifest)}
    paths = sorted(Path(shards_dir).glob(f"{split}-*.tfrecord*"))
    images = []
    for record in read_records(paths) if paths else []:
        mask = record.mask if record.mask is not None else np.ones(len(record.keypoints), np.float32)
        images.append(LabelledImage(record.image, record.keypoints, mask, record.label,
                                    reference=conditions.get(record.sample_id) == "clean",
                                    sample_id=record.sample_id or ""))
    return images
