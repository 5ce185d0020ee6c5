"""The evaluate stage: metrics as the field defines them, comparisons with bootstrap intervals, the gate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from stage_options import evaluate_options

from holotune.evaluation.comparison import RegressionGateError, check_gate, compare_metric, condition_splits
from holotune.evaluation.metrics import classification_metrics, nme, pck
from holotune.evaluation.report import EvaluateOptions, evaluate
from holotune.evaluation.scoring import CENTRED, SampleScores, score_model
from holotune.landmarks import FACE_IOD_POINTS

ROOT = Path(__file__).resolve().parent.parent


def face_points(iod: float = 0.4) -> torch.Tensor:
    """(1, 468, 3) points with the outer eye corners ``iod`` apart, the rest at the centre."""
    target = torch.full((1, 468, 3), 0.5)
    target[0, FACE_IOD_POINTS[0], 0] = 0.5 - iod / 2
    target[0, FACE_IOD_POINTS[1], 0] = 0.5 + iod / 2
    return target


def test_face_nme_is_normalized_by_the_interocular_distance():
    target = face_points(0.4)
    pred = target.clone()
    pred[..., 0] += 0.02  # every point 0.02 off: 0.02 / 0.4 = 5 %
    mask = torch.ones(1, 468)
    assert nme(pred, target, mask, "face_mesh").item() == pytest.approx(0.05, rel=1e-5)
    mask[0, 100:] = 0  # unlabelled points never count
    pred[0, 200:, 0] += 1.0
    assert nme(pred, target, mask, "face_mesh").item() == pytest.approx(0.05, rel=1e-5)
    assert torch.isnan(nme(pred, target, torch.zeros(1, 468), "face_mesh")).all()  # nothing labelled: NaN, not 0


def test_pck_and_bbox_nme_for_hands():
    target = torch.zeros(1, 21, 3)
    target[0, :, 0] = torch.linspace(0.2, 0.6, 21)  # bbox 0.4 wide, 0.2 high
    target[0, :, 1] = torch.linspace(0.4, 0.6, 21)
    pred = target.clone()
    pred[0, :10, 0] += 0.03  # 10 points 0.075 of the longer side off, 11 exact
    mask = torch.ones(1, 21)
    assert pck(pred, target, mask, 0.05).item() == pytest.approx(11 / 21)
    assert pck(pred, target, mask, 0.1).item() == pytest.approx(1.0)
    diagonal = (0.4**2 + 0.2**2) ** 0.5
    assert nme(pred, target, mask, "hands").item() == pytest.approx(10 * 0.03 / 21 / diagonal, rel=1e-5)


def test_classification_metrics_known_confusion():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0])
    m = classification_metrics(y_true, y_pred, ["fist", "palm", "ok"])
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    f1_fist = 2 * (2 / 3) * (2 / 3) / (4 / 3)
    f1_palm = 2 * (2 / 3) * 1.0 / (5 / 3)
    assert m["macro_f1"] == pytest.approx((f1_fist + f1_palm + 0.0) / 3)
    with pytest.raises(ValueError, match="class index 3"):
        classification_metrics(np.array([3]), np.array([0]), ["fist", "palm", "ok"])


def test_bootstrap_comparison_over_identities():
    rng = np.random.default_rng(0)
    groups = [f"person{i // 4}" for i in range(40)]  # 10 identities, 4 samples each
    base = rng.uniform(5, 10, 40)
    same = compare_metric(base, base.copy(), groups, n_boot=500)
    assert same["delta_pct"] == 0 and same["delta_pct_ci95_low"] == 0 and same["delta_pct_ci95_high"] == 0
    better = compare_metric(base, 0.8 * base, groups, n_boot=500)
    assert better["delta_pct"] == pytest.approx(-20.0)
    assert better["delta_pct_ci95_low"] == pytest.approx(-20.0) and better["delta_pct_ci95_high"] == pytest.approx(-20.0)
    mixed = compare_metric(base, base * rng.uniform(0.7, 1.1, 40), groups, n_boot=2000)
    assert mixed["delta_pct_ci95_low"] < mixed["delta_pct"] < mixed["delta_pct_ci95_high"]
    assert mixed["baseline_ci95_low"] < mixed["baseline"] < mixed["baseline_ci95_high"]


def test_condition_splits_and_gate():
    conditions = ["clean", "mask", "clean", "low_light"]
    scores = SampleScores(["a", "b", "c", "d"], ["p", "p", "q", "q"], conditions, np.ones(4), np.ones(4), np.ones((4, 1)))
    splits = condition_splits(scores, ("clean",))
    assert splits["reference"].tolist() == [True, False, True, False]
    assert splits["shifted"].tolist() == [False, True, False, True]
    assert splits["all"].all() and set(splits) == {"clean", "mask", "low_light", "shifted", "reference", "all"}
    no_conditions = condition_splits(SampleScores(["a"], ["p"], ["all"], np.ones(1), np.ones(1), np.ones((1, 1))),
                                     ("clean",))
    assert no_conditions["reference"].all() and "shifted" not in no_conditions  # user data: reference = everything

    def reference(change):
        return {"n": 10, "identities": 5, "baseline": {"nme": 2.0}, "finetuned": {"nme": 2.0 * (1 + change / 100)},
                "delta": {"nme_pct": change}}
    assert check_gate(reference(1.9), "nme", 2.0, False)["passed"]
    gate = check_gate(reference(2.5), "nme", 2.0, False)
    assert not gate["passed"] and "+2.50%" in gate["message"] and "allows 2% higher" in gate["message"]


def test_domains_get_their_own_splits():
    conditions = ["clean", "mask", "clean", "mask", "clean"]
    domains = ["sharp", "sharp", "lfw", "lfw", None]
    scores = SampleScores(list("abcde"), list("ppqqr"), conditions, np.ones(5), np.ones(5), np.ones((5, 1)),
                          domains=domains)
    splits = condition_splits(scores, ("clean",))
    assert splits["sharp/reference"].tolist() == [True, False, False, False, False]
    assert splits["lfw/shifted"].tolist() == [False, False, False, True, False]
    assert splits["reference"].tolist() == [True, False, True, False, True]  # the pooled splits keep every row
    assert "sharp/low_light" not in splits  # empty selections are left out
    assert scores.select(np.array([False, True, True, False, False])).domains == ["sharp", "lfw"]
    one_domain = SampleScores(["a"], ["p"], ["clean"], np.ones(1), np.ones(1), np.ones((1, 1)), domains=["lfw"])
    assert set(condition_splits(one_domain, ("clean",))) == {"clean", "reference", "all"}


def test_a_domain_reference_regression_fails_the_gate(shards, tmp_path, monkeypatch):
    """The pooled clean split may pass while one domain's clean split regresses: the gate fails."""
    import holotune.evaluation.report as report_module

    real = report_module.condition_splits

    def with_fake_domains(scores, reference):
        scores.domains = ["a" if i % 2 else "b" for i in range(len(scores.sample_ids))]
        return real(scores, reference)

    monkeypatch.setattr(report_module, "condition_splits", with_fake_domains)
    metrics = evaluate(options(shards, tmp_path, degraded_model_pt(tmp_path / "bad.pt", 0.5),
                               allow_regression=True, tolerance_pct=2.0, domain_gate_min_identities=1))
    assert set(metrics["gate"]["domains"]) == {"a", "b"}
    assert not metrics["gate"]["passed"]
    assert all(not d["passed"] and d["message"].startswith(f"{name}/reference split")
               for name, d in metrics["gate"]["domains"].items())
    assert {"a/shifted", "b/reference"} <= set(metrics["splits"])


