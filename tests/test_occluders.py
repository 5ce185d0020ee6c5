"""The default data's occluders and low-light camera (holotune.data.default.occluders, .camera): on real
labelled faces each occluder covers what it says, follows the head, is deterministic and keeps a
monochrome photo monochrome; the camera's colour noise and JPEG change pixels, not brightness."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import cv2
import numpy as np
import pytest

from holotune.data.default import (
    VariantDistribution,
    VariantParams,
    apply_low_light,
    lfw_sources,
    photo_sources,
    render_variant,
    sample_params,
)
from holotune.data.default.build import _accessory
from holotune.data.default.occluders import (
    MOUTH_POINTS,
    Face,
    Light,
    draw_covering,
    draw_glasses,
    draw_hair,
    draw_hand,
    draw_occluders,
    sample_skin,
)
from holotune.data.default.occluders.geometry import LEFT_EYE_POINTS, RIGHT_EYE_POINTS
from holotune.data.default.options import COVERING_STYLES, HAND_TARGETS, PRINT_PATTERNS
from holotune.data.default.render import jitter_matrix, warp_image
from holotune.data.default.variants import LEFT, RIGHT, Jitter, Occluders
from holotune.landmarks import FACE_SLICE
from holotune.landmarks import FaceLandmark as F

NOTHING_ELSE = {"glasses_probability": 0.0, "hair_probability": 0.0, "hand_probability": 0.0}
ONE_HOT = {name: tuple(float(i == k) for i in range(len(COVERING_STYLES))) for k, name in enumerate(COVERING_STYLES)}
EYES = {RIGHT: RIGHT_EYE_POINTS, LEFT: LEFT_EYE_POINTS}


@pytest.fixture(scope="module")
def faces():
    """Real labelled faces: Grace Hopper (colour, 384 px), the astronaut (colour), an LFW face (grey, 192 px)."""
    photos = {s.subject: s for s in photo_sources(384)}
    return [photos["grace_hopper"], photos["astronaut"], lfw_sources(1)[0]]


def _setup(source):
    h, w = source.image.shape[:2]
    face = Face.of(source.keypoints[FACE_SLICE, :2] * [w, h])
    image = source.image.astype(np.float32) / 255
    return image, face, Light.of(image, face)


def _at(alpha: np.ndarray, points: np.ndarray) -> np.ndarray:
    """alpha at the pixels holding ``points`` (N, 2) (continuous pixels)."""
    h, w = alpha.shape
    xy = np.clip(np.floor(points).astype(int), 0, [w - 1, h - 1])
    return alpha[xy[:, 1], xy[:, 0]]


def _occluders(seed: int, **distribution) -> Occluders:
    d = replace(VariantDistribution(), **{**NOTHING_ELSE, **distribution})
    return sample_params(np.random.default_rng(seed), "mask", d).occluder


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0


@pytest.mark.parametrize("style", COVERING_STYLES)
def test_each_covering_covers_mouth_nose_and_chin_not_eyes_or_forehead(faces, style):
    for source in faces:
        image, face, light = _setup(source)
        p = face.p
        below_chin = p[F.CHIN] + 0.2 * face.face_h * face.down
        for seed in range(3):
            covering = _occluders(seed, covering_weights=ONE_HOT[style]).covering
            assert covering.style == style
            alpha = draw_covering(image.copy(), face, light, covering, source.grey)
            assert (_at(alpha, p[list(MOUTH_POINTS)]) > 0.5).all(), (source.subject, style, seed)
            assert (_at(alpha, p[[F.NOSE_TIP, F.CHIN_CENTRE, F.CHIN]]) > 0.5).all(), (source.subject, style, seed)
            assert (_at(alpha, p[list(RIGHT_EYE_POINTS + LEFT_EYE_POINTS)]) < 0.5).all(), (source.subject, style)
            assert _at(alpha, p[[F.FOREHEAD, F.NOSE_BRIDGE]]).max() == 0
            # A scarf hangs far below the chin; a mask ends just below it.
            assert (_at(alpha, below_chin[None])[0] > 0.5) == (style == "scarf"), (source.subject, style)


def test_scarf_reaches_past_the_cheeks_and_masks_have_ear_loops(faces):
    image, face, light = _setup(faces[0])
    for side, cheek in ((RIGHT, F.RIGHT_CHEEK), (LEFT, F.LEFT_CHEEK)):
        outside = face.at_level(face.p[cheek], float(face.level(face.p[F.SUBNASALE]))) + 0.05 * face.face_w * face.outward(
            side)
        scarf = draw_covering(image.copy(), face, light, _occluders(0, covering_weights=ONE_HOT["scarf"]).covering, False)
        assert _at(scarf, outside[None])[0] > 0.5
    # A mask's ear loops: thin coverage outside the mask body, around the cheek points (both visible on Grace Hopper).
    mask = draw_covering(image.copy(), face, light, _occluders(0, covering_weights=ONE_HOT["surgical"]).covering, False)
    thin = (mask > 0.2) & (mask < 0.95)
    for cheek in (F.RIGHT_CHEEK, F.LEFT_CHEEK):
        x, y = face.p[cheek].astype(int)
        r = int(0.1 * face.face_w)
        assert thin[y - r:y + r, x - r:x + r].sum() >= 3


@pytest.mark.parametrize("style", ["surgical", "cloth", "printed", "scarf"])
def test_coverings_look_like_their_style(faces, style):
    """The style's relief is there: pleats (brightness bands down the mask), a print (two colours), a seam
    (a dark line on the midline), a knit (fine texture)."""
    image, face, light = _setup(faces[1])
    covering = _occluders(1, covering_weights=ONE_HOT[style]).covering
    out = image.copy()
    alpha = draw_covering(out, face, light, covering, False)
    inside = alpha > 0.99
    lum = out @ np.array([0.299, 0.587, 0.114], np.float32)
    assert inside.sum() > 1000
    relative_spread = lum[inside].std() / lum[inside].mean()
    assert relative_spread > 0.03, style  # shaded and textured, not a flat blob
    if style == "printed":  # ink and base: two clusters of colour far apart
        colours = out[inside]
        ink = np.array(covering.pattern.ink, np.float32) / 255
        near_ink = np.linalg.norm(colours - ink * light.exposure, axis=1) < 0.25
        assert 0.03 < near_ink.mean() < 0.8, near_ink.mean()


def test_sunglasses_hide_the_eyes_and_clear_glasses_do_not(faces):
    for source in faces:
        h, w = source.image.shape[:2]
        for kind, share in (("sunglasses", 1.0), ("clear", 0.0)):
            for seed in range(3):
                params = sample_params(np.random.default_rng(seed), "mask", replace(
                    VariantDistribution(), **{**NOTHING_ELSE, "glasses_probability": 1.0, "sunglasses_share": share}))
                assert params.occluder.glasses.kind == kind
                r = render_variant(source.image, source.keypoints, source.mask, params, source.grey)
                eyes = r.occluded[[FACE_SLICE.start + i for i in RIGHT_EYE_POINTS + LEFT_EYE_POINTS]]
                if kind == "sunglasses":
                    assert eyes.all(), (source.subject, seed)
                else:
                    assert not eyes.any(), (source.subject, seed)
                    # ... but the glasses are there: a frame, and lenses that tint and reflect a little.
                    bare = render_variant(source.image, source.keypoints, source.mask,
                                          replace(params, occluder=replace(params.occluder, glasses=None)), source.grey)
                    eye = (r.keypoints[FACE_SLICE][list(RIGHT_EYE_POINTS)].mean(0)[:2] * [w, h]).astype(int)
                    half = max(3, int(0.03 * w))
                    window = np.s_[eye[1] - half:eye[1] + half, eye[0] - half:eye[0] + half]
                    diff = np.abs(r.image[window].astype(float) - bare.image[window].astype(float)).mean()
                    assert 0.3 < diff < 60, (source.subject, seed, diff)


def test_hair_falls_across_one_eye_only(faces):
    for source in faces[:2]:
        image, face, light = _setup(source)
        for seed in range(4):
            hair = _occluders(seed, hair_probability=1.0).hair
            alpha = draw_hair(image.copy(), face, light, hair, source.grey)
            r = int(0.12 * face.face_w)
            boxes = {}
            for side in (RIGHT, LEFT):
                x, y = face.eye(side).astype(int)
                boxes[side] = alpha[y - r:y + r, x - r:x + r]
            assert (boxes[hair.side] > 0.5).mean() > 0.1, (source.subject, seed)  # a dense bundle over its eye
            assert boxes[-hair.side].max() < 0.5, (source.subject, seed)  # the other eye stays visible
            strands = alpha[(alpha > 0) & (alpha < 1)]
            assert strands.size > 50  # anti-aliased strands, with gaps: not a solid blob


@pytest.mark.parametrize("target", HAND_TARGETS)
def test_a_hand_covers_its_target_with_the_face_s_skin(faces, target):
    weights = tuple(float(t == target) for t in HAND_TARGETS)
    for source in faces[:2]:
        image, face, light = _setup(source)
        skin = sample_skin(image, face)
        for seed in range(3):
            hand = _occluders(seed, hand_probability=1.0, hand_target_weights=weights).hand
            out = image.copy()
            alpha = draw_hand(out, face, hand, skin, source.grey)
            p, side = face.p, hand.side
            points = {"mouth": p[list(MOUTH_POINTS)], "chin": p[[F.CHIN_CENTRE]],
                      "cheek": p[[F.RIGHT_CHEEK_CENTRE if side == RIGHT else F.LEFT_CHEEK_CENTRE]],
                      "eye": p[list(EYES[side])]}[target]
            assert (_at(alpha, points) > 0.5).mean() > 0.8, (source.subject, target, seed)
            if target == "eye":
                assert (_at(alpha, p[list(EYES[-side])]) < 0.5).all()
            on_hand = out[alpha > 0.99]
            assert len(on_hand) > 0.01 * alpha.size
            colour = np.median(on_hand, axis=0)
            assert np.abs(colour - skin * hand.skin_gain).max() < 0.15, (colour, skin)  # the face's own skin
            assert on_hand.std(axis=0).mean() > 0.015  # shaded, not flat
            # A soft contact shadow darkens the face just outside the hand.
            rim = (alpha < 0.01) & (_dilate(alpha > 0.5, int(0.04 * face.face_w) + 2))
            assert (out[rim] < image[rim] - 1e-4).any(axis=1).mean() > 0.5


def test_a_rotated_face_gets_a_rotated_occluder(faces):
    """Rotating the face (points and pixels) by 25 degrees rotates every occluder's coverage with it."""
    source = faces[0]
    h, w = source.image.shape[:2]
    matrix = jitter_matrix(Jitter(1.0, 25.0, (0.0, 0.0)), (w, h))
    image, face, light = _setup(source)
    turned_image = warp_image(source.image, matrix).astype(np.float32) / 255
    turned = Face.of(face.p @ matrix[:, :2].T + matrix[:, 2])
    turned_light = Light.of(turned_image, turned)
    skin = sample_skin(image, face)
    parts = _occluders(2, glasses_probability=1.0, hair_probability=1.0, hand_probability=1.0,
                       sunglasses_share=1.0, covering_weights=ONE_HOT["surgical"])
    for name, draw in (
        ("covering", lambda img, f, lt: draw_covering(img, f, lt, parts.covering, False)),
        ("glasses", lambda img, f, lt: draw_glasses(img, f, lt, parts.glasses, False)),
        ("hair", lambda img, f, lt: draw_hair(img, f, lt, parts.hair, False)),
        ("hand", lambda img, f, lt: draw_hand(img, f, parts.hand, skin, False)),
    ):
        # Compared at the scale of a few pixels: thin strands and frames rasterize differently when turned.
        upright = cv2.GaussianBlur(draw(image.copy(), face, light), (0, 0), 1.5)
        rotated = cv2.GaussianBlur(draw(turned_image.copy(), turned, turned_light), (0, 0), 1.5)
        expected = warp_image(upright, matrix)
        turned_with, left_alone = _correlation(rotated, expected), _correlation(rotated, upright)
        assert turned_with > 0.99 and left_alone < turned_with - 0.1, (name, turned_with, left_alone)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_same_params_same_pixels(faces):
    d = replace(VariantDistribution(), glasses_probability=1.0, hair_probability=1.0, hand_probability=1.0)
    for source in faces:
        params = sample_params(np.random.default_rng(3), "both", d)
        a = render_variant(source.image, source.keypoints, source.mask, params, source.grey)
        b = render_variant(source.image, source.keypoints, source.mask, params, source.grey)
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.occluded, b.occluded)
        other = sample_params(np.random.default_rng(4), "both", d)
        c = render_variant(source.image, source.keypoints, source.mask, other, source.grey)
        assert np.abs(a.image.astype(int) - c.image.astype(int)).mean() > 2


