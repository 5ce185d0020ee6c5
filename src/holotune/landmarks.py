"""Landmark names, connection sets, flip pairs and the 543-keypoint Holistic layout.

One place for every landmark index in holotune, so no other module needs a magic number
(the pattern of MediaPipe's ``pose.py`` enums and MMPose's ``flip_pairs``).

The 543 layout: each frame is a ``(543, k)`` array of normalized image coordinates (x, y in [0, 1]
of the full image; k >= 2), the four MediaPipe Holistic outputs stacked in this order::

    rows      part         indexed by
    0:33      pose         PoseLandmark
    33:501    face         the 468-point face mesh (no iris points)
    501:522   left_hand    HandLandmark
    522:543   right_hand   HandLandmark

Left and right are the subject's, as in MediaPipe: the left hand, ``PoseLandmark.LEFT_WRIST`` and
``FACEMESH_LEFT_EYE`` are on the subject's left side, which for a person facing the camera (an
unmirrored image) is the image's right side, the larger x.

This module imports only numpy: the ONNX runtime and the data pipeline import it.
"""

from __future__ import annotations

import enum
from types import MappingProxyType

import numpy as np


class PoseLandmark(enum.IntEnum):
    """The 33 pose landmarks (names and indices as ``mediapipe.python.solutions.pose.PoseLandmark``)."""

    NOSE = 0
    LEFT_EYE_INNER = 1
    LEFT_EYE = 2
    LEFT_EYE_OUTER = 3
    RIGHT_EYE_INNER = 4
    RIGHT_EYE = 5
    RIGHT_EYE_OUTER = 6
    LEFT_EAR = 7
    RIGHT_EAR = 8
    MOUTH_LEFT = 9
    MOUTH_RIGHT = 10
    LEFT_SHOULDER = 11
    RIGHT_SHOULDER = 12
    LEFT_ELBOW = 13
    RIGHT_ELBOW = 14
    LEFT_WRIST = 15
    RIGHT_WRIST = 16
    LEFT_PINKY = 17
    RIGHT_PINKY = 18
    LEFT_INDEX = 19
    RIGHT_INDEX = 20
    LEFT_THUMB = 21
    RIGHT_THUMB = 22
    LEFT_HIP = 23
    RIGHT_HIP = 24
    LEFT_KNEE = 25
    RIGHT_KNEE = 26
    LEFT_ANKLE = 27
    RIGHT_ANKLE = 28
    LEFT_HEEL = 29
    RIGHT_HEEL = 30
    LEFT_FOOT_INDEX = 31
    RIGHT_FOOT_INDEX = 32


class HandLandmark(enum.IntEnum):
    """The 21 landmarks of one hand (names and indices as ``mediapipe.python.solutions.hands.HandLandmark``)."""

    WRIST = 0
    THUMB_CMC = 1
    THUMB_MCP = 2
    THUMB_IP = 3
    THUMB_TIP = 4
    INDEX_FINGER_MCP = 5
    INDEX_FINGER_PIP = 6
    INDEX_FINGER_DIP = 7
    INDEX_FINGER_TIP = 8
    MIDDLE_FINGER_MCP = 9
    MIDDLE_FINGER_PIP = 10
    MIDDLE_FINGER_DIP = 11
    MIDDLE_FINGER_TIP = 12
    RING_FINGER_MCP = 13
    RING_FINGER_PIP = 14
    RING_FINGER_DIP = 15
    RING_FINGER_TIP = 16
    PINKY_MCP = 17
    PINKY_PIP = 18
    PINKY_DIP = 19
    PINKY_TIP = 20


# --- The 543 layout --------------------------------------------------------------------------

NUM_POSE = len(PoseLandmark)  # 33
NUM_FACE = 468
NUM_HAND = len(HandLandmark)  # 21
NUM_KEYPOINTS = NUM_POSE + NUM_FACE + 2 * NUM_HAND  # 543

POSE_SLICE = slice(0, NUM_POSE)
"""Rows 0:33 of a (543, k) array: the pose, indexed by :class:`PoseLandmark`."""
FACE_SLICE = slice(POSE_SLICE.stop, POSE_SLICE.stop + NUM_FACE)
"""Rows 33:501: the 468-point face mesh, indexed as the FACEMESH_* sets."""
LEFT_HAND_SLICE = slice(FACE_SLICE.stop, FACE_SLICE.stop + NUM_HAND)
"""Rows 501:522: the subject's left hand, indexed by :class:`HandLandmark`."""
RIGHT_HAND_SLICE = slice(LEFT_HAND_SLICE.stop, LEFT_HAND_SLICE.stop + NUM_HAND)
"""Rows 522:543: the subject's right hand, indexed by :class:`HandLandmark`."""

PARTS = MappingProxyType(
    {"pose": POSE_SLICE, "face": FACE_SLICE, "left_hand": LEFT_HAND_SLICE, "right_hand": RIGHT_HAND_SLICE}
)
"""Part name -> its rows of a (543, k) array, in layout order (read-only)."""

assert RIGHT_HAND_SLICE.stop == NUM_KEYPOINTS == 543


# --- Connection sets -------------------------------------------------------------------------
#
# The data below is copied from the MediaPipe 0.10.21 wheel (mediapipe/python/solutions/
# pose_connections.py, hands_connections.py, face_mesh_connections.py):
#
#   Copyright 2021 The MediaPipe Authors.
#   Licensed under the Apache License, Version 2.0 (the "License"); you may not use this file
#   except in compliance with the License. You may obtain a copy of the License at
#       http://www.apache.org/licenses/LICENSE-2.0
#   Unless required by applicable law or agreed to in writing, software distributed under the
#   License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND,
#   either express or implied. See the License for the specific language governing permissions
#   and limitations under the License.
#
# Each set holds (start, end) index pairs within its own part (pose 0..32, hand 0..20, face
# 0..467); add the part's slice start to index a (543, k) array. The sets equal MediaPipe's,
# tuple for tuple (tests/test_landmarks.py checks), so drawing code can use either.
# The literals keep several pairs to a line (fmt: off), or they would run to thousands of lines.

