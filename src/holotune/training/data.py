"""Training samples for one fine-tuning module: model-input crops and labels in the model's units.

Each labelled part of each image (a face, a hand, a body) is one sample: the ROI MediaPipe would
track (:mod:`holotune.data.crops`), jittered and photometrically augmented in training
(:mod:`holotune.data.augment`), and the labels mapped into the crop. Targets are in the units
the model's landmarks decode to: x, y in [0, 1] of the crop, z as MediaPipe's
``TensorsToLandmarks`` scales it (``ModuleSpec.z_normalize``).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from holotune.data.augment import NO_AUGMENTATION, AugmentOptions, flip_sample, jitter_rect, photometric
from holotune.data.crops import cut_crop, module_rois, to_crop
from holotune.landmarks import PARTS
from holotune.models.spec import get_module
from holotune.runtime.image import decode_image, image_size


@dataclass(frozen=True)
class NegativeSampling:
    """How presence-negative crops are drawn: squares about a positive ROI's size that overlap no part."""

    seed_salt: int = 7  # keeps the negatives' stream apart from the augmentation streams of the same seed
    attempts_per_crop: int = 20  # rejection sampling: give up after this many tries per wanted crop
    size_range: tuple[float, float] = (0.7, 1.3)  # side / the positive ROI's side


NEGATIVE_SAMPLING = NegativeSampling()


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


def decode(image: bytes | np.ndarray, name: str = "record") -> np.ndarray:
    """Encoded bytes or an array -> (H, W, 3) uint8 RGB, decoded as ingest and the runtime decode
    (:func:`holotune.runtime.image.decode_image`: EXIF orientation applied)."""
    if isinstance(image, np.ndarray):
        return image
    return decode_image(io.BytesIO(image), name)


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
        self.module_spec = get_module(module)
        self.images, self.module, self.augment, self.seed = images, module, augment, seed
        self.views = views
        self.spec = self.module_spec.model_spec
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
        sampling = NEGATIVE_SAMPLING
        rng = np.random.default_rng([self.seed, sampling.seed_salt])
        candidates = [i for i, r in rois.items() if r]
        out = []
        for attempt in range(count * sampling.attempts_per_crop):
            if len(out) == count or not candidates:
                break
            i = candidates[attempt % len(candidates)]
            w_img, h_img = self._size(i)
            _, pos = rois[i][0]
            side = pos.width * w_img * rng.uniform(*sampling.size_range)  # pixels
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
        return image_size(io.BytesIO(image))

    def _image(self, i: int) -> np.ndarray:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        image = decode(self.images[i].image, self.images[i].sample_id or f"image {i}")
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
        return self._item(index, view, crop, target, mask[rows], present=True, label=item.label,
                          reference=item.reference)

    def _negative(self, index: int) -> dict:
        i, rect = self.negatives[index - (len(self.items) - len(self.negatives))]
        view = self.epoch % self.views if self.views else self.epoch
        rng = np.random.default_rng([self.seed, view, index])
        crop, _ = cut_crop(self._image(i), rect, self.spec.input_size, self.spec.keep_aspect_ratio)
        crop = photometric(crop, self.augment, rng)
        k = self.module_spec.num_points
        return self._item(index, view, crop, np.zeros((k, 3), np.float32), np.zeros(k), present=False)

    def _item(self, index: int, view: int, crop: np.ndarray, target: np.ndarray, mask: np.ndarray, *,
              present: bool, label: int | None = None, reference: bool = False) -> dict:
        """The item dict (see the class docstring) of one uint8 crop and its crop-unit labels."""
        pixels = self.spec.to_input(crop)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))),
            "target": torch.from_numpy(target.astype(np.float32)),
            "mask": torch.from_numpy(np.asarray(mask, dtype=np.float32)),
            "reference": torch.tensor(float(reference)),
            "present": torch.tensor(float(present)),
            "label": torch.tensor(-1 if label is None else int(label), dtype=torch.int64),
            "index": torch.tensor(index),
            "key": torch.tensor(view * len(self.items) + index, dtype=torch.int64),
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
