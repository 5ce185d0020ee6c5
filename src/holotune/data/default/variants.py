"""What is random about one rendered variant: the parameter dataclasses and :func:`sample_params`.

Parameters are sampled first and rendered second, so a variant's look is a small record (written to
``labels.jsonl`` as ``augment``) and the renderers are deterministic functions of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from holotune.data.default.options import VariantDistribution

CONDITIONS = ("clean", "mask", "low_light", "both")
"""The 2x2 factorial: (occluder, low light) = (no, no), (yes, no), (no, yes), (yes, yes)."""
OCCLUDED_CONDITIONS = frozenset({"mask", "both"})
DARK_CONDITIONS = frozenset({"low_light", "both"})

SEED_BOUND = 2**31
"""Per-variant seeds (mask corners and fabric, sensor noise) are drawn in [0, SEED_BOUND)."""


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
class Sunglasses:
    """Dark lenses over both eyes with a frame, a bridge and temple arms."""

    lens_width: float  # lens half-width / eye half-width
    lens_aspect: float  # lens half-height / lens half-width
    squareness: float  # superellipse exponent: 2 = ellipse, larger = squarer
    drop: float  # lens centre shift below the eye centre, in lens half-heights
    tint: tuple[float, float, float]  # lens RGB 0-255
    opacity: float
    frame: tuple[float, float, float]  # frame RGB 0-255


@dataclass(frozen=True)
class FaceMask:
    """A cloth or surgical face mask with ear loops.

    Attributes:
        top: where the top edge crosses the nose, 0 = ``NOSE_BRIDGE`` .. 1 = ``NOSE_TIP``.
        side_drop: how many face-oval steps below ``RIGHT_CHEEK`` / ``LEFT_CHEEK`` the mask's sides
            start (right, left).
        chin_push: the lower edge lies this fraction of the face height below the chin.
        colour: base RGB 0-255 (palette colour + jitter).
        pleats: centres of the pleat folds, fractions of the mask's height.
        pleat_depth: darkening at a fold.
        gradient: (gx, gy) linear shading across the mask's width and height.
        corner_seed: seeds the corner jitter and the pixel noise.
        sunglasses: also wear sunglasses, or None.
    """

    top: float
    side_drop: tuple[int, int]
    chin_push: float
    colour: tuple[float, float, float]
    pleats: tuple[float, ...]
    pleat_depth: float
    gradient: tuple[float, float]
    corner_seed: int
    sunglasses: Sunglasses | None = None


@dataclass(frozen=True)
class LowLight:
    """A dim capture: ``gain * x**gamma``, a colour cast, blur, low resolution, noise, 8 bits.

    Attributes:
        gain: exposure gain.
        gamma: tone curve exponent.
        cast: per-channel RGB multipliers (warm or cool white balance error).
        blur_sigma: Gaussian blur in pixels of a 384-px image (0 = none).
        downscale: captured at this fraction of the size, then upscaled (1 = full resolution).
        read_noise: sigma of signal-independent noise, fraction of full scale.
        shot_noise: variance per unit signal of the signal-dependent noise.
        noise_seed: seeds the noise.
    """

    gain: float
    gamma: float
    cast: tuple[float, float, float]
    blur_sigma: float
    downscale: float
    read_noise: float
    shot_noise: float
    noise_seed: int


@dataclass(frozen=True)
class VariantParams:
    """Everything random about one rendered variant."""

    condition: str
    jitter: Jitter
    occluder: FaceMask | None = None
    low_light: LowLight | None = None


_DEFAULT_DISTRIBUTION = VariantDistribution()


def sample_params(rng: np.random.Generator, condition: str,
                  distribution: VariantDistribution = _DEFAULT_DISTRIBUTION) -> VariantParams:
    """Draw one variant's parameters for ``condition`` (one of :data:`CONDITIONS`) from ``distribution``.

    The draws happen in a fixed order (jitter, mask colour, sunglasses, mask shape, low light), so
    the same ``rng`` state gives the same variant.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; known: {CONDITIONS}")
    d = distribution
    jitter = Jitter(scale=float(rng.uniform(*d.scale)), rotation_deg=float(rng.uniform(*d.rotation_deg)),
                    shift=(float(rng.uniform(*d.shift)), float(rng.uniform(*d.shift))))
    occluder = _sample_mask(rng, d) if condition in OCCLUDED_CONDITIONS else None
    low_light = _sample_low_light(rng, d) if condition in DARK_CONDITIONS else None
    return VariantParams(condition, jitter, occluder, low_light)


def _sample_mask(rng: np.random.Generator, d: VariantDistribution) -> FaceMask:
    palette = np.array(d.mask_palettes[int(rng.integers(len(d.mask_palettes)))], dtype=float)
    colour = np.clip(palette + rng.uniform(*d.mask_colour_jitter, 3), 0, 255)
    glasses = _sample_sunglasses(rng, d) if rng.random() < d.sunglasses_probability else None
    return FaceMask(
        top=float(rng.uniform(*d.mask_top)),
        side_drop=(int(rng.integers(*d.mask_side_drop)), int(rng.integers(*d.mask_side_drop))),
        chin_push=float(rng.uniform(*d.mask_chin_push)), colour=_floats(colour),
        pleats=_floats(np.sort(rng.uniform(*d.mask_pleat_position, d.mask_pleats))),
        pleat_depth=float(rng.uniform(*d.mask_pleat_depth)),
        gradient=(float(rng.uniform(*d.mask_gradient)), float(rng.uniform(*d.mask_gradient))),
        corner_seed=int(rng.integers(SEED_BOUND)), sunglasses=glasses)


def _sample_sunglasses(rng: np.random.Generator, d: VariantDistribution) -> Sunglasses:
    dark = rng.uniform(*d.lens_darkness)
    tint = np.clip(dark + rng.uniform(*d.lens_tint_jitter, 3), 0, 255)
    if rng.random() < d.black_frame_probability:
        frame = np.full(3, rng.uniform(*d.black_frame_level))
    else:
        frame = np.array(d.brown_frame) * rng.uniform(*d.brown_frame_brightness)
    return Sunglasses(lens_width=float(rng.uniform(*d.lens_width)), lens_aspect=float(rng.uniform(*d.lens_aspect)),
                      squareness=float(rng.uniform(*d.lens_squareness)), drop=float(rng.uniform(*d.lens_drop)),
                      tint=_floats(tint), opacity=float(rng.uniform(*d.lens_opacity)), frame=_floats(frame))


def _sample_low_light(rng: np.random.Generator, d: VariantDistribution) -> LowLight:
    c = rng.uniform(*d.cast_strength)
    weights = d.warm_cast if rng.random() < d.warm_cast_probability else d.cool_cast
    gain = float(rng.uniform(*d.gain))
    gamma = float(rng.uniform(*d.gamma))
    blur_sigma = float(rng.uniform(*d.blur_sigma)) if rng.random() < d.blur_probability else 0.0
    downscale = float(rng.uniform(*d.downscale)) if rng.random() < d.downscale_probability else 1.0
    return LowLight(gain=gain, gamma=gamma, cast=_floats(1 + w * c for w in weights), blur_sigma=blur_sigma,
                    downscale=downscale, read_noise=float(rng.uniform(*d.read_noise)),
                    shot_noise=float(rng.uniform(*d.shot_noise)), noise_seed=int(rng.integers(SEED_BOUND)))


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