# fmt: off

POSE_CONNECTIONS = frozenset(
    [
        (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13), (13, 15),
        (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
        (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30), (29, 31),
        (30, 32), (27, 31), (28, 32),
    ]
)
"""The 35 skeleton edges between :class:`PoseLandmark` indices."""

HAND_CONNECTIONS = frozenset(
    [
        (0, 1), (0, 5), (9, 13), (13, 17), (5, 9), (0, 17),  # palm
        (1, 2), (2, 3), (3, 4),  # thumb
        (5, 6), (6, 7), (7, 8),  # index finger
        (9, 10), (10, 11), (11, 12),  # middle finger
        (13, 14), (14, 15), (15, 16),  # ring finger
        (17, 18), (18, 19), (19, 20),  # pinky
    ]
)
"""The 21 edges between :class:`HandLandmark` indices."""

FACEMESH_LIPS = frozenset(
    [
        (61, 146), (146, 91), (91, 181), (181, 84), (84, 17), (17, 314), (314, 405), (405, 321),
        (321, 375), (375, 291), (61, 185), (185, 40), (40, 39), (39, 37), (37, 0), (0, 267),
        (267, 269), (269, 270), (270, 409), (409, 291), (78, 95), (95, 88), (88, 178), (178, 87),
        (87, 14), (14, 317), (317, 402), (402, 318), (318, 324), (324, 308), (78, 191), (191, 80),
        (80, 81), (81, 82), (82, 13), (13, 312), (312, 311), (311, 310), (310, 415), (415, 308),
    ]
)
"""Outer and inner lip contours (face mesh indices)."""

FACEMESH_LEFT_EYE = frozenset(
    [
        (263, 249), (249, 390), (390, 373), (373, 374), (374, 380), (380, 381), (381, 382), (382, 362),
        (263, 466), (466, 388), (388, 387), (387, 386), (386, 385), (385, 384), (384, 398), (398, 362),
    ]
)
"""The subject's left eye contour."""

FACEMESH_LEFT_EYEBROW = frozenset(
    [
        (276, 283), (283, 282), (282, 295), (295, 285), (300, 293), (293, 334), (334, 296), (296, 336),
    ]
)
"""The subject's left eyebrow."""

FACEMESH_RIGHT_EYE = frozenset(
    [
        (33, 7), (7, 163), (163, 144), (144, 145), (145, 153), (153, 154), (154, 155), (155, 133),
        (33, 246), (246, 161), (161, 160), (160, 159), (159, 158), (158, 157), (157, 173), (173, 133),
    ]
)
"""The subject's right eye contour."""

FACEMESH_RIGHT_EYEBROW = frozenset(
    [
        (46, 53), (53, 52), (52, 65), (65, 55), (70, 63), (63, 105), (105, 66), (66, 107),
    ]
)
"""The subject's right eyebrow."""

FACEMESH_FACE_OVAL = frozenset(
    [
        (10, 338), (338, 297), (297, 332), (332, 284), (284, 251), (251, 389), (389, 356), (356, 454),
        (454, 323), (323, 361), (361, 288), (288, 397), (397, 365), (365, 379), (379, 378), (378, 400),
        (400, 377), (377, 152), (152, 148), (148, 176), (176, 149), (149, 150), (150, 136), (136, 172),
        (172, 58), (58, 132), (132, 93), (93, 234), (234, 127), (127, 162), (162, 21), (21, 54),
        (54, 103), (103, 67), (67, 109), (109, 10),
    ]
)
"""The outline of the face."""

FACEMESH_NOSE = frozenset(
    [
        (168, 6), (6, 197), (197, 195), (195, 5), (5, 4), (4, 1), (1, 19), (19, 94),
        (94, 2), (98, 97), (97, 2), (2, 326), (326, 327), (327, 294), (294, 278), (278, 344),
        (344, 440), (440, 275), (275, 4), (4, 45), (45, 220), (220, 115), (115, 48), (48, 64),
        (64, 98),
    ]
)
"""The nose (not part of FACEMESH_CONTOURS, as in MediaPipe)."""

# fmt: on

class FaceLandmark(enum.IntEnum):
    """The face-mesh points that metrics, ROIs and the default data's occluders name (the subject's left/right).

    The midline members run from the forehead down: FOREHEAD, NOSE_BRIDGE, NOSE_APEX, NOSE_TIP,
    NOSE_UNDERSIDE, COLUMELLA, SUBNASALE, PHILTRUM, UPPER_LIP_TOP, UPPER_LIP_INNER, LOWER_LIP_INNER,
    LOWER_LIP_BOTTOM, LABIOMENTAL_FOLD, CHIN_UPPER, CHIN_CENTRE, CHIN_LOWER, CHIN.
    """

    RIGHT_EYE_OUTER = 33
    LEFT_EYE_OUTER = 263
    NOSE_TIP = 1
    FOREHEAD = 10  # top of the face oval, on the midline
    FOREHEAD_LEFT = 338  # the face-oval point next to FOREHEAD on the subject's left
    RIGHT_CHEEK = 234  # the face oval's widest point on the subject's right (image left, near the ear)
    LEFT_CHEEK = 454  # the face oval's widest point on the subject's left
    CHIN = 152  # bottom of the face oval (menton)
    NOSE_BRIDGE = 168  # between the eyes
    NOSE_APEX = 4  # the nose's most forward point, just above NOSE_TIP
    NOSE_UNDERSIDE = 19  # just below NOSE_TIP
    COLUMELLA = 94  # the strip between the nostrils
    SUBNASALE = 2  # where the columella meets the upper lip
    PHILTRUM = 164  # between SUBNASALE and the upper lip
    UPPER_LIP_TOP = 0  # outer contour of the upper lip, centre
    UPPER_LIP_INNER = 13  # inner contour of the upper lip, centre
    LOWER_LIP_INNER = 14  # inner contour of the lower lip, centre
    LOWER_LIP_BOTTOM = 17  # outer contour of the lower lip, centre
    RIGHT_MOUTH_CORNER = 61
    LEFT_MOUTH_CORNER = 291
    LABIOMENTAL_FOLD = 18  # the crease between the lower lip and the chin
    CHIN_UPPER = 200
    CHIN_CENTRE = 199
    CHIN_LOWER = 175  # just above CHIN, on the front of the chin
    RIGHT_NOSE_SIDE = 198  # the nose's side wall at mid-height, above the nostril wing (subject's right)
    LEFT_NOSE_SIDE = 420  # its mirror on the subject's left
    RIGHT_CHEEKBONE = 50  # the cheekbone's front, below the outer half of the eye
    LEFT_CHEEKBONE = 280
    RIGHT_CHEEK_CENTRE = 205  # the middle of the cheek, level with the nostrils, halfway to the face oval
    LEFT_CHEEK_CENTRE = 425
    RIGHT_TEMPLE = 162  # the face oval at the outer end of the eyebrow
    LEFT_TEMPLE = 389
    RIGHT_JAW = 172  # the face oval at the angle of the jaw
    LEFT_JAW = 397


FACE_IOD_POINTS = (FaceLandmark.RIGHT_EYE_OUTER, FaceLandmark.LEFT_EYE_OUTER)
"""Outer eye corners: the inter-ocular distance that normalizes face NME (300-W / WFLW convention)."""

FACEMESH_REGIONS = MappingProxyType(
    {
        "lips": FACEMESH_LIPS,
        "left_eye": FACEMESH_LEFT_EYE,
        "left_eyebrow": FACEMESH_LEFT_EYEBROW,
        "right_eye": FACEMESH_RIGHT_EYE,
        "right_eyebrow": FACEMESH_RIGHT_EYEBROW,
        "face_oval": FACEMESH_FACE_OVAL,
        "nose": FACEMESH_NOSE,
    }
)
"""Named face-mesh regions (edge sets); a point outside all of them is ``other``."""


def face_region(index: int) -> str:
    """The named region a face-mesh point belongs to (first match in :data:`FACEMESH_REGIONS`), or ``other``."""
    for name, edges in FACEMESH_REGIONS.items():
        if any(index in edge for edge in edges):
            return name
    return "other"


# The 68-point iBUG / 300-W scheme as face-mesh indices, 0-based in iBUG order (jaw 0-16, brows
# 17-26, nose 27-35, eyes 36-47, lips 48-67). Google publishes no mapping; this is the widely copied
# community one (docs/mediapipe_holistic.md §13), for scoring against human 68-point annotations.
# iBUG jaw and brow points slide along the visible contour, so they carry a definition bias: report
# the inner points (IBUG68_INNER) too.
FACEMESH_TO_IBUG68: tuple[int, ...] = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,  # jaw
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,  # brows
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # nose
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # eyes
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87,  # lips
)
IBUG68_OUTER_EYES = (36, 45)  # the 300-W NME normaliser: outer eye corners
IBUG68_INNER = tuple(range(27, 68))  # nose, eyes and lips: the points both schemes define alike