def test_draw_occluders_leaves_its_input_alone_and_combines_coverage(faces):
    image, face, light = _setup(faces[0])
    params = _occluders(5, glasses_probability=1.0, sunglasses_share=1.0)
    before = image.copy()
    out, alpha = draw_occluders(image, face.p, params, False)
    np.testing.assert_array_equal(image, before)
    covering = draw_covering(image.copy(), face, light, params.covering, False)
    glasses = draw_glasses(image.copy(), face, light, params.glasses, False)
    np.testing.assert_allclose(alpha, np.maximum(covering, glasses), atol=1e-6)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1


def test_colour_noise_and_jpeg_change_pixels_not_brightness(faces):
    image = faces[1].image  # the astronaut, in colour
    base = replace(sample_params(np.random.default_rng(0), "low_light").low_light,
                   blur_sigma=0.0, downscale=1.0, chroma_noise=0.0, jpeg_quality=100)
    clean = apply_low_light(image, base, False).astype(np.float64)
    noisy = apply_low_light(image, replace(base, chroma_noise=1.5), False).astype(np.float64)
    diff = noisy - clean
    assert np.abs(diff).mean() > 0.5  # visible colour noise ...
    assert abs(noisy.mean() - clean.mean()) < 0.02 * clean.mean()  # ... at the same brightness
    luma = diff @ np.array([0.299, 0.587, 0.114])
    assert luma.std() < 0.5 * diff[..., 2].std()  # it changes hue, not luminance
    blue = diff[..., 2]
    lag1 = np.corrcoef(blue[:, :-1].ravel(), blue[:, 1:].ravel())[0, 1]
    assert lag1 > 0.4, lag1  # blotches ~2 px wide (demosaicing), not per-pixel speckle
    jpeg = {q: apply_low_light(image, replace(base, jpeg_quality=q), False).astype(np.float64) for q in (30, 80)}
    error = {q: np.abs(out - clean).mean() for q, out in jpeg.items()}
    assert error[30] > error[80] > 0.1, error  # lower quality, more change ...
    assert abs(jpeg[30].mean() - clean.mean()) < 0.02 * clean.mean()  # ... and the same brightness


