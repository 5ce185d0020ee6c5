"""EXIF orientation end to end: a phone photo stored sideways (Orientation 6) with labels in the upright
frame goes through ingest -> tfrecord -> the training crop and the evaluation crop, and lands on the same
image content as the upright original. The shards hold upright pixels, so a reader that ignores EXIF
(TensorFlow's ``tf.io.decode_jpeg``) sees the image the labels describe."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from stage_options import ingest_options, shard_options

from holotune.data.augment import NO_AUGMENTATION
from holotune.data.ingest import Source, ingest
from holotune.data.shards import jpeg_bytes, write_dataset_shards
from holotune.data.tfrecord import read_records
from holotune.evaluation.scoring import RoiJitter, eval_dataset
from holotune.landmarks import PARTS, FaceLandmark
from holotune.runtime.image import EXIF_ORIENTATION, image_size
from holotune.samples import sample_images
from holotune.training.data import CropDataset, LabelledImage, load_split

ROTATE_CW_TO_DISPLAY = 6  # EXIF: the stored pixels must be turned 90 degrees clockwise to show upright


def _face_keypoints(width: int, height: int) -> np.ndarray:
    """(543, 3) labels in the upright frame: 468 face points on a grid over the astronaut's face."""
    keypoints = np.zeros((543, 3), np.float32)
    rng = np.random.default_rng(0)
    box = np.array([180, 70, 300, 230], float)  # x0, y0, x1, y1 in pixels of the upright image
    points = box[:2] + rng.random((468, 2)) * (box[2:] - box[:2])
    points[FaceLandmark.RIGHT_EYE_OUTER] = (200, 130)  # the eye line sets the crop's rotation
    points[FaceLandmark.LEFT_EYE_OUTER] = (280, 122)
    keypoints[PARTS["face"], :2] = points / (width, height)
    return keypoints


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """``upright.jpg`` and ``phone.jpg`` (the same picture stored sideways, Orientation 6), and labels."""
    root = tmp_path_factory.mktemp("exif")
    upright = Image.fromarray(np.ascontiguousarray(sample_images()["astronaut"][:400]))  # 512 x 400: not square
    upright.save(root / "upright.jpg", quality=95)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_CW_TO_DISPLAY
    upright.transpose(Image.Transpose.ROTATE_90).save(root / "phone.jpg", quality=95, exif=exif)
    keypoints = _face_keypoints(*upright.size)
    mask = np.zeros(543)
    mask[PARTS["face"]] = 1
    rows = [{"image": name, "keypoints": keypoints.tolist(), "mask": mask.tolist(), "subject": name}
            for name in ("upright.jpg", "phone.jpg")]
    (root / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root, np.asarray(upright), keypoints


@pytest.fixture(scope="module")
def shards(photos):
    root = photos[0]
    ingest(ingest_options([Source("labelled", str(root / "labels.jsonl"))], root / "interim",
                          validation_split=0.0, test_split=0.0))
    write_dataset_shards(shard_options(root / "interim" / "manifest.jsonl", root / "shards"))
    return root


def test_the_stored_sideways_photo_really_is_sideways(photos):
    root, upright, _ = photos
    with Image.open(root / "phone.jpg") as img:
        assert img.size == (upright.shape[0], upright.shape[1])  # stored 400 x 512
        assert img.getexif()[EXIF_ORIENTATION] == ROTATE_CW_TO_DISPLAY
    assert image_size(root / "phone.jpg") == image_size(root / "upright.jpg") == (512, 400)


def test_shards_hold_upright_pixels_for_readers_that_ignore_exif(shards, photos):
    _, upright, keypoints = photos
    records = {r.sample_id: r for r in read_records(sorted((shards / "shards").glob("train-*")))}
    assert len(records) == 2
    for record in records.values():
        with Image.open(io.BytesIO(record.image)) as img:  # decoded as stored, as tf.io.decode_jpeg does
            assert img.getexif().get(EXIF_ORIENTATION, 1) == 1
            pixels = np.asarray(img.convert("RGB"), dtype=np.float32)
        assert pixels.shape == upright.shape
        assert np.abs(pixels - upright).mean() < 3.0  # JPEG re-encoding noise only
        np.testing.assert_allclose(record.keypoints[PARTS["face"]], keypoints[PARTS["face"]], atol=1e-6)


def test_an_upright_jpeg_is_copied_byte_for_byte(photos):
    root = photos[0]
    assert jpeg_bytes(root / "upright.jpg") == (root / "upright.jpg").read_bytes()
    assert jpeg_bytes(root / "phone.jpg") != (root / "phone.jpg").read_bytes()


def _by_file(images: list[LabelledImage], root) -> dict[str, LabelledImage]:
    """Images by source file stem (``upright``, ``phone``), through the manifest's subject."""
    from holotune.data.manifest import read_manifest

    subject = {s.sample_id: s.group for s in read_manifest(root / "interim" / "manifest.jsonl")}
    return {subject[image.sample_id].split(".")[0]: image for image in images}


@pytest.mark.parametrize("crop", ["training", "evaluation"])
def test_training_and_evaluation_crops_match_the_upright_original(shards, photos, crop):
    images = _by_file(load_split(shards / "shards", "train", str(shards / "interim" / "manifest.jsonl")), shards)
    assert set(images) == {"upright", "phone"}

    def first_item(image: LabelledImage) -> dict:  # each alone, so both get the same ROI jitter draw
        if crop == "training":
            return CropDataset([image], "face_mesh", NO_AUGMENTATION)[0]
        return eval_dataset([image], "face_mesh", RoiJitter(shift=0.05, scale=0.1, rotation_deg=10.0, seed=0))[0]

    phone, upright = first_item(images["phone"]), first_item(images["upright"])
    np.testing.assert_allclose(phone["target"].numpy(), upright["target"].numpy(), atol=1e-6)
    assert (phone["image"] - upright["image"]).abs().mean() < 0.02  # same content (re-encoding noise only)

    # The bug this guards against: the stored sideways pixels cut with the upright labels.
    _, _, keypoints = photos
    with Image.open(shards / "phone.jpg") as img:
        sideways = np.asarray(img.convert("RGB"))
    mask = np.zeros(543, np.float32)
    mask[PARTS["face"]] = 1
    wrong = first_item(LabelledImage(sideways, keypoints, mask))
    assert (wrong["image"] - upright["image"]).abs().mean() > 0.1