FACEMESH_CONTOURS = frozenset().union(
    FACEMESH_LIPS,
    FACEMESH_LEFT_EYE,
    FACEMESH_LEFT_EYEBROW,
    FACEMESH_RIGHT_EYE,
    FACEMESH_RIGHT_EYEBROW,
    FACEMESH_FACE_OVAL,
)
"""Lips, eyes, eyebrows and face oval: the 124 edges MediaPipe draws as the face contours."""

# MediaPipe's FACEMESH_TESSELATION lists the mesh triangle by triangle, each (a, b, c) as the three
# edges (a, b), (b, c), (c, a); storing the 852 triangles' corners (2556 ints) is a third the size
# and rebuilds exactly the same 2556 edges.
# fmt: off
_FACEMESH_TRIANGLES_FLAT = (
    127, 34, 139, 11, 0, 37, 232, 231, 120, 72, 37, 39, 128, 121, 47, 232, 121, 128, 104, 69, 67,
    175, 171, 148, 118, 50, 101, 73, 39, 40, 9, 151, 108, 48, 115, 131, 194, 204, 211, 74, 40, 185,
    80, 42, 183, 40, 92, 186, 230, 229, 118, 202, 212, 214, 83, 18, 17, 76, 61, 146, 160, 29, 30,
    56, 157, 173, 106, 204, 194, 135, 214, 192, 203, 165, 98, 21, 71, 68, 51, 45, 4, 144, 24, 23,
    77, 146, 91, 205, 50, 187, 201, 200, 18, 91, 106, 182, 90, 91, 181, 85, 84, 17, 206, 203, 36,
    148, 171, 140, 92, 40, 39, 193, 189, 244, 159, 158, 28, 247, 246, 161, 236, 3, 196, 54, 68, 104,
    193, 168, 8, 117, 228, 31, 189, 193, 55, 98, 97, 99, 126, 47, 100, 166, 79, 218, 155, 154, 26,
    209, 49, 131, 135, 136, 150, 47, 126, 217, 223, 52, 53, 45, 51, 134, 211, 170, 140, 67, 69, 108,
    43, 106, 91, 230, 119, 120, 226, 130, 247, 63, 53, 52, 238, 20, 242, 46, 70, 156, 78, 62, 96,
    46, 53, 63, 143, 34, 227, 123, 117, 111, 44, 125, 19, 236, 134, 51, 216, 206, 205, 154, 153, 22,
    39, 37, 167, 200, 201, 208, 36, 142, 100, 57, 212, 202, 20, 60, 99, 28, 158, 157, 35, 226, 113,
    160, 159, 27, 204, 202, 210, 113, 225, 46, 43, 202, 204, 62, 76, 77, 137, 123, 116, 41, 38, 72,
    203, 129, 142, 64, 98, 240, 49, 102, 64, 41, 73, 74, 212, 216, 207, 42, 74, 184, 169, 170, 211,
    170, 149, 176, 105, 66, 69, 122, 6, 168, 123, 147, 187, 96, 77, 90, 65, 55, 107, 89, 90, 180,
    101, 100, 120, 63, 105, 104, 93, 137, 227, 15, 86, 85, 129, 102, 49, 14, 87, 86, 55, 8, 9,
    100, 47, 121, 145, 23, 22, 88, 89, 179, 6, 122, 196, 88, 95, 96, 138, 172, 136, 215, 58, 172,
    115, 48, 219, 42, 80, 81, 195, 3, 51, 43, 146, 61, 171, 175, 199, 81, 82, 38, 53, 46, 225,
    144, 163, 110, 52, 65, 66, 229, 228, 117, 34, 127, 234, 107, 108, 69, 109, 108, 151, 48, 64, 235,
    62, 78, 191, 129, 209, 126, 111, 35, 143, 117, 123, 50, 222, 65, 52, 19, 125, 141, 221, 55, 65,
    3, 195, 197, 25, 7, 33, 220, 237, 44, 70, 71, 139, 122, 193, 245, 247, 130, 33, 71, 21, 162,
    170, 169, 150, 188, 174, 196, 216, 186, 92, 2, 97, 167, 141, 125, 241, 164, 167, 37, 72, 38, 12,
    38, 82, 13, 63, 68, 71, 226, 35, 111, 101, 50, 205, 206, 92, 165, 209, 198, 217, 165, 167, 97,
    220, 115, 218, 133, 112, 243, 239, 238, 241, 214, 135, 169, 190, 173, 133, 171, 208, 32, 125, 44, 237,
    86, 87, 178, 85, 86, 179, 84, 85, 180, 83, 84, 181, 201, 83, 182, 137, 93, 132, 76, 62, 183,
    61, 76, 184, 57, 61, 185, 212, 57, 186, 214, 207, 187, 34, 143, 156, 79, 239, 237, 123, 137, 177,
    44, 1, 4, 201, 194, 32, 64, 102, 129, 213, 215, 138, 59, 166, 219, 242, 99, 97, 2, 94, 141,
    75, 59, 235, 24, 110, 228, 25, 130, 226, 23, 24, 229, 22, 23, 230, 26, 22, 231, 112, 26, 232,
    189, 190, 243, 221, 56, 190, 28, 56, 221, 27, 28, 222, 29, 27, 223, 30, 29, 224, 247, 30, 225,
    238, 79, 20, 166, 59, 75, 60, 75, 240, 147, 177, 215, 20, 79, 166, 187, 147, 213, 112, 233, 244,
    233, 128, 245, 128, 114, 188, 114, 217, 174, 131, 115, 220, 217, 198, 236, 198, 131, 134, 177, 132, 58,
    143, 35, 124, 110, 163, 7, 228, 110, 25, 356, 389, 368, 11, 302, 267, 452, 350, 349, 302, 303, 269,
    357, 343, 277, 452, 453, 357, 333, 332, 297, 175, 152, 377, 347, 348, 330, 303, 304, 270, 9, 336, 337,
    278, 279, 360, 418, 262, 431, 304, 408, 409, 310, 415, 407, 270, 409, 410, 450, 348, 347, 422, 430, 434,
    313, 314, 17, 306, 307, 375, 387, 388, 260, 286, 414, 398, 335, 406, 418, 364, 367, 416, 423, 358, 327,
    251, 284, 298, 281, 5, 4, 373, 374, 253, 307, 320, 321, 425, 427, 411, 421, 313, 18, 321, 405, 406,
    320, 404, 405, 315, 16, 17, 426, 425, 266, 377, 400, 369, 322, 391, 269, 417, 465, 464, 386, 257, 258,
    466, 260, 388, 456, 399, 419, 284, 332, 333, 417, 285, 8, 346, 340, 261, 413, 441, 285, 327, 460, 328,
    355, 371, 329, 392, 439, 438, 382, 341, 256, 429, 420, 360, 364, 394, 379, 277, 343, 437, 443, 444, 283,
    275, 440, 363, 431, 262, 369, 297, 338, 337, 273, 375, 321, 450, 451, 349, 446, 342, 467, 293, 334, 282,
    458, 461, 462, 276, 353, 383, 308, 324, 325, 276, 300, 293, 372, 345, 447, 352, 345, 340, 274, 1, 19,
    456, 248, 281, 436, 427, 425, 381, 256, 252, 269, 391, 393, 200, 199, 428, 266, 330, 329, 287, 273, 422,
    250, 462, 328, 258, 286, 384, 265, 353, 342, 387, 259, 257, 424, 431, 430, 342, 353, 276, 273, 335, 424,
    292, 325, 307, 366, 447, 345, 271, 303, 302, 423, 266, 371, 294, 455, 460, 279, 278, 294, 271, 272, 304,
    432, 434, 427, 272, 407, 408, 394, 430, 431, 395, 369, 400, 334, 333, 299, 351, 417, 168, 352, 280, 411,
    325, 319, 320, 295, 296, 336, 319, 403, 404, 330, 348, 349, 293, 298, 333, 323, 454, 447, 15, 16, 315,
    358, 429, 279, 14, 15, 316, 285, 336, 9, 329, 349, 350, 374, 380, 252, 318, 402, 403, 6, 197, 419,
    318, 319, 325, 367, 364, 365, 435, 367, 397, 344, 438, 439, 272, 271, 311, 195, 5, 281, 273, 287, 291,
    396, 428, 199, 311, 271, 268, 283, 444, 445, 373, 254, 339, 282, 334, 296, 449, 347, 346, 264, 447, 454,
    336, 296, 299, 338, 10, 151, 278, 439, 455, 292, 407, 415, 358, 371, 355, 340, 345, 372, 346, 347, 280,
    442, 443, 282, 19, 94, 370, 441, 442, 295, 248, 419, 197, 263, 255, 359, 440, 275, 274, 300, 383, 368,
    351, 412, 465, 263, 467, 466, 301, 368, 389, 395, 378, 379, 412, 351, 419, 436, 426, 322, 2, 164, 393,
    370, 462, 461, 164, 0, 267, 302, 11, 12, 268, 12, 13, 293, 300, 301, 446, 261, 340, 330, 266, 425,
    426, 423, 391, 429, 355, 437, 391, 327, 326, 440, 457, 438, 341, 382, 362, 459, 457, 461, 434, 430, 394,
    414, 463, 362, 396, 369, 262, 354, 461, 457, 316, 403, 402, 315, 404, 403, 314, 405, 404, 313, 406, 405,
    421, 418, 406, 366, 401, 361, 306, 408, 407, 291, 409, 408, 287, 410, 409, 432, 436, 410, 434, 416, 411,
    264, 368, 383, 309, 438, 457, 352, 376, 401, 274, 275, 4, 421, 428, 262, 294, 327, 358, 433, 416, 367,
    289, 455, 439, 462, 370, 326, 2, 326, 370, 305, 460, 455, 254, 449, 448, 255, 261, 446, 253, 450, 449,
    252, 451, 450, 256, 452, 451, 341, 453, 452, 413, 464, 463, 441, 413, 414, 258, 442, 441, 257, 443, 442,
    259, 444, 443, 260, 445, 444, 467, 342, 445, 459, 458, 250, 289, 392, 290, 290, 328, 460, 376, 433, 435,
    250, 290, 392, 411, 416, 433, 341, 463, 464, 453, 464, 465, 357, 465, 412, 343, 412, 399, 360, 363, 440,
    437, 399, 456, 420, 456, 363, 401, 435, 288, 372, 383, 353, 339, 255, 249, 448, 261, 255, 133, 243, 190,
    133, 155, 112, 33, 246, 247, 33, 130, 25, 398, 384, 286, 362, 398, 414, 362, 463, 341, 263, 359, 467,
    263, 249, 255, 466, 467, 260, 75, 60, 166, 238, 239, 79, 162, 127, 139, 72, 11, 37, 121, 232, 120,
    73, 72, 39, 114, 128, 47, 233, 232, 128, 103, 104, 67, 152, 175, 148, 119, 118, 101, 74, 73, 40,
    107, 9, 108, 49, 48, 131, 32, 194, 211, 184, 74, 185, 191, 80, 183, 185, 40, 186, 119, 230, 118,
    210, 202, 214, 84, 83, 17, 77, 76, 146, 161, 160, 30, 190, 56, 173, 182, 106, 194, 138, 135, 192,
    129, 203, 98, 54, 21, 68, 5, 51, 4, 145, 144, 23, 90, 77, 91, 207, 205, 187, 83, 201, 18,
    181, 91, 182, 180, 90, 181, 16, 85, 17, 205, 206, 36, 176, 148, 140, 165, 92, 39, 245, 193, 244,
    27, 159, 28, 30, 247, 161, 174, 236, 196, 103, 54, 104, 55, 193, 8, 111, 117, 31, 221, 189, 55,
    240, 98, 99, 142, 126, 100, 219, 166, 218, 112, 155, 26, 198, 209, 131, 169, 135, 150, 114, 47, 217,
    224, 223, 53, 220, 45, 134, 32, 211, 140, 109, 67, 108, 146, 43, 91, 231, 230, 120, 113, 226, 247,
    105, 63, 52, 241, 238, 242, 124, 46, 156, 95, 78, 96, 70, 46, 63, 116, 143, 227, 116, 123, 111,
    1, 44, 19, 3, 236, 51, 207, 216, 205, 26, 154, 22, 165, 39, 167, 199, 200, 208, 101, 36, 100,
    43, 57, 202, 242, 20, 99, 56, 28, 157, 124, 35, 113, 29, 160, 27, 211, 204, 210, 124, 113, 46,
    106, 43, 204, 96, 62, 77, 227, 137, 116, 73, 41, 72, 36, 203, 142, 235, 64, 240, 48, 49, 64,
    42, 41, 74, 214, 212, 207, 183, 42, 184, 210, 169, 211, 140, 170, 176, 104, 105, 69, 193, 122, 168,
    50, 123, 187, 89, 96, 90, 66, 65, 107, 179, 89, 180, 119, 101, 120, 68, 63, 104, 234, 93, 227,
    16, 15, 85, 209, 129, 49, 15, 14, 86, 107, 55, 9, 120, 100, 121, 153, 145, 22, 178, 88, 179,
    197, 6, 196, 89, 88, 96, 135, 138, 136, 138, 215, 172, 218, 115, 219, 41, 42, 81, 5, 195, 51,
    57, 43, 61, 208, 171, 199, 41, 81, 38, 224, 53, 225, 24, 144, 110, 105, 52, 66, 118, 229, 117,
    227, 34, 234, 66, 107, 69, 10, 109, 151, 219, 48, 235, 183, 62, 191, 142, 129, 126, 116, 111, 143,
    118, 117, 50, 223, 222, 52, 94, 19, 141, 222, 221, 65, 196, 3, 197, 45, 220, 44, 156, 70, 139,
    188, 122, 245, 139, 71, 162, 149, 170, 150, 122, 188, 196, 206, 216, 92, 164, 2, 167, 242, 141, 241,
    0, 164, 37, 11, 72, 12, 12, 38, 13, 70, 63, 71, 31, 226, 111, 36, 101, 205, 203, 206, 165,
    126, 209, 217, 98, 165, 97, 237, 220, 218, 237, 239, 241, 210, 214, 169, 140, 171, 32, 241, 125, 237,
    179, 86, 178, 180, 85, 179, 181, 84, 180, 182, 83, 181, 194, 201, 182, 177, 137, 132, 184, 76, 183,
    185, 61, 184, 186, 57, 185, 216, 212, 186, 192, 214, 187, 139, 34, 156, 218, 79, 237, 147, 123, 177,
    45, 44, 4, 208, 201, 32, 98, 64, 129, 192, 213, 138, 235, 59, 219, 141, 242, 97, 97, 2, 141,
    240, 75, 235, 229, 24, 228, 31, 25, 226, 230, 23, 229, 231, 22, 230, 232, 26, 231, 233, 112, 232,
    244, 189, 243, 189, 221, 190, 222, 28, 221, 223, 27, 222, 224, 29, 223, 225, 30, 224, 113, 247, 225,
    99, 60, 240, 213, 147, 215, 60, 20, 166, 192, 187, 213, 243, 112, 244, 244, 233, 245, 245, 128, 188,
    188, 114, 174, 134, 131, 220, 174, 217, 236, 236, 198, 134, 215, 177, 58, 156, 143, 124, 25, 110, 7,
    31, 228, 25, 264, 356, 368, 0, 11, 267, 451, 452, 349, 267, 302, 269, 350, 357, 277, 350, 452, 357,
    299, 333, 297, 396, 175, 377, 280, 347, 330, 269, 303, 270, 151, 9, 337, 344, 278, 360, 424, 418, 431,
    270, 304, 409, 272, 310, 407, 322, 270, 410, 449, 450, 347, 432, 422, 434, 18, 313, 17, 291, 306, 375,
    259, 387, 260, 424, 335, 418, 434, 364, 416, 391, 423, 327, 301, 251, 298, 275, 281, 4, 254, 373, 253,
    375, 307, 321, 280, 425, 411, 200, 421, 18, 335, 321, 406, 321, 320, 405, 314, 315, 17, 423, 426, 266,
    396, 377, 369, 270, 322, 269, 413, 417, 464, 385, 386, 258, 248, 456, 419, 298, 284, 333, 168, 417, 8,
    448, 346, 261, 417, 413, 285, 326, 327, 328, 277, 355, 329, 309, 392, 438, 381, 382, 256, 279, 429, 360,
    365, 364, 379, 355, 277, 437, 282, 443, 283, 281, 275, 363, 395, 431, 369, 299, 297, 337, 335, 273, 321,
    348, 450, 349, 359, 446, 467, 283, 293, 282, 250, 458, 462, 300, 276, 383, 292, 308, 325, 283, 276, 293,
    264, 372, 447, 346, 352, 340, 354, 274, 19, 363, 456, 281, 426, 436, 425, 380, 381, 252, 267, 269, 393,
    421, 200, 428, 371, 266, 329, 432, 287, 422, 290, 250, 328, 385, 258, 384, 446, 265, 342, 386, 387, 257,
    422, 424, 430, 445, 342, 276, 422, 273, 424, 306, 292, 307, 352, 366, 345, 268, 271, 302, 358, 423, 371,
    327, 294, 460, 331, 279, 294, 303, 271, 304, 436, 432, 427, 304, 272, 408, 395, 394, 431, 378, 395, 400,
    296, 334, 299, 6, 351, 168, 376, 352, 411, 307, 325, 320, 285, 295, 336, 320, 319, 404, 329, 330, 349,
    334, 293, 333, 366, 323, 447, 316, 15, 315, 331, 358, 279, 317, 14, 316, 8, 285, 9, 277, 329, 350,
    253, 374, 252, 319, 318, 403, 351, 6, 419, 324, 318, 325, 397, 367, 365, 288, 435, 397, 278, 344, 439,
    310, 272, 311, 248, 195, 281, 375, 273, 291, 175, 396, 199, 312, 311, 268, 276, 283, 445, 390, 373, 339,
    295, 282, 296, 448, 449, 346, 356, 264, 454, 337, 336, 299, 337, 338, 151, 294, 278, 455, 308, 292, 415,
    429, 358, 355, 265, 340, 372, 352, 346, 280, 295, 442, 282, 354, 19, 370, 285, 441, 295, 195, 248, 197,
    457, 440, 274, 301, 300, 368, 417, 351, 465, 251, 301, 389, 394, 395, 379, 399, 412, 419, 410, 436, 322,
    326, 2, 393, 354, 370, 461, 393, 164, 267, 268, 302, 12, 312, 268, 13, 298, 293, 301, 265, 446, 340,
    280, 330, 425, 322, 426, 391, 420, 429, 437, 393, 391, 326, 344, 440, 438, 458, 459, 461, 364, 434, 394,
    428, 396, 262, 274, 354, 457, 317, 316, 402, 316, 315, 403, 315, 314, 404, 314, 313, 405, 313, 421, 406,
    323, 366, 361, 292, 306, 407, 306, 291, 408, 291, 287, 409, 287, 432, 410, 427, 434, 411, 372, 264, 383,
    459, 309, 457, 366, 352, 401, 1, 274, 4, 418, 421, 262, 331, 294, 358, 435, 433, 367, 392, 289, 439,
    328, 462, 326, 94, 2, 370, 289, 305, 455, 339, 254, 448, 359, 255, 446, 254, 253, 449, 253, 252, 450,
    252, 256, 451, 256, 341, 452, 414, 413, 463, 286, 441, 414, 286, 258, 441, 258, 257, 442, 257, 259, 443,
    259, 260, 444, 260, 467, 445, 309, 459, 250, 305, 289, 290, 305, 290, 460, 401, 376, 435, 309, 250, 392,
    376, 411, 433, 453, 341, 464, 357, 453, 465, 343, 357, 412, 437, 343, 399, 344, 360, 440, 420, 437, 456,
    360, 420, 363, 361, 401, 288, 265, 372, 353, 390, 339, 249, 339, 448, 255,
)
# fmt: on

