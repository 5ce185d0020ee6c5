"""Landmark names, connection sets and flip pairs: equal to MediaPipe's, and a true mirror symmetry."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from mediapipe.python.solutions import face_mesh_connections, hands, hands_connections, pose, pose_connections

from holotune import landmarks as lm

FACE_SETS = [
    "FACEMESH_TESSELATION",
    "FACEMESH_CONTOURS",
    "FACEMESH_LIPS",
    "FACEMESH_LEFT_EYE",
    "FACEMESH_LEFT_EYEBROW",
    "FACEMESH_RIGHT_EYE",
    "FACEMESH_RIGHT_EYEBROW",
    "FACEMESH_FACE_OVAL",
    "FACEMESH_NOSE",
]


def _face_flip() -> np.ndarray:
    """The flip permutation restricted to the face mesh, as face indices 0..467."""
    return lm.flip_permutation_543()[lm.FACE_SLICE] - lm.FACE_SLICE.start


def _flip_edges(edges, perm) -> set[frozenset]:
    return {frozenset((int(perm[a]), int(perm[b]))) for a, b in edges}


def _undirected(edges) -> set[frozenset]:
    return {frozenset(e) for e in edges}


# --- Names and connection sets equal MediaPipe's ---


@pytest.mark.parametrize("ours, theirs", [(lm.PoseLandmark, pose.PoseLandmark), (lm.HandLandmark, hands.HandLandmark)])
def test_enums_match_mediapipe(ours, theirs):
    assert [(m.name, m.value) for m in ours] == [(m.name, m.value) for m in theirs]
    assert len(lm.PoseLandmark) == lm.NUM_POSE == 33 and len(lm.HandLandmark) == lm.NUM_HAND == 21


def test_pose_and_hand_connections_match_mediapipe():
    assert lm.POSE_CONNECTIONS == pose_connections.POSE_CONNECTIONS and len(lm.POSE_CONNECTIONS) == 35
    assert lm.HAND_CONNECTIONS == hands_connections.HAND_CONNECTIONS and len(lm.HAND_CONNECTIONS) == 21


@pytest.mark.parametrize("name", FACE_SETS)
def test_face_connections_match_mediapipe(name):
    ours = getattr(lm, name)
    assert isinstance(ours, frozenset)
    assert ours == getattr(face_mesh_connections, name)
    assert all(type(a) is int and type(b) is int and 0 <= a < lm.NUM_FACE and 0 <= b < lm.NUM_FACE for a, b in ours)


def test_tessellation_is_the_triangles():
    assert len(lm.FACEMESH_TRIANGLES) == 852 and len(set(map(frozenset, lm.FACEMESH_TRIANGLES))) == 852
    assert len(lm.FACEMESH_TESSELATION) == 2556 and len(_undirected(lm.FACEMESH_TESSELATION)) == 1322
    assert {i for tri in lm.FACEMESH_TRIANGLES for i in tri} == set(range(lm.NUM_FACE))


# --- The 543 layout ---


def test_layout_slices_tile_543():
    assert lm.NUM_KEYPOINTS == 543 and lm.NUM_FACE == 468
    assert list(lm.PARTS) == ["pose", "face", "left_hand", "right_hand"]
    assert list(lm.PARTS.values()) == [lm.POSE_SLICE, lm.FACE_SLICE, lm.LEFT_HAND_SLICE, lm.RIGHT_HAND_SLICE]
    stop = 0
    for s in lm.PARTS.values():
        assert s.start == stop and s.stop > s.start and s.step is None
        stop = s.stop
    assert stop == lm.NUM_KEYPOINTS
    assert np.array_equal(np.concatenate([np.arange(543)[s] for s in lm.PARTS.values()]), np.arange(543))
    sizes = {name: s.stop - s.start for name, s in lm.PARTS.items()}
    assert sizes == {"pose": 33, "face": 468, "left_hand": 21, "right_hand": 21}
    with pytest.raises(TypeError):
        lm.PARTS["pose"] = slice(0, 1)  # read-only


# --- Flip pairs ---


def test_flip_permutation_is_an_involution():
    perm = lm.flip_permutation_543()
    assert perm.shape == (543,) and np.issubdtype(perm.dtype, np.integer)
    assert np.array_equal(np.sort(perm), np.arange(543))
    assert np.array_equal(perm[perm], np.arange(543))
    perm[0] = 5  # each call returns a fresh array
    assert lm.flip_permutation_543()[0] == lm.PoseLandmark.NOSE


def test_flip_permutation_pose():
    perm = lm.flip_permutation_543()[lm.POSE_SLICE]
    P = lm.PoseLandmark
    assert perm[P.LEFT_WRIST] == P.RIGHT_WRIST and perm[P.RIGHT_WRIST] == P.LEFT_WRIST
    assert perm[P.MOUTH_LEFT] == P.MOUTH_RIGHT and perm[P.LEFT_FOOT_INDEX] == P.RIGHT_FOOT_INDEX
    assert perm[P.NOSE] == P.NOSE
    assert len(lm.POSE_FLIP_PAIRS) == 16
    for left, right in lm.POSE_FLIP_PAIRS:
        assert P(left).name.replace("LEFT", "RIGHT") == P(right).name
    # The flip maps the skeleton onto itself.
    assert _flip_edges(lm.POSE_CONNECTIONS, perm) == _undirected(lm.POSE_CONNECTIONS)


def test_flip_permutation_swaps_hand_blocks():
    perm = lm.flip_permutation_543()
    left = np.arange(543)[lm.LEFT_HAND_SLICE]
    right = np.arange(543)[lm.RIGHT_HAND_SLICE]
    assert np.array_equal(perm[lm.LEFT_HAND_SLICE], right)
    assert np.array_equal(perm[lm.RIGHT_HAND_SLICE], left)
    wrist = lm.HandLandmark.WRIST
    assert perm[lm.LEFT_HAND_SLICE.start + wrist] == lm.RIGHT_HAND_SLICE.start + wrist


def test_face_flip_pairs_are_a_matching():
    flat = [i for pair in lm.FACE_FLIP_PAIRS for i in pair]
    assert len(lm.FACE_FLIP_PAIRS) == 220 and len(set(flat)) == 440
    assert all(a < b for a, b in lm.FACE_FLIP_PAIRS)
    assert len(lm.FACE_MIDLINE) == 28 and not set(lm.FACE_MIDLINE) & set(flat)
    assert len(lm.FACE_MIDLINE) + len(flat) == lm.NUM_FACE
    perm = _face_flip()
    assert np.array_equal(perm[list(lm.FACE_MIDLINE)], list(lm.FACE_MIDLINE))


@pytest.mark.parametrize(
    "a, b",
    [
        ("FACEMESH_LEFT_EYE", "FACEMESH_RIGHT_EYE"),
        ("FACEMESH_LEFT_EYEBROW", "FACEMESH_RIGHT_EYEBROW"),
        ("FACEMESH_LIPS", "FACEMESH_LIPS"),
        ("FACEMESH_FACE_OVAL", "FACEMESH_FACE_OVAL"),
        ("FACEMESH_NOSE", "FACEMESH_NOSE"),
        ("FACEMESH_CONTOURS", "FACEMESH_CONTOURS"),
    ],
)
def test_face_flip_maps_contours_onto_their_mirror(a, b):
    perm = _face_flip()
    src, dst = getattr(lm, a), getattr(lm, b)
    assert {int(perm[i]) for e in src for i in e} == {i for e in dst for i in e}  # as index sets
    assert _flip_edges(src, perm) == _undirected(dst)  # and edge for edge


def test_face_flip_is_a_symmetry_of_the_mesh():
    # 1316 of the 1322 mesh edges mirror onto edges. The other 6 are quad diagonals: MediaPipe split
    # 3 quads on one side along one diagonal and their mirrors along the other, so each mirrored
    # edge that is missing must join the two far corners of a pair of triangles sharing an edge.
    perm = _face_flip()
    edges = _undirected(lm.FACEMESH_TESSELATION)
    mirrored = _flip_edges(lm.FACEMESH_TESSELATION, perm)
    missing = mirrored - edges
    assert len(mirrored) == 1322 and len(missing) == 6
    triangles = {frozenset(t) for t in lm.FACEMESH_TRIANGLES}
    for a, b in map(tuple, missing):
        assert any(
            frozenset((a, c, d)) in triangles and frozenset((b, c, d)) in triangles for c, d in map(tuple, edges)
        ), f"mirrored edge {(a, b)} is not a quad diagonal"
    # Everywhere else triangles mirror onto triangles: all but the 2 x 6 triangles of those quads.
    mirrored_triangles = {frozenset(int(perm[i]) for i in t) for t in triangles}
    assert len(mirrored_triangles & triangles) == 852 - 12


# A few vertices of MediaPipe's canonical face mesh (canonical_face_model.obj, x y z in cm), copied to
# check the pairs against the geometry they were derived from: a pair is an exact x-mirror image.
CANONICAL_VERTICES = {
    0: (0.000000, -3.406404, 5.979507),  # upper lip, midline
    1: (0.000000, -1.126865, 7.475604),  # nose tip
    152: (0.000000, -9.403378, 4.264492),  # chin
    33: (-4.445859, 2.663991, 3.173422),  # right eye, outer corner
    263: (4.445859, 2.663991, 3.173422),  # left eye, outer corner
    133: (-2.164289, 2.189867, 3.851822),  # right eye, inner corner
    362: (2.164289, 2.189867, 3.851822),  # left eye, inner corner
    61: (-2.456206, -4.342621, 4.283884),  # right mouth corner
    291: (2.456206, -4.342621, 4.283884),  # left mouth corner
    234: (-7.664182, 0.673132, -2.435867),  # right cheek, face oval
    454: (7.664182, 0.673132, -2.435867),  # left cheek, face oval
}


def test_face_flip_matches_canonical_geometry():
    perm = _face_flip()
    for i, (x, y, z) in CANONICAL_VERTICES.items():
        j = int(perm[i])
        assert j in CANONICAL_VERTICES, (i, j)
        assert CANONICAL_VERTICES[j] == (-x if x else 0.0, y, z)
        assert (j == i) == (x == 0.0)
    # The subject's left (FACEMESH_LEFT_EYE) is at +x in the canonical mesh, as in image coordinates.
    assert {33, 133} <= {i for e in lm.FACEMESH_RIGHT_EYE for i in e}
    assert {263, 362} <= {i for e in lm.FACEMESH_LEFT_EYE for i in e}


def test_face_flip_matches_the_face_model_on_mirrored_photos():
    # The stock face model on a real face crop and on its mirror image: mirroring the second output
    # back and permuting it by the flip pairs must give the first. Without the permutation the points
    # are off by tens of pixels (identity check below); with it, by a few (model noise).
    torch = pytest.importorskip("torch")
    from holotune.models import create_model
    from holotune.samples import sample_crops

    model = create_model("face_landmark").eval()
    size = model.spec.input_size[1]
    nhwc, crops = sample_crops(model.spec)
    x = torch.from_numpy(np.ascontiguousarray(nhwc[:2].transpose(0, 3, 1, 2)))  # two well-lit faces
    with torch.no_grad():
        pts = model(x)[0].reshape(-1, lm.NUM_FACE, 3).numpy()[..., :2]
        pts_m = model(torch.flip(x, dims=[3]))[0].reshape(-1, lm.NUM_FACE, 3).numpy()[..., :2]
    pts_m[..., 0] = size - pts_m[..., 0]
    perm = _face_flip()
    for k, crop in enumerate(crops[:2]):
        err = np.linalg.norm(pts[k] - pts_m[k][perm], axis=1)
        err_identity = np.linalg.norm(pts[k] - pts_m[k], axis=1)
        assert err.max() < 0.04 * size, (crop, err.max())
        assert err.mean() < 0.1 * err_identity.mean(), crop


# --- Light to import ---


def test_import_is_light():
    code = (
        "import sys, holotune.landmarks; "
        "print(sorted(m for m in ('torch', 'mediapipe', 'cv2', 'onnxruntime', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_68_point_view_is_a_distinct_subset_with_the_eye_corners_in_place():
    from holotune.landmarks import FACEMESH_TO_IBUG68, IBUG68_INNER, IBUG68_OUTER_EYES, FaceLandmark

    assert len(FACEMESH_TO_IBUG68) == 68 and len(set(FACEMESH_TO_IBUG68)) == 68
    assert all(0 <= i < 468 for i in FACEMESH_TO_IBUG68)
    right, left = (FACEMESH_TO_IBUG68[i] for i in IBUG68_OUTER_EYES)
    assert (right, left) == (FaceLandmark.RIGHT_EYE_OUTER, FaceLandmark.LEFT_EYE_OUTER)
    assert IBUG68_INNER == tuple(range(27, 68))
