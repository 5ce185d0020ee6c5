"""The ``evaluate`` stage: stock vs fine-tuned on the same held-out crops, reports, plots, overlays, the gate.

Writes under ``EvaluateOptions.out_dir`` (``reports/``):

* ``metrics.json`` (DVC metrics): per split (each condition, ``shifted``, ``reference``, ``all``,
  and the same within each domain as ``<domain>/<split>`` when the test rows span several, e.g.
  ``sharp/shifted``, ``lfw/mask``) the baseline (stock), fine-tuned and delta figures with
  bootstrap 95 % intervals over test identities, the presence rate, classification scores if the
  run trained a class head, and the gate's verdict;
* ``plots/`` (DVC plots): training curves, metric per condition, per-landmark error, confusion rows;
* ``overlays/``: before/after drawings of a few test crops (per condition, the crop with the median
  stock error, so the pictures are typical rather than picked for the fine-tuned model).

For ``pose``, ``metrics.json`` also holds ``jitter`` (``evaluate.jitter``, :mod:`~holotune.evaluation.jitter`):
stock and fine-tuned in Holistic's video mode on low-resolution clips (test people under a known
camera motion, and real videos), the RMS acceleration of the visible landmarks in px and % of the torso.

The gate: if the fine-tuned model is worse than stock on the reference split (or on the reference
split of any domain with ``domain_gate_min_identities`` test people) by more than ``tolerance_pct``,
or gives non-finite landmarks on a sample stock scores,
:class:`~holotune.evaluation.comparison.RegressionGateError` is raised *after* everything is written
(so the evidence is on disk), unless ``allow_regression``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from holotune.evaluation.comparison import RegressionGateError, check_gate, compare_scores, condition_splits
from holotune.evaluation.gestures import confusion_rows as gesture_confusion_rows
from holotune.evaluation.gestures import gesture_report
from holotune.evaluation.jitter import JitterOptions, check_options, evaluate_jitter, summary_line
from holotune.evaluation.plots import draw_comparison, read_training_curves, write_plots
from holotune.evaluation.scoring import (
    RoiJitter,
    SampleScores,
    presence_rate,
    sample_info,
    score_samples,
    split_dataset,
)

log = logging.getLogger(__name__)

PRIMARY_METRIC = "nme"


@dataclass(frozen=True, kw_only=True)
class EvaluateOptions:
    """What to compare and where to write it (``conf/evaluate``; ``batch_size`` is the library's).

    Attributes:
        module: ``face_mesh`` | ``hands`` | ``pose``.
        model: the fine-tuned ``model.pt`` (merged state_dict, stock layer layout).
        shards_dir, manifest: the data; ``split`` (``test``) is scored.
        out_dir: ``reports``: ``metrics.json``, ``plots/``, ``overlays/`` go here.
        classifier: ``classifier.pt`` of a classification run (``None``/missing: none).
        task_input: ``image`` (the landmark model and any image class head are scored on crops) or
            ``landmarks`` (only the landmark gesture head ``gesture`` is scored, on the manifest's hands).
        gesture: ``gesture.pt`` of a ``task.input=landmarks`` run.
        tensorboard_dir: the run's TensorBoard events, for the training curves.
        reference_conditions: manifest ``condition`` values that are the stock domain (the reference
            split, for the forgetting gate); if no sample has one, the whole split is the reference.
        tolerance_pct: how much worse (relative %, primary metric NME) the reference split may get.
        false_presence_tolerance: how many points the false-presence rate on non-face patches
            (face_mesh: the non-face half of ``lfw_subset()``) may rise; a presence head that calls
            everything a face would keep MediaPipe's tracker from ever re-detecting.
        domain_gate_min_identities: a domain's own reference split (``<domain>/reference``) is gated
            too when it holds at least this many test identities (fewer: reported, not gated, as
            one or two people are noise, not evidence).
        allow_regression: report a failed gate but do not raise.
        bootstrap: bootstrap resamples of identities for the 95 % intervals.
        roi_jitter: the tracking-ROI error every evaluation crop carries (:class:`RoiJitter`; its
            ``seed`` is ``seed``); ``CENTRED`` scores label-centred crops.
        overlays: overlay images per condition.
        jitter: ``pose`` only: the video-mode jitter of stock and fine-tuned at low resolution
            (:class:`~holotune.evaluation.jitter.JitterOptions`; ``enabled: false`` skips it).
        seed: bootstrap seed.
        batch_size: inference batch.
    """

    module: str
    model: str
    shards_dir: str
    manifest: str | None
    out_dir: str
    split: str
    classifier: str | None
    task_input: str
    gesture: str | None
    tensorboard_dir: str | None
    reference_conditions: tuple[str, ...]
    tolerance_pct: float
    false_presence_tolerance: float
    domain_gate_min_identities: int
    allow_regression: bool
    bootstrap: int
    roi_jitter: RoiJitter
    overlays: int
    jitter: JitterOptions
    seed: int
    batch_size: int = 32


def _check(options: EvaluateOptions) -> None:
    from holotune.models.spec import get_module

    get_module(options.module, "evaluate.module")
    if not Path(options.model).is_file():
        raise FileNotFoundError(f"evaluate.model: {options.model} does not exist (run the finetune stage)")
    if not any(Path(options.shards_dir).glob(f"{options.split}-*.tfrecord*")):
        raise FileNotFoundError(f"evaluate.shards_dir: no {options.split}-*.tfrecord shards in {options.shards_dir}")
    if options.tolerance_pct < 0:
        raise ValueError(f"evaluate.tolerance_pct must be >= 0, got {options.tolerance_pct}")
    if options.bootstrap < 100:
        raise ValueError(f"evaluate.bootstrap must be >= 100 resamples, got {options.bootstrap}")
    check_options(options.jitter)


def evaluate(options: EvaluateOptions) -> dict:
    """Score stock and fine-tuned on ``options.split``, write the reports, apply the gate.

    Returns the ``metrics.json`` content. Raises :class:`RegressionGateError` (after writing) when
    the gate fails and ``allow_regression`` is false.
    """
    from holotune.models import create_model
    from holotune.models.spec import MODULE_MODELS

    if options.task_input == "landmarks":
        from holotune.evaluation.gestures import evaluate_landmark_head
        from holotune.gesture import SCORE_THRESHOLD

        return evaluate_landmark_head(options.gesture, options.manifest, options.split, options.out_dir, SCORE_THRESHOLD)
    _check(options)
    out_dir = Path(options.out_dir)
    jitter = replace(options.roi_jitter, seed=options.seed)
    dataset = split_dataset(options.shards_dir, options.split, options.manifest, options.module, jitter)
    info = sample_info(options.manifest)
    name = MODULE_MODELS[options.module]
    classifier = None
    if options.classifier and Path(options.classifier).is_file():
        from holotune.training.heads import load_class_head

        classifier = load_class_head(options.classifier)
    stock_model = create_model(name)
    stock = score_samples(stock_model, dataset, info, batch_size=options.batch_size)
    tuned_model = create_model(name, checkpoint_path=options.model)
    tuned = score_samples(tuned_model, dataset, info, classifier=classifier, batch_size=options.batch_size)

    splits = {}
    for split_name, keep in condition_splits(stock, options.reference_conditions).items():
        splits[split_name] = compare_scores(stock.select(keep), tuned.select(keep), n_boot=options.bootstrap,
                                            seed=options.seed)
    gate = check_gate(splits["reference"], PRIMARY_METRIC, options.tolerance_pct, options.allow_regression)
    # Each domain's reference split is gated too: a gain on many small LFW faces must not hide a
    # regression on the sharp ones.
    for split_name in sorted(n for n in splits if n.endswith("/reference")):
        domain_gate = check_gate(splits[split_name], PRIMARY_METRIC, options.tolerance_pct, options.allow_regression,
                                 name=split_name)
        gated = splits[split_name]["identities"] >= options.domain_gate_min_identities
        gate.setdefault("domains", {})[split_name.split("/")[0]] = {
            "gated": gated, **{k: domain_gate[k] for k in ("change_pct", "passed", "message")}}
        if gated and not domain_gate["passed"]:
            gate["passed"] = False
            gate["message"] += f"; {domain_gate['message']}"
    # NaN marks a sample without labelled points, and the means skip it; a fine-tuned model whose landmarks
    # are non-finite where stock's are not would drop its own failures out of the means and read as a gain.
    lost = int(np.sum(np.isfinite(stock.nme) & ~np.isfinite(tuned.nme)))
    if lost:
        gate["passed"] = False
        gate["non_finite_samples"] = lost
        gate["message"] += (f"; the fine-tuned model's landmarks are not finite on {lost} of {len(stock.nme)} "
                            f"{options.split} samples (its NME leaves them out)")
    false_presence = None
    if options.module == "face_mesh":
        from holotune.data.default import lfw_nonface_canvases

        nonfaces = lfw_nonface_canvases()
        false_presence = {"set": "the 100 non-face patches of skimage.data.lfw_subset()", "n": len(nonfaces),
                          "baseline": presence_rate(stock_model, options.module, nonfaces),
                          "finetuned": presence_rate(tuned_model, options.module, nonfaces),
                          "tolerance_points": options.false_presence_tolerance}
        false_presence["delta"] = false_presence["finetuned"] - false_presence["baseline"]
        if false_presence["delta"] > options.false_presence_tolerance:
            gate["passed"] = False
            gate["message"] += (f"; false presence on non-face patches {false_presence['baseline']:.0f}% -> "
                                f"{false_presence['finetuned']:.0f}% (allowed +{options.false_presence_tolerance:g} points)")
    metrics = {
        "module": options.module,
        "split": options.split,
        "primary_metric": PRIMARY_METRIC,
        "reference_conditions": list(options.reference_conditions),
        "crops": {"roi_jitter": asdict(jitter), "note": "tracking-ROI error, one fixed draw per sample"},
        "bootstrap": {"resamples": options.bootstrap, "over": "test identities (manifest group)", "seed": options.seed},
        "splits": splits,
        "false_presence": false_presence,
        "gate": gate,
    }
    confusion_rows = None
    if classifier is not None and tuned.labels is not None:
        labelled = tuned.labels >= 0
        labels, predicted = tuned.labels[labelled], tuned.predicted_class[labelled]
        metrics["classification"] = gesture_report(labels, predicted, [c for c, keep in zip(tuned.conditions, labelled)
                                                                       if keep], classifier.class_names)
        confusion_rows = gesture_confusion_rows(labels, predicted, classifier.class_names)
    if options.module == "pose" and options.jitter.enabled:
        metrics["jitter"] = evaluate_jitter(options.jitter, options.manifest, options.model)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=True))
    curves = read_training_curves(options.tensorboard_dir) if options.tensorboard_dir else []
    write_plots(out_dir / "plots", options.module, PRIMARY_METRIC, splits, stock.point_errors, tuned.point_errors,
                curves, confusion_rows)
    write_overlays(out_dir / "overlays", dataset, stock, tuned, stock_model, tuned_model, options)
    log.info("evaluate: %s", gate["message"])
    if not gate["passed"] and not options.allow_regression:
        raise RegressionGateError(
            f"evaluate gate failed: {gate['message']}. The fine-tuned model forgot part of the stock domain; "
            f"reports are in {out_dir}. Re-run with evaluate.allow_regression=true to accept it.")
    return metrics


def write_overlays(out_dir: Path, dataset, stock: SampleScores, tuned: SampleScores, stock_model, tuned_model,
                   options: EvaluateOptions) -> list[Path]:
    """Per condition, ``options.overlays`` crops around the median stock error, drawn before/after."""
    import torch

    from holotune.training.outputs import decode_landmarks

    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.png"):
        old.unlink()  # a stale picture from an earlier run must not pass for this one
    written = []
    conditions = np.asarray(stock.conditions, dtype=object)
    for condition in sorted(set(stock.conditions)):
        rows = np.flatnonzero(conditions == condition)
        rows = rows[np.isfinite(stock.nme[rows])]
        if not rows.size:
            continue
        order = rows[np.argsort(stock.nme[rows], kind="stable")]
        mid = len(order) // 2
        for row in order[max(0, mid - options.overlays // 2): mid + (options.overlays + 1) // 2]:
            item = dataset[int(row)]
            x = item["image"][None]
            with torch.no_grad():
                before = decode_landmarks(options.module, stock_model(x))[0].numpy()
                after = decode_landmarks(options.module, tuned_model(x))[0].numpy()
            crop = dataset.spec.from_input(item["image"].numpy().transpose(1, 2, 0))
            captions = (f"stock NME {100 * stock.nme[row]:.1f}%", f"fine-tuned NME {100 * tuned.nme[row]:.1f}%")
            picture = draw_comparison(crop, item["target"].numpy(), item["mask"].numpy(), before, after,
                                      options.module, captions)
            path = out_dir / f"{condition}_{stock.sample_ids[row]}.png"
            cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            written.append(path)
    return written


def summary(metrics: dict) -> list[str]:
    """The evaluate stage's report lines: reference and shifted NME before -> after (or the gesture
    scores), and the gate."""
    lines = []
    if "classification" in metrics:
        c = metrics["classification"]
        lines.append(f"gestures ({len(c['class_names'])} classes, {c['finetuned']['n']} hands): accuracy "
                     f"{100 * c['finetuned']['accuracy']:.1f}%, macro-F1 {100 * c['finetuned']['macro_f1']:.1f}%; "
                     + ", ".join(f"{k} {100 * v['accuracy']:.1f}%" for k, v in c.get("conditions", {}).items()))
    if "splits" not in metrics:
        lines.append(f"gate passed: {metrics['gate']['message']}")
        return lines
    for name in ("reference", "shifted"):
        if name in metrics["splits"]:
            s = metrics["splits"][name]
            d = s["delta"]
            lines.append(f"{name}: NME {s['baseline']['nme']:.3f}% -> {s['finetuned']['nme']:.3f}% "
                         f"({d['nme_pct']:+.1f}% [{d['nme_pct_ci95_low']:+.1f}, {d['nme_pct_ci95_high']:+.1f}])")
    if metrics.get("jitter"):
        lines.append(summary_line(metrics["jitter"]))
    lines.append(f"gate {'passed' if metrics['gate']['passed'] else 'FAILED (allowed)'}: {metrics['gate']['message']}")
    return lines