FACEMESH_TRIANGLES: tuple[tuple[int, int, int], ...] = tuple(
    zip(_FACEMESH_TRIANGLES_FLAT[0::3], _FACEMESH_TRIANGLES_FLAT[1::3], _FACEMESH_TRIANGLES_FLAT[2::3])
)
"""The 852 triangles (a, b, c) of the 468-point face mesh, in MediaPipe's order."""

FACEMESH_TESSELATION = frozenset(edge for a, b, c in FACEMESH_TRIANGLES for edge in ((a, b), (b, c), (c, a)))
"""The 2556 directed edges of the face mesh triangles (1322 undirected)."""

del _FACEMESH_TRIANGLES_FLAT


# --- Flip pairs ------------------------------------------------------------------------------


def _pose_flip_pairs() -> tuple[tuple[int, int], ...]:
    # By name, so the pairs cannot drift from the enum: every LEFT name has its RIGHT twin
    # (LEFT_WRIST <-> RIGHT_WRIST, MOUTH_LEFT <-> MOUTH_RIGHT); NOSE has none and maps to itself.
    return tuple(
        (int(lm), int(PoseLandmark[lm.name.replace("LEFT", "RIGHT")])) for lm in PoseLandmark if "LEFT" in lm.name
    )


POSE_FLIP_PAIRS: tuple[tuple[int, int], ...] = _pose_flip_pairs()
"""The 16 (left, right) :class:`PoseLandmark` index pairs that swap under a horizontal flip."""

