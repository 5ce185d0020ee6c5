"""Small gesture ONNX models for tests, built with ``onnx.helper`` (no training, no torch).

Not a conftest: the gesture test modules import it. Until ``holotune.export.export_gesture_head``
writes real heads, these stand in for them: the same input, output and metadata contract
(:mod:`holotune.gesture`), with zero weights and a bias that makes a chosen class win on any hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from holotune.gesture import (
    CLASS_NAMES_KEY,
    FEATURE_SIZE,
    FEATURE_VERSION,
    FEATURE_VERSION_KEY,
    FEATURES_INPUT,
    GESTURE_OUTPUT,
    INPUT_KIND_KEY,
    LOGITS_OUTPUT,
)

# Logit of the favoured class: softmax 0.98 against three zeros, well over the 0.5 threshold.
WINNING_LOGIT = 6.0


def _bias(class_names: list[str], bias_towards: str | None) -> np.ndarray:
    bias = np.zeros(len(class_names), np.float32)
    if bias_towards is not None:
        bias[class_names.index(bias_towards)] = WINNING_LOGIT
    return bias


def make_gesture_onnx(path: str | Path, class_names: list[str], bias_towards: str | None = None, *,
                      width: int = FEATURE_SIZE, metadata: bool = True) -> Path:
    """A landmark gesture head: ``features`` (batch, ``width``) -> Gemm -> ``logits`` (batch, C).

    Args:
        class_names: the classes, ``none`` first; stored in the metadata.
        bias_towards: the class every hand gets (zero weights, this class's bias = 6); ``None``: all
            logits 0, so every hand is ``none``.
        width: the input width (127 fits :func:`holotune.gesture.hand_features`; anything else must be refused).
        metadata: write the three ``holotune.gesture.*`` metadata properties.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.zeros((width, len(class_names)), np.float32), "W")
    bias = numpy_helper.from_array(_bias(class_names, bias_towards), "B")
    graph = helper.make_graph(
        [helper.make_node("Gemm", [FEATURES_INPUT, "W", "B"], [LOGITS_OUTPUT])], "gesture_head",
        [helper.make_tensor_value_info(FEATURES_INPUT, TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info(LOGITS_OUTPUT, TensorProto.FLOAT, ["batch", len(class_names)])],
        initializer=[weights, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="holotune-tests")
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, {CLASS_NAMES_KEY: json.dumps(class_names), INPUT_KIND_KEY: "landmarks",
                                       FEATURE_VERSION_KEY: FEATURE_VERSION})
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def make_hand_model(src: str | Path, dst: str | Path, *, image_head: list[str] | None = None,
                    bias_towards: str | None = None) -> Path:
    """A copy of the stock hand model that finds a hand in every crop (``hand_flag`` + 1), optionally
    with an image gesture head: an extra output ``gesture`` (N, C), a Gemm on the landmarks with zero
    weights and a bias favouring ``bias_towards``, class names in the metadata.

    Why forced presence: no photo that ships with the repository or its packages gives a MediaPipe
    hand (``holotune.samples``), and a gesture needs a hand. The landmarks stay the stock model's.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    raw = "hand_flag_raw"
    for node in model.graph.node:
        node.output[:] = [raw if o == "hand_flag" else o for o in node.output]
        node.input[:] = [raw if i == "hand_flag" else i for i in node.input]
    model.graph.initializer.append(numpy_helper.from_array(np.array([1.0], np.float32), "hand_flag_one"))
    model.graph.node.append(helper.make_node("Add", [raw, "hand_flag_one"], ["hand_flag"]))
    if image_head is not None:
        model.graph.initializer.extend([
            numpy_helper.from_array(np.zeros((63, len(image_head)), np.float32), "gesture_W"),
            numpy_helper.from_array(_bias(image_head, bias_towards), "gesture_B")])
        model.graph.node.append(helper.make_node("Gemm", ["landmarks", "gesture_W", "gesture_B"], [GESTURE_OUTPUT]))
        model.graph.output.append(helper.make_tensor_value_info(GESTURE_OUTPUT, TensorProto.FLOAT,
                                                                ["batch", len(image_head)]))
        helper.set_model_props(model, {CLASS_NAMES_KEY: json.dumps(image_head), INPUT_KIND_KEY: "image"})
    dst = Path(dst)
    onnx.save(model, str(dst))
    return dst
