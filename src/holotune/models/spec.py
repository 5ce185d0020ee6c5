"""What each MediaPipe Holistic model is: file, input, outputs and heads.

Input sizes, value ranges and border modes are MediaPipe's own ``ImageToTensorCalculatorOptions``
for mediapipe 0.10.21 (see ``docs/tflite_port.md`` §2 and
``docs/mediapipe_holistic.md`` §3); output meanings come from the MediaPipe graphs that decode them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from holotune.landmarks import (
    FACE_IOD_POINTS,
    FACEMESH_CONTOURS,
    HAND_CONNECTIONS,
    NUM_FACE,
    NUM_HAND,
    NUM_POSE,
    POSE_CONNECTIONS,
    HandLandmark,
    PoseLandmark,
    face_region,
)


@dataclass(frozen=True)
class OutputSpec:
    """One model output.

    Attributes:
        name: holotune's name for it (also the ONNX output name).
        tflite_name: the TFLite output tensor name.
        shape: per-sample shape in TFLite (NHWC) layout, batch excluded.
        meaning: what the numbers are, with units.
        compare: how parity is measured: ``"raw"`` values, or ``"sigmoid"`` of logits whose raw scale
            is meaningless (segmentation logits reach -1800; only the probability matters).
    """

    name: str
    tflite_name: str
    shape: tuple[int, ...]
    meaning: str
    compare: str = "raw"


@dataclass(frozen=True)
class ModelSpec:
    """One model MediaPipe Holistic runs.

    Attributes:
        name: holotune's model name (the factory key).
        tflite_path: path of the ``.tflite`` file inside the installed ``mediapipe`` package.
        input_size: (height, width) in pixels.
        input_range: (min, max) of the float input; uint8 pixels map as ``u8 * (max - min) / 255 + min``.
        keep_aspect_ratio: MediaPipe letterboxes the ROI to the input instead of stretching it.
        border: how MediaPipe fills crop pixels outside the image: ``"zero"`` or ``"replicate"``.
        outputs: in TFLite output order.
        module: the fine-tuning module this model serves (``face_mesh``, ``hands``, ``pose``) or ``None``.
    """

    name: str
    tflite_path: str
    input_size: tuple[int, int]
    input_range: tuple[float, float]
    keep_aspect_ratio: bool
    border: str
    outputs: tuple[OutputSpec, ...]
    module: str | None = None

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def to_input(self, pixels: "np.ndarray") -> "np.ndarray":
        """uint8 pixels (any shape) -> float32 in the model's input range (``u8 * (max - min) / 255 + min``)."""
        lo, hi = self.input_range
        return pixels.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)

    def from_input(self, x: "np.ndarray") -> "np.ndarray":
        """The inverse of :meth:`to_input`: float input -> uint8 pixels (rounded, clipped)."""
        lo, hi = self.input_range
        return np.clip((np.asarray(x, dtype=np.float32) - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)

    def output(self, name: str) -> OutputSpec:
        for o in self.outputs:
            if o.name == name:
                return o
        raise KeyError(f"model {self.name!r} has no output {name!r}; outputs: {self.output_names}")


MODEL_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="pose_detection",
            tflite_path="modules/pose_detection/pose_detection.tflite",
            input_size=(224, 224),
            input_range=(-1.0, 1.0),
            keep_aspect_ratio=True,
            border="zero",
            outputs=(
                OutputSpec("boxes", "Identity", (2254, 12),
                           "per SSD anchor: box (xc, yc, w, h) + 4 keypoints (x, y), 224-px units, offsets from the anchor"),
                OutputSpec("scores", "Identity_1", (2254, 1), "per SSD anchor: person score logit"),
            ),
        ),
        ModelSpec(
            name="pose_landmark_full",
            tflite_path="modules/pose_landmark/pose_landmark_full.tflite",
            input_size=(256, 256),
            input_range=(0.0, 1.0),
            keep_aspect_ratio=True,
            border="replicate",
            module="pose",
            outputs=(
                OutputSpec("landmarks", "Identity", (195,),
                           "39 x (x, y, z, visibility logit, presence logit); x, y, z in 256-px crop units"),
                OutputSpec("pose_flag", "Identity_1", (1,), "pose presence probability (sigmoid applied in-model)"),
                OutputSpec("segmentation", "Identity_2", (256, 256, 1), "person segmentation logits", compare="sigmoid"),
                OutputSpec("heatmap", "Identity_3", (64, 64, 39), "per-landmark heatmap logits, 64x64"),
                OutputSpec("world_landmarks", "Identity_4", (117,), "39 x (x, y, z) in metres, hip-centred"),
            ),
        ),
        ModelSpec(
            name="face_detection_short_range",
            tflite_path="modules/face_detection/face_detection_short_range.tflite",
            input_size=(128, 128),
            input_range=(-1.0, 1.0),
            keep_aspect_ratio=True,
            border="zero",
            outputs=(
                OutputSpec("regressors", "regressors", (896, 16),
                           "per SSD anchor: box (xc, yc, w, h) + 6 keypoints (x, y), 128-px units, offsets from the anchor"),
                OutputSpec("classificators", "classificators", (896, 1), "per SSD anchor: face score logit"),
            ),
        ),
        ModelSpec(
            name="face_landmark",
            tflite_path="modules/face_landmark/face_landmark.tflite",
            input_size=(192, 192),
            input_range=(0.0, 1.0),
            keep_aspect_ratio=False,
            border="replicate",
            module="face_mesh",
            outputs=(
                OutputSpec("landmarks", "conv2d_21", (1, 1, 1404), "468 x (x, y, z) in 192-px crop units"),
                OutputSpec("face_flag", "conv2d_31", (1, 1, 1), "face presence logit (MediaPipe applies the sigmoid)"),
            ),
        ),
        ModelSpec(
            name="hand_recrop",
            tflite_path="modules/holistic_landmark/hand_recrop.tflite",
            input_size=(256, 256),
            input_range=(0.0, 1.0),
            keep_aspect_ratio=True,
            border="replicate",
            outputs=(
                OutputSpec("crop", "output_crop", (1, 1, 4),
                           "2 x (x, y) in 256-px crop units: hand centre, then a point towards the wrist"),
            ),
        ),
        ModelSpec(
            name="hand_landmark_full",
            tflite_path="modules/hand_landmark/hand_landmark_full.tflite",
            input_size=(224, 224),
            input_range=(0.0, 1.0),
            keep_aspect_ratio=True,
            border="replicate",
            module="hands",
            outputs=(
                OutputSpec("landmarks", "Identity", (63,), "21 x (x, y, z) in 224-px crop units"),
                OutputSpec("hand_flag", "Identity_1", (1,), "hand presence probability (sigmoid applied in-model)"),
                OutputSpec("handedness", "Identity_2", (1,), "probability the hand is a right hand (sigmoid applied in-model)"),
                OutputSpec("world_landmarks", "Identity_3", (63,), "21 x (x, y, z) in metres"),
            ),
        ),
    )
}