POSE_BODY_RADIUS_TORSOS = 1.85
"""The stock pose model's body-circle radius (auxiliary landmark 34 to 33) in torso lengths (hip
midpoint to shoulder midpoint): median 1.85 (1.70-2.26) over 26 real photographs of people
(``docs/mediapipe_holistic.md`` §9.4); landmark 34 lies along the hips -> shoulders direction (within 2.5°)."""


def pose_auxiliary_points(pose):
    """MediaPipe's two pose auxiliary landmarks from the 33 body landmarks.

    33 is the hip centre (the hip midpoint, within 3 % of a torso length in the stock model's output);
    34 is the body-circle point, :data:`POSE_BODY_RADIUS_TORSOS` torso lengths from it towards the
    shoulder midpoint. The next frame's pose ROI is built from these two points in video mode.

    Args:
        pose: (..., 33, >=2) landmarks in units that are the same along x and y (pixels, or a square
            crop's normalized coordinates); numpy array or torch tensor.

    Returns:
        (..., 2, 2) x, y of landmarks 33 and 34, the same type as ``pose``.
    """
    hips = (pose[..., PoseLandmark.LEFT_HIP, :2] + pose[..., PoseLandmark.RIGHT_HIP, :2]) / 2
    shoulders = (pose[..., PoseLandmark.LEFT_SHOULDER, :2] + pose[..., PoseLandmark.RIGHT_SHOULDER, :2]) / 2
    circle = hips + POSE_BODY_RADIUS_TORSOS * (shoulders - hips)
    if isinstance(pose, np.ndarray):
        return np.stack([hips, circle], -2)
    import torch  # a tensor: torch is already loaded by whoever made it (the runtime never gets here)

    return torch.stack([hips, circle], -2)


