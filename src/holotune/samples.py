"""Real photographs that ship inside installed packages, and crops of them for each model.

Nothing is downloaded: matplotlib ships ``grace_hopper.jpg``, scikit-image ships ``astronaut``
and ``camera``. The crop boxes below were read off the stock MediaPipe Holistic output on these
images (face mesh bounding box x1.5, pose landmark box x1.25); hand crops were placed by eye on the
cameraman's gloved hands, since no sample photo yields a MediaPipe hand. Every model sees the
kind of crop it sees in the Holistic pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from holotune.models.spec import ModelSpec


@dataclass(frozen=True)
class SampleCrop:
    """A square region of a sample image.

    Attributes:
        image: sample image name (a key of :func:`sample_images`).
        center: (x, y) in pixels.
        size: side length in pixels (may extend past the image; the border mode fills it).
        label: what the crop shows.
    """

    image: str
    center: tuple[float, float]
    size: float
    label: str


# Which kind of crop each model consumes in MediaPipe Holistic.
_CROPS: dict[str, tuple[SampleCrop, ...]] = {
    "face": (
        SampleCrop("grace_hopper", (267, 229), 322, "face"),
        SampleCrop("astronaut", (226, 122), 168, "face"),
        SampleCrop("camera", (227, 162), 98, "face"),
    ),
    "face_region": (  # the pose-derived ROI the face detector searches (about 2x the face box)
        SampleCrop("grace_hopper", (267, 240), 600, "head and shoulders"),
        SampleCrop("astronaut", (226, 130), 330, "head and shoulders"),
        SampleCrop("camera", (227, 170), 200, "head"),
    ),
    "hand": (  # placed by eye: the pose-derived hand ROIs miss the gloved hands in these photos
        SampleCrop("camera", (322, 188), 110, "hand on the camera"),
        SampleCrop("camera", (285, 222), 120, "hand on the tripod handle"),
        SampleCrop("camera", (300, 205), 190, "both hands, wide ROI"),
    ),
    "person": (
        SampleCrop("grace_hopper", (276, 309), 450, "upper body"),
        SampleCrop("astronaut", (185, 258), 390, "upper body"),
        SampleCrop("camera", (236, 338), 486, "person with camera"),
    ),
    "full": (
        SampleCrop("grace_hopper", (256, 300), 600, "whole image"),
        SampleCrop("astronaut", (256, 256), 512, "whole image"),
        SampleCrop("camera", (256, 256), 512, "whole image"),
    ),
}
_CROP_KIND = {
    "pose_detection": "full",
    "pose_landmark_full": "person",
    "face_detection_short_range": "face_region",
    "face_landmark": "face",
    "hand_recrop": "hand",
    "hand_landmark_full": "hand",
}


@lru_cache(maxsize=None)
def _load(name: str) -> np.ndarray:
    if name == "grace_hopper":
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"{path}: cannot read matplotlib's sample image")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    import skimage.data

    if name == "astronaut":
        return np.ascontiguousarray(skimage.data.astronaut())
    if name == "camera":
        return np.ascontiguousarray(np.stack([skimage.data.camera()] * 3, axis=-1))
    raise KeyError(f"unknown sample image {name!r}; known: grace_hopper, astronaut, camera")


def sample_images() -> dict[str, np.ndarray]:
    """Sample photographs by name: (H, W, 3) uint8 RGB arrays (read-only copies are cached)."""
    return {name: _load(name) for name in ("grace_hopper", "astronaut", "camera")}


def crop_square(
    image: np.ndarray, center: tuple[float, float], size: float, out_size: tuple[int, int], border: str
) -> np.ndarray:
    """Cut an axis-aligned square ROI out of ``image`` and scale it to ``out_size`` (h, w).

    Args:
        image: (H, W, 3) uint8 RGB.
        center: ROI centre (x, y) in pixels.
        size: ROI side in pixels.
        out_size: (height, width) of the result.
        border: ``"zero"`` (BORDER_CONSTANT 0) or ``"replicate"``, as MediaPipe fills out-of-image pixels.

    Returns:
        (h, w, 3) uint8 RGB.
    """
    oh, ow = out_size
    sx, sy = ow / size, oh / size
    # Map ROI corners to tensor pixels 0 and S, as MediaPipe's ImageToTensor does.
    matrix = np.array([[sx, 0, ow / 2 - center[0] * sx], [0, sy, oh / 2 - center[1] * sy]], dtype=np.float64)
    mode = cv2.BORDER_CONSTANT if border == "zero" else cv2.BORDER_REPLICATE
    return cv2.warpAffine(image, matrix, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=mode, borderValue=(0, 0, 0))


def to_model_input(crops_u8: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float32 (N, H, W, 3) in the model's input range."""
    lo, hi = spec.input_range
    return crops_u8.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)


def sample_crops(spec: ModelSpec) -> tuple[np.ndarray, list[SampleCrop]]:
    """The real crops model ``spec`` is verified on.

    Returns:
        ``(inputs, crops)``: float32 (N, H, W, 3) NHWC in the model's input range, and what each crop is.
    """
    crops = list(_CROPS[_CROP_KIND[spec.name]])
    images = sample_images()
    u8 = np.stack([crop_square(images[c.image], c.center, c.size, spec.input_size, spec.border) for c in crops])
    return to_model_input(u8, spec), crops
