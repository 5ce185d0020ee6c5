"""What the default data build takes: :class:`DefaultDataOptions` and the variants' :class:`VariantDistribution`."""

from __future__ import annotations

from dataclasses import dataclass, field

from holotune.data.default.sources import LFW_NUM_FACES

MIN_IMAGE_SIZE = 64
"""Smallest long side of a photo variant: below it the 468 face points crowd into a few pixels."""

Range = tuple[float, float]
"""A ``(low, high)`` bound of a uniform draw."""

IntRange = tuple[int, int]
"""A ``(low, high)`` bound of an integer draw, both ends included."""

# --- What can be drawn (the weights and palettes below refer to these) ---------------------------
COVERING_STYLES = ("surgical", "cloth", "printed", "scarf")
"""Face coverings: a pleated surgical mask with a nose wire, a contoured cloth mask with a centre seam,
a cloth mask with a printed pattern, a knitted scarf pulled up over the nose."""
PRINT_PATTERNS = ("dots", "stripes", "checks", "floral")
"""The printed masks' patterns: polka dots, stripes, gingham checks, small five-petal flowers."""
HAND_TARGETS = ("cheek", "mouth", "chin", "eye")
"""What a hand over the face covers: a palm on the cheek (fingers up to the temple), fingers across
the mouth, fingers across the chin, fingers over one eye."""

RGB = tuple[int, int, int]

SURGICAL_PALETTES: tuple[RGB, ...] = ((140, 185, 215), (238, 238, 236), (30, 30, 33), (176, 178, 182))
"""Surgical mask colours (RGB 0-255): light blue, white, black, light grey."""
CLOTH_PALETTES: tuple[RGB, ...] = (
    (28, 28, 30), (120, 122, 126), (38, 48, 84), (232, 232, 228), (150, 182, 212), (205, 190, 165), (70, 95, 130),
)
"""Cloth mask colours: black, grey, navy, white, light blue, beige, denim."""
PRINT_PALETTES: tuple[tuple[RGB, RGB, RGB], ...] = (
    ((40, 50, 86), (235, 235, 230), (200, 60, 60)),  # navy, white print, red accents
    ((236, 236, 232), (40, 50, 86), (190, 40, 50)),  # white, navy print
    ((150, 185, 215), (35, 45, 80), (240, 240, 235)),  # light blue, navy print
    ((30, 30, 33), (230, 230, 226), (220, 120, 150)),  # black, white print, pink accents
    ((228, 180, 190), (130, 30, 55), (250, 250, 245)),  # pink, burgundy print
    ((215, 200, 170), (110, 70, 45), (60, 90, 60)),  # beige, brown print, green accents
    ((150, 152, 156), (30, 30, 33), (230, 230, 230)),  # grey, black print
)
"""Printed masks: (base, ink, accent) colours; the accent is the flowers' centres and the checks' crossings."""
SCARF_PALETTES: tuple[RGB, ...] = (
    (110, 112, 118), (55, 56, 60), (40, 48, 80), (30, 30, 32), (110, 35, 45), (175, 140, 100), (225, 215, 195),
    (45, 80, 60), (170, 40, 40),
)
"""Knitted scarf colours: grey, charcoal, navy, black, burgundy, camel, cream, forest green, red."""
CLEAR_LENS_TINTS: tuple[RGB, ...] = ((190, 190, 195), (165, 185, 225), (200, 180, 150), (175, 210, 190))
"""Clear lens tints, seen through a nearly transparent lens: neutral, blue and green anti-reflection
coatings, a light brown."""
CLEAR_FRAME_PALETTES: tuple[RGB, ...] = ((22, 22, 24), (95, 62, 40), (100, 102, 108), (175, 145, 85), (90, 30, 40))
"""Clear glasses frames: black, tortoiseshell brown, gunmetal, gold, burgundy."""
HAIR_PALETTES: tuple[RGB, ...] = (
    (22, 18, 16), (55, 38, 28), (100, 70, 45), (195, 165, 110), (150, 65, 35), (160, 158, 155),
)
"""Hair colours: black, dark brown, brown, blond, red, grey."""


