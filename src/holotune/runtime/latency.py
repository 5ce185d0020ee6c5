"""ONNX Runtime latency of model files, measured as the runtime opens them (numpy and ONNX Runtime only)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from holotune.models.spec import ModelSpec
from holotune.runtime.sessions import ModelSession


def onnx_latency(paths: dict[str, str | Path], spec: ModelSpec, runs: int = 40, warmup: int = 5,
                 block: int = 5, outputs: list[str] | None = None, optional_outputs: tuple[str, ...] = ()) -> dict:
    """ONNX Runtime latency of several exports of one model, measured interleaved in one run.

    Each file opens as the runtime opens a swapped-in model (:class:`holotune.runtime.sessions.ModelSession`:
    the stock-signature check, 1 intra-op thread, no spinning, all graph optimizations) and runs a
    batch of 1 on the same input; after the warm-ups the sessions take turns in blocks of ``block``
    calls, so a slow phase of a shared machine hits all of them alike.

    ``outputs`` and ``optional_outputs`` are :class:`ModelSession`'s (default: every stock output), e.g.
    what Holistic computes of the hand model, plus a fine-tuned file's ``gesture`` head where it has one.

    Returns:
        ``{key: {"median_ms", "p10_ms", "p90_ms"}}``, milliseconds per call.
    """
    sessions = {k: ModelSession(spec, p, 1, outputs, optional_outputs) for k, p in paths.items()}
    h, w = spec.input_size
    lo, hi = spec.input_range
    x = np.random.default_rng(0).uniform(lo, hi, (1, 3, h, w)).astype(np.float32)  # dense kernels: content-blind
    for session in sessions.values():
        for _ in range(warmup):
            session.run(x)
    times: dict[str, list[float]] = {k: [] for k in sessions}
    while any(len(t) < runs for t in times.values()):
        for key, session in sessions.items():
            for _ in range(min(block, runs - len(times[key]))):
                start = time.perf_counter_ns()
                session.run(x)
                times[key].append((time.perf_counter_ns() - start) / 1e6)
    return {k: {"median_ms": float(np.median(t)), "p10_ms": float(np.percentile(t, 10)),
                "p90_ms": float(np.percentile(t, 90))} for k, t in times.items()}


def gesture_latency(model, features: np.ndarray, runs: int = 200, warmup: int = 20) -> dict:
    """Time a landmark gesture head as the runtime calls it for one hand: :func:`holotune.gesture.hand_features`,
    the ONNX Runtime run and the threshold rule (:meth:`holotune.gesture.GestureModel.classify`).

    Args:
        model: a :class:`holotune.gesture.GestureModel`.
        features: (M, FEATURE_SIZE) hand features; the first one's rotated points, mapped into a 640x480
            image, are the timed hand (its shape matters little: the cost is the same for every hand).

    Returns:
        ``{"per_hand_ms", "per_hand_p90_ms", "two_hands_ms"}``: median (and p90) milliseconds per call.
    """
    points = features[0, :63].reshape(21, 3).astype(np.float64) * 0.2 + 0.5
    one, two = {"right": points}, {"left": points, "right": points}

    def median_ms(hands: dict) -> tuple[float, float]:
        for _ in range(warmup):
            model.classify(hands, (640, 480))
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            model.classify(hands, (640, 480))
            times.append(time.perf_counter() - start)
        return 1000.0 * float(np.median(times)), 1000.0 * float(np.percentile(times, 90))

    per_hand, p90 = median_ms(one)
    return {"per_hand_ms": per_hand, "per_hand_p90_ms": p90, "two_hands_ms": median_ms(two)[0]}
