"""Synthetic gesture hand poses: labelled hand landmarks for a gesture classifier, from a hand model.

No installable package ships labelled gesture photos, so :func:`build_gesture_poses` generates the
gesture data from a kinematic model of MediaPipe's 21-point hand (:mod:`.kinematics`), whose bones
are the stock hand model's own measurements of real hands (``tools/measure_hand_bones.py``). Each
class of :mod:`.classes` (MediaPipe's canned gestures: ``none``, ``closed_fist``, ``open_palm``,
``pointing_up``, ``thumb_down``, ``thumb_up``, ``victory``, ``i_love_you``) is a table of joint-angle
ranges; each sample is posed, oriented and projected into an image as landmarks (no pixels), under
one of three conditions (``clean``, ``side_view``, ``noisy``). Everything is synthetic, and every
record says so (``"synthetic": true``, ``"domain": "synthetic"``). ``docs/gesture_data.md``
describes the model, every range and the bone table's provenance.
"""

from holotune.data.gestures.build import CONDITIONS, build_gesture_poses, generate
from holotune.data.gestures.classes import CLASS_NAMES, GESTURES, Aim, Gesture, HandShape, draw_angles
from holotune.data.gestures.kinematics import HandSkeleton, forward_kinematics, mirror
from holotune.data.gestures.options import GesturePoseOptions

__all__ = [
    "CLASS_NAMES", "CONDITIONS", "GESTURES", "Aim", "Gesture", "GesturePoseOptions", "HandShape", "HandSkeleton",
    "build_gesture_poses", "draw_angles", "forward_kinematics", "generate", "mirror",
]