def degraded_model_pt(path: Path, noise: float) -> Path:
    """The stock face model with Gaussian noise on the final landmark layer (a deliberately bad fine-tune)."""
    from holotune.models import create_model

    model = create_model("face_landmark")
    with torch.no_grad():
        w = model.conv2d_21.weight
        w.add_(noise * w.std() * torch.randn(w.shape, generator=torch.Generator().manual_seed(0)))
    torch.save(model.state_dict(), path)
    return path


def options(shards, tmp_path, model: Path, **kw) -> EvaluateOptions:
    return evaluate_options(module="face_mesh", model=str(model), shards_dir=str(shards / "shards"),
                            manifest=str(shards / "interim" / "manifest.jsonl"), out_dir=str(tmp_path / "reports"),
                            split="val", bootstrap=200, **kw)


def test_stock_against_itself_changes_nothing_and_passes(shards, tmp_path):
    from holotune.models import create_model

    torch.save(create_model("face_landmark").state_dict(), tmp_path / "model.pt")
    metrics = evaluate(options(shards, tmp_path, tmp_path / "model.pt"))
    assert metrics["gate"]["passed"]
    splits = metrics["splits"]
    assert {"clean", "mask", "low_light", "both", "shifted", "reference", "all"} <= set(splits)
    for s in splits.values():
        assert s["delta"]["nme"] == 0 and s["baseline"]["nme"] == s["finetuned"]["nme"]
        assert s["baseline"]["nme_ci95_low"] <= s["baseline"]["nme"] <= s["baseline"]["nme_ci95_high"]
        assert 0 <= s["baseline"]["presence_rate"] <= 100
    # the shift hurts the stock model: the point of the whole exercise
    assert splits["shifted"]["baseline"]["nme"] > 1.5 * splits["clean"]["baseline"]["nme"]
    written = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert written["splits"]["all"]["n"] == splits["all"]["n"] > 0
    plots = tmp_path / "reports" / "plots"
    assert (plots / "conditions.csv").read_text().startswith("split,stock,finetuned")
    rows = (plots / "per_landmark.csv").read_text().splitlines()
    assert rows[0] == "landmark,name,stock,finetuned" and len(rows) == 469
    assert json.loads((plots / "confusion.json").read_text()) == []  # no class head: empty, but present for DVC
    overlays = sorted(p.name.split("_")[0] for p in (tmp_path / "reports" / "overlays").glob("*.png"))
    assert overlays == ["both", "clean", "low", "mask"]  # one per condition (low_light_<id>.png)