# Derived from MediaPipe's canonical face mesh (mediapipe/modules/face_geometry/data/
# canonical_face_model.obj in the MediaPipe repository; the wheel does not ship it; Apache 2.0 as
# above): mirror each vertex's x and take the nearest vertex. The mesh is exactly symmetric: every
# mirrored vertex lands on a vertex at distance 0 (the next nearest vertex is 0.12 cm away), the matching
# is an involution, 28 vertices lie on the midline (x = 0) and map to themselves, and the other 440
# form the 220 pairs below, (smaller index, its mirror). Cross-checks (tests/test_landmarks.py): the
# pairs map FACEMESH_LEFT_EYE onto FACEMESH_RIGHT_EYE, LEFT_EYEBROW onto RIGHT_EYEBROW, LIPS,
# FACE_OVAL and NOSE onto themselves, 1316 of the 1322 mesh edges onto edges (the other 6 are the
# diagonals of 3 quads per side that MediaPipe split the other way), and the stock face model's
# output on a mirrored crop onto its output on the crop.
# fmt: off
FACE_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (3, 248), (7, 249), (20, 250), (21, 251), (22, 252), (23, 253), (24, 254), (25, 255), (26, 256),
    (27, 257), (28, 258), (29, 259), (30, 260), (31, 261), (32, 262), (33, 263), (34, 264), (35, 265),
    (36, 266), (37, 267), (38, 268), (39, 269), (40, 270), (41, 271), (42, 272), (43, 273), (44, 274),
    (45, 275), (46, 276), (47, 277), (48, 278), (49, 279), (50, 280), (51, 281), (52, 282), (53, 283),
    (54, 284), (55, 285), (56, 286), (57, 287), (58, 288), (59, 289), (60, 290), (61, 291), (62, 292),
    (63, 293), (64, 294), (65, 295), (66, 296), (67, 297), (68, 298), (69, 299), (70, 300), (71, 301),
    (72, 302), (73, 303), (74, 304), (75, 305), (76, 306), (77, 307), (78, 308), (79, 309), (80, 310),
    (81, 311), (82, 312), (83, 313), (84, 314), (85, 315), (86, 316), (87, 317), (88, 318), (89, 319),
    (90, 320), (91, 321), (92, 322), (93, 323), (95, 324), (96, 325), (97, 326), (98, 327), (99, 328),
    (100, 329), (101, 330), (102, 331), (103, 332), (104, 333), (105, 334), (106, 335), (107, 336), (108, 337),
    (109, 338), (110, 339), (111, 340), (112, 341), (113, 342), (114, 343), (115, 344), (116, 345), (117, 346),
    (118, 347), (119, 348), (120, 349), (121, 350), (122, 351), (123, 352), (124, 353), (125, 354), (126, 355),
    (127, 356), (128, 357), (129, 358), (130, 359), (131, 360), (132, 361), (133, 362), (134, 363), (135, 364),
    (136, 365), (137, 366), (138, 367), (139, 368), (140, 369), (141, 370), (142, 371), (143, 372), (144, 373),
    (145, 374), (146, 375), (147, 376), (148, 377), (149, 378), (150, 379), (153, 380), (154, 381), (155, 382),
    (156, 383), (157, 384), (158, 385), (159, 386), (160, 387), (161, 388), (162, 389), (163, 390), (165, 391),
    (166, 392), (167, 393), (169, 394), (170, 395), (171, 396), (172, 397), (173, 398), (174, 399), (176, 400),
    (177, 401), (178, 402), (179, 403), (180, 404), (181, 405), (182, 406), (183, 407), (184, 408), (185, 409),
    (186, 410), (187, 411), (188, 412), (189, 413), (190, 414), (191, 415), (192, 416), (193, 417), (194, 418),
    (196, 419), (198, 420), (201, 421), (202, 422), (203, 423), (204, 424), (205, 425), (206, 426), (207, 427),
    (208, 428), (209, 429), (210, 430), (211, 431), (212, 432), (213, 433), (214, 434), (215, 435), (216, 436),
    (217, 437), (218, 438), (219, 439), (220, 440), (221, 441), (222, 442), (223, 443), (224, 444), (225, 445),
    (226, 446), (227, 447), (228, 448), (229, 449), (230, 450), (231, 451), (232, 452), (233, 453), (234, 454),
    (235, 455), (236, 456), (237, 457), (238, 458), (239, 459), (240, 460), (241, 461), (242, 462), (243, 463),
    (244, 464), (245, 465), (246, 466), (247, 467),
)
"""The 220 (i, j) face mesh index pairs that swap under a horizontal flip (i < j)."""
# fmt: on

