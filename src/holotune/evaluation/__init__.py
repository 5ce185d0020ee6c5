"""Evaluation: the stock and the fine-tuned model on the same held-out crops, with the field's metrics.

* :mod:`~holotune.evaluation.metrics`: NME (inter-ocular / bounding-box), PCK, classification metrics;
* :mod:`~holotune.evaluation.scoring`: per-sample scores of a model on a split (:func:`score_model`);
* :mod:`~holotune.evaluation.comparison`: baseline vs fine-tuned per condition, bootstrap intervals
  over test identities, the regression gate;
* :mod:`~holotune.evaluation.jitter`: pose stability in video mode at low resolution, stock vs
  fine-tuned (the ``jitter`` section of ``metrics.json`` for ``pose``);
* :mod:`~holotune.evaluation.report`: the ``evaluate`` stage (``reports/metrics.json``, plots, overlays).

Never imports Lightning or Hydra.
"""

from __future__ import annotations

_EXPORTS = {
    "score_model": "holotune.evaluation.scoring",
    "score_samples": "holotune.evaluation.scoring",
    "EvaluateOptions": "holotune.evaluation.report",
    "evaluate": "holotune.evaluation.report",
    "RegressionGateError": "holotune.evaluation.comparison",
    "JitterOptions": "holotune.evaluation.jitter",
    "evaluate_jitter": "holotune.evaluation.jitter",
    "pose_jitter": "holotune.evaluation.jitter",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'holotune.evaluation' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
