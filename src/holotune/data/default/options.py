"""What the default data build takes: :class:`DefaultDataOptions` and the variants' :class:`VariantDistribution`."""

from __future__ import annotations

from dataclasses import dataclass, field

from holotune.data.default.sources import LFW_NUM_FACES

MIN_IMAGE_SIZE = 64
"""Smallest long side of a photo variant: below it the 468 face points crowd into a few pixels."""

Range = tuple[float, float]
"""A ``(low, high)`` bound of a uniform draw."""

MASK_PALETTES = (
    (140, 185, 215), (238, 238, 236), (30, 30, 33), (128, 130, 134),
    (228, 224, 212), (225, 175, 186), (40, 50, 86), (165, 200, 180),
)
"""Mask colours (RGB 0-255): surgical blue, white, black, grey, KN95 off-white, pink, navy, sage."""


@dataclass(frozen=True, kw_only=True)
class VariantDistribution:
    """The bounds every random draw of :func:`~holotune.data.default.variants.sample_params` uses.

    The defaults are the distribution the committed data uses. Ranges are uniform ``(low, high)``;
    probabilities are per variant. :func:`sample_params` consumes the random stream in a fixed order,
    one number per range, so changing a range changes only that draw; changing a probability or
    ``mask_pleats`` can change how many numbers are drawn, and so the later draws of the variant.

    Attributes:
        scale: jitter zoom factor.
        rotation_deg: jitter rotation, degrees counter-clockwise on screen.
        shift: jitter translation, each of dx, dy, as a fraction of the image width / height.
        mask_palettes: base mask colours, drawn uniformly.
        mask_colour_jitter: added to each RGB channel of the palette colour.
        mask_top: where the top edge crosses the nose, 0 = bridge .. 1 = tip.
        mask_side_drop: face-oval steps below the cheek points the mask's sides start, integers in [low, high).
        mask_chin_push: how far below the chin the lower edge lies, fraction of the face height.
        mask_pleats: how many pleat folds.
        mask_pleat_position: where the folds lie, fractions of the mask's height.
        mask_pleat_depth: darkening at a fold.
        mask_gradient: linear shading slope across the mask, each of width and height.
        sunglasses_probability: a masked face also wears sunglasses.
        lens_darkness: lens grey level (RGB 0-255).
        lens_tint_jitter: added to each RGB channel of the lens grey.
        black_frame_probability: a black frame, else a brown / tortoiseshell one.
        black_frame_level: the black frame's grey level (RGB 0-255).
        brown_frame: the brown frame's RGB before its brightness factor.
        brown_frame_brightness: multiplies ``brown_frame``.
        lens_width: lens half-width / eye half-width.
        lens_aspect: lens half-height / lens half-width.
        lens_squareness: superellipse exponent (2 = ellipse, larger = squarer).
        lens_drop: lens centre shift below the eye centre, in lens half-heights.
        lens_opacity: lens alpha.
        cast_strength: white-balance error ``c`` of the colour cast.
        warm_cast_probability: the cast is warm, else cool.
        warm_cast: per-channel RGB multipliers are ``1 + c * warm_cast`` (red up, blue down).
        cool_cast: ... or ``1 + c * cool_cast`` (blue up, red down).
        gain: exposure gain of the dim capture.
        gamma: the dim capture's tone curve ``gain * x**gamma``.
        blur_probability: the capture is blurred.
        blur_sigma: Gaussian blur sigma, pixels of a 384-px image.
        downscale_probability: the capture is at low resolution.
        downscale: the low resolution, fraction of the image size.
        read_noise: sigma of signal-independent noise, fraction of full scale.
        shot_noise: variance per unit signal of the signal-dependent noise.
    """

    scale: Range = (0.9, 1.1)
    rotation_deg: Range = (-10.0, 10.0)
    shift: Range = (-0.05, 0.05)

    mask_palettes: tuple[tuple[int, int, int], ...] = MASK_PALETTES
    mask_colour_jitter: Range = (-12.0, 12.0)
    mask_top: Range = (0.2, 0.8)
    mask_side_drop: tuple[int, int] = (0, 3)
    mask_chin_push: Range = (0.04, 0.15)
    mask_pleats: int = 3
    mask_pleat_position: Range = (0.22, 0.78)
    mask_pleat_depth: Range = (0.07, 0.18)
    mask_gradient: Range = (-0.12, 0.12)

    sunglasses_probability: float = 0.3
    lens_darkness: Range = (12.0, 40.0)
    lens_tint_jitter: Range = (-8.0, 8.0)
    black_frame_probability: float = 0.6
    black_frame_level: Range = (10.0, 30.0)
    brown_frame: tuple[float, float, float] = (95.0, 80.0, 60.0)
    brown_frame_brightness: Range = (0.6, 1.4)
    lens_width: Range = (1.6, 2.0)
    lens_aspect: Range = (0.7, 0.9)
    lens_squareness: Range = (2.2, 4.0)
    lens_drop: Range = (0.0, 0.25)
    lens_opacity: Range = (0.88, 0.97)

    cast_strength: Range = (0.04, 0.15)
    warm_cast_probability: float = 0.5
    warm_cast: tuple[float, float, float] = (1.0, 0.3, -1.0)
    cool_cast: tuple[float, float, float] = (-1.0, 0.1, 1.0)
    gain: Range = (0.22, 0.55)
    gamma: Range = (1.3, 2.2)
    blur_probability: float = 0.4
    blur_sigma: Range = (0.4, 1.2)
    downscale_probability: float = 0.3
    downscale: Range = (0.35, 0.6)
    read_noise: Range = (0.006, 0.02)
    shot_noise: Range = (0.002, 0.01)


@dataclass(frozen=True, kw_only=True)
class DefaultDataOptions:
    """What :func:`~holotune.data.default.build.build_default_data` builds.

    The fields without a default are set by ``conf/ingest/default.yaml`` (``default_data``), their
    one source of defaults.

    Attributes:
        seed: seeds every random choice (numpy ``Generator``s derived per sample).
        variants_per_condition: rendered variants per photo subject and condition.
        lfw_faces: LFW faces to include (0-100): the first ones, in ``lfw_subset`` order, on which
            the stock face model reports a face (presence > 0.5).
        lfw_variants_per_condition: rendered variants per LFW subject and condition.
        image_size: longest side, in pixels, of the written photo variants (LFW: always 192).
        distribution: the bounds of every random draw of a variant.
    """

    seed: int
    variants_per_condition: int
    lfw_faces: int
    lfw_variants_per_condition: int
    image_size: int = 384
    distribution: VariantDistribution = field(default_factory=VariantDistribution)

    def __post_init__(self):
        if not 0 <= self.lfw_faces <= LFW_NUM_FACES:
            raise ValueError(f"lfw_faces must be in [0, {LFW_NUM_FACES}] (lfw_subset holds {LFW_NUM_FACES} faces), "
                             f"got {self.lfw_faces}")
        if self.variants_per_condition < 1 or self.lfw_variants_per_condition < 1:
            raise ValueError("variants per condition must be >= 1")
        if self.image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}, got {self.image_size}")