FACE_MIDLINE: tuple[int, ...] = tuple(sorted(set(range(NUM_FACE)).difference(*FACE_FLIP_PAIRS)))
"""The 28 face mesh indices on the midline (in no pair: they map to themselves)."""


def _permutation(pairs: tuple[tuple[int, int], ...], n: int) -> np.ndarray:
    perm = np.arange(n)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


def flip_permutation_543() -> np.ndarray:
    """The row permutation of a (543, k) keypoint array under a horizontal image flip.

    Returns an int64 array ``perm`` of length 543 such that, once the caller has mirrored the
    coordinates (``x -> 1 - x``), ``flipped = mirrored[perm]`` is labelled correctly again: the pose
    left/right pairs swap, the face mesh pairs swap, and the left and right hand blocks swap wholesale
    (a hand has no left/right landmarks of its own: a mirrored left hand is a right hand).
    ``perm`` is an involution (``perm[perm] == arange(543)``). A new array on each call.
    """
    perm = np.empty(NUM_KEYPOINTS, dtype=np.int64)
    perm[POSE_SLICE] = POSE_SLICE.start + _permutation(POSE_FLIP_PAIRS, NUM_POSE)
    perm[FACE_SLICE] = FACE_SLICE.start + _permutation(FACE_FLIP_PAIRS, NUM_FACE)
    perm[LEFT_HAND_SLICE] = np.arange(RIGHT_HAND_SLICE.start, RIGHT_HAND_SLICE.stop)
    perm[RIGHT_HAND_SLICE] = np.arange(LEFT_HAND_SLICE.start, LEFT_HAND_SLICE.stop)
    return perm
