"""ONNX Runtime latency of model files, measured as the runtime opens them (numpy and ONNX Runtime only)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from holotune.models.spec import ModelSpec
from holotune.runtime.sessions import ModelSession


def onnx_latency(paths: dict[str, str | Path], spec: ModelSpec, runs: int = 40, warmup: int = 5,
                 block: int = 5) -> dict:
    """ONNX Runtime latency of several exports of one model, measured interleaved in one run.

    Each file opens as the runtime opens a swapped-in model (:class:`holotune.runtime.sessions.ModelSession`:
    the stock-signature check, 1 intra-op thread, no spinning, all graph optimizations) and runs a
    batch of 1 on the same input; after the warm-ups the sessions take turns in blocks of ``block``
    calls, so a slow phase of a shared machine hits all of them alike.

    Returns:
        ``{key: {"median_ms", "p10_ms", "p90_ms"}}``, milliseconds per call.
    """
    sessions = {k: ModelSession(spec, p, threads=1) for k, p in paths.items()}
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
