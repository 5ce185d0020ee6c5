"""The embedded default dataset: labelled domain-shift variants of photographs shipped in packages.

``dvc repro`` must run with no user data, so :func:`build_default_data` builds a small dataset at
run time from images inside installed packages (nothing is downloaded):

* three real photographs: matplotlib's ``sample_data/grace_hopper.jpg``, scikit-image's
  ``astronaut()`` and ``camera()`` (:func:`holotune.samples.sample_images`);
* the 100 face crops of scikit-image's ``lfw_subset()`` (25x25 greyscale; its other 100 images
  are non-face background patches and are never used);
* with ``media_faces`` and the optional media fetched (``make media``, :mod:`holotune.media`): every
  sharp real face of those packages' photos (outer eye corners >= 60 px apart; 38 faces of 35
  people), each cut out as a head-and-shoulders canvas (:func:`~.sources.media_face_sources`).

Each source has a ``domain`` (``sharp``, ``photo`` or ``lfw``), which the evaluate stage reports
apart; the ingest stage splits by person (``subject``), so no person is in two splits.

Every subject is rendered as a full factorial of four conditions, each with its own geometric
jitter (so that stock error on ``clean`` is not 0 by construction):

=============  ===========================================================================
condition      what is drawn
=============  ===========================================================================
``clean``      geometric jitter only
``mask``       jitter + a face covering (+ sometimes glasses, hair, a hand over the face)
``low_light``  jitter + low-light capture (gain, gamma, colour cast, blur, low res, sensor
               and colour noise, JPEG)
``both``       jitter + the occluders of ``mask`` + low light
=============  ===========================================================================

Every occluded variant wears a covering, its style drawn with the weights of
:class:`VariantDistribution` (``covering_weights``): a pleated ``surgical`` mask with a nose wire, a
``cloth`` mask with a centre seam, a ``printed`` one (dots, stripes, checks, flowers) or a knitted
``scarf`` pulled up over the nose. Independently, with their own probabilities, it may also have
glasses (sunglasses, or clear glasses whose lenses do not hide the eyes), a bundle of hair across
one eye, and a hand over the cheek, mouth, chin or one eye. These are extras of the occlusion
conditions, not conditions of their own (that keeps the factorial 2x2): each row's ``accessory`` is
``none`` or ``mask:<style>`` followed by the extras drawn, e.g. ``mask:surgical+sunglasses+hand``
(in the order ``sunglasses`` | ``clear_glasses``, ``hair``, ``hand``).

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
* Occluders and low light are synthetic (procedurally drawn and shaded coverings, glasses, hair and
  hands, and a simple camera model), not photographs of masked people in the dark; points under an
  opaque occluder keep the clean-image label (what the model should infer), recorded per point in
  ``occluded`` (clear lenses and sparse hair leave the points below them visible).
* Without the optional media only 3 identities are real photos (one of them, Grace Hopper, sharp);
  with them, 35 sharp real people (mostly frontal, many of them public figures in press photos).
  The LFW faces are 25x25 greyscale crops, upscaled with replicated (streaked) borders, and LFW
  identities are not guaranteed distinct (a few people appear more than once in ``lfw_subset``),
  so an identity split over ``subject`` may leak an LFW person. Hands are labelled only where the
  teacher finds them on a clean source (rarely: the canvases are heads and shoulders).

Everything is deterministic: the same :class:`DefaultDataOptions` give a byte-identical
``labels.jsonl`` (and, with the same OpenCV build, identical JPEGs).

Modules, one idea each: :mod:`~.options` (what a build takes, and the bounds of every random draw),
:mod:`~.variants` (one variant's random parameters), :mod:`~.sources` (which photos, their labels),
:mod:`~.teacher` (the face-mesh teacher for LFW), :mod:`~.occluders` (coverings, glasses, hair,
hands), :mod:`~.camera` (low light), :mod:`~.render` (jitter geometry and one rendered variant),
:mod:`~.build` (the dataset writer).
"""

from holotune.data.default.build import build_default_data
from holotune.data.default.camera import apply_low_light
from holotune.data.default.occluders import MASK_MIDLINE, MOUTH_POINTS, draw_occluders
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
    FaceCovering,
    Glasses,
    Hair,
    Hand,
    Jitter,
    LowLight,
    Occluders,
    Print,
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
    "FaceCovering",
    "Glasses",
    "Hair",
    "Hand",
    "Jitter",
    "LowLight",
    "Occluders",
    "PhotoSource",
    "Print",
    "Rendered",
    "VariantDistribution",
    "VariantParams",
    "apply_low_light",
    "build_default_data",
    "draw_occluders",
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
