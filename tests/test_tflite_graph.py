"""The flatbuffer reader: sparse decoding against hand-built bytes, naming, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from holotune.models import TFLiteFormatError, load_graph, read_tflite
from holotune.models.tflite_graph import densify


def test_densify_csr_matches_hand_built_matrix():
    # 3x4 matrix, rows dense, columns CSR: the layout pose_detection's 1x1 conv kernels use.
    values = np.array([1, 2, 3, 4, 5], dtype=np.float16)
    dims = [("DENSE", 3, None, None), ("CSR", 0, np.array([0, 2, 3, 5]), np.array([0, 3, 1, 0, 2]))]
    dense = densify(values, (3, 4), [0, 1], [], dims)
    expected = np.array([[1, 0, 0, 2], [0, 3, 0, 0], [4, 0, 5, 0]], dtype=np.float16)
    np.testing.assert_array_equal(dense, expected)
    assert dense.dtype == np.float16


def test_densify_block_sparse_matches_hand_built_matrix():
    # 4x4 matrix stored as 2x2 blocks: block rows dense, block columns CSR, blocks dense inside.
    # Non-zero blocks: (0, 1) = [[1, 2], [3, 4]] and (1, 0) = [[5, 6], [7, 8]].
    values = np.arange(1, 9, dtype=np.float32)
    dims = [
        ("DENSE", 2, None, None),
        ("CSR", 0, np.array([0, 1, 2]), np.array([1, 0])),
        ("DENSE", 2, None, None),
        ("DENSE", 2, None, None),
    ]
    dense = densify(values, (4, 4), [0, 1, 2, 3], [0, 1], dims)
    expected = np.array([[0, 0, 1, 2], [0, 0, 3, 4], [5, 6, 0, 0], [7, 8, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(dense, expected)


def test_densify_rejects_inconsistent_index():
    dims = [("DENSE", 2, None, None), ("CSR", 0, np.array([0, 1, 3]), np.array([0, 1, 2]))]
    with pytest.raises(TFLiteFormatError, match="2 values but the index describes 3"):
        densify(np.ones(2, dtype=np.float32), (2, 3), [0, 1], [], dims)


def test_sparse_pose_detection_weights_are_decoded():
    graph = load_graph("pose_detection")
    # 38 kernels are stored sparse float16 (DENSIFY -> DEQUANTIZE); the convs get dense float32.
    kernels = [graph.constant(op.inputs[1]) for op in graph.ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert all(k.dtype == np.float32 and k.ndim == 4 for k in kernels)
    zeros = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
    assert 0.6 < zeros < 0.8  # the reference measured 69% zeros


def test_non_tflite_file_is_rejected_with_its_name(tmp_path):
    bad = tmp_path / "not_a_model.tflite"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(TFLiteFormatError, match="not_a_model.tflite: not a TFLite flatbuffer"):
        read_tflite(bad)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.tflite"):
        read_tflite(tmp_path / "nothing.tflite")


def test_layer_names_come_from_the_keras_layers():
    graph = load_graph("face_landmark")
    names = [graph.layer_name(op) for op in graph.ops if op.kind in ("CONV_2D", "PRELU")]
    assert names[0] == "conv2d_1" and "conv2d_21" in names and "p_re_lu_20" in names