def list_models() -> list[str]:
    """Names of every model the factory builds, in Holistic's run order (torch-free)."""
    return list(MODEL_SPECS)


@dataclass(frozen=True)
class ModuleSpec:
    """What a fine-tuning module is: everything training, evaluation, pruning and export read about it.

    Attributes:
        name: the module's name, as the original API's ``module`` field (``face_mesh``, ``hands``, ``pose``).
        model: the :class:`ModelSpec` it adapts.
        parts: the 543-layout parts (:data:`holotune.landmarks.PARTS`) it predicts; a hand model
            predicts either hand, so ``hands`` has two.
        num_points: landmarks per part.
        point_dims: raw values per landmark in the ``landmark_output`` tensor (pose: x, y, z,
            visibility, presence).
        landmark_output: the output holding the landmarks, in input-pixel units.
        presence_output: the presence ("flag") output.
        presence_is_logit: the presence output is a logit (face) rather than a sigmoid probability
            (hands and pose apply the sigmoid in-model).
        z_normalize: MediaPipe's ``TensorsToLandmarks`` ``normalize_z`` for this model (z is
            ``raw_z / input_width / normalize_z``): 0.4 for hands, 1 otherwise.
        roi: the tracking-ROI rule that cuts its crop (``face``, ``hand`` or ``pose``;
            :func:`holotune.data.crops.part_roi`).
        nme_points: the two landmarks whose distance normalizes NME (face: the outer eye corners,
            the 300-W / WFLW inter-ocular convention); ``None``: the labelled points' bounding-box
            diagonal (hands, pose).
        pck: PCK@t of the bounding box's longer side is reported (the hand/pose convention).
        landmark_names: the enum naming each landmark (``None``: face-mesh points are named by region).
        connections: MediaPipe's connection set drawn on overlays.
        class_feature: the trunk tensor a gesture (classification) head reads, or ``None`` if the
            module takes no class head.
        class_feature_width: that tensor's channels.
        stock_outputs: outputs fine-tuning keeps bit-identical to stock: no adapted layer feeds them
            (pose: the heatmap the runtime refines landmarks with, and the segmentation mask).
        auxiliary_points: rows after the ``num_points`` landmarks in ``landmark_output`` that the
            runtime reads (pose: 33 = hip centre and 34 = body-circle point, the next frame's ROI
            source in video mode), trained on targets derived from the labels
            (:func:`holotune.landmarks.pose_auxiliary_points`).
    """

    name: str
    model: str
    parts: tuple[str, ...]
    num_points: int
    point_dims: int
    presence_output: str
    presence_is_logit: bool
    roi: str
    nme_points: tuple[int, int] | None
    pck: bool
    landmark_names: type | None
    connections: frozenset
    landmark_output: str = "landmarks"
    z_normalize: float = 1.0
    class_feature: str | None = None
    class_feature_width: int | None = None
    stock_outputs: tuple[str, ...] = ()
    auxiliary_points: int = 0

    @property
    def model_spec(self) -> ModelSpec:
        return MODEL_SPECS[self.model]

    @property
    def trained_outputs(self) -> tuple[str, str]:
        """The outputs fine-tuning trains: landmarks and presence."""
        return (self.landmark_output, self.presence_output)

    def landmark_name(self, index: int) -> str:
        """``left_eye`` (face region), ``INDEX_FINGER_TIP``, ``LEFT_SHOULDER``..."""
        if self.landmark_names is None:
            return face_region(index)
        return self.landmark_names(index).name


