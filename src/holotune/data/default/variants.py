"""What is random about one rendered variant: the parameter dataclasses and :func:`sample_params`.

Parameters are sampled first and rendered second, so a variant's look is a small record (written to
``labels.jsonl`` as ``augment``) and the renderers are deterministic functions of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from holotune.data.default.options import COVERING_STYLES, HAND_TARGETS, PRINT_PATTERNS, VariantDistribution

CONDITIONS = ("clean", "mask", "low_light", "both")
"""The 2x2 factorial: (occluder, low light) = (no, no), (yes, no), (no, yes), (yes, yes)."""
OCCLUDED_CONDITIONS = frozenset({"mask", "both"})
DARK_CONDITIONS = frozenset({"low_light", "both"})

SEED_BOUND = 2**31
"""Per-variant seeds (occluder parts, their textures, sensor noise) are drawn in [0, SEED_BOUND)."""

RIGHT, LEFT = -1, 1
"""Sides of the face, the subject's: ``RIGHT`` is the image's left on a face looking at the camera."""

Colour = tuple[float, float, float]
"""RGB 0-255."""


@dataclass(frozen=True)
class Jitter:
    """A similarity transform about the image centre.

    Attributes:
        scale: zoom factor.
        rotation_deg: degrees, counter-clockwise on screen (OpenCV's convention).
        shift: (dx, dy) as fractions of the image width and height.
    """

    scale: float = 1.0
    rotation_deg: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Print:
    """The pattern printed on a ``printed`` mask, laid out on the mask's surface.

    Attributes:
        kind: one of :data:`~holotune.data.default.options.PRINT_PATTERNS`.
        ink: the pattern's colour.
        accent: a second colour (flower centres, the checks' crossings).
        period: the repeat, in face widths.
        angle_deg: the pattern's rotation on the mask.
        size: dot radius, stripe width or petal radius, fraction of the repeat.
    """

    kind: str
    ink: Colour
    accent: Colour
    period: float
    angle_deg: float
    size: float


@dataclass(frozen=True)
class FaceCovering:
    """A face mask (``surgical``, ``cloth``, ``printed``, with ear loops) or a knitted ``scarf``.

    Attributes:
        style: one of :data:`~holotune.data.default.options.COVERING_STYLES`.
        colour: base colour.
        top: where the top edge crosses the nose, 0 = ``NOSE_BRIDGE`` .. 1 = ``NOSE_TIP``.
        side_drop: face-oval steps below ``RIGHT_CHEEK`` / ``LEFT_CHEEK`` the sides start (right,
            left); 0 for a scarf (it wraps around the cheeks).
        chin_push: the lower edge lies this fraction of the face height below the chin.
        side_push: the sides lie this fraction of the face width outside the cheek points (masks 0:
            their sides follow the face oval).
        gradient: (gx, gy) linear shading across the covering's width and height.
        pleats: centres of the pleat folds, fractions of the mask's height (surgical; else empty).
        pleat_depth: darkening at a fold (surgical; else 0).
        nose_wire: relief of the nose wire's fold along the top edge (surgical; else 0).
        texture_period: thread spacing of the weave (cloth, printed) or stitch width of the knit
            (scarf), in face widths (surgical: 0, a non-woven fabric).
        texture: brightness modulation of the weave or knit.
        seam: darkening along the centre seam (cloth; else 0).
        wrinkles: depth of the folds (scarf; else 0).
        pattern: the print (printed; else None).
        seed: seeds the outline jitter, the fabric noise, the print layout and the folds.
    """

    style: str
    colour: Colour
    top: float
    side_drop: tuple[int, int]
    chin_push: float
    side_push: float
    gradient: tuple[float, float]
    pleats: tuple[float, ...] = ()
    pleat_depth: float = 0.0
    nose_wire: float = 0.0
    texture_period: float = 0.0
    texture: float = 0.0
    seam: float = 0.0
    wrinkles: float = 0.0
    pattern: Print | None = None
    seed: int = 0


@dataclass(frozen=True)
class Glasses:
    """Sunglasses (dark lenses) or clear glasses (a thin frame, nearly transparent lenses).

    Attributes:
        kind: ``sunglasses`` or ``clear``.
        lens_width: lens half-width / eye half-width.
        lens_aspect: lens half-height / lens half-width.
        squareness: superellipse exponent: 2 = ellipse, larger = squarer.
        drop: lens centre shift below the eye centre, in lens half-heights.
        tint: lens colour.
        opacity: lens alpha (clear lenses: a faint tint).
        frame: frame colour.
        frame_width: frame thickness, fraction of the eye span.
        highlight: brightness of the reflection on the lenses.
        highlight_shape: ``window`` (a soft bright rectangle) or ``streaks`` (diagonal bands).
        highlight_at: the reflection's centre in each lens, (x, y) in lens half-sizes.
        highlight_angle_deg: the reflection's tilt.
        edge_darkening: darkening of a clear lens towards its rim (sunglasses: 0).
    """

    kind: str
    lens_width: float
    lens_aspect: float
    squareness: float
    drop: float
    tint: Colour
    opacity: float
    frame: Colour
    frame_width: float
    highlight: float
    highlight_shape: str
    highlight_at: tuple[float, float]
    highlight_angle_deg: float
    edge_darkening: float = 0.0


@dataclass(frozen=True)
class Hair:
    """A bundle of hair strands from the hairline down across one eye and cheek.

    Attributes:
        side: the eye it falls across, :data:`RIGHT` or :data:`LEFT` (the subject's).
        colour: base colour.
        strands: how many strands.
        width: a strand's width, in face widths.
        opacity: a strand's alpha at the root.
        start: where the bundle leaves the hairline, 0 = midline .. 1 = temple.
        reach: how far down it falls, 0 = eye level .. 1 = jaw.
        spread: the bundle's width at its tips, in face widths.
        bend: its sideways bow, in face widths (+ = outwards).
        sheen: brightening of the highlight band.
        seed: seeds the strands' paths, lengths and shades.
    """

    side: int
    colour: Colour
    strands: int
    width: float
    opacity: float
    start: float
    reach: float
    spread: float
    bend: float
    sheen: float
    seed: int


@dataclass(frozen=True)
class Hand:
    """The back of a hand over part of the face, palm towards it.

    Attributes:
        target: one of :data:`~holotune.data.default.options.HAND_TARGETS`.
        side: the hand is the subject's :data:`RIGHT` or :data:`LEFT` one, entering from that side.
        angle_deg: the fingers' direction, degrees from the target's usual direction.
        length: wrist to middle fingertip, in face heights.
        width: multiplies the palm's usual width.
        spread_deg: angle between neighbouring fingers.
        thumb_deg: the thumb's angle away from the index finger.
        offset: shift along the fingers, in hand lengths.
        skin_gain: multiplies the skin colour sampled from the face.
        skin_warmth: red up, blue down by this fraction.
        shadow: darkening of the contact shadow on the face.
        nails: the fingernails are drawn.
        seed: seeds the skin texture and the finger lengths.
    """

    target: str
    side: int
    angle_deg: float
    length: float
    width: float
    spread_deg: float
    thumb_deg: float
    offset: float
    skin_gain: float
    skin_warmth: float
    shadow: float
    nails: bool
    seed: int


@dataclass(frozen=True)
class Occluders:
    """What covers the face in an occluded condition: always a covering, sometimes glasses, hair, a hand."""

    covering: FaceCovering
    glasses: Glasses | None = None
    hair: Hair | None = None
    hand: Hand | None = None


@dataclass(frozen=True)
class LowLight:
    """A dim capture: ``gain * x**gamma``, a colour cast, blur, low resolution, noise, 8 bits, JPEG.

    Attributes:
        gain: exposure gain.
        gamma: tone curve exponent.
        cast: per-channel RGB multipliers (warm or cool white balance error).
        blur_sigma: Gaussian blur in pixels of a 384-px image (0 = none).
        downscale: captured at this fraction of the size, then upscaled (1 = full resolution).
        read_noise: sigma of signal-independent noise, fraction of full scale.
        shot_noise: variance per unit signal of the signal-dependent noise.
        chroma_noise: sigma of the demosaiced colour noise, relative to the sensor noise's sigma.
        jpeg_quality: the capture's JPEG quality (1-100).
        noise_seed: seeds the noise.
    """

    gain: float
    gamma: float
    cast: tuple[float, float, float]
    blur_sigma: float
    downscale: float
    read_noise: float
    shot_noise: float
    chroma_noise: float
    jpeg_quality: int
    noise_seed: int


@dataclass(frozen=True)
class VariantParams:
    """Everything random about one rendered variant."""

    condition: str
    jitter: Jitter
    occluder: Occluders | None = None
    low_light: LowLight | None = None


_DEFAULT_DISTRIBUTION = VariantDistribution()


def sample_params(rng: np.random.Generator, condition: str,
                  distribution: VariantDistribution = _DEFAULT_DISTRIBUTION) -> VariantParams:
    """Draw one variant's parameters for ``condition`` (one of :data:`CONDITIONS`) from ``distribution``.

    The draws happen in a fixed order (jitter, occluders, low light), so the same ``rng`` state gives
    the same variant. Each occluder part draws from a generator of its own, seeded from ``rng``, and
    ``rng`` draws every part's presence and seed whatever the probabilities: a part's bounds change
    only that part.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; known: {CONDITIONS}")
    d = distribution
    jitter = Jitter(scale=float(rng.uniform(*d.scale)), rotation_deg=float(rng.uniform(*d.rotation_deg)),
                    shift=(float(rng.uniform(*d.shift)), float(rng.uniform(*d.shift))))
    occluder = _sample_occluders(rng, d) if condition in OCCLUDED_CONDITIONS else None
    low_light = _sample_low_light(rng, d) if condition in DARK_CONDITIONS else None
    return VariantParams(condition, jitter, occluder, low_light)


def _sample_occluders(rng: np.random.Generator, d: VariantDistribution) -> Occluders:
    covering = _sample_covering(_child(rng), d)
    glasses = _maybe(rng, d.glasses_probability, _sample_glasses, d)
    hair = _maybe(rng, d.hair_probability, _sample_hair, d)
    hand = _maybe(rng, d.hand_probability, _sample_hand, d)
    return Occluders(covering, glasses, hair, hand)


def _child(rng: np.random.Generator) -> np.random.Generator:
    return np.random.default_rng(int(rng.integers(SEED_BOUND)))


def _maybe(rng: np.random.Generator, probability: float, sample, d: VariantDistribution):
    """``sample(child, d)`` with ``probability``; two draws from ``rng`` either way."""
    present = rng.random() < probability
    child = _child(rng)
    return sample(child, d) if present else None


def _sample_covering(rng: np.random.Generator, d: VariantDistribution) -> FaceCovering:
    style = _choose(rng, COVERING_STYLES, d.covering_weights)
    palettes = {"surgical": d.surgical_palettes, "cloth": d.cloth_palettes, "scarf": d.scarf_palettes,
                "printed": d.print_palettes}[style]
    entry = palettes[int(rng.integers(len(palettes)))]
    base = entry[0] if style == "printed" else entry
    colour = _floats(np.clip(np.array(base, float) + rng.uniform(*d.mask_colour_jitter, 3), 0, 255))
    if style == "scarf":
        shape = {"top": float(rng.uniform(*d.scarf_top)), "side_drop": (0, 0),
                 "chin_push": float(rng.uniform(*d.scarf_chin_push)), "side_push": float(rng.uniform(*d.scarf_side_push))}
    else:
        shape = {"top": float(rng.uniform(*d.mask_top)),
                 "side_drop": (_integer(rng, (d.mask_side_drop[0], d.mask_side_drop[1] - 1)),
                               _integer(rng, (d.mask_side_drop[0], d.mask_side_drop[1] - 1))),
                 "chin_push": float(rng.uniform(*d.mask_chin_push)), "side_push": 0.0}
    gradient = (float(rng.uniform(*d.mask_gradient)), float(rng.uniform(*d.mask_gradient)))
    look: dict = {}
    if style == "surgical":
        look = {"pleats": _floats(np.sort(rng.uniform(*d.mask_pleat_position, d.mask_pleats))),
                "pleat_depth": float(rng.uniform(*d.mask_pleat_depth)), "nose_wire": float(rng.uniform(*d.nose_wire))}
    elif style in ("cloth", "printed"):
        look = {"texture_period": float(rng.uniform(*d.weave_period)), "texture": float(rng.uniform(*d.weave_contrast))}
        if style == "cloth":
            look["seam"] = float(rng.uniform(*d.seam_depth))
        else:
            look["pattern"] = Print(
                kind=_choose(rng, PRINT_PATTERNS, d.print_weights), ink=_floats(entry[1]), accent=_floats(entry[2]),
                period=float(rng.uniform(*d.print_period)), angle_deg=float(rng.uniform(*d.print_angle_deg)),
                size=float(rng.uniform(*d.print_size)))
    else:
        look = {"texture_period": float(rng.uniform(*d.knit_period)), "texture": float(rng.uniform(*d.knit_contrast)),
                "wrinkles": float(rng.uniform(*d.scarf_wrinkles))}
    return FaceCovering(style=style, colour=colour, gradient=gradient, seed=int(rng.integers(SEED_BOUND)),
                        **shape, **look)


def _sample_glasses(rng: np.random.Generator, d: VariantDistribution) -> Glasses:
    sunglasses = rng.random() < d.sunglasses_share
    shape = {"lens_width": float(rng.uniform(*d.lens_width)), "lens_aspect": float(rng.uniform(*d.lens_aspect)),
             "squareness": float(rng.uniform(*d.lens_squareness)), "drop": float(rng.uniform(*d.lens_drop))}
    if sunglasses:
        dark = rng.uniform(*d.lens_darkness)
        tint = np.clip(dark + rng.uniform(*d.lens_tint_jitter, 3), 0, 255)
        opacity = float(rng.uniform(*d.lens_opacity))
        if rng.random() < d.black_frame_probability:
            frame = np.full(3, rng.uniform(*d.black_frame_level))
        else:
            frame = np.array(d.brown_frame) * rng.uniform(*d.brown_frame_brightness)
        frame_width = float(rng.uniform(*d.sunglasses_frame_width))
        edge = 0.0
    else:
        tint = np.array(d.clear_lens_tints[int(rng.integers(len(d.clear_lens_tints)))], float)
        opacity = float(rng.uniform(*d.clear_lens_opacity))
        frame = np.array(d.clear_frame_palettes[int(rng.integers(len(d.clear_frame_palettes)))], float)
        frame_width = float(rng.uniform(*d.clear_frame_width))
        edge = float(rng.uniform(*d.lens_edge_darkening))
    highlight = float(rng.uniform(*d.highlight_strength))
    shape_name = "window" if rng.random() < d.window_highlight_probability else "streaks"
    at = (float(rng.uniform(*d.highlight_position)), float(rng.uniform(*d.highlight_position)))
    return Glasses(kind="sunglasses" if sunglasses else "clear", **shape, tint=_floats(tint), opacity=opacity,
                   frame=_floats(frame), frame_width=frame_width, highlight=highlight, highlight_shape=shape_name,
                   highlight_at=at, highlight_angle_deg=float(rng.uniform(*d.highlight_angle_deg)), edge_darkening=edge)


def _sample_hair(rng: np.random.Generator, d: VariantDistribution) -> Hair:
    side = RIGHT if rng.random() < 0.5 else LEFT
    palette = np.array(d.hair_palettes[int(rng.integers(len(d.hair_palettes)))], float)
    colour = _floats(np.clip(palette + rng.uniform(*d.hair_colour_jitter, 3), 0, 255))
    return Hair(side=side, colour=colour, strands=_integer(rng, d.hair_strands), width=float(rng.uniform(*d.hair_width)),
                opacity=float(rng.uniform(*d.hair_opacity)), start=float(rng.uniform(*d.hair_start)),
                reach=float(rng.uniform(*d.hair_reach)), spread=float(rng.uniform(*d.hair_spread)),
                bend=float(rng.uniform(*d.hair_bend)), sheen=float(rng.uniform(*d.hair_sheen)),
                seed=int(rng.integers(SEED_BOUND)))


def _sample_hand(rng: np.random.Generator, d: VariantDistribution) -> Hand:
    target = _choose(rng, HAND_TARGETS, d.hand_target_weights)
    side = RIGHT if rng.random() < 0.5 else LEFT
    return Hand(target=target, side=side, angle_deg=float(rng.uniform(*d.hand_angle_deg)),
                length=float(rng.uniform(*d.hand_length)), width=float(rng.uniform(*d.hand_width)),
                spread_deg=float(rng.uniform(*d.finger_spread_deg)), thumb_deg=float(rng.uniform(*d.thumb_deg)),
                offset=float(rng.uniform(*d.hand_offset)), skin_gain=float(rng.uniform(*d.skin_gain)),
                skin_warmth=float(rng.uniform(*d.skin_warmth)), shadow=float(rng.uniform(*d.hand_shadow)),
                nails=bool(rng.random() < d.nail_probability), seed=int(rng.integers(SEED_BOUND)))


def _sample_low_light(rng: np.random.Generator, d: VariantDistribution) -> LowLight:
    c = rng.uniform(*d.cast_strength)
    weights = d.warm_cast if rng.random() < d.warm_cast_probability else d.cool_cast
    gain = float(rng.uniform(*d.gain))
    gamma = float(rng.uniform(*d.gamma))
    blur_sigma = float(rng.uniform(*d.blur_sigma)) if rng.random() < d.blur_probability else 0.0
    downscale = float(rng.uniform(*d.downscale)) if rng.random() < d.downscale_probability else 1.0
    return LowLight(gain=gain, gamma=gamma, cast=_floats(1 + w * c for w in weights), blur_sigma=blur_sigma,
                    downscale=downscale, read_noise=float(rng.uniform(*d.read_noise)),
                    shot_noise=float(rng.uniform(*d.shot_noise)), chroma_noise=float(rng.uniform(*d.chroma_noise)),
                    jpeg_quality=_integer(rng, d.jpeg_quality), noise_seed=int(rng.integers(SEED_BOUND)))


def _choose(rng: np.random.Generator, names: tuple[str, ...], weights: tuple[float, ...]) -> str:
    """One of ``names`` with probabilities ``weights / sum(weights)``; always one draw."""
    if len(weights) != len(names) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"weights {weights} must be {len(names)} non-negative numbers for {names}, not all 0")
    cumulative = np.cumsum(weights) / sum(weights)
    return names[min(int(np.searchsorted(cumulative, rng.random(), side="right")), len(names) - 1)]


def _integer(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    """An integer in [low, high], both included; always one draw (``Generator.integers`` draws none
    for a single value)."""
    low, high = int(bounds[0]), int(bounds[1])
    return low + min(int(rng.random() * (high - low + 1)), high - low)


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