def test_gate_fires_on_a_degraded_model_after_writing_the_reports(shards, tmp_path):
    bad = degraded_model_pt(tmp_path / "bad.pt", noise=0.5)
    with pytest.raises(RegressionGateError, match=r"evaluate gate failed: reference split .*evaluate.allow_regression=true"):
        evaluate(options(shards, tmp_path, bad))
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())  # the evidence is on disk
    assert not metrics["gate"]["passed"] and metrics["gate"]["change_pct"] > 2.0
    assert metrics["splits"]["reference"]["finetuned"]["nme"] > metrics["splits"]["reference"]["baseline"]["nme"]
    accepted = evaluate(options(shards, tmp_path, bad, allow_regression=True))  # the escape hatch
    assert not accepted["gate"]["passed"] and accepted["gate"]["allow_regression"]


def test_stage_exits_1_with_the_gate_message(shards, tmp_path):
    bad = degraded_model_pt(tmp_path / "bad.pt", noise=0.5)
    overrides = [f"evaluate.model={bad}", f"evaluate.shards_dir={shards / 'shards'}",
                 f"evaluate.manifest={shards / 'interim' / 'manifest.jsonl'}", f"evaluate.out_dir={tmp_path / 'r'}",
                 "evaluate.split=val", "evaluate.bootstrap=200", f"evaluate.tensorboard_dir={tmp_path / 'none'}",
                 f"hydra.run.dir={tmp_path}", "hydra.output_subdir=null"]
    done = subprocess.run([sys.executable, str(ROOT / "stages" / "evaluate.py"), *overrides], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "evaluate: evaluate gate failed: reference split" in done.stderr
    assert "Traceback" not in done.stderr
    missing = subprocess.run([sys.executable, str(ROOT / "stages" / "evaluate.py"), *overrides,
                              f"evaluate.model={tmp_path / 'nope.pt'}"], capture_output=True, text=True, cwd=tmp_path,
                             timeout=300)
    assert missing.returncode == 1 and f"evaluate.model: {tmp_path / 'nope.pt'} does not exist" in missing.stderr


def test_score_model_and_centred_crops(shards):
    from holotune.models import create_model

    model = create_model("face_landmark")
    manifest = shards / "interim" / "manifest.jsonl"
    jittered = score_model(model, "face_mesh", shards / "shards", manifest, evaluate_options().roi_jitter, split="val")
    centred = score_model(model, "face_mesh", shards / "shards", manifest, CENTRED, split="val")
    assert jittered["n"] == centred["n"] > 0
    assert centred["nme"] < jittered["nme"]  # tracking-ROI error costs the model accuracy
    with pytest.raises(ValueError, match="split 'test' has no labelled face_mesh samples"):
        score_model(model, "face_mesh", shards / "shards", None, CENTRED, split="test")


@pytest.mark.parametrize(("change", "error", "message"), [
    ({"module": "face"}, ValueError, "evaluate.module: unknown module 'face'"),
    ({"split": "holdout"}, FileNotFoundError, "evaluate.shards_dir: no holdout-\\*.tfrecord shards in"),
    ({"tolerance_pct": -1.0}, ValueError, "evaluate.tolerance_pct must be >= 0, got -1.0"),
    ({"bootstrap": 10}, ValueError, "evaluate.bootstrap must be >= 100 resamples, got 10"),
])
def test_bad_options_are_named_before_any_work(shards, tmp_path, change, error, message):
    import dataclasses

    from holotune.models import create_model

    torch.save(create_model("face_landmark").state_dict(), tmp_path / "model.pt")
    with pytest.raises(error, match=message):
        evaluate(dataclasses.replace(options(shards, tmp_path, tmp_path / "model.pt"), **change))
    assert not (tmp_path / "reports").exists()  # nothing written
