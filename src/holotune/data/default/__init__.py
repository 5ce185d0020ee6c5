"""The embedded default dataset: labelled domain-shift variants of photographs shipped in packages.

``dvc repro`` must run with no user data, so :func:`build_default_data` builds a small dataset at
run time from images inside installed packages (nothing is downloaded):

* three real photographs: matplotlib's ``sample_data/grace_hopper.jpg``, scikit-image's
  ``astronaut()`` and ``camera()`` (:func:`holotune.samples.sample_images`);
* the 100 face crops of scikit-image's ``lfw_subset()`` (25x25 greyscale; its other 100 images
  are non-face background patches and are never used).

Every subject is rendered as a full factorial of four conditions, each with its own geometric
jitter (so that stock error on ``clean`` is not 0 by construction):

=============  ===========================================================================
condition      what is drawn
=============  ===========================================================================
``clean``      geometric jitter only
``mask``       jitter + a textured face mask (30 % of them also wear sunglasses)
``low_light``  jitter + low-light capture (gain, gamma, colour cast, noise, blur, low res)
``both``       jitter + mask (+ sometimes sunglasses) + low light
=============  ===========================================================================

Sunglasses are a secondary accessory of the occlusion conditions, not a condition of their own
(that keeps the factorial 2x2): each row's ``accessory`` is ``none``, ``mask`` or
``mask+sunglasses``.

Labels. Keypoints follow the 543 layout of :mod:`holotune.landmarks` (normalized image
coordinates; z as MediaPipe gives it, in units of the image width). They are *pseudo-labels*: the
stock model's output (MediaPipe Holistic on ONNX Runtime, :class:`holotune.runtime.Holistic`; for
LFW the face-mesh model alone, with MediaPipe's landmark-driven ROI refinement) on the clean,
un-jittered image, carried through the exact affine of each variant. The teacher runs once per
source image. A point's ``mask`` is 1 where the teacher found its part and the transformed point
lies inside the image, else 0; LFW subjects have only the face labelled (pose and hands mask 0).

Honest limits of this data:

* Labels are the stock model's own predictions, not human annotation: error against them measures
  agreement with stock behaviour on the clean image, and the labels inherit its mistakes (e.g. on
  the cameraman's three-quarter profile, or on the blurry LFW upscales).
* Occluders and low light are synthetic (drawn polygons and a simple camera-noise model), not
  photographs of masked people in the dark; points under the occluder keep the clean-image label
  (what the model should infer), recorded per point in ``occluded``.
* Only 3 real, sharp identities (all roughly frontal except the cameraman); the LFW faces are 25x25
  greyscale crops, upscaled with replicated (streaked) borders. LFW identities are not guaranteed
  distinct (a few people appear more than once in ``lfw_subset``), so an identity split over
  ``subject`` may leak an LFW person; no person here is annotated with hands (the teacher finds
  none), so the hand rows are always masked out.

Everything is deterministic: the same :class:`DefaultDataOptions` give a byte-identical
``labels.jsonl`` (and, with the same OpenCV build, identical JPEGs).

Modules, one idea each: :mod:`~.options` (what a build takes, and the bounds of every random draw),
:mod:`~.variants` (one variant's random parameters), :mod:`~.sources` (which photos, their labels),
:mod:`~.teacher` (the face-mesh teacher for LFW), :mod:`~.occluders` (mask and sunglasses),
:mod:`~.camera` (low light), :mod:`~.render` (jitter geometry and one rendered variant),
:mod:`~.build` (the dataset writer).
"""

from holotune.data.default.build import build_default_data
from holotune.data.default.camera import apply_low_light
from holotune.data.default.occluders import MASK_MIDLINE, MOUTH_POINTS, draw_face_mask, draw_sunglasses
from holotune.data.default.options import DefaultDataOptions, VariantDistribution
from holotune.data.default.render import Rendered, jitter_matrix, render_variant, warp_image, warp_keypoints
from holotune.data.default.sources import (
    LFW_CANVAS,
    LFW_NUM_FACES,
    PhotoSource,
    lfw_canvas,
    lfw_nonface_canvases,
    lfw_sources,
    photo_sources,
)
from holotune.data.default.teacher import face_mesh_teacher
from holotune.data.default.variants import (
    CONDITIONS,
    FaceMask,
    Jitter,
    LowLight,
    Sunglasses,
    VariantParams,
    sample_params,
)

__all__ = [
    "CONDITIONS",
    "LFW_CANVAS",
    "LFW_NUM_FACES",
    "MASK_MIDLINE",
    "MOUTH_POINTS",
    "DefaultDataOptions",
    "FaceMask",
    "Jitter",
    "LowLight",
    "PhotoSource",
    "Rendered",
    "Sunglasses",
    "VariantDistribution",
    "VariantParams",
    "apply_low_light",
    "build_default_data",
    "draw_face_mask",
    "draw_sunglasses",
    "face_mesh_teacher",
    "jitter_matrix",
    "lfw_canvas",
    "lfw_nonface_canvases",
    "lfw_sources",
    "photo_sources",
    "render_variant",
    "sample_params",
    "warp_image",
    "warp_keypoints",
]