MODULE_SPECS: dict[str, ModuleSpec] = {
    spec.name: spec
    for spec in (
        ModuleSpec(
            name="face_mesh", model="face_landmark", parts=("face",), num_points=NUM_FACE, point_dims=3,
            presence_output="face_flag", presence_is_logit=True, roi="face", nme_points=FACE_IOD_POINTS,
            pck=False, landmark_names=None, connections=FACEMESH_CONTOURS,
        ),
        ModuleSpec(
            name="hands", model="hand_landmark_full", parts=("left_hand", "right_hand"), num_points=NUM_HAND,
            point_dims=3, presence_output="hand_flag", presence_is_logit=False, roi="hand", nme_points=None,
            pck=True, landmark_names=HandLandmark, connections=HAND_CONNECTIONS, z_normalize=0.4,
            class_feature="global_average_pooling2d", class_feature_width=1152,
        ),
        ModuleSpec(
            name="pose", model="pose_landmark_full", parts=("pose",), num_points=NUM_POSE, point_dims=5,
            presence_output="pose_flag", presence_is_logit=False, roi="pose", nme_points=None,
            pck=True, landmark_names=PoseLandmark, connections=POSE_CONNECTIONS,
            stock_outputs=("heatmap", "segmentation"), auxiliary_points=2,
        ),
    )
}
"""The fine-tuning modules, by name: the one place that says what each one is."""

MODULE_MODELS: dict[str, str] = {s.name: s.model for s in MODULE_SPECS.values()}
"""The fine-tuning modules and the landmark model each one adapts."""


class UnknownModuleError(ValueError):
    """A fine-tuning module name that is not in :data:`MODULE_SPECS`."""


def get_module(name: str, field: str = "module") -> ModuleSpec:
    """The :class:`ModuleSpec` of ``name``; an unknown name raises, naming ``field`` and the known ones."""
    try:
        return MODULE_SPECS[name]
    except (KeyError, TypeError):
        raise UnknownModuleError(f"{field}: unknown module {name!r}; one of {sorted(MODULE_SPECS)}") from None


@lru_cache(maxsize=1)
def mediapipe_root() -> Path:
    """The installed ``mediapipe`` package directory, found without importing it."""
    found = importlib.util.find_spec("mediapipe")
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError("the mediapipe package is not installed; holotune needs mediapipe==0.10.21 for its models")
    return Path(next(iter(found.submodule_search_locations)))


class UnknownModelError(KeyError):
    """A model name that the factory does not know."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of model ``name``."""
    try:
        return MODEL_SPECS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(MODEL_SPECS)}") from None


def tflite_path(name: str) -> Path:
    """Path of model ``name``'s ``.tflite`` file inside the installed mediapipe package."""
    path = mediapipe_root() / get_spec(name).tflite_path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file of {name!r} is missing from the installed mediapipe (need 0.10.21)")
    return path