def test_monochrome_photos_stay_monochrome(faces):
    lfw = faces[2]
    camera = {s.subject: s for s in photo_sources(256)}["camera"]
    d = replace(VariantDistribution(), glasses_probability=1.0, hair_probability=1.0, hand_probability=1.0)
    for source in (lfw, camera):
        assert source.grey
        for seed, style in enumerate(COVERING_STYLES):
            for condition in ("mask", "both"):
                params = sample_params(np.random.default_rng(seed), condition,
                                       replace(d, covering_weights=ONE_HOT[style], sunglasses_share=seed % 2))
                im = render_variant(source.image, source.keypoints, source.mask, params, True).image
                assert np.array_equal(im[..., 0], im[..., 1]) and np.array_equal(im[..., 0], im[..., 2]), style


def test_styles_and_extras_occur_with_their_configured_frequencies():
    d = VariantDistribution()
    rng = np.random.default_rng(11)
    n = 3000
    drawn = [sample_params(rng, "mask").occluder for _ in range(n)]
    styles = Counter(o.covering.style for o in drawn)
    weights = np.array(d.covering_weights) / sum(d.covering_weights)
    for style, weight in zip(COVERING_STYLES, weights):
        assert abs(styles[style] / n - weight) < 0.03, (style, styles[style] / n, weight)
    prints = Counter(o.covering.pattern.kind for o in drawn if o.covering.style == "printed")
    assert set(prints) == set(PRINT_PATTERNS)
    targets = Counter(o.hand.target for o in drawn if o.hand is not None)
    assert set(targets) == set(HAND_TARGETS)
    kinds = Counter(o.glasses.kind for o in drawn if o.glasses is not None)
    assert abs(kinds["sunglasses"] / sum(kinds.values()) - d.sunglasses_share) < 0.05
    assert abs(sum(o.hair is not None for o in drawn) / n - d.hair_probability) < 0.03
    only_printed = replace(d, covering_weights=(0.0, 0.0, 1.0, 0.0))
    assert {sample_params(rng, "mask", only_printed).occluder.covering.style for _ in range(50)} == {"printed"}
    with pytest.raises(ValueError, match="weights"):
        sample_params(rng, "mask", replace(d, covering_weights=(0.0, 0.0, 0.0, 0.0)))


def test_accessory_names_the_covering_style_and_the_extras():
    d = replace(VariantDistribution(), covering_weights=ONE_HOT["surgical"], glasses_probability=1.0,
                sunglasses_share=1.0, hair_probability=0.0, hand_probability=1.0)
    params = sample_params(np.random.default_rng(0), "both", d)
    assert _accessory(params) == "mask:surgical+sunglasses+hand"
    plain = replace(params, occluder=Occluders(replace(params.occluder.covering, style="scarf")))
    assert _accessory(plain) == "mask:scarf"
    clear = replace(params.occluder.glasses, kind="clear")
    assert _accessory(replace(plain, occluder=replace(plain.occluder, glasses=clear))) == "mask:scarf+clear_glasses"
    assert _accessory(VariantParams("clean", Jitter())) == "none"
