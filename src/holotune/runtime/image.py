"""Read an image file into what Holistic takes: (H, W, 3) uint8 RGB, or a clear error naming the file.

Conversions MediaPipe users expect rather than errors: greyscale and palette images become RGB,
an alpha channel is dropped, 16-bit samples are scaled to 8 bits, and the EXIF orientation is
applied (as phone photos need).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MIN_SIDE = 2  # pixels; MediaPipe's crops need at least 2x2 to interpolate
# File suffixes holotune reads as images and as videos (ingest, the CLI, the service, benchmarks).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})


class ImageError(ValueError):
    """An image file that cannot be turned into an RGB frame; the message names the file."""


class ImageTooLargeError(ImageError):
    """An image with more pixels than the caller's limit (found from the header, before decoding)."""


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Decode ``path`` to (H, W, 3) uint8 RGB.

    Raises:
        ImageError: missing, empty, not an image, truncated or corrupt, or smaller than 2x2.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file")
    return decode_image(path, str(path))


def decode_image(source: str | os.PathLike | BinaryIO, name: str, max_pixels: int | None = None) -> np.ndarray:
    """Decode a file or a binary stream (e.g. an upload) to (H, W, 3) uint8 RGB; errors name ``name``.

    Raises:
        ImageTooLargeError: more than ``max_pixels`` pixels (checked before decoding: a small file
            can expand to gigabytes).
        ImageError: not an image, truncated or corrupt, or smaller than 2x2.
    """
    try:
        with Image.open(source) as img:
            width, height = img.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageTooLargeError(f"{name} is {width}x{height} pixels, more than the {max_pixels}-pixel limit")
            img.load()
            rgb = to_rgb_uint8(ImageOps.exif_transpose(img))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file (or an unsupported format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:  # PIL's errors for bad data
        raise ImageError(f"{name}: corrupt or truncated image: {exc}") from None
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise ImageError(f"{name}: image is {rgb.shape[1]}x{rgb.shape[0]} pixels; need at least {MIN_SIDE}x{MIN_SIDE}")
    return rgb


EXIF_ORIENTATION = 0x0112  # the EXIF tag; values 5-8 swap width and height when applied


def orientation(img: Image.Image) -> int:
    """The image's EXIF orientation (1 = upright, also when there is no tag or it is invalid)."""
    try:
        value = int(img.getexif().get(EXIF_ORIENTATION, 1))
    except (ValueError, TypeError, OSError, SyntaxError):
        return 1
    return value if 1 <= value <= 8 else 1


def image_size(source: str | os.PathLike | BinaryIO) -> tuple[int, int]:
    """(width, height) of the image as :func:`decode_image` returns it (EXIF orientation applied), from the header."""
    with Image.open(source) as img:
        width, height = img.size
        return (height, width) if orientation(img) >= 5 else (width, height)


def to_rgb_uint8(img: Image.Image) -> np.ndarray:
    """Convert a PIL image of any common mode to (H, W, 3) uint8 RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(img, dtype=np.uint32 if img.mode == "I" else np.uint16)
        top = 65535 if img.mode != "I" or wide.max() > 255 else 255
        grey = (wide.astype(np.float64) * (255.0 / top) + 0.5).clip(0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if img.mode == "F":
        raise ValueError("floating-point images are not supported")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA").convert("RGB")  # drop alpha, keep the colour underneath
    elif img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
