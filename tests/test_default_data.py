"""The embedded default dataset (holotune.data.default): factorial, labels, conditions, geometry, determinism."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from holotune.data.default import (
    CONDITIONS,
    MOUTH_POINTS,
    DefaultDataOptions,
    Jitter,
    VariantParams,
    build_default_data,
    lfw_sources,
    photo_sources,
    render_variant,
    sample_params,
)
from holotune.landmarks import FACE_SLICE, NUM_KEYPOINTS, PARTS

SMALL = DefaultDataOptions(seed=3, variants_per_condition=1, lfw_faces=4, lfw_variants_per_condition=1, image_size=320)
PHOTOS = ("grace_hopper", "astronaut", "camera")
FACE0 = FACE_SLICE.start


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("default_data")
    labels = build_default_data(out, SMALL)
    return out, [json.loads(line) for line in labels.read_text().splitlines()]


@pytest.fixture(scope="module")
def sources():
    return photo_sources(SMALL.image_size) + lfw_sources(2)


def _image(out: Path, row: dict) -> np.ndarray:
    bgr = cv2.imread(str(out / row["image"]), cv2.IMREAD_COLOR)
    assert bgr is not None, row["image"]
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_factorial_is_complete_per_subject(built):
    out, rows = built
    by_subject = defaultdict(list)
    for row in rows:
        by_subject[row["subject"]].append(row["condition"])
        assert (out / row["image"]).is_file()
    assert set(PHOTOS) <= set(by_subject)
    lfw = [s for s in by_subject if s.startswith("lfw_")]
    assert len(lfw) == SMALL.lfw_faces
    assert len(by_subject) == len(PHOTOS) + SMALL.lfw_faces
    for subject, conditions in by_subject.items():
        n = SMALL.variants_per_condition if subject in PHOTOS else SMALL.lfw_variants_per_condition
        assert sorted(conditions) == sorted(CONDITIONS * n), subject
    assert len({row["id"] for row in rows}) == len(rows)
    assert len(list((out / "images").glob("*.jpg"))) == len(rows)


def test_rows_have_the_543_layout_and_labelled_points_inside_the_image(built):
    out, rows = built
    for row in rows:
        kp, mask, occ = np.array(row["keypoints"]), np.array(row["mask"]), np.array(row["occluded"])
        assert kp.shape == (NUM_KEYPOINTS, 3) and mask.shape == occ.shape == (NUM_KEYPOINTS,)
        assert np.isfinite(kp).all() and set(np.unique(mask)) <= {0.0, 1.0} and set(np.unique(occ)) <= {0.0, 1.0}
        assert np.all(occ <= mask)
        labelled = kp[mask > 0, :2]
        assert np.all((labelled >= 0) & (labelled <= 1))
        assert mask[FACE_SLICE].mean() > 0.95, row["id"]  # the face stays in the picture
        h, w = _image(out, row).shape[:2]
        assert (row["width"], row["height"]) == (w, h)
        assert row["accessory"] in {"none", "mask", "mask+sunglasses"}
        assert (row["accessory"] != "none") == (row["condition"] in {"mask", "both"})


def test_parts_labelled_per_source(built):
    _, rows = built
    for row in rows:
        mask = np.array(row["mask"])
        if row["subject"].startswith("lfw_"):
            assert row["source_image"].startswith("skimage.data.lfw_subset()[")
            assert mask[PARTS["face"]].sum() == 468
            for part in ("pose", "left_hand", "right_hand"):
                assert mask[PARTS[part]].sum() == 0, (row["id"], part)
                assert not np.any(np.array(row["keypoints"])[PARTS[part]]), (row["id"], part)  # unlabelled: 0
        else:
            assert mask[PARTS["pose"]].sum() >= 10  # the upper body; legs are out of the picture
            assert mask[PARTS["face"]].sum() >= 440


def test_mask_condition_occludes_the_lower_face(built, sources):
    _, rows = built
    for row in rows:  # the written rows say which points the occluder covers
        mouth = np.array(row["occluded"])[[FACE0 + i for i in MOUTH_POINTS]]
        assert mouth.all() if row["condition"] in {"mask", "both"} else not mouth.any(), row["id"]
    rng = np.random.default_rng(0)
    for source in sources:
        for _ in range(3):
            params = sample_params(rng, "mask")
            masked = render_variant(source.image, source.keypoints, source.mask, params, source.grey)
            clean = render_variant(source.image, source.keypoints, source.mask, replace(params, occluder=None),
                                   source.grey)
            np.testing.assert_array_equal(masked.keypoints, clean.keypoints)
            h, w = clean.image.shape[:2]
            lips = (clean.keypoints[[FACE0 + i for i in (61, 291, 0, 17)], :2] * [w, h]).astype(np.float32)
            region = np.zeros((h, w), np.uint8)
            cv2.fillConvexPoly(region, cv2.convexHull(lips).astype(np.int32), 1)
            inside = region > 0
            diff = np.abs(masked.image.astype(float) - clean.image.astype(float)).mean(axis=2)
            assert diff[inside].mean() > 15, source.subject  # the mouth is painted over
            if params.occluder.sunglasses is None:  # and the forehead is untouched
                top = (clean.keypoints[FACE0 + 10, :2] * [w, h]).astype(int)
                patch = diff[max(top[1] - 2, 0):top[1] + 3, max(top[0] - 2, 0):top[0] + 3]
                assert patch.mean() < 1.0, source.subject


def test_low_light_lowers_brightness_by_more_than_30_percent(built, sources):
    out, rows = built
    mean = defaultdict(dict)
    for row in rows:
        mean[row["subject"]][row["condition"]] = _image(out, row).mean()
    for subject, by_condition in mean.items():
        assert by_condition["low_light"] < 0.7 * by_condition["clean"], subject
        assert by_condition["both"] < 0.7 * by_condition["mask"], subject
    rng = np.random.default_rng(1)
    for source in sources:  # same geometry, with and without low light
        params = sample_params(rng, "low_light")
        dark = render_variant(source.image, source.keypoints, source.mask, params, source.grey).image
        lit = render_variant(source.image, source.keypoints, source.mask, replace(params, low_light=None),
                             source.grey).image
        assert dark.mean() < 0.7 * lit.mean(), source.subject
        if source.grey:  # a monochrome photo stays monochrome
            assert np.array_equal(dark[..., 0], dark[..., 1]) and np.array_equal(dark[..., 0], dark[..., 2])


def test_jitter_moves_keypoints_with_the_pixels():
    """Bright dots at known keypoints land, after the jitter, where the transformed keypoints say."""
    h, w = 240, 320
    points = np.array([[0.3, 0.3, 0.1], [0.7, 0.35, -0.2], [0.5, 0.5, 0.0], [0.35, 0.7, 0.05], [0.66, 0.62, 0.3]])
    yy, xx = np.mgrid[0:h, 0:w] + 0.5  # pixel centres in continuous coordinates
    image = np.zeros((h, w), np.float64)
    for x, y, _ in points:
        image += 250 * np.exp(-((xx - x * w) ** 2 + (yy - y * h) ** 2) / (2 * 2.0**2))
    image = np.stack([np.round(image).astype(np.uint8)] * 3, axis=-1)
    keypoints = np.zeros((NUM_KEYPOINTS, 3))
    keypoints[: len(points)] = points
    mask = np.zeros(NUM_KEYPOINTS, np.float32)
    mask[: len(points)] = 1
    rng = np.random.default_rng(7)
    jitters = [sample_params(rng, "clean").jitter for _ in range(6)] + [Jitter(1.1, 10.0, (0.05, -0.05))]
    for jitter in jitters:
        r = render_variant(image, keypoints, mask, VariantParams("clean", jitter))
        np.testing.assert_allclose(r.keypoints[: len(points), 2], points[:, 2] * jitter.scale)
        assert r.mask[: len(points)].all() and not r.mask[len(points):].any()
        grey = r.image[..., 0].astype(np.float64)
        for x, y, _ in r.keypoints[: len(points)]:
            cx, cy = x * w, y * h
            win = (np.abs(xx - cx) < 8) & (np.abs(yy - cy) < 8)
            weights = grey * win
            found = np.array([(weights * xx).sum(), (weights * yy).sum()]) / weights.sum()
            assert np.hypot(found[0] - cx, found[1] - cy) < 0.25, (jitter, found, (cx, cy))


def test_points_leaving_the_image_are_masked_but_kept():
    image = np.full((100, 100, 3), 128, np.uint8)
    keypoints = np.zeros((NUM_KEYPOINTS, 3))
    keypoints[0] = [0.99, 0.5, 0.0]
    keypoints[1] = [0.5, 0.5, 0.0]
    mask = np.zeros(NUM_KEYPOINTS, np.float32)
    mask[:2] = 1
    r = render_variant(image, keypoints, mask, VariantParams("clean", Jitter(1.1, 0.0, (0.05, 0.0))))
    assert r.keypoints[0, 0] > 1.0 and r.mask[0] == 0  # value kept, mask off
    assert r.mask[1] == 1


def test_teacher_on_a_jittered_clean_image_agrees_with_the_transformed_labels(built):
    """The written labels are where the stock model finds the face on the written (jittered) image."""
    from holotune.runtime import Holistic

    out, rows = built
    frontal = ("grace_hopper", "astronaut")  # NME over the eye distance is meaningless in the cameraman's profile
    clean = {r["subject"]: r for r in rows if r["condition"] == "clean" and r["subject"] in frontal}
    with Holistic(threads=1, parallel=False) as teacher:
        for subject, row in clean.items():
            face = teacher.process(_image(out, row)).face
            assert face is not None, subject
            scale = np.array([row["width"], row["height"]])
            label = np.array(row["keypoints"])[FACE_SLICE, :2] * scale
            iod = np.linalg.norm(label[33] - label[263])
            nme = np.linalg.norm(face[:, :2] * scale - label, axis=1).mean() / iod
            untransformed = np.array(next(r for r in rows if r["subject"] == subject and r["condition"] == "mask")
                                     ["keypoints"])[FACE_SLICE, :2] * scale  # another variant's geometry
            control = np.linalg.norm(face[:, :2] * scale - untransformed, axis=1).mean() / iod
            assert nme < 0.03, (subject, nme)
            assert control > 3 * nme, (subject, control, nme)


def test_build_is_deterministic(built, tmp_path):
    out, _ = built
    again = build_default_data(tmp_path / "again", SMALL)
    assert again.read_bytes() == (out / "labels.jsonl").read_bytes()
    other = build_default_data(tmp_path / "other", replace(SMALL, seed=SMALL.seed + 1, lfw_faces=1))
    assert other.read_text().splitlines()[0] != (out / "labels.jsonl").read_text().splitlines()[0]


def test_stale_images_are_removed(tmp_path):
    stale = tmp_path / "images" / "old.jpg"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"x")
    build_default_data(tmp_path, replace(SMALL, lfw_faces=0, image_size=128))
    assert not stale.exists()


def test_options_are_validated():
    with pytest.raises(ValueError, match="lfw_faces"):
        DefaultDataOptions(lfw_faces=101)
    with pytest.raises(ValueError):
        DefaultDataOptions(variants_per_condition=0)
    with pytest.raises(ValueError, match="condition"):
        sample_params(np.random.default_rng(0), "foggy")