@dataclass(frozen=True, kw_only=True)
class VariantDistribution:
    """The bounds every random draw of :func:`~holotune.data.default.variants.sample_params` uses.

    The defaults are the distribution the committed data uses. Ranges are uniform ``(low, high)``;
    integer ranges (``IntRange``) include both ends (``mask_side_drop``: [low, high)); probabilities and weights are per variant (weights are relative
    frequencies, normalised by their sum). Each occluder part (the covering, glasses, hair, the hand)
    draws from its own generator seeded from the variant's stream, and the stream draws each part's
    presence whatever its probability, so changing one part's bounds never changes another part or the
    low light. Within a part, and for the jitter and the low light, the draws happen in a fixed order,
    one number per range (two for ``shift`` and ``highlight_position``, three for an RGB jitter, one
    per pleat), so narrowing a range changes only that draw; changing a probability, a weight or
    ``mask_pleats`` can change how many numbers a part draws, and so its later draws.

    Attributes:
        scale: jitter zoom factor.
        rotation_deg: jitter rotation, degrees counter-clockwise on screen.
        shift: jitter translation, each of dx, dy, as a fraction of the image width / height.
        covering_weights: relative frequencies of the :data:`COVERING_STYLES` (surgical, cloth,
            printed, scarf); every occluded variant wears one covering.
        surgical_palettes: surgical mask colours, drawn uniformly.
        cloth_palettes: cloth mask colours, drawn uniformly.
        print_palettes: printed masks' (base, ink, accent) colours, drawn uniformly.
        scarf_palettes: scarf colours, drawn uniformly.
        mask_colour_jitter: added to each RGB channel of every covering's base colour.
        mask_top: where a mask's top edge crosses the nose, 0 = bridge .. 1 = tip.
        mask_side_drop: face-oval steps below the cheek points a mask's sides start, integers in
            [low, high) (each side).
        mask_chin_push: how far below the chin a mask's lower edge lies, fraction of the face height.
        scarf_top: where a scarf's top edge crosses the nose, 0 = bridge .. 1 = tip.
        scarf_chin_push: how far below the chin a scarf reaches, fraction of the face height.
        scarf_side_push: how far past the cheek points a scarf reaches, fraction of the face width.
        mask_gradient: linear shading slope across a covering, each of width and height.
        mask_pleats: how many pleat folds a surgical mask has.
        mask_pleat_position: where the folds lie, fractions of the mask's height.
        mask_pleat_depth: darkening at a fold.
        nose_wire: the surgical nose wire's relief: highlight on its ridge and darkening of its crease.
        weave_period: the cloth weave's thread spacing, fraction of the face width (the weave fades
            where it would be finer than the pixels).
        weave_contrast: the weave's brightness modulation (cloth and printed masks).
        seam_depth: darkening along a cloth mask's centre seam.
        print_weights: relative frequencies of the :data:`PRINT_PATTERNS` (dots, stripes, checks, floral).
        print_period: the print's repeat, fraction of the face width.
        print_angle_deg: the print's rotation on the mask, degrees.
        print_size: a dot's radius, a stripe's width or a petal's radius, fraction of the repeat.
        knit_period: a scarf's knit stitch width, fraction of the face width.
        knit_contrast: the knit's brightness modulation.
        scarf_wrinkles: the depth of a scarf's folds (brightness modulation).
        glasses_probability: an occluded face also wears glasses.
        sunglasses_share: glasses are sunglasses, else clear glasses.
        lens_width: lens half-width / eye half-width (both kinds).
        lens_aspect: lens half-height / lens half-width.
        lens_squareness: superellipse exponent (2 = ellipse, larger = squarer).
        lens_drop: lens centre shift below the eye centre, in lens half-heights.
        lens_darkness: sunglasses lens grey level (RGB 0-255).
        lens_tint_jitter: added to each RGB channel of the sunglasses lens grey.
        lens_opacity: sunglasses lens alpha.
        black_frame_probability: sunglasses have a black frame, else a brown / tortoiseshell one.
        black_frame_level: the black frame's grey level (RGB 0-255).
        brown_frame: the brown frame's RGB before its brightness factor.
        brown_frame_brightness: multiplies ``brown_frame``.
        sunglasses_frame_width: sunglasses frame thickness, fraction of the eye span.
        clear_lens_tints: clear lens tints, drawn uniformly.
        clear_lens_opacity: clear lens alpha (a faint tint: the eye stays visible).
        clear_frame_palettes: clear glasses frame colours, drawn uniformly.
        clear_frame_width: clear glasses frame thickness, fraction of the eye span.
        highlight_strength: brightness of the lens reflection (both kinds).
        window_highlight_probability: the reflection is a soft window, else a few diagonal streaks.
        highlight_position: the reflection's centre in each lens, each of x, y in lens half-sizes.
        highlight_angle_deg: the reflection's tilt, degrees.
        lens_edge_darkening: darkening of a clear lens towards its rim (the lens's thick edge).
        hair_probability: an occluded face also has a bundle of hair across it.
        hair_palettes: hair colours, drawn uniformly.
        hair_colour_jitter: added to each RGB channel of the hair colour.
        hair_strands: strands in the bundle (integers).
        hair_width: a strand's width, fraction of the face width (a strand is a clump of hairs).
        hair_opacity: a strand's alpha at its root (strands taper to their tips).
        hair_start: where the bundle leaves the hairline, 0 = the midline .. 1 = the temple.
        hair_reach: how far down the bundle falls, 0 = eye level .. 1 = the jaw.
        hair_spread: the bundle's width at its tips, fraction of the face width.
        hair_bend: the bundle's sideways bow, fraction of the face width (+ = outwards).
        hair_sheen: brightening of the strands' highlight band.
        hand_probability: an occluded face also has a hand over part of it.
        hand_target_weights: relative frequencies of the :data:`HAND_TARGETS` (cheek, mouth, chin, eye).
        hand_angle_deg: the fingers' direction, degrees from the target's usual direction.
        hand_length: wrist to middle fingertip, fraction of the face height.
        hand_width: multiplies the palm's usual width.
        finger_spread_deg: angle between neighbouring fingers, degrees (< 0: pressed together, tips touching).
        thumb_deg: the thumb's angle away from the index finger, degrees.
        hand_offset: shift of the hand along its fingers, fraction of the hand length.
        skin_gain: multiplies the skin colour sampled from the face.
        skin_warmth: red up, blue down by this fraction (the back of a hand is redder than a cheek).
        hand_shadow: darkening of the hand's soft contact shadow on the face.
        nail_probability: the fingernails are drawn.
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
        chroma_noise: sigma of the demosaiced colour noise (blotches ~2 px wide), relative to the
            sensor noise's sigma.
        jpeg_quality: the capture's JPEG quality (integers).
    """

    scale: Range = (0.9, 1.1)
    rotation_deg: Range = (-10.0, 10.0)
    shift: Range = (-0.05, 0.05)

    covering_weights: tuple[float, float, float, float] = (0.35, 0.25, 0.2, 0.2)
    surgical_palettes: tuple[RGB, ...] = SURGICAL_PALETTES
    cloth_palettes: tuple[RGB, ...] = CLOTH_PALETTES
    print_palettes: tuple[tuple[RGB, RGB, RGB], ...] = PRINT_PALETTES
    scarf_palettes: tuple[RGB, ...] = SCARF_PALETTES
    mask_colour_jitter: Range = (-12.0, 12.0)
    mask_top: Range = (0.2, 0.8)
    mask_side_drop: tuple[int, int] = (0, 3)
    mask_chin_push: Range = (0.04, 0.15)
    scarf_top: Range = (0.35, 0.9)
    scarf_chin_push: Range = (0.25, 0.5)
    scarf_side_push: Range = (0.06, 0.16)
    mask_gradient: Range = (-0.12, 0.12)
    mask_pleats: int = 3
    mask_pleat_position: Range = (0.22, 0.78)
    mask_pleat_depth: Range = (0.07, 0.18)
    nose_wire: Range = (0.5, 1.0)
    weave_period: Range = (0.012, 0.02)
    weave_contrast: Range = (0.03, 0.07)
    seam_depth: Range = (0.15, 0.35)
    print_weights: tuple[float, float, float, float] = (0.3, 0.25, 0.2, 0.25)
    print_period: Range = (0.07, 0.14)
    print_angle_deg: Range = (-40.0, 40.0)
    print_size: Range = (0.18, 0.32)
    knit_period: Range = (0.035, 0.06)
    knit_contrast: Range = (0.08, 0.16)
    scarf_wrinkles: Range = (0.08, 0.2)

    glasses_probability: float = 0.4
    sunglasses_share: float = 0.5
    lens_width: Range = (1.6, 2.0)
    lens_aspect: Range = (0.7, 0.9)
    lens_squareness: Range = (2.2, 4.0)
    lens_drop: Range = (0.0, 0.25)
    lens_darkness: Range = (12.0, 40.0)
    lens_tint_jitter: Range = (-8.0, 8.0)
    lens_opacity: Range = (0.88, 0.97)
    black_frame_probability: float = 0.6
    black_frame_level: Range = (10.0, 30.0)
    brown_frame: tuple[float, float, float] = (95.0, 80.0, 60.0)
    brown_frame_brightness: Range = (0.6, 1.4)
    sunglasses_frame_width: Range = (0.015, 0.03)
    clear_lens_tints: tuple[RGB, ...] = CLEAR_LENS_TINTS
    clear_lens_opacity: Range = (0.04, 0.12)
    clear_frame_palettes: tuple[RGB, ...] = CLEAR_FRAME_PALETTES
    clear_frame_width: Range = (0.01, 0.022)
    highlight_strength: Range = (0.15, 0.45)
    window_highlight_probability: float = 0.6
    highlight_position: Range = (-0.45, 0.45)
    highlight_angle_deg: Range = (-35.0, 35.0)
    lens_edge_darkening: Range = (0.06, 0.2)

    hair_probability: float = 0.25
    hair_palettes: tuple[RGB, ...] = HAIR_PALETTES
    hair_colour_jitter: Range = (-10.0, 10.0)
    hair_strands: IntRange = (40, 100)
    hair_width: Range = (0.004, 0.009)
    hair_opacity: Range = (0.6, 0.95)
    hair_start: Range = (0.0, 0.5)
    hair_reach: Range = (0.2, 1.0)
    hair_spread: Range = (0.25, 0.45)
    hair_bend: Range = (0.0, 0.25)
    hair_sheen: Range = (0.1, 0.35)

    hand_probability: float = 0.25
    hand_target_weights: tuple[float, float, float, float] = (0.3, 0.3, 0.2, 0.2)
    hand_angle_deg: Range = (-20.0, 20.0)
    hand_length: Range = (0.85, 1.05)
    hand_width: Range = (0.9, 1.15)
    finger_spread_deg: Range = (-2.0, 3.0)
    thumb_deg: Range = (20.0, 55.0)
    hand_offset: Range = (-0.05, 0.05)
    skin_gain: Range = (0.85, 1.12)
    skin_warmth: Range = (-0.04, 0.08)
    hand_shadow: Range = (0.15, 0.4)
    nail_probability: float = 0.7

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
    chroma_noise: Range = (0.4, 1.2)
    jpeg_quality: IntRange = (30, 80)


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
        media_faces: include the sharp real faces of the optional media (``make media``;
            :func:`~holotune.data.default.sources.media_face_sources`); missing media are skipped
            with a warning and recorded in ``sources.json``.
        media_variants_per_condition: rendered variants per media face and condition.
        image_size: longest side, in pixels, of the written photo variants (LFW: always 192).
        distribution: the bounds of every random draw of a variant.
    """

    seed: int
    variants_per_condition: int
    lfw_faces: int
    lfw_variants_per_condition: int
    media_faces: bool
    media_variants_per_condition: int
    image_size: int = 384
    distribution: VariantDistribution = field(default_factory=VariantDistribution)

    def __post_init__(self):
        if not 0 <= self.lfw_faces <= LFW_NUM_FACES:
            raise ValueError(f"lfw_faces must be in [0, {LFW_NUM_FACES}] (lfw_subset holds {LFW_NUM_FACES} faces), "
                             f"got {self.lfw_faces}")
        if min(self.variants_per_condition, self.lfw_variants_per_condition, self.media_variants_per_condition) < 1:
            raise ValueError("variants per condition must be >= 1")
        if self.image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}, got {self.image_size}")
